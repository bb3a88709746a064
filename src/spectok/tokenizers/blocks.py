"""Convolutional building blocks shared by the spectrogram and image tokenizers.

Everything here works in 1-D (``[B, C, T]``, mel bins as channels) or 2-D
(``[B, C, H, W]``: frequency rows × time columns, or image rows × columns), chosen by
``dims``. Downsampling is per axis: a 2-D stage has a stride ``(freq, time)``.

Resampling convolutions are chosen so that an axis of length ``L`` divisible by the
stride ``s`` becomes exactly ``L / s`` (and back):

- ``s == 1``: kernel 3, padding 1 (no resampling);
- ``s == 2``: kernel 4, padding 1 (overlapping, as in taming-transformers);
- ``s >= 3``: kernel ``s``, padding 0 (non-overlapping patches, as in the frequency /4 and /5
  layers of DCTTS Spectrogram VQ's public implementation).

:class:`ConvEncoder` records the time-axis (kernel, stride, dilation) of every layer it
stacks, so :attr:`ConvEncoder.receptive_field` gives its receptive field in input
frames, which chunked (streaming) encoding needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"swish": nn.SiLU, "silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU,
               "leaky_relu": lambda: nn.LeakyReLU(0.2)}
NORMS = ("group", "batch", "none")


def activation(name: str) -> nn.Module:
    """``"swish"`` (= SiLU), ``"relu"``, ``"gelu"`` or ``"leaky_relu"`` (slope 0.2)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def norm_layer(name: str, channels: int, dims: int) -> nn.Module:
    """``"group"`` (GroupNorm, up to 32 groups dividing ``channels``), ``"batch"`` or ``"none"``."""
    if name == "group":
        groups = max(g for g in range(1, min(32, channels) + 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels, eps=1e-6, affine=True)
    if name == "batch":
        return nn.BatchNorm1d(channels) if dims == 1 else nn.BatchNorm2d(channels)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {name!r}; choose one of {NORMS}")


def _conv(dims: int) -> type[nn.Module]:
    return nn.Conv1d if dims == 1 else nn.Conv2d


def _as_tuple(stride: int | Sequence[int], dims: int) -> tuple[int, ...]:
    t = (int(stride),) * dims if isinstance(stride, int) else tuple(int(s) for s in stride)
    if len(t) != dims or min(t) < 1:
        raise ValueError(f"stride {stride!r} must be {dims} positive integer(s)")
    return t


def res_block_counts(num_res_blocks: int | Sequence[int], stages: int) -> list[int]:
    """Residual blocks per stage plus the middle: an int for all, or a list of ``stages + 1``."""
    if isinstance(num_res_blocks, int):
        return [num_res_blocks] * (stages + 1)
    counts = [int(n) for n in num_res_blocks]
    if len(counts) != stages + 1 or min(counts) < 0:
        raise ValueError(f"num_res_blocks must be an int or {stages + 1} counts >= 0 (per stage, then the "
                         f"middle), got {num_res_blocks!r}")
    return counts


def resample_geometry(stride: int) -> tuple[int, int]:
    """``(kernel, padding)`` of the (transposed) convolution resampling one axis by ``stride``."""
    if stride == 1:
        return 3, 1
    if stride == 2:
        return 4, 1
    return stride, 0


class ResBlock(nn.Module):
    """``x + conv(act(norm(conv(act(norm(x))))))`` with kernel 3; a 1×1 skip when channels change.

    ``dilation`` applies to the time axis only (the last axis), keeping frequency local.
    Shape: ``[B, C_in, *spatial] -> [B, C_out, *spatial]``.
    """

    def __init__(self, c_in: int, c_out: int, dims: int, norm: str, act: str, dilation: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        conv = _conv(dims)
        dil = dilation if dims == 1 else (1, dilation)
        pad = dilation if dims == 1 else (1, dilation)
        self.body = nn.Sequential(
            norm_layer(norm, c_in, dims), activation(act), conv(c_in, c_out, 3, padding=pad, dilation=dil),
            norm_layer(norm, c_out, dims), activation(act), nn.Dropout(dropout),
            conv(c_out, c_out, 3, padding=pad, dilation=dil),
        )
        self.skip = nn.Identity() if c_in == c_out else conv(c_in, c_out, 1)
        self.time_layers = [(3, 1, dilation), (3, 1, dilation)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class ConvEncoder(nn.Module):
    """``[B, in_channels, *spatial] -> [B, channels[-1], *spatial / strides]``.

    Layout: conv-in (k3) → for each stage: residual blocks, then a strided conv → middle
    residual blocks → norm, act, conv-out (k3). ``num_res_blocks`` is one count for every
    stage and the middle, or a list (per stage, then the middle): ``[0, 0, 4]`` puts all
    the work at the latent resolution, as DCTTS Spectrogram VQ's public implementation does.

    Args:
        in_channels: 1 for a mel image, ``n_mels`` for 1-D, 3 for RGB.
        channels: widths, one per stage plus one (``len(strides) + 1``).
        strides: per-stage strides (ints in 1-D, ``(freq, time)`` pairs in 2-D).
        dims: 1 or 2.
        dilations: time dilation of the residual blocks, cycled within each stage.
    """

    def __init__(self, in_channels: int, channels: Sequence[int], strides: Sequence, dims: int,
                 num_res_blocks: int | Sequence[int] = 2, norm: str = "group", act: str = "swish",
                 dilations: Sequence[int] = (1,), dropout: float = 0.0) -> None:
        super().__init__()
        counts = res_block_counts(num_res_blocks, len(strides))
        if len(channels) != len(strides) + 1:
            raise ValueError(f"need len(channels) == len(strides) + 1, got {len(channels)} and {len(strides)}")
        conv = _conv(dims)
        self.strides = [_as_tuple(s, dims) for s in strides]
        time_layers: list[tuple[int, int, int]] = [(3, 1, 1)]
        layers: list[nn.Module] = [conv(in_channels, channels[0], 3, padding=1)]
        for i, stride in enumerate(self.strides):
            for j in range(counts[i]):
                block = ResBlock(channels[i], channels[i], dims, norm, act, dilations[j % len(dilations)], dropout)
                layers.append(block)
                time_layers += block.time_layers
            geo = [resample_geometry(s) for s in stride]
            layers.append(conv(channels[i], channels[i + 1], tuple(g[0] for g in geo) if dims == 2 else geo[0][0],
                               stride=stride if dims == 2 else stride[0],
                               padding=tuple(g[1] for g in geo) if dims == 2 else geo[0][1]))
            time_layers.append((geo[-1][0], stride[-1], 1))
        for j in range(counts[-1]):
            block = ResBlock(channels[-1], channels[-1], dims, norm, act, dilations[j % len(dilations)], dropout)
            layers.append(block)
            time_layers += block.time_layers
        layers += [norm_layer(norm, channels[-1], dims), activation(act),
                   conv(channels[-1], channels[-1], 3, padding=1)]
        time_layers.append((3, 1, 1))
        self.net = nn.Sequential(*layers)
        self.time_layers = time_layers

    @property
    def downsample(self) -> tuple[int, ...]:
        """Total stride per axis (``(freq, time)`` in 2-D, ``(time,)`` in 1-D)."""
        return tuple(math.prod(s[a] for s in self.strides) for a in range(len(self.strides[0])))

    @property
    def receptive_field(self) -> int:
        """Input frames (time axis) that one output column depends on."""
        rf, jump = 1, 1
        for k, s, d in self.time_layers:
            rf += (k - 1) * d * jump
            jump *= s
        return rf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: ``[B, channels[-1], *latent] -> [B, out_channels, *latent * strides]``.

    Upsampling uses transposed convolutions with the geometry of :func:`resample_geometry`,
    so each axis grows exactly by its stride. :attr:`last_layer` is the final convolution
    (its weight is where the VQGAN adaptive weight measures gradients).
    """

    def __init__(self, out_channels: int, channels: Sequence[int], strides: Sequence, dims: int,
                 num_res_blocks: int | Sequence[int] = 2, norm: str = "group", act: str = "swish",
                 dilations: Sequence[int] = (1,), dropout: float = 0.0) -> None:
        super().__init__()
        counts = res_block_counts(num_res_blocks, len(strides))
        conv = _conv(dims)
        tconv = nn.ConvTranspose1d if dims == 1 else nn.ConvTranspose2d
        strides = [_as_tuple(s, dims) for s in strides]
        layers: list[nn.Module] = [conv(channels[-1], channels[-1], 3, padding=1)]
        # (kernel, upsampling stride, dilation) along time, input to output
        time_layers: list[tuple[int, int, int]] = [(3, 1, 1)]
        for j in range(counts[-1]):
            layers.append(ResBlock(channels[-1], channels[-1], dims, norm, act, dilations[j % len(dilations)], dropout))
            time_layers += layers[-1].time_layers
        for i in reversed(range(len(strides))):
            stride = strides[i]
            geo = [resample_geometry(s) for s in stride]
            if all(s == 1 for s in stride):
                layers.append(conv(channels[i + 1], channels[i], 3, padding=1))
            else:
                layers.append(tconv(channels[i + 1], channels[i], tuple(g[0] for g in geo) if dims == 2 else geo[0][0],
                                    stride=stride if dims == 2 else stride[0],
                                    padding=tuple(g[1] for g in geo) if dims == 2 else geo[0][1]))
            time_layers.append((geo[-1][0], stride[-1], 1))
            for j in range(counts[i]):
                layers.append(ResBlock(channels[i], channels[i], dims, norm, act, dilations[j % len(dilations)],
                                       dropout))
                time_layers += layers[-1].time_layers
        layers += [norm_layer(norm, channels[0], dims), activation(act)]
        self.net = nn.Sequential(*layers)
        self.last_layer = conv(channels[0], out_channels, 3, padding=1)
        self.time_layers = [*time_layers, (3, 1, 1)]

    @property
    def receptive_field(self) -> int:
        """Input columns (time axis) that one output frame depends on, rounded up.

        A transposed convolution of kernel ``k`` and stride ``s`` reads ``ceil(k / s)`` inputs
        per output; a convolution after upsampling by ``u`` in total spans ``(k - 1) * d / u``
        input columns.
        """
        span, up = 0.0, 1
        for k, s, d in self.time_layers:
            if s > 1:
                span += (math.ceil(k / s) - 1) / up
                up *= s
            else:
                span += (k - 1) * d / up
        return math.ceil(span) + 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.last_layer(self.net(z))
