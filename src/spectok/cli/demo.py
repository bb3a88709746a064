"""``spectok demo``: the main job, end to end, with the released models and real speech.

It runs the commands a user would type, printing each one first, so the demo is also a
tutorial. The clips ship inside the package (``spectok/demo/``, LJSpeech, public domain; see
its README): a voice the ``default`` model never heard, and clips held out from ``ljspeech22k``::

    spectok models
    spectok reconstruct DEMO/test -t default -v default -o OUT/default/reconstructed --plot
    spectok reconstruct DEMO/test -t ljspeech22k -v default -o OUT/ljspeech22k/reconstructed --plot
    spectok eval -t default DEMO/test -o OUT/default/report
    spectok eval -t ljspeech22k DEMO/test -o OUT/ljspeech22k/report
    spectok prepare folder DEMO/finetune OUT/finetune/prepared --mel speech-16k --valid-ratio 0.25 --test-ratio 0
    spectok train tokenizer --init default --data OUT/finetune/prepared --out OUT/finetune/run --steps N \
        --set optim.generator.lr=2.0e-4
    spectok export OUT/finetune/run -o OUT/finetune/tokenizer.safetensors
    spectok eval -t OUT/finetune/tokenizer.safetensors DEMO/test -o OUT/finetune/report

and prints the before/after figures of the fine-tuning. Every step resumes: a second run
skips what is done (finished reports, prepared clips, a finished fine-tune).
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


def demo_clips() -> Path:
    """The folder of the shipped demo clips (``finetune/``, ``test/``), from a wheel or a checkout."""
    return Path(str(files("spectok") / "demo"))


def register(sub) -> None:
    p = add_command(sub, "demo", "Run the main job on real speech with the released models: reconstruct, "
                    "evaluate, fine-tune 'default' on a new voice, and compare before and after.",
                    "spectok demo --out runs/demo", run)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="demo folder (default runs/demo)")
    p.add_argument("--steps", type=int, default=1500,
                   help="fine-tuning steps (default 1500: about 2 minutes on 2 idle cores)")


def _step(title: str, argv: list[str], skip_if: Path | None = None) -> None:
    from spectok.cli.main import main

    if skip_if is not None and skip_if.exists():
        print(f"\n== {title}: {skip_if} exists, kept (delete it to redo)", flush=True)
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

    from spectok.models import releases

    digest = hashlib.sha256()
    for name, release in sorted(releases().items()):
        digest.update(name.encode() + release.tokenizer.read_bytes())
    return digest.hexdigest()[:12]


def run(args: argparse.Namespace) -> int:
    clips = demo_clips()
    out = Path(args.out) / f"models-{_models_stamp()}"  # results of other releases are never reused
    test, finetune = clips / "test", clips / "finetune"
    if not test.is_dir() or not finetune.is_dir():
        raise SpectokError(f"{clips}: the demo clips are missing from this installation")
    _step("the released models", ["models"])
    for name in ("default", "ljspeech22k"):
        _step(f"reconstruct 3 held-out clips with '{name}' (audio -> tokens -> mel -> its paired vocoder)",
              ["reconstruct", str(test), "-t", name, "-v", "default", "-o", str(out / name / "reconstructed"),
               "--plot", "-q"])
        _step(f"evaluate '{name}' on them", ["eval", "-t", name, "-v", "default", str(test),
                                              "-o", str(out / name / "report"), "-q"],
              skip_if=out / name / "report" / "report.json")
    ft = out / "finetune"
    _step("prepare the fine-tuning clips (55 s of a voice 'default' never heard)",
          ["prepare", "folder", str(finetune), str(ft / "prepared"), "--mel", "speech-16k",
           "--valid-ratio", "0.25", "--test-ratio", "0"])
    artifact = ft / "tokenizer.safetensors"
    if not artifact.exists():
        train = ["train", "tokenizer", "--out", str(ft / "run"), "--steps", str(args.steps)]
        if (ft / "run" / "checkpoints").exists():
            train += ["--resume"]
        else:
            train += ["--init", "default", "--data", str(ft / "prepared"), "--set", "optim.generator.lr=2.0e-4",
                      "--set", "train.valid_every=250", "--set", "train.checkpoint_every=250",
                      "--set", "train.log_every=250"]
        _step("fine-tune 'default' on the new voice", train)
        _step("export the fine-tuned tokenizer", ["export", str(ft / "run"), "-o", str(artifact)])
    _step("evaluate the fine-tuned tokenizer on the same held-out clips",
          ["eval", "-t", str(artifact), "-v", "default", str(test), "-o", str(ft / "report"), "-q"],
          skip_if=ft / "report" / "report.json")
    _summary(out)
    return 0


def _figures(report: Path) -> dict[str, float]:
    agg = json.loads((report / "report.json").read_text(encoding="utf-8"))["aggregate"]["tokenized"]
    return {k: agg[k]["mean"] for k in ("pesq", "stoi", "mel_l1") if k in agg}


def _summary(out: Path) -> None:
    rows = [("default", out / "default" / "report"), ("ljspeech22k", out / "ljspeech22k" / "report"),
            ("default fine-tuned on 55 s", out / "finetune" / "report")]
    print("\n== tokenized speech on the 3 held-out clips (Griffin-Lim), mean over clips\n")
    print(f"{'tokenizer':28s} {'PESQ-WB':>8s} {'STOI':>6s} {'mel L1':>7s}")
    for label, report in rows:
        f = _figures(report)
        print(f"{label:28s} {f.get('pesq', float('nan')):8.3f} {f.get('stoi', float('nan')):6.3f} "
              f"{f.get('mel_l1', float('nan')):7.3f}")
    print(f"\nListen: {out}/*/reconstructed/ (original and reconstruction side by side, with plots)")
    print(f"Reports: {out}/default/report/report.html, {out}/finetune/report/report.html")
