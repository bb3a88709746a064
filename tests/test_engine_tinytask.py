"""A tiny TrainTask for engine tests (importable as ``test_engine_tinytask:TinyTask`` with
``tests/`` on PYTHONPATH), and the helpers the engine tests share.

TinyTask: a 1-D conv autoencoder over log-mels (with dropout, so training consumes RNG),
optionally with a discriminator trained in a second phase from ``model.disc_start``. It
is registered as a "tokenizer" model so export/load_release work.
Setting SPECTOK_TEST_HANG_AT_STEP=N makes the generator phase of step N sleep for an hour
(the resume test kills the process there, at a known point); SPECTOK_TEST_STEP_SLEEP=S
makes every phase sleep S seconds (a slow run to interrupt).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from spectok import artifacts
from spectok.data.spec import DataSpec
from spectok.losses import hinge_d_loss, hinge_g_loss, masked_l1
from spectok.training.task import OptimizerSpec, TrainTask

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@artifacts.register("test-tiny-ae", kind="tokenizer")
class TinyAE(nn.Module):
    """mel [B, n_mels, T] -> mel [B, n_mels, T] through a [B, hidden, T/2] bottleneck (T even)."""

    def __init__(self, n_mels: int = 80, hidden: int = 8) -> None:
        super().__init__()
        self.enc = nn.Conv1d(n_mels, hidden, 4, stride=2, padding=1)
        self.drop = nn.Dropout(0.1)
        self.dec = nn.ConvTranspose1d(hidden, n_mels, 4, stride=2, padding=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.dec(self.drop(torch.relu(self.enc((mel + 5.0) / 3.0)))) * 3.0 - 5.0


class TinyDisc(nn.Module):
    def __init__(self, n_mels: int = 80) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(n_mels, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv1d(4, 1, 3, padding=1))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net((mel + 5.0) / 3.0)


class TinyTask(TrainTask):
    """Masked L1 autoencoding; with ``model.gan: true`` a hinge GAN from ``model.disc_start``."""

    kind = "tokenizer"
    best_metric = "l1"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        m = dict(config.get("model", {}))
        self.model = TinyAE(hidden=int(m.get("hidden", 8)))
        self.gan = bool(m.get("gan", False))
        self.disc_start = int(m.get("disc_start", 0))
        self.disc = TinyDisc() if self.gan else None
        self.wrapped = {}
        self._fake = None
        self.validated_batches = 0
        self.media_calls: list[tuple] = []
        self.train_dtypes: set[torch.dtype] = set()

    def models(self) -> dict[str, nn.Module]:
        return {"model": self.model, **({"discriminator": self.disc} if self.gan else {})}

    def optimizer_specs(self) -> list[OptimizerSpec]:
        specs = [OptimizerSpec("generator", ["model"], kind="adam", lr=3e-3, schedule="cosine", warmup_steps=2)]
        if self.gan:
            specs.append(OptimizerSpec("discriminator", ["discriminator"], lr=1e-3))
        return specs

    def data(self, prepared_dir: str) -> DataSpec:
        from spectok.data.datasets import mel_data_spec

        d = dict(self.config.get("data", {}))
        return mel_data_spec(prepared_dir, int(d.get("crop_frames", 16)), valid_frames=d.get("valid_frames", 64),
                             seed=self.config["train"]["seed"], pad_multiple=2)

    def _net(self, name: str) -> nn.Module:
        return self.wrapped.get(name) or self.models()[name]

    def losses(self, batch: dict[str, torch.Tensor], step: int, phase: str) -> dict[str, torch.Tensor] | None:
        if step == int(os.environ.get("SPECTOK_TEST_HANG_AT_STEP", "-1")):
            time.sleep(3600)
        time.sleep(float(os.environ.get("SPECTOK_TEST_STEP_SLEEP", "0")))
        mel, mask = batch["mel"], batch["mask"]
        if phase == "discriminator":
            if step < self.disc_start:
                return None
            d = self._net("discriminator")
            loss = hinge_d_loss([d(mel)], [d(self._fake)])
            return {"gan_d": loss, "total": loss}
        out = self._net("model")(mel)
        self.train_dtypes.add(out.dtype)
        rec = masked_l1(out, mel, mask)
        losses = {"rec": rec, "total": rec}
        if self.gan and step >= self.disc_start:
            g = hinge_g_loss([self.disc(out)])
            losses.update(gan_g=g, total=rec + 0.01 * g)
        self._fake = out.detach()
        return losses

    @torch.no_grad()
    def validate_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        self.validated_batches += 1
        return {"l1": float(masked_l1(self.model(batch["mel"]), batch["mel"], batch["mask"]))}

    def log_media(self, writer: Any, batch: dict[str, torch.Tensor], step: int) -> None:
        self.media_calls.append((step, self.model.training, torch.is_grad_enabled(), self._net("model") is self.model,
                                 tuple(batch["mel"].shape)))
        writer.add_image("mel", (batch["mel"][0:1] + 11.5) / 14.0, step)

    def training_summary(self) -> dict[str, Any]:
        return {"tiny": True}


def write_config(path: Path, **train: Any) -> Path:
    """A TinyTask config with the given ``train:`` keys (fast defaults otherwise)."""
    gan = train.pop("gan", False)
    base = {"steps": 6, "batch_size": 2, "valid_every": 3, "checkpoint_every": 3, "log_every": 1,
            "media_every": 0, "keep_last": 2, "seed": 3, "device": "cpu", "progress": False}
    base.update(train)
    config = {"task": "test_engine_tinytask:TinyTask", "model": {"gan": gan, "disc_start": 2},
              "data": {"crop_frames": 16, "valid_frames": 64}, "train": base}
    path.write_text(yaml.safe_dump(config))
    return path


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO / "src")]),
               OMP_NUM_THREADS="1", **extra)
    return env


def spectok(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m spectok ARGS`` in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "spectok", *args], env=env or cli_env(), capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"spectok {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def test_tiny_autoencoder_keeps_shape_and_loss_is_masked():
    task = TinyTask({"model": {}, "train": {"seed": 0}})
    mel = torch.randn(2, 80, 16) - 5
    mask = torch.ones(2, 16)
    mask[1, 8:] = 0
    losses = task.losses({"mel": mel, "mask": mask}, step=0, phase="generator")
    assert task.model(mel).shape == mel.shape
    assert set(losses) == {"rec", "total"} and losses["total"].requires_grad
