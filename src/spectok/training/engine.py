"""The one training loop of spectok: every tokenizer and vocoder task trains here.

A :class:`~spectok.training.task.TrainTask` supplies models, optimizer specs, data and
losses; the :class:`Trainer` owns devices, DDP, loaders, the step counter, learning-rate
schedules, clipping, autocast, validation, checkpoints and logging. One step runs the
task's phases in order, each: zero all grads -> ``task.losses(batch, step, phase)`` ->
backward of ``losses["total"]`` -> clip -> optimizer step (at the schedule's rate).

Run folder::

    RUN/config.yaml          the full resolved config (engine defaults filled in)
    RUN/checkpoints/         step-00001000.pt ... (last ``keep_last``) and best.pt
    RUN/tb/                  TensorBoard: train/<phase>/<loss>, lr/<phase>, grad_norm/<phase>,
                             valid/<metric>, perf/steps_per_s, perf/process_cpu_s, and the task's media
    RUN/train.log            plain-text log
    RUN/metrics.jsonl        one JSON line per "train" / "valid" event, same scalar names

Config keys (YAML): ``task`` (a name in :mod:`spectok.registry` (kind ``task``) or
"module:Class"); task sections (``mel``, ``model``, ``loss``, ``data``, ...) read by the
task; ``train`` (the engine: see :class:`spectok.training.config.TrainConfig` for every
key and default: steps, batch_size, valid_batch_size, num_workers, valid_every,
checkpoint_every, keep_last, log_every, media_every, best_metric, best_mode, seed,
precision, device, prepared, progress, ddp_*); ``optim`` (per-phase overrides of the
task's optimizer specs, see :mod:`spectok.training.config`).

Exact resume: the checkpoint holds models, optimizers, GradScaler, every rank's RNG
states, the data position (epoch, batches done in it) and the step; learning rates are
functions of the step; crops are functions of (seed, epoch, index); validation and media
run under :func:`~spectok.training.checkpoint.preserved_rng`. So a run killed at any
point and resumed ends with the same weights as an uninterrupted run (tested with
SIGKILL). Resuming on another number of processes or another batch size continues from
the same fraction of the epoch, approximately.

Under ``torchrun`` (see :mod:`spectok.training.distributed`): trainable models are
wrapped in DDP; each rank reads its shard of each epoch; each rank validates its share of
the validation set with the unwrapped models, the engine sums the per-batch metrics over
ranks, and ``task.end_validation()`` runs on every rank (so pass-level accumulators such
as codebook statistics must sum over ranks, as ``CodebookStats`` does); rank 0 logs, runs
``log_media`` and writes checkpoints between barriers; the checkpoint stores each rank's
weights digest, and a mismatch is logged.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from spectok import registry
from spectok.artifacts import load_weights
from spectok.data.datasets import EpochIndexed
from spectok.errors import DataError, SpectokError
from spectok.fsutil import write_text_atomic
from spectok.training import distributed as D
from spectok.training.checkpoint import (
    CheckpointManager,
    capture_rng,
    load_checkpoint,
    load_models,
    preserved_rng,
    restore_rng,
    seed_everything,
)
from spectok.training.config import (
    TrainConfig,
    dump_config,
    resolve_config,
    resolve_optimizer_specs,
    specs_to_config,
)
from spectok.training.runlog import RunLogger
from spectok.training.schedules import build_optimizer, lr_at

#: validation metrics the console shows beside the best metric (train.log and metrics.jsonl hold all)
CONSOLE_METRICS = ("codebook/used_fraction",)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _batch_size(batch: dict[str, Any]) -> int:
    return next(int(v.shape[0]) for v in batch.values() if torch.is_tensor(v) and v.dim() > 0)


class Trainer:
    """Trains ``config``'s task into ``run_dir``; :meth:`fit` runs to ``train.steps``.

    Args:
        config: a training config (see the module docstring); resolved with :func:`resolve_config`.
        run_dir: the run folder. Without ``resume`` it must hold no checkpoints.
        resume: continue from the latest checkpoint in ``run_dir/checkpoints``; with none yet (a
            process stopped before its first checkpoint), start again from step 0.
    """

    def __init__(self, config: dict[str, Any], run_dir: str | Path, resume: bool = False) -> None:
        self.config = resolve_config(config)
        self.cfg = cfg = TrainConfig.from_dict(self.config["train"])
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.run_dir = Path(run_dir)
        self.dist = D.env_info()
        self.device = D.pick_device(cfg.device, self.dist)
        if cfg.precision == "fp16" and self.device.type != "cuda":
            raise SpectokError("precision fp16 needs CUDA (use bf16 or fp32 on CPU)")
        D.setup(self.device, self.dist)
        self.ckpts = CheckpointManager(self.run_dir / "checkpoints", cfg.keep_last)
        resume_path = self.ckpts.latest()
        fresh_note = None
        if resume and resume_path is None:  # stopped before its first checkpoint: redo it from step 0
            resume, fresh_note = False, "no checkpoint to resume from yet: starting again from step 0"
        if not resume and resume_path is not None:
            raise SpectokError(f"{self.run_dir}: already holds checkpoints; pass --resume or choose another --out")
        if cfg.prepared is None:
            raise SpectokError("no prepared data folder (pass --data PREPARED)")

        seed_everything(cfg.seed)  # the same on every rank: models start identical
        cls = registry.get("task", self.config["task"])
        if not resume:  # a fresh run's config is checked whole; a stored one was accepted when it started
            cls.check_config(self.config)
        self.task = cls(self.config)
        self.models = self.task.models()
        for m in self.models.values():
            m.to(self.device).train()
        self.specs = resolve_optimizer_specs(self.task.optimizer_specs(), self.config.get("optim"))
        self.optimizers = {s.name: build_optimizer(s, self.models) for s in self.specs}
        self.wrapped = {name: self._wrap(m) for name, m in self.models.items()}
        self.task.wrapped, self.task.device = self.wrapped, self.device
        self.scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
        self.data = self.task.data(cfg.prepared)
        self.best_metric = cfg.best_metric or self.task.best_metric

        self.step = self.epoch = self.batch_in_epoch = 0
        self.best: dict[str, Any] = {"metric": self.best_metric, "value": None, "step": None}
        self.last_valid: dict[str, float] = {}
        if resume:
            self._restore(resume_path)
        else:
            if cfg.init:
                load_weights(self.models[self.task.release_model], cfg.init)
            seed_everything(cfg.seed + self.dist.rank)
        self.log = RunLogger(self.run_dir, enabled=self.dist.is_main, total_steps=cfg.steps, start_step=self.step,
                             progress=cfg.progress)
        if self.dist.is_main:
            write_text_atomic(self.run_dir / "config.yaml", dump_config(self.config))
        if resume or fresh_note:
            self.log.info(fresh_note or self._resumed_note)
        if self.dist.is_main and self.ckpts.remove_stale_temps():
            self.log.info("removed temporary checkpoint files left by an interrupted write")
        self._media_batch: dict[str, Any] | None = None
        self._acc: dict[str, list] = {}  # name -> [sum, count] since the last log
        self._acc_steps = 0
        self._warned_best = False
        self._last_save_clock, self._saved_this_process = time.monotonic(), False

    # ---- construction --------------------------------------------------------------------
    def _wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.dist.enabled:
            return model
        return D.wrap_ddp(model, self.device, self.cfg.ddp_broadcast_buffers, self.cfg.ddp_find_unused_parameters)

    def _autocast(self):
        if self.cfg.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.cfg.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # ---- data ----------------------------------------------------------------------------
    def _train_batches(self) -> Iterator[dict[str, Any]]:
        """Batches from the current position on, from one loader; updates ``epoch`` and ``batch_in_epoch``."""
        ds, bs = self.data.train, self.cfg.batch_size
        sampler = D.ShardedSampler(len(ds), self.cfg.seed, True, self.dist.rank, self.dist.world_size)
        per_epoch = len(sampler.shard(0)) // bs
        if per_epoch == 0:
            raise DataError(f"{self.cfg.prepared}: {len(ds)} training items give no full batch of {bs} "
                            f"per process on {self.dist.world_size} process(es); lower train.batch_size")
        if self.batch_in_epoch >= per_epoch:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        stream = D.EpochStream(sampler, bs, self.epoch, self.batch_in_epoch)
        loader = DataLoader(EpochIndexed(ds), batch_size=bs, sampler=stream, num_workers=self.cfg.num_workers,
                            collate_fn=self.data.collate, pin_memory=self.device.type == "cuda",
                            generator=torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + self.epoch))
        for batch in loader:
            if self.batch_in_epoch >= per_epoch:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.batch_in_epoch += 1
            yield batch

    def _valid_loader(self) -> DataLoader:
        """This rank's share of the validation set: items rank, rank + world_size, ... (all of them on one)."""
        share = range(self.dist.rank, len(self.data.valid), self.dist.world_size)
        return DataLoader(self.data.valid, batch_size=self.cfg.valid_batch_size or self.cfg.batch_size,
                          sampler=share, num_workers=self.cfg.num_workers, collate_fn=self.data.collate)

    # ---- one step ------------------------------------------------------------------------
    def _train_step(self, batch: dict[str, Any]) -> None:
        for spec in self.specs:
            opt = self.optimizers[spec.name]
            lr = lr_at(spec, self.step, self.cfg.steps)
            for group in opt.param_groups:
                group["lr"] = lr
            for o in self.optimizers.values():
                o.zero_grad(set_to_none=True)
            with self._autocast():
                losses = self.task.losses(batch, self.step, spec.name)
            if losses is None:
                continue
            if "total" not in losses:
                raise SpectokError(f"task {self.config['task']!r} phase {spec.name!r}: losses lack 'total'")
            total = losses["total"]
            if not torch.isfinite(total.detach()).all():
                raise SpectokError(f"step {self.step}, phase {spec.name!r}: loss is {float(total)} (not finite); "
                                   f"lower the learning rate or check the data")
            params = [p for group in opt.param_groups for p in group["params"]]
            if self.scaler is not None:
                self.scaler.scale(total).backward()
                self.scaler.unscale_(opt)
            else:
                total.backward()
            clip = spec.grad_clip if spec.grad_clip is not None else math.inf
            norm = torch.nn.utils.clip_grad_norm_(params, clip)
            if self.scaler is not None:
                self.scaler.step(opt)
                self.scaler.update()
            else:
                opt.step()
            values = {f"train/{spec.name}/{k}": v.detach().float() for k, v in losses.items() if torch.is_tensor(v)}
            values[f"grad_norm/{spec.name}"] = norm.detach().float()
            for k, v in values.items():
                acc = self._acc.setdefault(k, [0.0, 0])
                acc[0], acc[1] = acc[0] + v, acc[1] + 1
        self.step += 1
        self._acc_steps += 1

    # ---- the loop ------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train to ``train.steps``; returns ``{"step", "valid", "best", "checkpoint", "stopped"}``.

        SIGTERM stops every rank after the current step, with a checkpoint (``stopped`` true).
        """
        self._log_start()
        last_path, stopped, clean = None, False, False
        batches = self._train_batches()
        try:
            with D.StopSignal() as stop:
                last_path, stopped = self._loop(batches, stop)
            if stopped:
                self.log.info(f"stopped by SIGTERM at step {self.step}; continue with --resume")
            else:
                best = self.best
                self.log.info(f"done at step {self.step}; last validation {self.last_valid}; best {best}",
                              console=f"done at step {self.step}" + (
                                  f"; best {best['metric']}={best['value']:.4g} at step {best['step']}"
                                  if best.get("value") is not None else ""))
            clean = True
        finally:
            batches.close()  # shuts the loader's workers down
            self.log.close()
            D.teardown(clean)
        return {"step": self.step, "valid": self.last_valid, "best": self.best, "stopped": stopped,
                "checkpoint": str(last_path or self.ckpts.latest())}

    def _loop(self, batches: Iterator[dict[str, Any]], stop: D.StopSignal) -> tuple[Path | None, bool]:
        """Steps until ``train.steps`` or a stop request; returns (last checkpoint written, stopped)."""
        cfg, last_path = self.cfg, None
        t0, s0 = time.time(), self.step
        while self.step < cfg.steps:
            batch = _to_device(next(batches), self.device)
            self._train_step(batch)
            s, final = self.step, self.step == cfg.steps
            self.log.advance(s)
            if cfg.log_every and (s % cfg.log_every == 0 or final):
                self._log_train(s0, t0)
                t0, s0 = time.time(), s
            is_best = False
            if self.data.valid is not None and cfg.valid_every and (s % cfg.valid_every == 0 or final):
                is_best = self._validate()
            if self.dist.is_main and cfg.media_every and s % cfg.media_every == 0:
                self._media(batch)
            stopping, due = D.any_rank([stop.signum is not None, self._checkpoint_due()], self.device)
            on_schedule = (cfg.checkpoint_every and s % cfg.checkpoint_every == 0) or final or stopping or due
            if on_schedule or is_best:
                last_path = self._save(step_file=bool(on_schedule), is_best=is_best) or last_path
            if stopping:
                return last_path, True
        return last_path, False

    def _checkpoint_due(self) -> bool:
        """A checkpoint by the clock: the first one minute after this process started training, then
        every ``checkpoint_minutes``, so a killed run loses minutes, not everything since its start."""
        if not self.cfg.checkpoint_minutes:
            return False
        elapsed = time.monotonic() - self._last_save_clock
        return elapsed >= (60.0 if not self._saved_this_process else self.cfg.checkpoint_minutes * 60.0)

    def _log_start(self) -> None:
        sizes = {n: sum(p.numel() for p in m.parameters()) for n, m in self.models.items()}
        self.log.info(f"task {self.config['task']} at step {self.step}/{self.cfg.steps} on {self.device} "
                      f"x{self.dist.world_size}, precision {self.cfg.precision}, parameters {sizes}")
        self.log.info(f"optimizers {specs_to_config(self.specs)}",
                      console="optimizers: " + "; ".join(f"{s.name} {s.kind} lr {s.lr:g} ({s.schedule} schedule)"
                                                         for s in self.specs))
        valid = len(self.data.valid) if self.data.valid is not None else 0
        self.log.info(f"data {self.cfg.prepared}: {len(self.data.train)} training items, {valid} validation items, "
                      f"batch {self.cfg.batch_size} per process; run folder {self.run_dir}")

    def _log_train(self, s0: int, t0: float) -> None:
        if not self.dist.is_main or not self._acc_steps:
            self._acc, self._acc_steps = {}, 0
            return
        values = {k: float(total) / count for k, (total, count) in self._acc.items()}  # over steps it ran
        values.update({f"lr/{s.name}": lr_at(s, self.step - 1, self.cfg.steps) for s in self.specs})
        values["perf/steps_per_s"] = (self.step - s0) / max(time.time() - t0, 1e-9)
        values["perf/process_cpu_s"] = time.process_time()  # this process's CPU seconds (all threads)
        values["perf/epoch"] = float(self.epoch)
        self._acc, self._acc_steps = {}, 0
        self.log.scalars("train", self.step, values)
        shown = {k.split("/", 1)[1]: f"{v:.4g}" for k, v in values.items() if k.startswith("train/")}
        totals = {k: v for k, v in shown.items() if k.endswith("/total")}
        self.log.info(f"step {self.step} " + " ".join(f"{k}={v}" for k, v in shown.items()),
                      console=f"step {self.step} " + " ".join(f"{k}={v}" for k, v in totals.items()))
        self.log.advance(self.step, totals)

    @contextlib.contextmanager
    def _eval_context(self) -> Iterator[None]:
        """Eval mode, no grad, plain models in ``task.wrapped``, training RNG streams untouched."""
        self.task.wrapped = dict(self.models)
        for m in self.models.values():
            m.eval()
        try:
            with preserved_rng(), torch.no_grad(), self._autocast():
                yield
        finally:
            for m in self.models.values():
                m.train()
            self.task.wrapped = self.wrapped

    def _validate(self) -> bool:
        """Validate over the whole set, each rank its share; returns whether this is the best so far."""
        t0 = time.time()
        sums: dict[str, float] = {}
        n = 0
        if self.cfg.ddp_broadcast_buffers:
            D.broadcast_buffers(self.models)
        with self._eval_context():
            self.task.start_validation()
            for batch in self._valid_loader():
                batch = _to_device(batch, self.device)
                if self._media_batch is None:
                    self._media_batch = batch
                b = _batch_size(batch)
                for k, v in self.task.validate_batch(batch).items():
                    sums[k] = sums.get(k, 0.0) + float(v) * b
                n += b
            # On every rank: accumulators such as CodebookStats sum over ranks here (a collective).
            pass_metrics = {k: float(v) for k, v in self.task.end_validation().items()}
        parts = D.gather_objects((sums, n))
        total = sum(p[1] for p in parts)
        metrics = {k: sum(p[0].get(k, 0.0) for p in parts) / max(total, 1) for k in sums}
        metrics.update(pass_metrics)
        is_best = False
        if self.dist.is_main:
            self.last_valid = metrics
            self.log.scalars("valid", self.step, {f"valid/{k}": v for k, v in metrics.items()})
            value = metrics.get(self.best_metric)
            if value is not None and math.isfinite(value):
                old = self.best["value"]
                if old is None or (value < old if self.cfg.best_mode == "min" else value > old):
                    self.best = {"metric": self.best_metric, "value": value, "step": self.step}
                    is_best = True
            head = f"validation at step {self.step} ({total} items, {time.time() - t0:.1f} s): "
            shown = {k: v for k, v in metrics.items() if k == self.best_metric or k in CONSOLE_METRICS}
            self.log.info(head + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()),
                          console=head + " ".join(f"{k}={v:.4g}" for k, v in shown.items())
                          + (" (best)" if is_best else ""))
            if value is None and not self._warned_best:
                self._warned_best = True
                self.log.info(f"best metric {self.best_metric!r} not among validation metrics {sorted(metrics)}; "
                              f"set train.best_metric to track best.pt")
        return bool(D.gather_objects(is_best)[0])

    def _media(self, batch: dict[str, Any]) -> None:
        if self.log.writer is None:
            return
        t0 = time.time()
        with self._eval_context():
            self.task.log_media(self.log.writer, self._media_batch or batch, self.step)
        self.log.flush()
        self.log.info(f"media at step {self.step} ({time.time() - t0:.1f} s)")

    # ---- checkpoints ---------------------------------------------------------------------
    def _save(self, step_file: bool, is_best: bool) -> Path | None:
        """Write a checkpoint (every rank takes part in gathering RNG states and digests)."""
        t0 = time.time()
        if self.cfg.ddp_broadcast_buffers:
            D.broadcast_buffers(self.models)
        rngs = D.gather_objects(capture_rng())
        digests = D.gather_objects(D.weights_digest(self.models)) if self.dist.enabled else []
        path = None
        if self.dist.is_main:
            if len(set(digests)) > 1:
                self.log.info(f"WARNING: ranks hold different weights at step {self.step}: {digests}")
            state = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                     "world_size": self.dist.world_size, "batch_size": self.cfg.batch_size,
                     "models": {n: m.state_dict() for n, m in self.models.items()},
                     "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
                     "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                     "task_state": self.task.extra_state(), "rng": rngs, "rank_digests": digests,
                     "best": self.best, "valid": self.last_valid, "config": self.config,
                     "optimizer_specs": specs_to_config(self.specs)}
            if step_file:
                path = self.ckpts.save(state, self.step, is_best=is_best)
            else:
                path = self.ckpts.save_best(state)
            self.log.info(f"checkpoint {path.name} at step {self.step}" + (" (best)" if is_best else "")
                          + f" ({time.time() - t0:.1f} s)")
        D.barrier()
        if step_file:
            self._last_save_clock, self._saved_this_process = time.monotonic(), True
        return path

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, map_location=self.device)
        load_models(state, self.models, path)
        for name, opt in self.optimizers.items():
            if name not in state["optimizers"]:
                raise SpectokError(f"{path}: no state for optimizer {name!r} (has {sorted(state['optimizers'])})")
            opt.load_state_dict(state["optimizers"][name])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.task.load_extra_state(state.get("task_state") or {})
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        if (state.get("best") or {}).get("metric") == self.best_metric:
            self.best = dict(state["best"])
        self.last_valid = dict(state.get("valid") or {})
        same_layout = state.get("world_size") == self.dist.world_size and state.get("batch_size") == self.cfg.batch_size
        if not same_layout:  # the same fraction of the epoch, approximately
            seen = self.batch_in_epoch * int(state.get("batch_size", 1)) * int(state.get("world_size", 1))
            self.batch_in_epoch = seen // (self.cfg.batch_size * self.dist.world_size)
        rngs = state["rng"]
        if len(rngs) == self.dist.world_size:
            restore_rng(rngs[self.dist.rank])
        else:
            seed_everything(self.cfg.seed + self.dist.rank + self.step)
        self._resumed_note = (f"resumed from {path.name} at step {self.step}"
                              + ("" if same_layout else f" (was {state.get('world_size')} process(es) x batch "
                                 f"{state.get('batch_size')}: data position approximate)"))
