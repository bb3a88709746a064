"""The contract between the one training engine and what it trains.

The engine (``spectok.training.engine``) owns the loop: devices, DDP wrapping, data
loaders and samplers, the step counter, learning-rate schedules, gradient clipping,
autocast, validation scheduling, checkpoints and logging. A :class:`TrainTask` owns the
models, the data sets, the losses and the media to log. Tokenizers (plain and GAN) and
vocoders (plain and GAN) are tasks; there is no second loop.

One optimisation step, for each :class:`OptimizerSpec` in order::

    lr = lr_at(spec, step, train.steps)                  # spectok.training.schedules: a function of step
    zero the grads of every optimizer
    losses = task.losses(batch, step, phase=spec.name)   # dict of scalar tensors, or None to skip
    losses["total"].backward(); clip to spec.grad_clip; optimizer.step()

Every tensor in ``losses`` is logged as ``train/<phase>/<key>`` (TensorBoard and
``metrics.jsonl``); validation metrics as ``valid/<key>``.

A GAN task declares two specs (e.g. "generator" then "discriminator"); it may cache the
generator's output in the first phase and use it detached in the second.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from spectok.data.spec import DataSpec
from spectok.errors import SpectokError
from spectok.validation import check_keys


@dataclass
class OptimizerSpec:
    """One optimizer over some of the task's models.

    Attributes:
        name: the phase name passed to :meth:`TrainTask.losses` (e.g. "generator").
        models: names (keys of :meth:`TrainTask.models`) whose parameters it updates.
        kind: "adam" or "adamw".
        lr: peak learning rate.
        betas, weight_decay, eps: optimizer settings.
        schedule: "constant", "cosine" (with warm-up) or "step" (decay by ``gamma`` every
            ``step_size`` steps).
        warmup_steps, step_size, gamma, min_lr_ratio: schedule settings.
        grad_clip: max global gradient norm, ``None`` for no clipping.
    """

    name: str
    models: list[str]
    kind: str = "adamw"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    eps: float = 1e-8
    schedule: str = "constant"
    warmup_steps: int = 0
    step_size: int = 10_000
    gamma: float = 0.5
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0


class TrainTask(ABC):
    """What the engine trains. Subclasses are built from a config dict (a YAML file's content).

    Engine facts a task can rely on:

    - ``config`` is the full resolved config: ``config["train"]`` holds every engine key with
      its default filled in (e.g. ``config["train"]["seed"]`` for data crops).
    - The task is built after seeding with ``train.seed`` (the same on every rank), so models
      start identical everywhere. :meth:`models` must return the same module objects on every
      call (build them in ``__init__``).
    - Before each phase the engine zeroes the gradients of *all* models, so gradients a phase
      leaves on models it does not optimise (a generator loss through a discriminator) are
      discarded.
    - Validation and media run with every model in eval mode, under ``torch.no_grad()``, with
      ``self.wrapped`` pointing at the plain (unwrapped) models, and without disturbing the
      training RNG streams. Under DDP each rank validates its share of the validation set and
      ``end_validation`` runs on every rank (accumulators must sum over ranks, as
      ``CodebookStats`` does); ``log_media`` runs on rank 0 only.
    - Randomness in a data set must come from ``(seed, epoch, index)`` (see
      :class:`spectok.data.datasets.MelCropDataset`, whose ``set_epoch`` the engine calls) for
      a resumed run to see exactly the data an uninterrupted one would.
    """

    #: "tokenizer" or "vocoder": ``spectok train KIND`` checks it; ``None`` skips the check.
    kind: str | None = None
    #: Validation metric that selects ``best.pt`` unless ``train.best_metric`` is set.
    best_metric: str = "total"

    #: the keys each config section this task reads may hold, with their types (``{"loss": {"w": "float"}}``; None: the
    #: section's keys are checked where it is built, e.g. a discriminator's constructor arguments)
    section_keys: dict[str, dict[str, str] | None] = {}  # section -> {key: type annotation}

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Refuse, before a run starts, a key this task would ignore (with the nearest valid one) and a
        ``loss``, ``data`` or ``discriminator`` section it does not read at all. A stored run is not
        checked again on load, so a checkpoint written before a check existed still exports. A task that
        declares no ``section_keys`` (one defined outside spectok) is not checked."""
        if not cls.section_keys:
            return
        for section in ("loss", "data", "discriminator"):
            given = dict(config.get(section) or {})
            if section not in cls.section_keys and given:
                raise SpectokError(f"config {section}: task {config.get('task')!r} reads no {section} section "
                                   f"(keys {sorted(given)})")
            known = cls.section_keys.get(section)
            if known is not None:
                check_keys(section, given, known)

    @abstractmethod
    def models(self) -> dict[str, nn.Module]:
        """Named models: moved to the device, wrapped in DDP, checkpointed. The one under
        :attr:`release_model` is what ``spectok export`` writes."""

    release_model: str = "model"

    @abstractmethod
    def optimizer_specs(self) -> list[OptimizerSpec]:
        """Optimizers in the order their phases run within one step."""

    @abstractmethod
    def data(self, prepared_dir: str) -> DataSpec:
        """Training and validation data from a prepared folder (see ``spectok prepare``)."""

    @abstractmethod
    def losses(self, batch: dict[str, torch.Tensor], step: int, phase: str) -> dict[str, torch.Tensor] | None:
        """Named scalar losses for ``phase``; must contain "total" (what is back-propagated).

        Return ``None`` to skip the phase at this step (e.g. a discriminator not yet on).
        Models are reached through :meth:`models` (the engine may have wrapped them in DDP;
        call them through ``self.wrapped[name]`` set by the engine, or the plain module).
        """

    @torch.no_grad()
    def validate_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Validation metrics of one batch (the engine averages them weighted by batch size)."""
        return {k: float(v) for k, v in (self.losses(batch, step=-1, phase="validate") or {}).items()}

    def start_validation(self) -> None:  # noqa: B027 - optional hook
        """Reset epoch-level accumulators (e.g. codebook statistics) before a validation pass."""

    def end_validation(self) -> dict[str, float]:
        """Metrics accumulated over the whole validation pass (e.g. codebook usage)."""
        return {}

    def log_media(self, writer: Any, batch: dict[str, torch.Tensor], step: int) -> None:  # noqa: B027
        """Write images/audio to TensorBoard (``writer`` is a SummaryWriter, rank 0 only)."""

    def training_summary(self) -> dict[str, Any]:
        """Extra facts stored in the release artifact's header (e.g. final validation loss)."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        """State outside the models' state dicts to checkpoint (tensors, numbers, strings, lists, dicts)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`extra_state` returned (called on resume and on export)."""

    # Set by the engine: the (possibly DDP-wrapped) models to call in losses().
    wrapped: dict[str, nn.Module]
    device: torch.device
