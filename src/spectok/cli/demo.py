"""``spectok demo``: the main job, end to end, on the bundled synthetic demo corpus.

It runs the same commands a user would type, printing each one first, so the demo is
also a tutorial::

    spectok prepare folder examples/demo-corpus OUT/prepared -j 2 --valid-ratio 0.1 --test-ratio 0.15
    spectok train tokenizer --config configs/tokenizer/default.yaml --data OUT/prepared --out OUT/run --steps N
    spectok export OUT/run -o OUT/tokenizer.safetensors
    spectok reconstruct <held-out clips> -t OUT/tokenizer.safetensors -v griffin-lim -o OUT/reconstructed --plot
    spectok eval -t OUT/tokenizer.safetensors -v griffin-lim OUT/prepared -o OUT/report

Every step resumes: a second run skips what is done (prepare skips finished clips,
training resumes from its last checkpoint, a finished export is kept).
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

from spectok.cli.common import add_command
from spectok.errors import SpectokError

REPO = Path(__file__).resolve().parents[3]
DEMO_CORPUS = REPO / "examples" / "demo-corpus"
DEFAULT_CONFIG = REPO / "configs" / "tokenizer" / "default.yaml"


def register(sub) -> None:
    p = add_command(sub, "demo", "Run the main job on the bundled synthetic demo corpus: prepare, train a "
                    "tokenizer, export, reconstruct and evaluate.", "spectok demo --out runs/demo --steps 3000", run)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="demo folder (default runs/demo)")
    p.add_argument("--corpus", type=Path, default=DEMO_CORPUS,
                   help="folder of audio to use instead of the bundled synthetic corpus")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="tokenizer training config")
    p.add_argument("--steps", type=int, default=3000, help="training steps (default 3000: about 2 min on 2 idle cores)")
    p.add_argument("-j", "--jobs", type=int, default=2, help="prepare workers (default 2)")


def _step(title: str, argv: list[str]) -> None:
    from spectok.cli.main import main

    print(f"\n== {title}\n$ spectok {shlex.join(argv)}", flush=True)
    t0 = time.perf_counter()
    code = main(argv)
    if code != 0:
        raise SpectokError(f"step '{title}' failed (exit status {code}); fix the cause above and rerun to resume")
    print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)


def _held_out_clips(prepared: Path, n: int = 2) -> list[str]:
    from spectok.data.features import open_prepared

    ps = open_prepared(prepared)
    rows = ps.split("test") or ps.split("valid") or ps.records
    return [r["path"] for r in sorted(rows, key=lambda r: r["id"])[:n]]


def run(args: argparse.Namespace) -> int:
    for path, what in ((args.corpus, "demo corpus"), (args.config, "tokenizer config")):
        if not path.exists():
            raise SpectokError(f"{path}: {what} not found (run the demo from a spectok source checkout)")
    out: Path = args.out
    prepared, run_dir = out / "prepared", out / "tokenizer-run"
    artifact, report = out / "tokenizer.safetensors", out / "report"
    print("spectok demo: the bundled corpus is SYNTHETIC speech (espeak-ng voices), made by "
          "scripts/make_demo_corpus.py; use it to exercise the code, not to judge quality.")

    _step("prepare log-mels (HiFi-GAN 22 kHz front end)",
          ["prepare", "folder", str(args.corpus), str(prepared), "--mel", "hifigan-22k", "-j", str(args.jobs),
           "--valid-ratio", "0.1", "--test-ratio", "0.15"])
    if not artifact.exists():
        train = ["train", "tokenizer", "--out", str(run_dir), "--steps", str(args.steps)]
        if (run_dir / "checkpoints").exists():
            train += ["--resume"]
        else:
            train += ["--config", str(args.config), "--data", str(prepared)]
        _step("train the tokenizer", train)
        _step("export the release artifact", ["export", str(run_dir), "-o", str(artifact)])
    else:
        print(f"\n== train and export: {artifact} exists, kept (delete it to retrain)")
    clips = _held_out_clips(prepared)
    _step("reconstruct held-out clips (audio -> tokens -> mel -> Griffin-Lim)",
          ["reconstruct", *clips, "-t", str(artifact), "-v", "griffin-lim", "-o", str(out / "reconstructed"),
           "--plot", "-q"])
    _step("evaluate on the held-out split", ["eval", "-t", str(artifact), "-v", "griffin-lim", str(prepared),
                                              "-o", str(report), "-q"])
    _summary(report, out)
    return 0


def _summary(report_dir: Path, out: Path) -> None:
    md = (report_dir / "report.md").read_text(encoding="utf-8")
    print(f"\n== summary ({report_dir / 'report.md'})\n")
    print(md if len(md) < 6000 else md[:6000] + "\n... (truncated; see the file)")
    print(f"Listen: {out / 'reconstructed'}   Report page: {report_dir / 'report.html'}")
