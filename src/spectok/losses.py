"""Losses shared by tokenizers and vocoders, returned by tasks as a named dict.

GAN losses take lists of discriminator outputs (one per sub-discriminator) so the same
functions serve a single PatchGAN and HiFi-GAN's multi-period/multi-scale ensembles.
Spectral losses (multi-resolution STFT, mel L1) also live here and compute mels only
through :class:`spectok.audio.mel.MelSpectrogram`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error over real frames. ``mask`` ``[B, T]`` (1 = real frame) broadcasts over
    the channel axis of ``[B, C, T]`` (or ``[B, 1, C, T]``) inputs."""
    return _masked_mean((pred - target).abs(), mask)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over real frames; see :func:`masked_l1`."""
    return _masked_mean((pred - target).square(), mask)


def _masked_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return err.mean()
    m = mask.to(err.dtype)
    while m.dim() < err.dim():
        m = m.unsqueeze(1)
    m = m.expand_as(err)
    return (err * m).sum() / m.sum().clamp_min(1.0)


def hinge_d_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Hinge discriminator loss, averaged over sub-discriminators: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake)) / len(real)


def hinge_g_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """Hinge generator loss: -E[D(G(z))], averaged over sub-discriminators."""
    return sum(-f.mean() for f in fake) / len(fake)


def lsgan_d_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares discriminator loss (HiFi-GAN): sum over sub-discriminators of E[(1-D(x))^2] + E[D(G(z))^2]."""
    return sum((1 - r).square().mean() + f.square().mean() for r, f in zip(real, fake))


def lsgan_g_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares generator loss (HiFi-GAN): sum of E[(1 - D(G(z)))^2]."""
    return sum((1 - f).square().mean() for f in fake)


def feature_matching_loss(real_feats: list[list[torch.Tensor]], fake_feats: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between discriminator feature maps of real (detached) and generated inputs, summed over
    sub-discriminators and averaged over their layers."""
    total = 0.0
    for rs, fs in zip(real_feats, fake_feats):
        total = total + sum(F.l1_loss(f, r.detach()) for r, f in zip(rs, fs)) / len(rs)
    return total
