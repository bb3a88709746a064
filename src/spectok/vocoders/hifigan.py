"""HiFi-GAN generators V1, V2 and V3 (Kong, Kim & Bae 2020).

``log-mel [B, n_mels, T] -> waveform [B, T * hop]``: a 7-tap input convolution, then per
upsampling stage a leaky ReLU, a transposed convolution (stride ``u``, kernel ``k``,
channels halved) and a multi-receptive-field fusion (MRF) block, i.e. the mean of
``len(resblock_kernels)`` residual blocks with different kernels and dilations; finally a
7-tap convolution to one channel and ``tanh``. The product of the upsampling rates must
equal the mel hop length. Weight normalisation on every convolution, as in the paper.

Presets (the paper's Table 5 / its config files)::

    V1: channels 512, rates (8, 8, 2, 2), kernels (16, 16, 4, 4), resblock 1,
        kernels (3, 7, 11), dilations ((1, 3, 5),) * 3                      ~13.9 M parameters
    V2: as V1 with channels 128                                           ~0.9 M
    V3: channels 256, rates (8, 8, 4), kernels (16, 16, 8), resblock 2,
        kernels (3, 5, 7), dilations ((1, 2), (2, 6), (3, 12))             ~1.5 M

The discriminators are in :mod:`spectok.vocoders.discriminators`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

import spectok.artifacts as artifacts
from spectok.audio.mel import MelConfig
from spectok.contracts import Vocoder
from spectok.errors import SpectokError

LRELU_SLOPE = 0.1

PRESETS: dict[str, dict[str, Any]] = {
    "v1": dict(channels=512, upsample_rates=[8, 8, 2, 2], upsample_kernels=[16, 16, 4, 4], resblock=1,
               resblock_kernels=[3, 7, 11], resblock_dilations=[[1, 3, 5], [1, 3, 5], [1, 3, 5]]),
    "v2": dict(channels=128, upsample_rates=[8, 8, 2, 2], upsample_kernels=[16, 16, 4, 4], resblock=1,
               resblock_kernels=[3, 7, 11], resblock_dilations=[[1, 3, 5], [1, 3, 5], [1, 3, 5]]),
    "v3": dict(channels=256, upsample_rates=[8, 8, 4], upsample_kernels=[16, 16, 8], resblock=2,
               resblock_kernels=[3, 5, 7], resblock_dilations=[[1, 2], [2, 6], [3, 12]]),
}


def _conv(cin: int, cout: int, k: int, dilation: int = 1) -> nn.Conv1d:
    conv = nn.Conv1d(cin, cout, k, dilation=dilation, padding=dilation * (k - 1) // 2)
    nn.init.normal_(conv.weight, 0.0, 0.01)
    return weight_norm(conv)


class ResBlock1(nn.Module):
    """Per dilation ``d``: x += conv_k(lrelu(conv_{k,d}(lrelu(x)))); ``[B, C, L] -> [B, C, L]``."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]) -> None:
        super().__init__()
        self.dilated = nn.ModuleList(_conv(channels, channels, kernel, d) for d in dilations)
        self.plain = nn.ModuleList(_conv(channels, channels, kernel) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.dilated, self.plain):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """Per dilation ``d``: x += conv_{k,d}(lrelu(x)) (the lighter block of V3)."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(_conv(channels, channels, kernel, d) for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


@artifacts.register("hifigan", "vocoder")
class HiFiGANGenerator(Vocoder):
    """HiFi-GAN generator: ``log-mel [B, n_mels, T] -> waveform [B, T * hop_length]``.

    Args:
        mel: the front end of the input mels.
        preset: "v1", "v2" or "v3"; explicit arguments below override its values.
        channels: channels after the input convolution (halved at each upsampling).
        upsample_rates, upsample_kernels: per stage; ``prod(upsample_rates)`` must be the hop.
        resblock: 1 or 2 (the block type).
        resblock_kernels, resblock_dilations: the MRF's residual blocks.
    """

    def __init__(self, mel: MelConfig | dict | str = "hifigan-22k", preset: str = "v1",
                 channels: int | None = None, upsample_rates: list[int] | None = None,
                 upsample_kernels: list[int] | None = None, resblock: int | None = None,
                 resblock_kernels: list[int] | None = None,
                 resblock_dilations: list[list[int]] | None = None) -> None:
        super().__init__()
        self.mel_config = MelConfig.coerce(mel)
        if preset not in PRESETS:
            raise SpectokError(f"HiFi-GAN: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        given = dict(channels=channels, upsample_rates=upsample_rates, upsample_kernels=upsample_kernels,
                     resblock=resblock, resblock_kernels=resblock_kernels, resblock_dilations=resblock_dilations)
        h = {**PRESETS[preset], **{k: v for k, v in given.items() if v is not None}}
        if math.prod(h["upsample_rates"]) != self.mel_config.hop_length:
            raise SpectokError(f"HiFi-GAN: upsample rates {h['upsample_rates']} multiply to "
                               f"{math.prod(h['upsample_rates'])}, not the mel hop {self.mel_config.hop_length}")
        if len(h["upsample_kernels"]) != len(h["upsample_rates"]):
            raise SpectokError("HiFi-GAN: upsample_kernels and upsample_rates differ in length")
        block = {1: ResBlock1, 2: ResBlock2}.get(h["resblock"])
        if block is None:
            raise SpectokError(f"HiFi-GAN: resblock must be 1 or 2, got {h['resblock']}")
        ch = h["channels"]
        self.conv_pre = weight_norm(nn.Conv1d(self.mel_config.n_mels, ch, 7, padding=3))
        self.ups = nn.ModuleList()
        self.mrfs = nn.ModuleList()
        for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernels"])):
            cin, cout = ch // 2 ** i, ch // 2 ** (i + 1)
            up = nn.ConvTranspose1d(cin, cout, k, stride=u, padding=(k - u + 1) // 2, output_padding=(k - u) % 2)
            nn.init.normal_(up.weight, 0.0, 0.01)
            self.ups.append(weight_norm(up))
            self.mrfs.append(nn.ModuleList(block(cout, kr, list(d))
                                           for kr, d in zip(h["resblock_kernels"], h["resblock_dilations"])))
        self.conv_post = weight_norm(nn.Conv1d(ch // 2 ** len(self.ups), 1, 7, padding=3))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        c = self.mel_config
        if mel.dim() != 3 or mel.shape[1] != c.n_mels:
            raise SpectokError(f"HiFi-GAN: expected a log-mel [B, {c.n_mels}, T], got {tuple(mel.shape)}")
        x = self.conv_pre(mel)
        for up, mrf in zip(self.ups, self.mrfs):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = sum(block(x) for block in mrf) / len(mrf)
        x = torch.tanh(self.conv_post(F.leaky_relu(x)))
        return x.squeeze(1).float()

    def remove_weight_norm(self) -> HiFiGANGenerator:
        """Fold the weight-norm parametrisations into plain weights (faster inference; the state
        dict then no longer fits a fresh instance, so do this after loading)."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        return self
