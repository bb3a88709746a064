"""Bounded-memory inference on long recordings: chunked mel, chunked encode, chunked decode.

Why chunked results equal whole-file results
--------------------------------------------
*Mel.* Frame ``g`` of the front end reads the original samples
``[g * hop - pad, g * hop - pad + n_fft)`` (``pad`` = :attr:`MelConfig.padding`), reflect-
padded only at the two ends of the file. So frames ``[f0, f1)`` are computed from the
sample range ``[(f0 - m) * hop, (f1 - 1) * hop - pad + n_fft)`` with ``m = ceil(pad / hop)``
extra frames on the left that are dropped (their padding is not the file's). At the file
ends the chunk's own reflect padding is the file's, so nothing is dropped there.

*Encoder.* A convolutional encoder with total time stride ``d`` and receptive field ``r``
mel frames maps input frames to code columns; column ``j`` depends only on frames within
``r`` of ``[j d, (j + 1) d)``. A chunk owning columns ``[j0, j1)`` is encoded from frames
``[j0 d - c, j1 d + c)`` with ``c = ceil(r / d) * d`` (clipped to the file); its start is a
multiple of ``d``, so the strided grid lines up, and the kept columns never see the chunk's
zero padding. The result is the whole-file encode, provided the encoder is *time-local*:
no normalisation pooling statistics over time (GroupNorm, InstanceNorm, BatchNorm in
training mode). :func:`is_time_local` checks that; for other encoders chunked codes are an
approximation near chunk borders, and :class:`ChunkedEncoder` warns.

*Decoder and vocoder.* The same overlap-and-keep-the-middle scheme, with the context the
tokenizer's ``decoder_receptive_field`` (code columns) and the vocoder's ``receptive_field``
(mel frames) declare: exact for time-local decoders and vocoders, Griffin-Lim included (its
reach grows by ``ceil(n_fft / hop) - 1`` frames per iteration, and its initial phase depends
only on the global frame index). Where a model states no receptive field, a fixed context
gives a close approximation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from spectok.audio.mel import MelSpectrogram
from spectok.contracts import AudioTokenizer, Vocoder

SampleReader = Callable[[int, int], np.ndarray]
"""``read(a, b) -> float32 samples [b - a]`` of the original waveform, ``0 <= a < b <= T``."""

_NON_LOCAL = (nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


def is_time_local(module: nn.Module) -> bool:
    """True when no layer of ``module`` pools statistics over time (so chunking is exact)."""
    for m in module.modules():
        if isinstance(m, _NON_LOCAL):
            return False
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
            return False
    return True


def encoder_geometry(tokenizer: AudioTokenizer) -> tuple[int, int | None]:
    """``(time_downsample d, receptive_field r in mel frames or None)``: what the contract declares."""
    rf = tokenizer.receptive_field
    return int(tokenizer.time_downsample), (int(rf) if rf is not None else None)


def spans(total: int, size: int) -> Iterator[tuple[int, int]]:
    """``[start, end)`` pieces of ``range(total)`` of at most ``size`` (``size >= 1``)."""
    for start in range(0, total, size):
        yield start, min(total, start + size)


def array_reader(waveform: np.ndarray) -> SampleReader:
    """A :data:`SampleReader` over an in-memory ``[T]`` waveform."""
    return lambda a, b: waveform[a:b]


class ChunkedMel:
    """Log-mel frames ``[f0, f1)`` of a long waveform, read piecewise; equals the whole-file mel.

    Args:
        mel: the front end (:class:`MelSpectrogram`).
        read: a :data:`SampleReader`.
        num_samples: length ``T`` of the waveform.
    """

    def __init__(self, mel: MelSpectrogram, read: SampleReader, num_samples: int) -> None:
        self.mel, self.read, self.num_samples = mel, read, num_samples
        self.num_frames = mel.config.num_frames(num_samples)

    @torch.no_grad()
    def frames(self, f0: int, f1: int) -> torch.Tensor:
        """``[n_mels, f1 - f0]`` float32 log-mel of global frames ``f0 .. f1 - 1``."""
        c = self.mel.config
        hop, pad = c.hop_length, c.padding
        m = math.ceil(pad / hop)
        first = max(0, f0 - m)  # global frame at which the chunk's own frame 0 sits
        a = first * hop
        b = min(self.num_samples, (f1 - 1) * hop - pad + c.n_fft)
        x = torch.from_numpy(np.ascontiguousarray(self.read(a, b), dtype=np.float32))
        out = self.mel(x.unsqueeze(0))[0]
        drop = f0 - first
        if out.shape[-1] < drop + f1 - f0:  # pragma: no cover - guarded by the geometry above
            raise RuntimeError(f"chunked mel produced {out.shape[-1]} frames, needed {drop + f1 - f0}")
        return out[:, drop:drop + f1 - f0]

    def all(self, chunk_frames: int = 4096) -> torch.Tensor:
        """The whole ``[n_mels, frames]`` log-mel, computed ``chunk_frames`` at a time into one buffer."""
        out = torch.empty(self.mel.config.n_mels, self.num_frames)
        for a, b in spans(self.num_frames, chunk_frames):
            out[:, a:b] = self.frames(a, b)
        return out


class ChunkedEncoder:
    """Encode a long log-mel piecewise, with codes equal to a whole-file encode (see module doc).

    Args:
        tokenizer: a :class:`~spectok.contracts.AudioTokenizer` in eval mode.
        chunk_frames: mel frames owned by each chunk (rounded up to a multiple of ``d``).
        receptive_field: encoder receptive field in mel frames; ``None`` reads it from the
            tokenizer (:func:`encoder_geometry`).
    """

    def __init__(self, tokenizer: nn.Module, chunk_frames: int, receptive_field: int | None = None) -> None:
        d, rf = encoder_geometry(tokenizer)
        rf = receptive_field if receptive_field is not None else rf
        if rf is None:
            raise ValueError(f"{type(tokenizer).__name__} does not state its receptive_field; "
                             f"chunked encoding needs it (encode the whole file instead)")
        self.tokenizer, self.d = tokenizer, d
        self.chunk_columns = max(1, math.ceil(chunk_frames / d))
        self.context = math.ceil(rf / d) * d
        self.exact = is_time_local(tokenizer)
        if not self.exact:
            warnings.warn(f"{type(tokenizer).__name__}'s encoder normalises over time (GroupNorm or "
                          f"InstanceNorm): chunked codes may differ from a whole-file encode near chunk "
                          f"borders", stacklevel=2)

    @torch.no_grad()
    def encode(self, get_frames: Callable[[int, int], torch.Tensor], num_frames: int) -> torch.Tensor:
        """``[K, ceil(num_frames / d)]`` int64 codes; ``get_frames(a, b)`` returns mel ``[n_mels, b - a]``."""
        d, ctx = self.d, self.context
        total = math.ceil(num_frames / d)
        pieces = []
        for j0, j1 in spans(total, self.chunk_columns):
            a = max(0, j0 * d - ctx)
            b = min(num_frames, j1 * d + ctx)
            codes = self.tokenizer.encode(get_frames(a, b).unsqueeze(0))[0]
            skip = (j0 * d - a) // d
            pieces.append(codes[:, skip:skip + j1 - j0])
        return torch.cat(pieces, dim=-1)


def side_context(receptive_field: int | None, default: int) -> int:
    """Steps of context to keep on each side of a piece for a symmetric receptive field (two-sided
    width ``receptive_field``; ``default`` when it is not stated)."""
    return default if receptive_field is None else receptive_field // 2 + 1


def _overlap_pieces(fn, x: torch.Tensor, chunk: int, context: int) -> Iterator[torch.Tensor]:
    """Apply ``fn(piece [1, C, t], start) -> [1, ..., t * per]`` to ``x [C, T]`` in chunks of ``chunk``
    steps, each run with up to ``context`` steps on both sides; yields each chunk's own output
    ``[..., chunk * per]`` in order (only one chunk's output exists at a time)."""
    total = x.shape[-1]
    for s0, s1 in spans(total, chunk):
        a, b = max(0, s0 - context), min(total, s1 + context)
        y = fn(x[None, :, a:b], a)[0]
        per = y.shape[-1] // (b - a)
        yield y[..., (s0 - a) * per:(s1 - a) * per]


def _overlap_keep_middle(fn, x: torch.Tensor, chunk: int, context: int) -> torch.Tensor:
    """:func:`_overlap_pieces` joined in one preallocated output ``[..., T * per]``."""
    out, pos = None, 0
    for y in _overlap_pieces(fn, x, chunk, context):
        if out is None:  # one output buffer: no list of pieces and no concatenated copy
            out = y.new_empty(*y.shape[:-1], x.shape[-1] * (y.shape[-1] // min(chunk, x.shape[-1])))
        out[..., pos:pos + y.shape[-1]] = y
        pos += y.shape[-1]
    return out


@torch.no_grad()
def decode_chunked(tokenizer: AudioTokenizer, codes: torch.Tensor, chunk_columns: int,
                   context_columns: int | None = None) -> torch.Tensor:
    """``codes [K, T'] -> mel [n_mels, T' * d]``, decoded ``chunk_columns`` at a time with context
    (``None``: from the tokenizer's ``decoder_receptive_field``, exact; 16 columns when not stated)."""
    ctx = side_context(tokenizer.decoder_receptive_field, 16) if context_columns is None else context_columns
    return _overlap_keep_middle(lambda c, _: tokenizer.decode(c), codes, chunk_columns, ctx)


@torch.no_grad()
def vocode_chunked(vocoder: Vocoder, mel: torch.Tensor, chunk_frames: int,
                   context_frames: int | None = None) -> torch.Tensor:
    """``mel [n_mels, T] -> waveform [T * hop]``, vocoded ``chunk_frames`` at a time with context
    (``None``: from the vocoder's ``receptive_field``, exact; 32 frames when not stated)."""
    ctx = side_context(vocoder.receptive_field, 32) if context_frames is None else context_frames
    return _overlap_keep_middle(vocoder.vocode, mel, chunk_frames, ctx)


@torch.no_grad()
def vocode_pieces(vocoder: Vocoder, mel: torch.Tensor, chunk_frames: int) -> Iterator[torch.Tensor]:
    """:func:`vocode_chunked`'s waveform as consecutive pieces ``[chunk_frames * hop]`` (the last
    shorter), so a long output never exists whole."""
    yield from _overlap_pieces(vocoder.vocode, mel, chunk_frames, side_context(vocoder.receptive_field, 32))
