"""Spectral building blocks shared by the vocoders and the losses (the mel front end is
:mod:`spectok.audio.mel`): windowed overlap-add (an inverse STFT without centring), its window
envelope, the front end's padded window, and linear STFT magnitudes.

Shapes: waveforms ``[B, samples]``; frames ``[B, T, n_fft]``; magnitudes ``[B, n_fft // 2 + 1, T]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spectok.audio.mel import MelConfig


def overlap_add(frames: torch.Tensor, window: torch.Tensor, hop: int,
                envelope: torch.Tensor | None = None) -> torch.Tensor:
    """Windowed overlap-add with window-power normalisation (an inverse STFT without centring).

    Args:
        frames: time frames ``[B, T, n_fft]`` (already inverse-FFT'd; frames-last is the layout
            ``irfft`` of a ``[B, T, F]`` spectrum gives, and the fast one for the adds).
        window: synthesis window ``[n_fft]``.
        hop: hop length in samples.
        envelope: :func:`window_envelope` for these sizes, to reuse across calls.

    Returns:
        ``[B, (T - 1) * hop + n_fft]``: the least-squares signal whose STFT frames are closest
        to ``frames`` (samples that no window covers are 0).
    """
    b, t, n_fft = frames.shape
    if envelope is None:
        envelope = window_envelope(window, hop, t)
    return _overlap(frames * window, hop) / envelope


def window_envelope(window: torch.Tensor, hop: int, frames: int) -> torch.Tensor:
    """``1 / sum_t w^2(n - t * hop)`` as a divisor ``[1, (frames - 1) * hop + n_fft]`` (1 where no window reaches)."""
    env = _overlap(window.square().expand(1, frames, window.shape[0]), hop)
    return torch.where(env > 1e-8, env, torch.ones_like(env))


def _overlap(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Sum frames ``[B, T, n_fft]`` placed ``hop`` apart -> ``[B, (T - 1) * hop + n_fft]``."""
    b, t, n_fft = frames.shape
    r = -(-n_fft // hop)  # each frame spans r hops (the last one zero-padded when hop does not divide n_fft)
    if r * hop != n_fft:
        frames = F.pad(frames, (0, r * hop - n_fft))
    chunks = frames.reshape(b, t, r, hop)
    out = frames.new_zeros(b, t + r - 1, hop)
    for k in range(r):  # add the r chunks at increasing offsets: contiguous adds, far faster than F.fold
        out[:, k: k + t] += chunks[:, :, k]
    return out.reshape(b, -1)[:, : (t - 1) * hop + n_fft]


def padded_window(config: MelConfig, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The front end's periodic Hann window of ``win_length``, zero-padded to ``n_fft`` (centred)."""
    w = torch.hann_window(config.win_length, dtype=dtype)
    left = (config.n_fft - config.win_length) // 2
    return F.pad(w, (left, config.n_fft - config.win_length - left))


def stft_magnitude(wav: torch.Tensor, n_fft: int, hop: int, win: int, eps: float = 1e-7) -> torch.Tensor:
    """``[B, T]`` waveform -> linear STFT magnitude ``[B, n_fft // 2 + 1, frames]`` (fp32, Hann, centred).

    Not a mel (mels come only from :class:`~spectok.audio.mel.MelSpectrogram`): the
    resolution-specific magnitude behind :func:`multi_resolution_stft_loss`.
    """
    with torch.autocast(device_type=wav.device.type, enabled=False):
        window = torch.hann_window(win, device=wav.device)
        spec = torch.stft(wav.float(), n_fft, hop_length=hop, win_length=win, window=window, center=True,
                          return_complex=True)
        return torch.sqrt(spec.real.square() + spec.imag.square() + eps)
