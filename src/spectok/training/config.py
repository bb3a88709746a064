"""Training configs: reading the YAML, ``--set key=value`` overrides, the engine's ``train:``
section with its defaults, and ``optim:`` overrides of a task's optimizer specs.

A training config is one YAML mapping::

    task: vqvae                # a task registered in spectok.registry, or "module:Class"
    mel: {...}                 # task sections, read by the task only (mel, model, loss, data, ...)
    train: {steps: 20000, batch_size: 16, ...}   # the engine's section, see TrainConfig
    optim:                     # optional: per phase name, OptimizerSpec fields to override
      generator: {lr: 1.0e-4, schedule: cosine, warmup_steps: 500}
      discriminator: {lr: 5.0e-5}

The task's :meth:`~spectok.training.task.TrainTask.optimizer_specs` gives the defaults
(a task may build them from its own config sections); when every key of ``optim:`` is a
phase name of the task, the engine overrides those specs field by field. An ``optim:``
whose keys are OptimizerSpec fields (``{lr: ..., kind: ...}``) is a task's own section
(the tokenizer tasks read it that way) and the engine leaves it alone. The resolved specs
are logged in ``train.log`` and stored in every checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spectok.errors import SpectokError
from spectok.training.schedules import check_spec
from spectok.training.task import OptimizerSpec
from spectok.validation import check_keys, check_type


@dataclass
class TrainConfig:
    """The engine's ``train:`` section.

    Attributes:
        steps: optimizer steps (one step runs every phase once).
        batch_size: items per batch per process (the global batch is ``batch_size * world_size``).
        valid_batch_size: validation batch size (default: ``batch_size``).
        num_workers: DataLoader worker processes.
        valid_every, checkpoint_every, log_every, media_every: intervals in steps (0 = never;
            a checkpoint is always written at the end).
        checkpoint_minutes: also checkpoint by the clock: one minute after training starts, then
            every this many minutes (0 = by steps only), so a killed run loses minutes.
        keep_last: step checkpoints kept besides ``best.pt``.
        best_metric: validation metric that picks ``best.pt`` (default: the task's
            ``best_metric``, else "total"); ``best_mode``: "min" or "max".
        seed: seeds models (same on every rank), crops and data order; rank r's RNGs use ``seed + r``.
        precision: "fp32", "bf16" (autocast) or "fp16" (autocast + GradScaler, CUDA only).
        device: "auto" (CUDA if available), "cpu", "cuda" or "cuda:N".
        prepared: the prepared data folder (set from ``--data``).
        threads: torch CPU threads for this run (None: the command's default, the CPUs available;
            ``--threads`` and ``SPECTOK_THREADS`` override it). On a shared 2-core machine one
            thread avoids two OpenMP threads spinning against another job.
        init: a release artifact whose weights the model starts from (fine-tuning, ``--init``);
            the optimizer starts fresh. Ignored on resume (the checkpoint holds the weights).
        progress: show a tqdm progress bar on rank 0.
        ddp_find_unused_parameters, ddp_broadcast_buffers: passed to DistributedDataParallel.
    """

    steps: int = 10_000
    batch_size: int = 16
    valid_batch_size: int | None = None
    num_workers: int = 0
    valid_every: int = 1000
    checkpoint_every: int = 1000
    checkpoint_minutes: float = 10.0
    keep_last: int = 3
    log_every: int = 50
    media_every: int = 1000
    best_metric: str | None = None
    best_mode: str = "min"
    seed: int = 0
    precision: str = "fp32"
    device: str = "auto"
    prepared: str | None = None
    init: str | None = None
    threads: int | None = None
    progress: bool = True
    ddp_find_unused_parameters: bool = False
    ddp_broadcast_buffers: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TrainConfig:
        d = dict(d or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        check_keys("train", d, list(fields))
        for key, value in d.items():
            check_type(f"train.{key}", value, str(fields[key].type))
        cfg = cls(**d)
        if cfg.threads is not None and cfg.threads < 1:
            raise SpectokError(f"config train: threads must be >= 1, got {cfg.threads}")
        if cfg.steps < 0 or cfg.batch_size < 1 or cfg.keep_last < 1 or cfg.num_workers < 0:
            raise SpectokError("config train: need steps >= 0, batch_size >= 1, keep_last >= 1, num_workers >= 0")
        for name in ("valid_every", "checkpoint_every", "log_every", "media_every", "checkpoint_minutes"):
            if getattr(cfg, name) < 0:
                raise SpectokError(f"config train: {name} must be >= 0 (0 = never)")
        if cfg.precision not in ("fp32", "bf16", "fp16"):
            raise SpectokError(f"config train: precision must be fp32, bf16 or fp16, got {cfg.precision!r}")
        if cfg.best_mode not in ("min", "max"):
            raise SpectokError(f"config train: best_mode must be min or max, got {cfg.best_mode!r}")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_config(config: dict[str, Any], prepared: str | None = None) -> dict[str, Any]:
    """A copy of ``config`` whose ``train:`` section has every engine key (defaults filled in)."""
    out = copy.deepcopy(config)
    train = dict(out.get("train") or {})
    if prepared is not None:
        train["prepared"] = str(prepared)
    out["train"] = TrainConfig.from_dict(train).to_dict()
    return out


PRESET_KINDS = ("tokenizer", "vocoder")


def preset_files(kind: str | None = None) -> dict[str, Path]:
    """The training presets shipped in the package (``spectok/presets/KIND/NAME.yaml``): name -> file.

    A name is unique within a kind; with ``kind=None`` tokenizer presets come first.
    """
    from importlib.resources import files

    out: dict[str, Path] = {}
    for k in (kind,) if kind else PRESET_KINDS:
        folder = Path(str(files("spectok") / "presets" / k))
        for f in sorted(folder.glob("*.yaml")):
            out.setdefault(f.stem, f)
    return out


def load_config(path_or_preset: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Read a training config: a YAML file, or the name of a shipped preset (``default``, ``istft``).

    A name is looked up among the ``kind`` presets (``"tokenizer"`` or ``"vocoder"``; both when
    None) when no file of that name exists. Raises :class:`SpectokError` naming the file on failure.
    """
    import yaml

    p = Path(path_or_preset)
    if not p.exists() and p.suffix not in (".yaml", ".yml") and len(p.parts) == 1:
        presets = preset_files(kind)
        if str(p) not in presets:
            raise SpectokError(f"{p}: no such config file, and not a {kind or 'training'} preset "
                               f"(presets: {', '.join(presets)}; see 'spectok presets')")
        p = presets[str(p)]
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise SpectokError(f"{p}: cannot read training config ({e})") from e
    if not isinstance(data, dict) or "task" not in data:
        raise SpectokError(f"{p}: a training config is a YAML mapping with a top-level 'task:' key")
    return data


