"""``spectok demo``: the main job, end to end, with the released models and real speech.

It runs the commands a user would type, printing each one first, so the demo is also a
tutorial. Part 1 reconstructs and scores three LJSpeech clips that ship inside the package
(``spectok/demo/``, public domain; a voice ``default`` never heard, held out from
``ljspeech22k``)::

    spectok models
    spectok reconstruct DEMO/test -t default -v default -o OUT/default/reconstructed --plot
    spectok eval -t default -v default DEMO/test -o OUT/default/report
    (the same for ljspeech22k)

Part 2 (with ``--fsdd DIR``, the Free Spoken Digit Dataset) adapts ``default`` to a condition
it handles badly, 8 kHz telephone-band digits, and shows the gain on speakers it never
fine-tuned on (:mod:`spectok.data.digit_strings`)::

    spectok prepare fsdd FSDD OUT/fsdd/prepared --speakers george,jackson,lucas,nicolas ...
    spectok eval -t default -v default OUT/fsdd/held-out -o OUT/fsdd/report-released
    spectok train tokenizer --init default --data OUT/fsdd/prepared --out OUT/fsdd/run --steps N ...
    spectok export OUT/fsdd/run -o OUT/fsdd/tokenizer.safetensors
    spectok eval -t OUT/fsdd/tokenizer.safetensors -v default OUT/fsdd/held-out -o OUT/fsdd/report-finetuned

It ends with the figures (means with 95 % intervals, and the paired interval of the gain) and
writes them to ``OUT/summary.json``. Every step resumes: a second run says what it reuses.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from importlib.resources import files
from pathlib import Path

from spectok.cli.common import add_command
from spectok.errors import SpectokError

FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset"
METRICS = (("pesq", "pesq_wb", "PESQ-WB"), ("stoi", "stoi", "STOI"))  # report key, summary key, label


def demo_clips() -> Path:
    """The folder of the shipped demo clips (``test/``), from a wheel or a checkout."""
    return Path(str(files("spectok") / "demo"))


def register(sub) -> None:
    p = add_command(sub, "demo", "Run the main job on real speech with the released models: reconstruct and "
                    "evaluate held-out clips, then (with --fsdd) fine-tune 'default' on 8 kHz telephone digits, "
                    "a condition it handles badly, and measure the gain on speakers it never heard.",
                    "spectok demo --out runs/demo --fsdd free-spoken-digit-dataset", run)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="demo folder (default runs/demo)")
    p.add_argument("--fsdd", type=Path, metavar="DIR",
                   help=f"the Free Spoken Digit Dataset (a clone of {FSDD_URL}); without it the fine-tuning "
                   "part is skipped")
    p.add_argument("--steps", type=int, default=1200,
                   help="fine-tuning steps (default 1200: about a minute on 2 idle cores; the best step by "
                   "validation L1 is exported)")


def _step(title: str, argv: list[str], reuse: Path | None = None) -> None:
    """Print ``title`` and the command, run it in this process; say so and skip when ``reuse`` exists."""
    from spectok.cli.main import main

    if reuse is not None and reuse.exists():
        print(f"\n== {title}: reused {reuse} (delete it to redo)", flush=True)
        return
    print(f"\n== {title}\n$ spectok {shlex.join(argv)}", flush=True)
    t0 = time.perf_counter()
    code = main(argv)
    if code != 0:
        raise SpectokError(f"step '{title}' failed (exit status {code}); fix the cause above and rerun to resume")
    print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)


def _models_stamp() -> str:
    """The released models' SHA-256 prefixes: a demo folder made with other weights is not reused."""
    import hashlib

    from spectok.models import GRIFFIN_LIM, releases

    digest = hashlib.sha256()
    for name, release in sorted(releases().items()):
        digest.update(name.encode() + release.tokenizer.read_bytes())
        if release.vocoder != GRIFFIN_LIM:
            digest.update(Path(release.vocoder).read_bytes())
    return digest.hexdigest()[:12]


def run(args: argparse.Namespace) -> int:
    test = demo_clips() / "test"
    if not test.is_dir():
        raise SpectokError(f"{test}: the demo clips are missing from this installation")
    if args.fsdd is not None and not args.fsdd.is_dir():
        raise SpectokError(f"--fsdd {args.fsdd}: no such folder (clone {FSDD_URL})")
    out = Path(args.out) / f"models-{_models_stamp()}"  # results of other releases are never reused
    _step("the released models", ["models"])
    for name in ("default", "ljspeech22k"):
        _step(f"reconstruct 3 held-out LJSpeech clips with '{name}' (audio -> tokens -> mel -> paired vocoder)",
              ["reconstruct", str(test), "-t", name, "-v", "default", "-o", str(out / name / "reconstructed"),
               "--plot"])  # resumes by itself: files already written are kept
        _step(f"evaluate '{name}' on them", ["eval", "-t", name, "-v", "default", str(test),
                                              "-o", str(out / name / "report")],
              reuse=out / name / "report" / "report.json")
    conditions = [_fsdd(args.fsdd, out / "fsdd", args.steps)] if args.fsdd is not None else []
    _summary(out, conditions)
    if args.fsdd is None:
        print(f"\nThe fine-tuning part was skipped: pass --fsdd DIR, a clone of {FSDD_URL}")
    return 0


