"""Fine-tuning the released ``default`` tokenizer on one new voice: quality before and after.

The recipe of docs/finetuning.md, measured: LJSpeech is a voice ``default`` never heard (it is
left out of its training data). Fine-tune on ``--minutes`` of LJSpeech clips (from the
``ljspeech22k`` train split) with ``spectok train tokenizer --init default`` for a fixed budget
of one-thread CPU time, then ``spectok eval`` the released and the fine-tuned tokenizer on the
30 held-out LJSpeech clips (the ``ljspeech22k`` test split: never trained on), Griffin-Lim.

Usage::

    python benchmarks/bench_finetune.py --minutes 2 --steps 1500
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from harness import release_sets, spectok  # spectok(ARGS, THREADS, LOG) -> child CPU-s

REPO = Path(__file__).resolve().parents[1]


def _ci(s: dict) -> str:
    return f"{s['mean']:.3f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"


def main() -> None:

    from spectok.data.prepare import prepare

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="minutes of the new voice to fine-tune on")
    ap.add_argument("--steps", type=int, default=1500, help="fine-tuning steps")
    ap.add_argument("--lr", type=float, default=2.0e-4, help="fine-tuning learning rate")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "bench-finetune")
    args = ap.parse_args()
    work = args.work
    items = sorted(release_sets().items_for("ljspeech22k"), key=lambda i: i.id)
    import soundfile as sf

    chosen, seconds = [], 0.0
    for it in items:
        if it.split == "train" and seconds < args.minutes * 60:
            seconds += sf.info(str(it.path)).duration
            chosen.append(it)
    valid = [it for it in items if it.split == "valid"][:4]
    test = [it for it in items if it.split == "test"]
    data, held = work / f"voice-{args.minutes:g}min", work / "held-out"
    prepare(chosen + valid, data, mel="speech-16k", progress=False)
    prepare(test, held, mel="speech-16k", progress=False)
    run = work / f"run-{args.minutes:g}min-{args.steps}"
    artifact = run.with_suffix(".safetensors")
    cpu, log = 0.0, work / "spectok.log"  # the children's output
    if not artifact.is_file():
        t0 = time.time()
        cpu = spectok(["train", "tokenizer", "--init", "default", "--data", str(data), "--out", str(run),
                       "--steps", str(args.steps), "--set", f"optim.generator.lr={args.lr}",
                       "--set", "train.valid_every=250", "--set", "train.checkpoint_every=250",
                       "--set", "train.progress=false"], 1, log)
        print(f"fine-tuned in {cpu:.0f} CPU-s ({time.time() - t0:.0f} s wall, 1 thread, "
              f"load {os.getloadavg()[0]:.1f})")
        spectok(["export", str(run), "-o", str(artifact)], 1, log)
    rows = []
    for label, tok in (("default (released)", "default"), ("default fine-tuned", str(artifact))):
        out = work / ("eval-" + ("released" if tok == "default" else run.name))
        if not (out / "report.json").is_file():
            spectok(["eval", "-t", tok, "-v", "griffin-lim", str(held), "-o", str(out), "-q"], 2, log)
        agg = json.loads((out / "report.json").read_text())["aggregate"]["tokenized"]
        rows.append((label, agg))
    print(f"\n## Fine-tuning `default` on {seconds / 60:.1f} min of a new voice (LJSpeech), {args.steps} steps, "
          f"lr {args.lr:g}; {len(test)} held-out clips of that voice, Griffin-Lim")
    print(f"{'tokenizer':24s} {'PESQ-WB':>18s} {'STOI':>18s} {'mel L1':>8s}")
    for label, a in rows:
        print(f"{label:24s} {_ci(a['pesq']):>18s} {_ci(a['stoi']):>18s} {a['mel_l1']['mean']:8.3f}")
    if cpu:
        print(f"(fine-tuning: {cpu / 60:.1f} CPU-minutes)")


if __name__ == "__main__":
    main()
