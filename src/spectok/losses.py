"""Losses shared by tokenizers and vocoders, returned by tasks as a named dict.

GAN losses take lists of discriminator outputs (one per sub-discriminator) so the same
functions serve a single PatchGAN and HiFi-GAN's multi-period/multi-scale ensembles.
Spectral losses (multi-resolution STFT, mel L1) also live here and compute mels only
through :class:`spectok.audio.mel.MelSpectrogram`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spectok.audio.spectral import stft_magnitude


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error over real frames. ``mask`` ``[B, T]`` (1 = real frame) broadcasts over
    the channel axis of ``[B, C, T]`` (or ``[B, 1, C, T]``) inputs."""
    return _masked_mean((pred - target).abs(), mask)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over real frames; see :func:`masked_l1`."""
    return _masked_mean((pred - target).square(), mask)


def masked_delta_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between the first differences of two log-mels ``[B, n_mels, T]``, along time and along
    frequency, over pairs of real frames: penalises the over-smoothing that a plain L1 leaves
    (a blurred mel has small differences where the real one has onsets and harmonics)."""
    dt = ((pred[..., 1:] - pred[..., :-1]) - (target[..., 1:] - target[..., :-1])).abs()
    df = ((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])).abs()
    pair_mask = None if mask is None else mask[:, 1:] * mask[:, :-1]
    return _masked_mean(dt, pair_mask) + _masked_mean(df, mask)


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


def feature_matching_loss(real_feats: list[list[torch.Tensor]], fake_feats: list[list[torch.Tensor]],
                          layers: str = "mean") -> torch.Tensor:
    """L1 between discriminator feature maps of real (detached) and generated inputs, summed over
    sub-discriminators and averaged over their layers (``layers="sum"``: summed, as HiFi-GAN does)."""
    total = 0.0
    for rs, fs in zip(real_feats, fake_feats):
        per_layer = sum(F.l1_loss(f, r.detach()) for r, f in zip(rs, fs))
        total = total + (per_layer if layers == "sum" else per_layer / len(rs))
    return total


# ---- spectral losses (vocoders) ----------------------------------------------------------------

#: (n_fft, hop, win) of the multi-resolution STFT loss (Parallel WaveGAN's three resolutions).
STFT_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((512, 50, 240), (1024, 120, 600), (2048, 240, 1200))


def spectral_convergence(pred_mag: torch.Tensor, target_mag: torch.Tensor) -> torch.Tensor:
    """``||target - pred||_F / ||target||_F`` over the batch (magnitudes ``[B, F, T]``); 0 when equal."""
    return torch.linalg.norm(target_mag - pred_mag) / torch.linalg.norm(target_mag).clamp_min(1e-7)


def log_magnitude_l1(pred_mag: torch.Tensor, target_mag: torch.Tensor) -> torch.Tensor:
    """Mean ``|log target - log pred|`` of two magnitudes ``[B, F, T]`` (inputs already floored)."""
    return (torch.log(target_mag) - torch.log(pred_mag)).abs().mean()


def multi_resolution_stft_loss(pred: torch.Tensor, target: torch.Tensor,
                               resolutions: tuple[tuple[int, int, int], ...] | list = STFT_RESOLUTIONS,
                               ) -> dict[str, torch.Tensor]:
    """Spectral convergence and log-magnitude L1, each averaged over STFT resolutions.

    Args:
        pred, target: waveforms ``[B, T]`` (the same length).
        resolutions: ``(n_fft, hop, win)`` triples; a single one gives the plain STFT loss.

    Returns:
        ``{"sc": ..., "log_mag": ...}`` scalar tensors (both 0 for identical signals).
    """
    if pred.shape != target.shape:
        raise ValueError(f"multi_resolution_stft_loss: shapes differ {tuple(pred.shape)} vs {tuple(target.shape)}")
    sc = log_mag = 0.0
    for n_fft, hop, win in resolutions:
        p, t = stft_magnitude(pred, n_fft, hop, win), stft_magnitude(target, n_fft, hop, win)
        sc = sc + spectral_convergence(p, t)
        log_mag = log_mag + log_magnitude_l1(p, t)
    return {"sc": sc / len(resolutions), "log_mag": log_mag / len(resolutions)}


def compressed_complex_stft_loss(pred: torch.Tensor, target: torch.Tensor,
                                 resolutions: tuple[tuple[int, int, int], ...] | list = STFT_RESOLUTIONS,
                                 power: float = 0.3) -> torch.Tensor:
    """Phase-aware spectral loss: mean ``|S_c(pred) - S_c(target)|`` over bins, averaged over resolutions.

    ``S_c = |S|^power * exp(i * angle(S))`` is the power-law compressed complex STFT (Hann,
    centred), the loss of speech enhancement's phase-aware training: unlike a magnitude loss
    it is zero only when the phases agree too, and the compression keeps quiet bins (where
    phase is noise) from dominating. Waveforms ``[B, T]``; a scalar, 0 for identical signals.
    """
    if pred.shape != target.shape:
        raise ValueError(f"compressed_complex_stft_loss: shapes differ {tuple(pred.shape)} vs {tuple(target.shape)}")
    total = 0.0
    for n_fft, hop, win in resolutions:
        window = torch.hann_window(win, device=pred.device)
        p, t = (torch.stft(x.float(), n_fft, hop, win, window, center=True, return_complex=True)
                for x in (pred, target))
        p, t = (s * (s.abs() + 1e-7).pow(power - 1.0) for s in (p, t))
        total = total + (p - t).abs().mean()
    return total / len(resolutions)


def mel_l1_loss(pred: torch.Tensor, target: torch.Tensor, front: torch.nn.Module) -> torch.Tensor:
    """L1 between log-mels of two waveforms ``[B, T]`` through the model's own front end.

    ``front`` is a :class:`~spectok.audio.mel.MelSpectrogram` (build it with
    ``stft_dtype=torch.float32`` for training speed); ``target`` may instead be a log-mel
    ``[B, n_mels, frames]`` already computed by the same front end.
    """
    target_mel = target if target.dim() == 3 else front(target)
    return F.l1_loss(front(pred), target_mel)
