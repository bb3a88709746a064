"""Training checkpoints: everything needed to resume a run exactly.

A checkpoint is one ``torch.save`` file, read back with ``weights_only=True`` (no code is
unpickled), holding a dict::

    {"format": 1, "step": int, "epoch": int, "batch_in_epoch": int,
     "world_size": int, "batch_size": int,
     "models": {name: state_dict}, "optimizers": {phase: state_dict},
     "scaler": state_dict | None, "task_state": dict,
     "rng": [per-rank {"python", "numpy", "torch", "cuda"}],
     "best": {"metric": str, "value": float | None, "step": int | None},
     "valid": {last validation metrics}, "rank_digests": [per-rank weights digest],
     "config": the full resolved training config}

Learning rates are functions of ``step`` (see :mod:`spectok.training.schedules`), so no
scheduler state is stored. Files live in ``RUN/checkpoints/``: ``step-00001000.pt`` (the
last ``keep_last`` are kept) and ``best.pt`` (a hard link to, or copy of, the step file
with the best validation metric). Every write is atomic: a run killed at any moment
leaves complete files only.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spectok import registry
from spectok.errors import ArtifactError
from spectok.fsutil import atomic_path, remove_stale_temps

FORMAT_VERSION = 1
_STEP_FILE = re.compile(r"^step-(\d+)\.pt$")


# ---- RNG state ------------------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """This process's Python, NumPy, torch and CUDA RNG states (weights_only-loadable types)."""
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng` captured."""
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": int(n["pos"])},
                         "has_gauss": int(n["has_gauss"]), "gauss": float(n["gauss"])})
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block (validation, media) without disturbing the training RNG streams."""
    state = capture_rng()
    try:
        yield
    finally:
        restore_rng(state)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---- files ----------------------------------------------------------------------------
def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename)."""
    out = Path(path)
    with atomic_path(out, durable=True) as tmp:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT_VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
    return out


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint; a missing, truncated, corrupt or foreign file raises
    :class:`ArtifactError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise ArtifactError(f"{p}: checkpoint not found")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # zip, pickle, EOF and I/O errors all mean the same thing here
        raise ArtifactError(f"{p}: cannot read training checkpoint (truncated or corrupt?): {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ArtifactError(f"{p}: not a spectok training checkpoint of format {FORMAT_VERSION}")
    missing = {"step", "models", "optimizers", "config", "rng"} - set(state)
    if missing:
        raise ArtifactError(f"{p}: checkpoint lacks {sorted(missing)}")
    return state


def load_models(state: dict[str, Any], models: dict[str, torch.nn.Module], path: str | os.PathLike) -> None:
    """Load a checkpoint's model weights strictly; a mismatch raises :class:`ArtifactError`."""
    if set(state["models"]) != set(models):
        raise ArtifactError(f"{path}: checkpoint holds models {sorted(state['models'])}, "
                            f"the task has {sorted(models)}")
    for name, model in models.items():
        try:
            model.load_state_dict(state["models"][name], strict=True)
        except RuntimeError as e:
            raise ArtifactError(f"{path}: weights of model {name!r} do not fit: {e}") from e


class CheckpointManager:
    """The ``checkpoints/`` folder of a run: step files, the last ``keep_last`` kept, plus ``best.pt``."""

    def __init__(self, folder: str | os.PathLike, keep_last: int = 3) -> None:
        self.folder = Path(folder)
        self.keep_last = keep_last

    def step_path(self, step: int) -> Path:
        return self.folder / f"step-{step:08d}.pt"

    @property
    def best_path(self) -> Path:
        return self.folder / "best.pt"

    def steps(self) -> list[int]:
        """Steps of the step checkpoints present, ascending."""
        if not self.folder.is_dir():
            return []
        return sorted(int(m.group(1)) for f in self.folder.iterdir() if (m := _STEP_FILE.match(f.name)))

    def latest(self) -> Path | None:
        steps = self.steps()
        return self.step_path(steps[-1]) if steps else None

    def best(self) -> Path | None:
        return self.best_path if self.best_path.is_file() else None

    def save(self, state: dict[str, Any], step: int, is_best: bool = False) -> Path:
        """Write the step checkpoint, point ``best.pt`` at it when ``is_best``, prune old ones."""
        path = save_checkpoint(state, self.step_path(step))
        if is_best:
            with atomic_path(self.best_path, durable=True) as tmp:
                try:
                    os.link(path, tmp)
                except OSError:
                    shutil.copyfile(path, tmp)
        for old in self.steps()[: -self.keep_last]:
            with contextlib.suppress(FileNotFoundError):
                self.step_path(old).unlink()
        return path

    def remove_stale_temps(self) -> list[Path]:
        """Delete temporary files left by a process killed while writing (``.NAME.tmpPID.pt``)."""
        return remove_stale_temps(self.folder)

    def save_best(self, state: dict[str, Any]) -> Path:
        """Write ``best.pt`` alone (a validation improved between scheduled checkpoints)."""
        return save_checkpoint(state, self.best_path)

    def resolve(self, which: str) -> Path:
        """``"last"``, ``"best"`` (falling back to last when no best exists) or a file path."""
        if which in ("last", "best"):
            path = (self.best() if which == "best" else None) or self.latest()
            if path is None:
                raise ArtifactError(f"{self.folder}: no checkpoints found")
            return path
        return Path(which)


def load_task(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Rebuild a run's task from a checkpoint (its config and weights), for export or inference.

    Returns ``(task, state)``; the task's models are in eval mode on ``map_location``.
    """
    state = load_checkpoint(path, map_location=map_location)
    task = registry.get("task", state["config"]["task"])(state["config"])
    models = task.models()
    load_models(state, models, path)
    for m in models.values():
        m.to(map_location).eval()
    if state.get("task_state"):
        task.load_extra_state(state["task_state"])
    return task, state
