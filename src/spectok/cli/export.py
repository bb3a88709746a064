"""``spectok export RUN -o model.safetensors``: a run's trained model as one release artifact.

Reads the run's best checkpoint (or the last, or a given file), rebuilds its task from the
stored config, and writes ``task.models()[task.release_model]`` with
:func:`spectok.artifacts.save_release`; the header's ``training`` entry holds the task's
``training_summary()``, the step, the last validation metrics and the full training config.

Other formats add an option in :func:`register` and a writer beside :func:`export_run`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spectok.cli.common import add_command


def register(sub) -> None:
    p = add_command(sub, "export", help="Write a training run's model as one release artifact (.safetensors).",
                    example="spectok export runs/default -o default.safetensors", func=run)
    p.add_argument("run", help="run folder (spectok train --out), or a checkpoint file; with --onnx also a "
                               "release artifact or a released model's name")
    p.add_argument("-o", "--output", help="the .safetensors file to write (required unless --onnx)")
    p.add_argument("--checkpoint", default="best",
                   help="best (default; the last when no best exists), last, or a checkpoint file")
    p.add_argument("--onnx", metavar="OUTDIR",
                   help="also (or only) write ONNX graphs here: a tokenizer's encoder.onnx (mel -> codes) and "
                        "decoder.onnx (codes -> mel), or a vocoder's vocoder.onnx; RUN may then be a release "
                        "artifact or a released model's name ('default', see 'spectok models')")


def load_run(run: str | Path, which: str = "best") -> tuple[Any, dict, Path]:
    """``(task, checkpoint state, checkpoint path)`` of a run folder or checkpoint file."""
    from spectok.training.checkpoint import CheckpointManager, load_task

    p = Path(run)
    if not p.exists():
        from spectok import models
        from spectok.errors import SpectokError

        released = ", ".join(models.all_names()) or "none"
        hint = (" is a released model: it is already an artifact (--onnx exports it)" if models.find(str(run))
                else f": no such run folder or checkpoint (released models, for --onnx: {released})")
        raise SpectokError(f"{run}{hint}")
    path = p if p.is_file() else CheckpointManager(p / "checkpoints").resolve(which)
    task, state = load_task(path)
    return task, state, path


def export_run(run: str | Path, output: str | Path, which: str = "best") -> Path:
    """Write the release artifact of ``run``'s ``which`` checkpoint to ``output``."""
    from spectok.artifacts import save_release

    task, state, path = load_run(run, which)
    training = {"task": state["config"]["task"], "step": state["step"], "checkpoint": path.name,
                "valid": state.get("valid") or {}, "best": state.get("best") or {}}
    training.update(task.training_summary())
    training["config"] = state["config"]
    return save_release(task.models()[task.release_model], output, training=training)


def run(args: argparse.Namespace) -> int:
    if args.output is None and args.onnx is None:
        from spectok.errors import SpectokError

        raise SpectokError("give -o MODEL.safetensors, --onnx OUTDIR, or both")
    if args.output is not None:
        from spectok.fsutil import check_output_file

        check_output_file(args.output, [args.run], suffix=".safetensors")
        print(export_run(args.run, args.output, args.checkpoint))
    if args.onnx is not None:
        from spectok import models
        from spectok.onnx_export import export_onnx

        source = Path(args.run)
        if not source.exists() and models.find(args.run) is not None:  # a released model's name
            source = models.resolve_tokenizer(args.run)
        elif not (source.is_file() and source.suffix == ".safetensors"):  # a run folder or checkpoint
            task, _, _ = load_run(args.run, args.checkpoint)
            source = task.models()[task.release_model]
        print(export_onnx(source, args.onnx))
    return 0
