"""``spectok train tokenizer|vocoder``: run the one training engine on a config.

The config is a YAML file (see :mod:`spectok.training.engine` for the keys and the run
folder layout). ``--resume`` continues the run in ``--out`` from its latest checkpoint,
with the config stored in ``RUN/config.yaml``; ``--steps``, ``--device`` and ``--set``
still apply on top (e.g. ``--steps`` to train longer). Under ``torchrun`` every process
runs this command; rank 0 logs and writes checkpoints. SIGTERM stops the run after the
current step with a checkpoint (exit status 143); ``--resume`` continues it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spectok.cli.common import add_command

EXAMPLE = ("spectok train tokenizer --config configs/tokenizer/default.yaml --data prepared/ljspeech "
           "--out runs/default --set train.batch_size=8\n"
           "  spectok train tokenizer --out runs/default --resume --steps 40000\n"
           "  torchrun --nproc_per_node 2 -m spectok train tokenizer --config X.yaml --data P --out RUN")


def register(sub) -> None:
    p = add_command(sub, "train", help="Train a tokenizer or a vocoder with the one training engine.",
                    example=EXAMPLE, func=run)
    p.add_argument("kind", choices=["tokenizer", "vocoder"], help="what the config's task trains")
    p.add_argument("--config", help="training config YAML (not needed with --resume)")
    p.add_argument("--data", help="prepared folder (spectok prepare); with --resume defaults to the run's")
    p.add_argument("--out", required=True, help="run folder: config.yaml, checkpoints/, tb/, train.log, metrics.jsonl")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--steps", type=int, help="total training steps (overrides train.steps)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.batch_size=8 --set optim.generator.lr=1e-4")


def build_config(args: argparse.Namespace) -> dict:
    """The config this invocation trains with (stored config on resume, then the overrides)."""
    from spectok.errors import SpectokError
    from spectok.training.config import apply_overrides, load_config

    run = Path(args.out)
    if args.resume:
        stored = run / "config.yaml"
        if not stored.is_file():
            raise SpectokError(f"{stored}: not found; nothing to resume in {run}")
        config = load_config(stored)
        if args.config:
            print(f"spectok train: --resume uses {stored}; --config {args.config} is ignored "
                  f"(change keys with --set)", file=sys.stderr)
    else:
        if not args.config:
            raise SpectokError("--config is required (except with --resume)")
        config = load_config(args.config)
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.device:
        overrides.append(f"train.device={args.device}")
    config = apply_overrides(config, overrides)
    if args.data:
        config.setdefault("train", {})["prepared"] = str(Path(args.data).resolve())
    return config


def run(args: argparse.Namespace) -> int:
    from spectok.errors import SpectokError
    from spectok.training.engine import Trainer
    from spectok.training.tasks import task_class

    config = build_config(args)
    cls = task_class(config["task"])
    kind = getattr(cls, "kind", None)
    if kind is not None and kind != args.kind:
        raise SpectokError(f"task {config['task']!r} trains a {kind}, not a {args.kind} "
                           f"(run 'spectok train {kind} ...')")
    trainer = Trainer(config, args.out, resume=args.resume)
    is_main = trainer.dist.is_main
    summary = trainer.fit()
    if is_main:
        print(json.dumps(summary, sort_keys=True, default=str))
    return 143 if summary["stopped"] else 0  # 128 + SIGTERM: stopped early, resumable
