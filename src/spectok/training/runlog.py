"""Rank-0 run logging: ``train.log`` (plain text), ``metrics.jsonl`` (one JSON line per event),
TensorBoard scalars under ``tb/``, and the tqdm progress bar.

Scalar names are the same everywhere: ``train/<phase>/<loss>``, ``lr/<phase>``,
``grad_norm/<phase>``, ``valid/<metric>``, ``perf/steps_per_s``. A ``metrics.jsonl`` line
looks like::

    {"event": "train", "step": 200, "time": 1732251234.5, "train/generator/total": 0.41, ...}

On resume, events after the checkpoint's step (written by the killed run) are dropped from
``metrics.jsonl`` and TensorBoard (``purge_step``), so curves never show a step twice; a
fresh start in a folder left by a run killed before its first checkpoint drops them all.
Every method is a no-op on ranks other than 0.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from spectok.fsutil import append_jsonl, read_jsonl, write_text_atomic


class RunLogger:
    """Logging for one run folder.

    Args:
        run_dir: the run folder (``train.log``, ``metrics.jsonl``, ``tb/`` live here).
        enabled: false on ranks other than 0.
        total_steps, start_step: for the progress bar; events after ``start_step`` are dropped.
        progress: show the progress bar (when stderr is a terminal).
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True, total_steps: int = 0, start_step: int = 0,
                 progress: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.writer = None
        self.bar = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.run_dir / "train.log"
        self.metrics_path = self.run_dir / "metrics.jsonl"
        # Drop events after start_step left by an interrupted run (all of them on a fresh start).
        self._truncate_metrics(start_step)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=start_step)
        except ImportError:
            self.info("tensorboard is not installed: no TensorBoard logs (pip install 'spectok[train]')")
        if progress and sys.stderr.isatty():  # a bar in a log file is noise: plain lines there
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True,
                            file=sys.stderr, mininterval=1.0)

    def _truncate_metrics(self, step: int) -> None:
        records = read_jsonl(self.metrics_path)
        kept = [r for r in records if r.get("step", 0) <= step]
        if len(kept) != len(records):
            import json

            write_text_atomic(self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))

    def info(self, message: str, console: str | None = None) -> None:
        """One timestamped line in ``train.log``, echoed above the progress bar (``console``, a shorter
        line for a person, replaces it there)."""
        if not self.enabled:
            return
        stamp = time.strftime('%Y-%m-%d %H:%M:%S')
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"{stamp} {message}\n")
        line = f"{stamp} {message if console is None else console}"
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def scalars(self, event: str, step: int, values: dict[str, float]) -> None:
        """Record named scalars: a ``metrics.jsonl`` line and TensorBoard scalars."""
        if not self.enabled:
            return
        append_jsonl(self.metrics_path, {"event": event, "step": step, "time": round(time.time(), 3), **values})
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def advance(self, step: int, postfix: dict[str, Any] | None = None) -> None:
        """Move the progress bar to ``step``."""
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
