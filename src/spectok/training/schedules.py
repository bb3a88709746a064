"""Optimizers from their specs, and learning-rate schedules as explicit functions of the
step (no scheduler objects).

The engine sets every parameter group's learning rate to :func:`lr_at` before each
optimizer step, so the schedule's only state is the step counter, which the checkpoint
holds; a resumed run gets exactly the same rates. ``step`` counts optimizer updates
already done (0 for the first update).

Every schedule starts with a linear warm-up over ``warmup_steps``
(``lr * (step + 1) / (warmup_steps + 1)``), then:

- ``constant``: ``lr``.
- ``cosine``: from ``lr`` down to ``lr * min_lr_ratio`` along a half cosine that ends at
  ``total_steps``, then stays there.
- ``step``: ``lr * gamma ** ((step - warmup_steps) // step_size)``.
"""

from __future__ import annotations

import math

import torch

from spectok.errors import SpectokError

SCHEDULES = ("constant", "cosine", "step")


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up multiplier in (0, 1]; 1 once ``step >= warmup_steps``."""
    if step >= warmup_steps:
        return 1.0
    return (step + 1) / (warmup_steps + 1)


def cosine_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Half-cosine decay from 1 to ``min_ratio`` between ``warmup_steps`` and ``total_steps``."""
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def step_factor(step: int, warmup_steps: int, step_size: int, gamma: float) -> float:
    """``gamma`` to the number of whole ``step_size`` periods since the warm-up ended."""
    return gamma ** (max(step - warmup_steps, 0) // step_size)


def lr_at(spec, step: int, total_steps: int) -> float:
    """Learning rate of optimizer ``spec`` (an :class:`OptimizerSpec`) for update ``step``.

    Args:
        spec: supplies ``lr``, ``schedule``, ``warmup_steps``, ``step_size``, ``gamma``,
            ``min_lr_ratio``.
        step: optimizer updates already done (0-based).
        total_steps: the run's length (``train.steps``); the cosine ends there.
    """
    warm = warmup_factor(step, spec.warmup_steps)
    if spec.schedule == "constant":
        decay = 1.0
    elif spec.schedule == "cosine":
        decay = cosine_factor(step, spec.warmup_steps, total_steps, spec.min_lr_ratio)
    elif spec.schedule == "step":
        decay = step_factor(step, spec.warmup_steps, spec.step_size, spec.gamma)
    else:
        raise SpectokError(f"optimizer {spec.name!r}: unknown schedule {spec.schedule!r}; choose one of {SCHEDULES}")
    return spec.lr * warm * decay


def check_spec(spec) -> None:
    """Raise :class:`SpectokError` naming the optimizer if its schedule settings are invalid."""
    if spec.schedule not in SCHEDULES:
        raise SpectokError(f"optimizer {spec.name!r}: unknown schedule {spec.schedule!r}; choose one of {SCHEDULES}")
    if spec.lr <= 0 or spec.warmup_steps < 0 or spec.step_size < 1 or not 0 <= spec.min_lr_ratio <= 1:
        raise SpectokError(f"optimizer {spec.name!r}: need lr > 0, warmup_steps >= 0, step_size >= 1 and "
                           f"0 <= min_lr_ratio <= 1 (got lr={spec.lr}, warmup_steps={spec.warmup_steps}, "
                           f"step_size={spec.step_size}, min_lr_ratio={spec.min_lr_ratio})")


def build_optimizer(spec, models: dict[str, torch.nn.Module]) -> torch.optim.Optimizer:
    """Adam or AdamW over the trainable parameters of ``spec.models`` (names in ``models``)."""
    unknown = [n for n in spec.models if n not in models]
    if unknown:
        raise SpectokError(f"optimizer {spec.name!r} names unknown models {unknown}; the task has {sorted(models)}")
    params = [p for n in spec.models for p in models[n].parameters() if p.requires_grad]
    if not params:
        raise SpectokError(f"optimizer {spec.name!r}: models {spec.models} have no trainable parameters")
    cls = torch.optim.AdamW if spec.kind == "adamw" else torch.optim.Adam
    return cls(params, lr=spec.lr, betas=tuple(spec.betas), eps=spec.eps, weight_decay=spec.weight_decay)