def dump_config(config: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


#: the top-level sections a training config may have (``--set`` refuses others, naming the nearest)
SECTIONS = ("task", "mel", "model", "loss", "data", "optim", "train", "discriminator")


def apply_overrides(config: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` assignments (values parsed as YAML) to a copy of ``config``.

    Example: ``["train.steps=200", "model.codebook_size=256", "optim.generator.lr=1e-4"]``.
    A first key that is neither a section of ``config`` nor one of :data:`SECTIONS` (a typo such
    as ``trian.steps``) is refused with the nearest valid name; the ``train`` section's keys are
    checked when the engine reads it.
    """
    import difflib

    import yaml

    out = copy.deepcopy(config)
    for item in assignments:
        if "=" not in item:
            raise SpectokError(f"--set {item!r}: expected key=value (e.g. train.steps=200)")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise SpectokError(f"--set {item!r}: empty key")
        valid = sorted({*SECTIONS, *config})
        if parts[0] not in valid:
            near = difflib.get_close_matches(parts[0], valid, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise SpectokError(f"--set {item!r}: unknown section {parts[0]!r}; {hint}sections: {', '.join(valid)}")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise SpectokError(f"--set {item!r}: value is not valid YAML ({e})") from e
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string; it means a number here
            with contextlib.suppress(ValueError):
                value = float(value)
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p, {}), dict):
                raise SpectokError(f"--set {item!r}: {p!r} is not a section")
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def resolve_optimizer_specs(defaults: list[OptimizerSpec], overrides: Any) -> list[OptimizerSpec]:
    """The task's specs with the config's ``optim:`` overrides applied (order kept).

    ``overrides`` is a mapping ``{phase name: {field: value}}`` or a list of mappings with a
    ``name`` key. Unknown phases or fields raise :class:`SpectokError`.
    """
    if overrides is None:
        overrides = {}
    if isinstance(overrides, list):
        try:
            overrides = {o["name"]: {k: v for k, v in o.items() if k != "name"} for o in overrides}
        except (TypeError, KeyError) as e:
            raise SpectokError("config optim: a list of optimizers needs a 'name' in each entry") from e
    if not isinstance(overrides, dict):
        raise SpectokError("config optim: expected a mapping of phase name to OptimizerSpec fields")
    names = [s.name for s in defaults]
    fields = {f.name for f in dataclasses.fields(OptimizerSpec)} - {"name"}
    if overrides and set(overrides) <= fields and not set(overrides) & set(names):
        overrides = {}  # a flat section of spec fields: the task's own, already applied in optimizer_specs()
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise SpectokError(f"config optim: unknown phases {unknown}; this task's phases: {names}")
    specs = []
    for spec in defaults:
        o = overrides.get(spec.name) or {}
        check_keys(f"optim.{spec.name}", o, fields)
        new = dataclasses.replace(spec, **o)
        new.betas = tuple(float(b) for b in new.betas)
        new.lr, new.weight_decay, new.eps = float(new.lr), float(new.weight_decay), float(new.eps)
        new.models = list(new.models)
        if new.kind not in ("adam", "adamw"):
            raise SpectokError(f"config optim.{spec.name}: kind must be adam or adamw, got {new.kind!r}")
        check_spec(new)
        specs.append(new)
    return specs


def specs_to_config(specs: list[OptimizerSpec]) -> dict[str, dict[str, Any]]:
    """Resolved specs as the ``optim:`` section (what the run's config.yaml stores)."""
    out = {}
    for s in specs:
        d = dataclasses.asdict(s)
        d.pop("name")
        d["betas"] = list(d["betas"])
        out[s.name] = d
    return out
