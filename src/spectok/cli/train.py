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

from spectok.cli.common import add_command, positive_int

EXAMPLE = ("spectok train tokenizer --config default --data prepared/speech "
           "--out runs/default --set train.batch_size=8\n"
           "  spectok train tokenizer --out runs/default --resume --steps 40000\n"
           "  torchrun --nproc_per_node 2 -m spectok train tokenizer --config X.yaml --data P --out RUN")


def register(sub) -> None:
    p = add_command(sub, "train", help="Train a tokenizer or a vocoder with the one training engine.",
                    example=EXAMPLE, func=run)
    p.add_argument("kind", choices=["tokenizer", "vocoder"], help="what the config's task trains")
    p.add_argument("--config", help="a preset name (see 'spectok presets') or a training config YAML "
                   "(not needed with --resume or --init)")
    p.add_argument("--data", help="prepared folder (spectok prepare); with --resume defaults to the run's")
    p.add_argument("--out", required=True, help="run folder: config.yaml, checkpoints/, tb/, train.log, metrics.jsonl")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--init", metavar="NAME|FILE",
                   help="fine-tune: start from a released model ('default', see 'spectok models') or a release "
                   "artifact, with a fresh optimizer; its own training config is used unless --config is given")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--steps", type=positive_int, help="total training steps, >= 1 (overrides train.steps)")
    p.add_argument("--json", action="store_true",
                   help="print the result (step, validation, best, checkpoint) as one JSON line on stdout")
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
    elif args.init and not args.config:
        config = init_config(args.init, args.kind)
    else:
        if not args.config:
            raise SpectokError("--config is required (except with --resume or --init)")
        config = load_config(args.config, kind=args.kind)
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.device:
        overrides.append(f"train.device={args.device}")
    if getattr(args, "threads", None):
        overrides.append(f"train.threads={args.threads}")
    config = apply_overrides(config, overrides)
    if args.data:
        config.setdefault("train", {})["prepared"] = str(Path(args.data).resolve())
    if args.init and not args.resume:
        config.setdefault("train", {})["init"] = str(init_path(args.init, args.kind).resolve())
    return config


def init_path(name_or_file: str, kind: str) -> Path:
    """The artifact file behind ``--init`` (a released model's name, or a file)."""
    from spectok.models import resolve_tokenizer, resolve_vocoder_file

    return resolve_tokenizer(name_or_file) if kind == "tokenizer" else resolve_vocoder_file(name_or_file)


def init_config(name_or_file: str, kind: str) -> dict:
    """The training config stored in the ``--init`` artifact (what trained it), minus its data folder."""
    import copy

    from spectok.artifacts import read_header
    from spectok.errors import SpectokError

    path = init_path(name_or_file, kind)
    header = read_header(path)
    config = copy.deepcopy((header.get("training") or {}).get("config"))
    if not isinstance(config, dict) or "task" not in config:
        raise SpectokError(f"{path}: holds no training config; pass --config with the model's preset or YAML")
    train = config.setdefault("train", {})
    for key in ("prepared", "init"):
        train.pop(key, None)
    return config


def run(args: argparse.Namespace) -> int:
    from spectok import registry
    from spectok.errors import SpectokError
    from spectok.fsutil import check_output_folder
    from spectok.training.engine import Trainer

    if args.data:  # a run folder inside the data (or holding it) would mix checkpoints with what is read
        check_output_folder(args.out, [args.data])
    config = build_config(args)
    cls = registry.get("task", config["task"])
    kind = getattr(cls, "kind", None)
    if kind is not None and kind != args.kind:
        raise SpectokError(f"task {config['task']!r} trains a {kind}, not a {args.kind} "
                           f"(run 'spectok train {kind} ...')")
    trainer = Trainer(config, args.out, resume=args.resume)
    is_main = trainer.dist.is_main
    summary = trainer.fit()
    if is_main and args.json:
        print(json.dumps(summary, sort_keys=True, default=str))
    elif is_main and not summary["stopped"]:
        print(f"spectok train: {args.out} at step {summary['step']}; export it with: "
              f"spectok export {args.out} -o MODEL.safetensors")
    return 143 if summary["stopped"] else 0  # 128 + SIGTERM: stopped early, resumable
