"""Training tasks for the tokenizers (see :mod:`spectok.training.task` for the contract).

- :class:`TokenizerTask` (``task: tokenizer``): a VQ-VAE over log-mels, masked L1 or MSE
  reconstruction plus the quantizer's loss.
- :class:`VQGANTask` (``task: vqgan``): the DCTTS Spectrogram VQGAN, the same plus a
  PatchGAN discriminator trained in a second phase on detached fakes.
- :class:`ImageTokenizerTask` (``task: image-tokenizer``): the CIFAR-10 image VQ-VAE.

Config sections read here (the engine reads ``train`` and the optimizer settings)::

    model:                        # registered class name + its constructor kwargs
      class: conv2d-vqvae
      mel: hifigan-22k
      quantizer: {type: vq, dim: 128, codebook_size: 128, beta: 0.25}
      ...
    loss:
      reconstruction: l1          # or mse (masked to real frames, log-mel units)
      reconstruction_weight: 1.0
      quantizer_weight: 1.0
      delta_weight: 0.0           # L1 of time and frequency differences (against over-smoothing)
      disc_start: 10000           # vqgan only: step at which the adversarial terms switch on
      disc_weight: 1.0            # vqgan only: multiplies λ * L_G and the discriminator loss
      adaptive_weight_max: 1.0e4  # vqgan only: clamp of λ
      feature_matching_weight: 0  # vqgan only
    discriminator: {channels: 64, n_layers: 3, norm: batch}     # vqgan only
    data: {crop_frames: 64, valid_frames: null, min_frames: 1}

and the engine's ``train:`` and ``optim: {generator: {...}, discriminator: {...}}``
(OptimizerSpec fields overriding the defaults of :meth:`optimizer_specs`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

import spectok.artifacts as artifacts
from spectok.data.datasets import mel_data_spec
from spectok.data.images import CifarImages, collate_images
from spectok.data.spec import DataSpec
from spectok.errors import SpectokError
from spectok.losses import feature_matching_loss, hinge_d_loss, hinge_g_loss, masked_delta_l1, masked_l1, masked_mse
from spectok.quantizers import CodebookStats
from spectok.quantizers.ops import all_reduce_sum_
from spectok.tokenizers.vqgan import PatchGANDiscriminator, adaptive_weight, gan_active
from spectok.training.media import log_tokenizer_media
from spectok.training.task import OptimizerSpec, TrainTask
from spectok.validation import check_kwargs

RECONSTRUCTION = {"l1": masked_l1, "mse": masked_mse}


class CodebookTracker:
    """Codebook statistics over a whole validation pass (:class:`spectok.quantizers.CodebookStats`).

    Token rows that share a codebook (the declared layout, ``rows_per_codebook``: the
    frequency rows of a 2-D grid) are counted together; padded token columns are left out.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.stats = CodebookStats(list(model.codebooks))

    def update(self, codes: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """``codes [B, Kq * rows, T']`` (tokenizer layout); ``mask [B, T]`` frame mask (mel models)."""
        b, _, t = codes.shape
        kq = len(self.stats.codebook_sizes)
        grouped = codes.reshape(b, kq, self.model.rows_per_codebook, t)  # [B, Kq, rows, T']
        keep = None
        if mask is not None:
            keep = self.model.latent_mask(mask, t)  # [B, T'] or [B, rows, T']
            keep = keep.reshape(b, 1, t).expand(b, grouped.shape[2], t) if keep.dim() == 2 else keep
        self.stats.update(grouped, keep)

    def compute(self) -> dict[str, float]:
        """``codebook/*`` figures; the rates count every position a codebook codes per second (a grid
        codebook codes ``rows_per_codebook`` positions per column), so ``nominal_bits_per_second``
        equals the model's ``bitrate``."""
        rate = None
        if self.model.mel_config is not None:
            rate = self.model.frame_rate * self.model.rows_per_codebook
        return {f"codebook/{k}": float(v) for k, v in self.stats.summary(frame_rate=rate).items()}


class TokenizerTask(TrainTask):
    """A log-mel VQ-VAE: ``total = w_rec * masked_rec(mel', mel) + w_q * quantizer_loss``.

    Validation metrics: ``l1`` and ``mse`` of the log-mel (natural-log units) over every
    real frame of the validation set; ``codebook/*`` (used fraction, dead codes, entropy,
    perplexity, bits per second) counted over the whole pass.
    """

    kind = "tokenizer"
    best_metric = "l1"
    section_keys = {"loss": {"reconstruction": "str", "reconstruction_weight": "float", "quantizer_weight": "float",
                             "delta_weight": "float"},
                    "data": {"crop_frames": "int", "valid_frames": "int | None", "min_frames": "int"}}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.model = artifacts.build_section(config.get("model", {}), "tokenizer")
        loss = dict(config.get("loss", {}))
        kind = loss.get("reconstruction", "l1")
        if kind not in RECONSTRUCTION:
            raise SpectokError(f"loss.reconstruction must be one of {sorted(RECONSTRUCTION)}, got {kind!r}")
        self.reconstruction = RECONSTRUCTION[kind]
        self.w_rec = float(loss.get("reconstruction_weight", 1.0))
        self.w_q = float(loss.get("quantizer_weight", 1.0))
        self.w_delta = float(loss.get("delta_weight", 0.0))
        self.loss_config = loss
        self._tracker: CodebookTracker | None = None
        self._sums: dict[str, float] = {}
        self.wrapped = {}

    # ---- the contract --------------------------------------------------------------------
    def models(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizer_specs(self) -> list[OptimizerSpec]:
        return [OptimizerSpec("generator", ["model"], kind="adam", lr=2e-4, betas=(0.9, 0.99))]

    def data(self, prepared_dir: str) -> DataSpec:
        d = dict(self.config.get("data", {}))
        seed = int(self.config.get("train", {}).get("seed", 0))
        return mel_data_spec(prepared_dir, int(d.get("crop_frames", 64)), valid_frames=d.get("valid_frames"),
                             seed=seed, pad_multiple=self.model.time_downsample, mel_config=self.model.mel_config,
                             min_frames=int(d.get("min_frames", 1)))

    def _net(self, name: str = "model") -> nn.Module:
        return self.wrapped.get(name, self.models()[name]) if self.wrapped else self.models()[name]

    def reconstruction_losses(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Any]:
        """The VQ-VAE terms: ``rec``, ``quantizer``, quantizer metrics and ``total``."""
        mel, mask = batch["mel"], batch.get("mask")
        out = self._net("model")(mel, mask)
        rec = self.reconstruction(out.reconstruction, mel, mask)
        q = out.quantizer.loss
        losses = {"rec": rec, "quantizer": q, "total": self.w_rec * rec + self.w_q * q}
        if self.w_delta:
            losses["delta"] = masked_delta_l1(out.reconstruction, mel, mask)
            losses["total"] = losses["total"] + self.w_delta * losses["delta"]
        losses.update({f"q_{k}": torch.as_tensor(float(v)) for k, v in out.quantizer.metrics.items()})
        return losses, out

    def losses(self, batch: dict[str, torch.Tensor], step: int, phase: str) -> dict[str, torch.Tensor] | None:
        return self.reconstruction_losses(batch)[0]

    # ---- validation ----------------------------------------------------------------------
    def start_validation(self) -> None:
        self._tracker = CodebookTracker(self.model)
        self._sums = {"l1": 0.0, "mse": 0.0, "values": 0.0}

    @torch.no_grad()
    def validate_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        mel, mask = batch["mel"], batch.get("mask")
        out = self.model(mel, mask)
        if self._tracker is None:
            self.start_validation()
        self._tracker.update(out.codes, mask)
        err = out.reconstruction - mel
        m = torch.ones_like(mel[:, 0]) if mask is None else mask.to(mel.dtype)
        weight = m[:, None, :].expand_as(err)
        self._sums["l1"] += float((err.abs() * weight).sum())
        self._sums["mse"] += float((err.square() * weight).sum())
        self._sums["values"] += float(weight.sum())
        return {"l1": float(masked_l1(out.reconstruction, mel, mask)),
                "mse": float(masked_mse(out.reconstruction, mel, mask)),
                "quantizer": float(out.quantizer.loss)}

    def end_validation(self) -> dict[str, float]:
        """Codebook statistics, and ``l1``/``mse`` over every real frame of the set on every rank
        (replacing the engine's per-batch averages, which weight batches by item count, not by frames)."""
        if self._tracker is None:
            return {}
        out = self._tracker.compute()

        # every rank validated its share: sum the frames and errors over ranks (a collective)
        device = next(self.model.parameters()).device  # NCCL reduces CUDA tensors only
        sums = all_reduce_sum_(torch.tensor([self._sums["l1"], self._sums["mse"], self._sums["values"]],
                                            dtype=torch.float64, device=device))
        l1, mse, n = (float(v) for v in sums)
        out.update(l1=l1 / max(n, 1.0), mse=mse / max(n, 1.0))
        return out

    def log_media(self, writer: Any, batch: dict[str, torch.Tensor], step: int) -> None:
        log_tokenizer_media(writer, self.model, batch, step)

    def training_summary(self) -> dict[str, Any]:
        m = self.model
        return {"task": type(self).__name__, "frame_rate": m.frame_rate, "bitrate": m.bitrate,
                "codebook_sizes": m.codebook_sizes}


class VQGANTask(TokenizerTask):
    """The DCTTS Spectrogram VQGAN: :class:`TokenizerTask` plus a PatchGAN discriminator.

    Phases per step: ``"generator"`` (reconstruction + quantizer, and from ``disc_start``
    ``disc_weight * λ * hinge_G`` with the adaptive λ of :func:`adaptive_weight`, plus
    optional feature matching), then ``"discriminator"`` (hinge loss on real mels and the
    generator's output of the same step, detached; skipped before ``disc_start``).
    The discriminator sees log-mels normalised like the generator's input, with padded
    frames of the fake set to the real (silence) frames.
    """

    section_keys = {**TokenizerTask.section_keys, "discriminator": None,
                    "loss": {**TokenizerTask.section_keys["loss"], "disc_start": "int", "disc_weight": "float",
                             "adaptive_weight_max": "float", "feature_matching_weight": "float"}}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        disc = dict(config.get("discriminator", {}))
        check_kwargs("discriminator", PatchGANDiscriminator, disc)
        self.discriminator = PatchGANDiscriminator(**disc)
        self.disc_start = int(self.loss_config.get("disc_start", 10_000))
        self.disc_weight = float(self.loss_config.get("disc_weight", 1.0))
        self.max_weight = float(self.loss_config.get("adaptive_weight_max", 1e4))
        self.w_fm = float(self.loss_config.get("feature_matching_weight", 0.0))
        self._fake: torch.Tensor | None = None

    def models(self) -> dict[str, nn.Module]:
        return {"model": self.model, "discriminator": self.discriminator}

    def optimizer_specs(self) -> list[OptimizerSpec]:
        return [*super().optimizer_specs(),
                OptimizerSpec("discriminator", ["discriminator"], kind="adam", lr=2e-4, betas=(0.9, 0.99))]

    def _d_input(self, mel: torch.Tensor) -> torch.Tensor:
        return ((mel - self.model.norm_mean) / self.model.norm_std).unsqueeze(1)

    def losses(self, batch: dict[str, torch.Tensor], step: int, phase: str) -> dict[str, torch.Tensor] | None:
        if phase == "discriminator":
            return self.discriminator_losses(batch, step)
        losses, out = self.reconstruction_losses(batch)
        if phase != "generator" or not gan_active(step, self.disc_start):
            return losses
        mel, mask = batch["mel"], batch.get("mask")
        fake = out.reconstruction
        if mask is not None:
            m = mask[:, None, :].to(fake.dtype)
            fake = fake * m + mel * (1 - m)
        # The generator phase calls the bare discriminator: its gradients here are discarded
        # (zeroed at the start of the discriminator phase), so DDP need not reduce them.
        logits, fake_feats = self.discriminator(self._d_input(fake))
        g_loss = hinge_g_loss([logits])
        lam = adaptive_weight(self.w_rec * losses["rec"], g_loss, self.model.decoder.last_layer.weight,
                              self.max_weight)
        total = losses["total"] + self.disc_weight * lam * g_loss
        if self.w_fm > 0:
            with torch.no_grad():
                _, real_feats = self.discriminator(self._d_input(mel))
            fm = feature_matching_loss([real_feats], [fake_feats])
            losses["feature_matching"] = fm
            total = total + self.w_fm * fm
        self._fake = fake.detach()
        losses.update({"gan_g": g_loss, "lambda": lam, "total": total})
        return losses

    def discriminator_losses(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor] | None:
        """Hinge loss on ``D(real)`` and ``D(fake.detach())``; ``None`` (skip) before ``disc_start``."""
        if not gan_active(step, self.disc_start):
            return None
        self.discriminator.zero_grad(set_to_none=True)
        mel = batch["mel"]
        fake = self._fake
        if fake is None or fake.shape != mel.shape:  # no cached generator output for this batch
            with torch.no_grad():
                fake = self.model(mel, batch.get("mask")).reconstruction
        d = self._net("discriminator")
        real_logits, _ = d(self._d_input(mel))
        fake_logits, _ = d(self._d_input(fake.detach()))
        self._fake = None
        loss = hinge_d_loss([real_logits], [fake_logits])
        return {"gan_d": loss, "d_real": real_logits.mean().detach(), "d_fake": fake_logits.mean().detach(),
                "total": self.disc_weight * loss}


class ImageTokenizerTask(TokenizerTask):
    """The CIFAR-10 image VQ-VAE: ``total = w_rec * mse(x', x) + w_q * quantizer_loss`` on images in [-1, 1].

    ``--data`` is the CIFAR-10 folder (``cifar-10-batches-py``); training uses the training
    batches less a held-out 5 %, validation that 5 % (``data.train_limit`` /
    ``data.valid_limit`` keep the first N images). Batches are ``{"image": float32 [B, 3, 32, 32]}``.
    Validation metrics: ``mse``, ``psnr`` (dB, peak-to-peak 2) and codebook statistics.
    """

    section_keys = {**TokenizerTask.section_keys, "data": {"train_limit": "int | None", "valid_limit": "int | None"}}

    best_metric = "mse"

    def data(self, prepared_dir: str) -> DataSpec:
        d = dict(self.config.get("data", {}))
        train = CifarImages(prepared_dir, "train", limit=d.get("train_limit"))
        valid = CifarImages(prepared_dir, "valid", limit=d.get("valid_limit"))
        return DataSpec(train=train, valid=valid, collate=collate_images)

    def reconstruction_losses(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Any]:
        x = batch["image"]
        out = self._net("model")(x)
        rec = self.reconstruction(out.reconstruction, x)
        q = out.quantizer.loss
        losses = {"rec": rec, "quantizer": q, "total": self.w_rec * rec + self.w_q * q}
        losses.update({f"q_{k}": torch.as_tensor(float(v)) for k, v in out.quantizer.metrics.items()})
        return losses, out

    @torch.no_grad()
    def validate_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        x = batch["image"]
        out = self.model(x)
        if self._tracker is None:
            self.start_validation()
        self._tracker.update(out.codes)
        mse = float((out.reconstruction - x).square().mean())
        return {"mse": mse, "psnr": 10.0 * math.log10(4.0 / max(mse, 1e-12)), "quantizer": float(out.quantizer.loss)}

    def end_validation(self) -> dict[str, float]:
        return self._tracker.compute() if self._tracker is not None else {}

    def log_media(self, writer: Any, batch: dict[str, torch.Tensor], step: int) -> None:
        was = self.model.training
        self.model.eval()
        with torch.no_grad():
            x = batch["image"][:8]
            rec = self.model(x).reconstruction.clamp(-1, 1)
        self.model.train(was)
        grid = torch.cat([torch.cat(list(x), dim=2), torch.cat(list(rec), dim=2)], dim=1)  # [3, 64, 32 * n]
        writer.add_image("images/input_top_reconstruction_bottom", (grid + 1) / 2, step)

    def training_summary(self) -> dict[str, Any]:
        return {"task": type(self).__name__, "bits_per_image": self.model.bits_per_image,
                "codebook_sizes": self.model.codebook_sizes}
