"""The CNN vocoder (after Arık et al., "Fast Spectrogram Inversion using
Multi-head Convolutional Neural Networks", 2018): spectrogram -> waveform without adversarial
training, learned with spectral losses only (log-STFT-magnitude L1 + spectral convergence).

Layout::

    log-spectrogram [B, C_in, T]   (C_in = n_mels, or n_fft/2 + 1 with input="linear")
      --Conv1d(k)--> [B, channels, T] --residual blocks x pre_blocks-->
      upsampling stack: per stage  Upsample(x r, nearest|linear) -> Conv1d(k) -> LeakyReLU
                        (r = 2 for every factor of two of the hop, then one stage for the odd rest;
                         channels halve per stage down to min_channels)
      --residual blocks x post_blocks--> Conv1d(k) -> 1 channel   (per head)
    waveform [B, T * hop] = sum over heads of  w_h * head_h   (learned scalar weights, as in MCNN)

Upsampling is interpolation followed by convolution, never a transposed convolution, so
there is no checkerboard artefact. Heads share nothing; ``heads=1`` is one plain network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import spectok.artifacts as artifacts
from spectok.audio.mel import MelConfig
from spectok.contracts import Vocoder
from spectok.errors import SpectokError


def upsample_factors(hop: int) -> list[int]:
    """The hop as factors of 2 followed by its odd rest (if any): 256 -> [2]*8, 160 -> [2]*5 + [5]."""
    factors = []
    while hop % 2 == 0:
        factors.append(2)
        hop //= 2
    return factors + ([hop] if hop > 1 else [])


class ResBlock(nn.Module):
    """``x + conv(lrelu(conv(lrelu(x))))`` with a dilated first conv; ``[B, C, L] -> [B, C, L]``."""

    def __init__(self, channels: int, kernel: int, dilation: int = 1) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.c2 = nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(F.leaky_relu(self.c1(F.leaky_relu(x, 0.2)), 0.2))


class CNNHead(nn.Module):
    """One head: ``[B, C_in, T] -> [B, T * hop]``."""

    def __init__(self, in_channels: int, hop: int, channels: int, min_channels: int, kernel: int,
                 pre_blocks: int, post_blocks: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.inp = nn.Conv1d(in_channels, channels, kernel, padding=kernel // 2)
        self.pre = nn.Sequential(*(ResBlock(channels, kernel, 3 ** i) for i in range(pre_blocks)))
        self.factors = upsample_factors(hop)
        self.ups = nn.ModuleList()
        ch = channels
        for _ in self.factors:
            out = max(min_channels, ch // 2)
            self.ups.append(nn.Conv1d(ch, out, kernel, padding=kernel // 2))
            ch = out
        self.post = nn.Sequential(*(ResBlock(ch, kernel, 3 ** i) for i in range(post_blocks)))
        self.out = nn.Conv1d(ch, 1, kernel, padding=kernel // 2)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.pre(self.inp(spec))
        for r, conv in zip(self.factors, self.ups):
            kw = {} if self.mode == "nearest" else {"align_corners": False}
            x = F.leaky_relu(conv(F.interpolate(x, scale_factor=r, mode=self.mode, **kw)), 0.2)
        return self.out(self.post(x)).squeeze(1)


@artifacts.register("cnn-vocoder", "vocoder")
class CNNVocoder(Vocoder):
    """Spectrogram ``[B, C_in, T]`` -> waveform ``[B, T * hop_length]`` by interpolation + convolution.

    Args:
        mel: the front end; its hop sets the upsampling.
        input: "mel" (log-mel ``[B, n_mels, T]``) or "linear" (log linear magnitude
            ``[B, n_fft // 2 + 1, T]`` = ``log(clamp(MelSpectrogram.magnitude(x), log_floor))``).
        channels: channels before upsampling (halved per stage).
        min_channels: floor of the channel halving.
        kernel: odd convolution kernel everywhere.
        pre_blocks, post_blocks: residual blocks before / after the upsampling stack.
        upsample: "nearest" or "linear" interpolation.
        heads: parallel heads summed with learned weights (MCNN); 1 = a single network.
    """

    def __init__(self, mel: MelConfig | dict | str = "hifigan-22k", input: str = "mel", channels: int = 256,
                 min_channels: int = 32, kernel: int = 5, pre_blocks: int = 2, post_blocks: int = 2,
                 upsample: str = "nearest", heads: int = 1) -> None:
        super().__init__()
        self.mel_config = MelConfig.coerce(mel)
        c = self.mel_config
        if input not in ("mel", "linear"):
            raise SpectokError(f"CNNVocoder: input must be 'mel' or 'linear', got {input!r}")
        if upsample not in ("nearest", "linear") or kernel % 2 == 0 or heads < 1:
            raise SpectokError(f"CNNVocoder: need upsample in (nearest, linear), an odd kernel and heads >= 1 "
                               f"(got {upsample!r}, {kernel}, {heads})")
        self.input = input
        self.in_channels = c.n_mels if input == "mel" else c.n_fft // 2 + 1
        self.heads = nn.ModuleList(CNNHead(self.in_channels, c.hop_length, channels, min_channels, kernel,
                                           pre_blocks, post_blocks, upsample) for _ in range(heads))
        self.head_weights = nn.Parameter(torch.full((heads,), 1.0 / heads))

    @property
    def input_rows(self) -> int:
        """``n_mels`` for ``input="mel"``, ``n_fft // 2 + 1`` for a linear spectrogram."""
        return self.in_channels

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if spec.dim() != 3 or spec.shape[1] != self.in_channels:
            what = "log-mel" if self.input == "mel" else "log linear spectrogram"
            raise SpectokError(f"CNNVocoder: expected a {what} [B, {self.in_channels}, T], got {tuple(spec.shape)}")
        wav = sum(w * head(spec) for w, head in zip(self.head_weights, self.heads))
        wav = wav.float()
        return wav if self.training else wav.clamp(-1.0, 1.0)
