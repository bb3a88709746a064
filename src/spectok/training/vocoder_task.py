"""Training tasks for the vocoders (see :mod:`spectok.training.task` for the contract).

- :class:`VocoderTask` (``task: vocoder``): one phase, "generator": spectral losses only
  (multi-resolution STFT: spectral convergence + log-magnitude L1, and mel L1 through the
  vocoder's own front end). For the CNN and iSTFT vocoders.
- :class:`GANVocoderTask` (``task: vocoder-gan``): HiFi-GAN training. Phase "generator":
  LSGAN generator loss over MPD + MSD, feature matching (x2, L1 summed over layers and
  sub-discriminators as in HiFi-GAN) and mel L1 (x45), plus optional
  STFT terms; phase "discriminator": LSGAN loss on real audio and the generator's output of
  the same step, **detached**. Before ``disc_start`` the generator learns from the spectral
  terms only and the discriminator phase is skipped. Works for any vocoder class (HiFi-GAN,
  or the iSTFT vocoder trained Vocos-style).

Config sections read here::

    model: {class: istft-vocoder, mel: hifigan-22k, dim: 256, ...}   # registered class + kwargs
    loss:
      stft_weight: 1.0          # x (spectral convergence + log-magnitude L1), averaged over resolutions
      resolutions: [[512, 50, 240], [1024, 120, 600], [2048, 240, 1200]]   # (n_fft, hop, win)
      mel_weight: 1.0           # x mel L1 (HiFi-GAN: 45)
      phase_weight: 0.0         # x compressed complex STFT L1 (phase-aware), over the same resolutions
      adv_weight: 1.0           # gan only: x LSGAN generator loss
      feature_matching_weight: 2.0   # gan only
      disc_start: 0             # gan only: step at which the adversarial terms switch on
    discriminator: {periods: [2, 3, 5, 7, 11], scales: 3, width: 1.0, resolutions: []}   # gan only (+ MRD)
    data: {segment_samples: 8192, valid_segment_samples: 32768, cache_audio: true}

Batches (:mod:`spectok.data.audio_segments`): ``mel [B, n_mels, n]``, ``audio [B, n * hop]``.
A CNN vocoder with ``input: linear`` is fed ``log(clamp(|STFT|, log_floor))`` of the audio
segment through the front end's :meth:`~spectok.audio.mel.MelSpectrogram.magnitude`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import spectok.artifacts as artifacts
from spectok.audio.mel import MelConfig, MelSpectrogram
from spectok.data.audio_segments import segment_data_spec
from spectok.data.spec import DataSpec
from spectok.losses import (
    STFT_RESOLUTIONS,
    compressed_complex_stft_loss,
    feature_matching_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    mel_l1_loss,
    multi_resolution_stft_loss,
)
from spectok.training.task import OptimizerSpec, TrainTask
from spectok.validation import check_kwargs
from spectok.vocoders.discriminators import HiFiGANDiscriminator


class VocoderTask(TrainTask):
    """Spectral-loss vocoder training (one phase, "generator")."""

    kind = "vocoder"
    best_metric = "mel_l1"
    section_keys = {"loss": {"stft_weight": "float", "resolutions": "list[list[int]]", "mel_weight": "float",
                             "phase_weight": "float"},
                    "data": {"segment_samples": "int", "valid_segment_samples": "int | None", "cache_audio": "bool"}}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.model = artifacts.build_section(config.get("model", {}), "vocoder")
        self.mel_config = self.model.mel_config
        if "mel" in config:
            self.mel_config.check_compatible(MelConfig.coerce(config["mel"]), what="model and config mel")
        loss = dict(config.get("loss", {}))
        self.w_stft = float(loss.get("stft_weight", 1.0))
        self.w_mel = float(loss.get("mel_weight", 1.0))
        self.w_phase = float(loss.get("phase_weight", 0.0))
        self.resolutions = tuple(tuple(int(x) for x in r) for r in loss.get("resolutions", STFT_RESOLUTIONS))
        self.loss_config = loss
        # float32 STFT inside the training losses: speed matters here, 1e-7 errors do not
        self.front = MelSpectrogram(self.mel_config, stft_dtype=torch.float32)
        self.wrapped = {}

    # ---- the contract --------------------------------------------------------------------
    def models(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizer_specs(self) -> list[OptimizerSpec]:
        return [OptimizerSpec("generator", ["model"], kind="adamw", lr=5e-4, betas=(0.8, 0.99), schedule="cosine",
                              warmup_steps=200, grad_clip=10.0)]

    def data(self, prepared_dir: str) -> DataSpec:
        d = dict(self.config.get("data", {}))
        seed = int(self.config.get("train", {}).get("seed", 0))
        return segment_data_spec(prepared_dir, int(d.get("segment_samples", 8192)),
                                 valid_segment_samples=d.get("valid_segment_samples"), seed=seed,
                                 mel_config=self.mel_config, cache_audio=bool(d.get("cache_audio", True)))

    def _net(self, name: str = "model") -> nn.Module:
        return self.wrapped.get(name, self.models()[name]) if self.wrapped else self.models()[name]

    def vocoder_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """What the vocoder reads: the log-mel, or the log linear magnitude for ``input: linear``."""
        if getattr(self.model, "input", "mel") == "linear":
            self.front.to(batch["audio"].device)
            mag = self.front.magnitude(batch["audio"])
            return torch.log(mag.clamp_min(self.mel_config.log_floor))
        return batch["mel"]

    def spectral_losses(self, fake: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """``stft_sc``, ``stft_log_mag``, ``mel_l1`` and their weighted sum ``spectral``."""
        self.front.to(real.device)
        out: dict[str, torch.Tensor] = {}
        total = 0.0
        if self.w_stft > 0:
            stft = multi_resolution_stft_loss(fake, real, self.resolutions)
            out.update(stft_sc=stft["sc"], stft_log_mag=stft["log_mag"])
            total = total + self.w_stft * (stft["sc"] + stft["log_mag"])
        if self.w_phase > 0:
            out["complex_stft"] = compressed_complex_stft_loss(fake, real, self.resolutions)
            total = total + self.w_phase * out["complex_stft"]
        out["mel_l1"] = mel_l1_loss(fake, real, self.front)
        total = total + self.w_mel * out["mel_l1"]
        out["spectral"] = total
        return out

    def losses(self, batch: dict[str, torch.Tensor], step: int, phase: str) -> dict[str, torch.Tensor] | None:
        fake = self._net("model")(self.vocoder_input(batch))
        losses = self.spectral_losses(fake, batch["audio"])
        losses["total"] = losses["spectral"]
        return losses

    @torch.no_grad()
    def validate_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        fake = self.model(self.vocoder_input(batch))
        saved, self.w_stft = self.w_stft, max(self.w_stft, 1.0)  # always report the STFT terms
        try:
            out = self.spectral_losses(fake, batch["audio"])
        finally:
            self.w_stft = saved
        return {k: float(v) for k, v in out.items()}

    def log_media(self, writer: Any, batch: dict[str, torch.Tensor], step: int) -> None:
        fake = self.model(self.vocoder_input(batch))
        sr = self.mel_config.sample_rate
        for i in range(min(2, fake.shape[0])):
            writer.add_audio(f"vocoder/{i}_generated", fake[i].float().clamp(-1, 1).cpu(), step, sample_rate=sr)
            if step == 0 or not getattr(self, "_logged_real", False):
                writer.add_audio(f"vocoder/{i}_real", batch["audio"][i].float().cpu(), step, sample_rate=sr)
        self._logged_real = True

    def training_summary(self) -> dict[str, Any]:
        return {"task": type(self).__name__, "model": self.model.registered_name,
                "segment_samples": int(self.config.get("data", {}).get("segment_samples", 8192))}


class GANVocoderTask(VocoderTask):
    """HiFi-GAN-style adversarial training: phases "generator" then "discriminator"."""

    section_keys = {**VocoderTask.section_keys, "discriminator": None,
                    "loss": {**VocoderTask.section_keys["loss"], "adv_weight": "float",
                             "feature_matching_weight": "float", "disc_start": "int"}}

    def __init__(self, config: dict[str, Any]) -> None:
        loss = dict(config.get("loss", {}))
        loss.setdefault("mel_weight", 45.0)
        loss.setdefault("stft_weight", 0.0)
        super().__init__({**config, "loss": loss})
        disc = dict(config.get("discriminator", {}))
        check_kwargs("discriminator", HiFiGANDiscriminator, disc)
        self.discriminator = HiFiGANDiscriminator(**disc)
        self.w_adv = float(loss.get("adv_weight", 1.0))
        self.w_fm = float(loss.get("feature_matching_weight", 2.0))
        self.disc_start = int(loss.get("disc_start", 0))
        self._fake: torch.Tensor | None = None

    def models(self) -> dict[str, nn.Module]:
        return {"model": self.model, "discriminator": self.discriminator}

    def optimizer_specs(self) -> list[OptimizerSpec]:
        kw = dict(kind="adamw", lr=2e-4, betas=(0.8, 0.99), weight_decay=0.01, grad_clip=None)
        return [OptimizerSpec("generator", ["model"], **kw), OptimizerSpec("discriminator", ["discriminator"], **kw)]

    def gan_active(self, step: int) -> bool:
        return step >= self.disc_start

    def losses(self, batch: dict[str, torch.Tensor], step: int, phase: str) -> dict[str, torch.Tensor] | None:
        if phase == "discriminator":
            return self.discriminator_losses(batch, step)
        real = batch["audio"]
        fake = self._net("model")(self.vocoder_input(batch))
        losses = self.spectral_losses(fake, real)
        total = losses["spectral"]
        if phase == "generator" and self.gan_active(step):
            # The bare discriminator: its gradients from this phase are zeroed before its own phase.
            fake_scores, fake_feats = self.discriminator(fake)
            with torch.no_grad():
                _, real_feats = self.discriminator(real)
            losses["gan_g"] = lsgan_g_loss(fake_scores)
            losses["feature_matching"] = feature_matching_loss(real_feats, fake_feats, layers="sum")
            total = total + self.w_adv * losses["gan_g"] + self.w_fm * losses["feature_matching"]
        self._fake = fake.detach()
        losses["total"] = total
        return losses

    def discriminator_losses(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor] | None:
        """LSGAN loss on ``D(real)`` and ``D(fake.detach())``; ``None`` (skip) before ``disc_start``."""
        if not self.gan_active(step):
            return None
        real = batch["audio"]
        fake = self._fake
        if fake is None or fake.shape != real.shape:  # no cached generator output for this batch
            with torch.no_grad():
                fake = self.model(self.vocoder_input(batch))
        fake = fake.detach()
        d = self._net("discriminator")
        real_scores, _ = d(real)
        fake_scores, _ = d(fake)
        self._fake = None
        loss = lsgan_d_loss(real_scores, fake_scores)
        return {"gan_d": loss, "total": loss}