def _fsdd(fsdd: Path, work: Path, steps: int) -> dict:
    """Fine-tune ``default`` on four FSDD speakers; score it and the released model on the two others."""
    from spectok.data.digit_strings import FINETUNE_SPEAKERS, HELD_OUT_SPEAKERS, write_digit_strings

    _step(f"prepare the fine-tuning clips: 8 kHz telephone digits of {', '.join(FINETUNE_SPEAKERS)} "
          "(300 each, 9 minutes)",
          ["prepare", "fsdd", str(fsdd), str(work / "prepared"), "--speakers", ",".join(FINETUNE_SPEAKERS),
           "--max-per-speaker", "300", "--valid-ratio", "0.1"])
    held = work / "held-out"
    print(f"\n== held-out: 20 strings of 5 digits from each of {' and '.join(HELD_OUT_SPEAKERS)} "
          f"(never fine-tuned on) in {held}", flush=True)
    write_digit_strings(fsdd, held)
    released, finetuned = work / "report-released", work / "report-finetuned"
    _step("evaluate the released 'default' on them", ["eval", "-t", "default", "-v", "default", str(held),
                                                       "-o", str(released), "--no-dnsmos"],
          reuse=released / "report.json")
    artifact = work / "tokenizer.safetensors"
    run_dir = work / "run"
    train = ["train", "tokenizer", "--out", str(run_dir), "--steps", str(steps)]
    if (run_dir / "checkpoints").exists():
        train += ["--resume"]
    else:
        train += ["--init", "default", "--data", str(work / "prepared"), "--set", "optim.generator.lr=1.0e-4",
                  "--set", "train.valid_every=200", "--set", "train.checkpoint_every=200",
                  "--set", "train.log_every=200"]
    _step(f"fine-tune 'default' on them ({steps} steps)", train, reuse=artifact)
    _step("export its best step", ["export", str(run_dir), "-o", str(artifact)], reuse=artifact)
    _step("evaluate the fine-tuned tokenizer on the held-out strings",
          ["eval", "-t", str(artifact), "-v", "default", str(held), "-o", str(finetuned), "--no-dnsmos"],
          reuse=finetuned / "report.json")
    return condition_summary("8 kHz telephone digits (FSDD), unseen speakers", released, finetuned)


def condition_summary(name: str, released: Path, finetuned: Path) -> dict:
    """``summary.json``'s entry of one condition, from the two eval reports on the same clips."""
    from spectok.evaluation.aggregate import paired_comparison

    before, after = (json.loads((p / "report.json").read_text(encoding="utf-8")) for p in (released, finetuned))
    c = paired_comparison(before, after, {key: name for key, name, _ in METRICS})
    return {"name": name, "clips": c["clips"], "released": c["before"], "finetuned": c["after"], "gain": c["gain"]}


def _summary(out: Path, conditions: list[dict]) -> None:
    from spectok.evaluation.aggregate import format_ci
    from spectok.fsutil import write_json_atomic

    print("\n== the held-out LJSpeech clips, tokenized and vocoded with the paired vocoder (mean over 3 clips)\n")
    print(f"{'tokenizer':12s} {'PESQ-WB':>8s} {'STOI':>6s}")
    for name in ("default", "ljspeech22k"):
        agg = json.loads((out / name / "report" / "report.json").read_text(encoding="utf-8"))["aggregate"]
        print(f"{name:12s} {agg['tokenized']['pesq']['mean']:8.3f} {agg['tokenized']['stoi']['mean']:6.3f}")
    for c in conditions:
        print(f"\n== fine-tuning 'default' on a weak condition: {c['name']}, {c['clips']} held-out clips; "
              "mean [95 % interval]\n")
        print(f"{'':22s} {'PESQ-WB':>24s} {'STOI':>24s}")
        for label, key, sign in (("released default", "released", ""), ("fine-tuned", "finetuned", ""),
                                 ("gain (paired)", "gain", "+")):
            print(f"{label:22s} " + " ".join(f"{format_ci(c[key][k], sign):>24s}" for _, k, _ in METRICS))
    write_json_atomic(out / "summary.json", {"conditions": conditions})
    print(f"\nListen: {out}/*/reconstructed/ (the reconstructions and their plots); each report's audio/ "
          "holds original, tokenized and copy-synthesis examples side by side")
    print(f"Reports: {out}/*/report/report.html" + (f", {out}/fsdd/report-*/report.html" if conditions else ""))
    print(f"Figures for scripts: {out / 'summary.json'}")
