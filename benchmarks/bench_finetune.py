"""Fine-tuning the released ``default`` tokenizer: quality before and after, as a paired comparison.

The recipe of docs/finetuning.md (``spectok train tokenizer --init default``, one thread, the best
step by validation L1 exported), measured on two conditions, each scored by ``spectok eval``
(``default``'s paired vocoder) on held-out clips never fine-tuned on, released against
fine-tuned on the same clips (means with 95 % intervals, and the paired interval of the gain):

- ``telephone``: 8 kHz telephone-band digits (the Free Spoken Digit Dataset), a condition
  ``default`` handles badly. Fine-tune on 300 clips of each of 4 speakers; score 40 strings of 5
  digits of the 2 other speakers (:mod:`spectok.data.digit_strings`). What ``spectok demo`` shows.
- ``new-voice``: LJSpeech, a voice ``default`` never heard but a condition it handles well:
  ``--minutes`` of the ``ljspeech22k`` train split; its 30 held-out clips.

Usage::

    python benchmarks/bench_finetune.py --condition telephone --steps 1200 --lr 1e-4 --seed 0
    python benchmarks/bench_finetune.py --condition new-voice --minutes 2 --steps 1500
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from harness import DATA, release_sets, spectok  # spectok(ARGS, THREADS, LOG) -> child CPU-s

from spectok.artifacts import read_header
from spectok.data.digit_strings import FINETUNE_SPEAKERS, write_digit_strings
from spectok.evaluation.aggregate import format_ci, paired_comparison

REPO = Path(__file__).resolve().parents[1]
FSDD = DATA / "free-spoken-digit-dataset"


def telephone(work: Path, log: Path) -> tuple[Path, Path, str]:
    """The FSDD condition: (prepared fine-tuning set, held-out folder, description)."""
    if not FSDD.is_dir():
        raise SystemExit(f"{FSDD}: not found (the Free Spoken Digit Dataset is read from ../shared/data)")
    data = work / "telephone-prepared"
    spectok(["prepare", "fsdd", str(FSDD), str(data), "--speakers", ",".join(FINETUNE_SPEAKERS),
             "--max-per-speaker", "300", "--valid-ratio", "0.1"], 1, log)
    held = work / "telephone-held-out"
    strings = write_digit_strings(FSDD, held)
    return data, held, (f"8 kHz telephone digits (FSDD): 300 clips of each of {', '.join(FINETUNE_SPEAKERS)}; "
                        f"{len(strings)} held-out strings of 5 digits of the 2 other speakers")


def new_voice(work: Path, minutes: float) -> tuple[Path, Path, str]:
    """The LJSpeech condition: ``minutes`` of the ``ljspeech22k`` train split; its test split held out."""
    import soundfile as sf

    from spectok.data.prepare import prepare

    items = sorted(release_sets().items_for("ljspeech22k"), key=lambda i: i.id)
    chosen, seconds = [], 0.0
    for it in items:
        if it.split == "train" and seconds < minutes * 60:
            seconds += sf.info(str(it.path)).duration
            chosen.append(it)
    valid = [it for it in items if it.split == "valid"][:4]
    test = [it for it in items if it.split == "test"]
    data, held = work / f"voice-{minutes:g}min", work / "voice-held-out"
    prepare(chosen + valid, data, mel="speech-16k", progress=False)
    prepare(test, held, mel="speech-16k", progress=False)
    return data, held, f"a new voice (LJSpeech): {seconds / 60:.1f} min; {len(test)} held-out clips"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--condition", choices=("telephone", "new-voice"), default="telephone")
    ap.add_argument("--minutes", type=float, default=2.0, help="new-voice: minutes of LJSpeech to fine-tune on")
    ap.add_argument("--steps", type=int, default=1200, help="fine-tuning steps")
    ap.add_argument("--lr", type=float, default=1.0e-4, help="fine-tuning learning rate")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "bench-finetune")
    args = ap.parse_args()
    work, log = args.work, args.work / "spectok.log"
    work.mkdir(parents=True, exist_ok=True)
    data, held, what = telephone(work, log) if args.condition == "telephone" else new_voice(work, args.minutes)
    run = work / f"run-{args.condition}-{args.steps}-lr{args.lr:g}-seed{args.seed}"
    artifact = run.parent / f"{run.name}.safetensors"  # the name holds dots (lr 0.0001)
    cpu = 0.0
    if not artifact.is_file():
        t0 = time.time()
        cpu = spectok(["train", "tokenizer", "--init", "default", "--data", str(data), "--out", str(run),
                       "--steps", str(args.steps), "--set", f"optim.generator.lr={args.lr}",
                       "--set", f"train.seed={args.seed}", "--set", "train.valid_every=200",
                       "--set", "train.checkpoint_every=200", "--set", "train.progress=false"], 1, log)
        print(f"fine-tuned in {cpu:.0f} CPU-s ({time.time() - t0:.0f} s wall, 1 thread, "
              f"load {os.getloadavg()[0]:.1f})")
        spectok(["export", str(run), "-o", str(artifact)], 1, log)
    reports = []
    for tok, out in (("default", work / f"eval-{args.condition}-released"), (str(artifact), work / f"eval-{run.name}")):
        if not (out / "report.json").is_file():
            spectok(["eval", "-t", tok, "-v", "default", str(held), "-o", str(out), "-q", "--no-dnsmos"], 2, log)
        reports.append(json.loads((out / "report.json").read_text()))
    c = paired_comparison(*reports)
    step = read_header(artifact).get("training", {}).get("step")
    print(f"\n## Fine-tuning `default`: {what}; {args.steps} steps, lr {args.lr:g}, seed {args.seed}, "
          f"exported step {step} (best validation L1)")
    print(f"{'tokenizer':24s} {'PESQ-WB [95 % CI]':>26s} {'STOI [95 % CI]':>26s}")
    for label, key, sign in (("default (released)", "before", ""), ("default fine-tuned", "after", ""),
                             ("gain (paired)", "gain", "+")):
        print(f"{label:24s} {format_ci(c[key]['pesq_wb'], sign):>26s} {format_ci(c[key]['stoi'], sign):>26s}")
    print(f"({c['clips']} clips; PESQ-WB scored on {c['gain']['pesq_wb']['clips']}, STOI on "
          f"{c['gain']['stoi']['clips']}" + (f"; fine-tuning {cpu / 60:.1f} CPU-minutes)" if cpu else ")"))


if __name__ == "__main__":
    main()
