"""The contracts every part of spectok is written against: what a tokenizer, a vocoder and a
quantizer's output are, and the facts each declares. The bottom layer above the front end: it
imports only the mel front end, errors and torch (docs/architecture.md), so the pipeline, streaming,
artifacts and data code depend on this module, never on a model package.

- :class:`Tokenizer`: codes in and out, the common part; :class:`AudioTokenizer` (log-mels:
  mel config, frame rate, receptive fields, bit rate) and :class:`ImageTokenizer` (images).
- :class:`TokenizerOutput`, :class:`QuantizerOutput`: what the training paths return.
- :class:`Vocoder`: log-mel -> waveform, with its mel config and receptive field.
- :func:`eval_mode`: run models as pure functions of their input, their modes restored after.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from spectok.audio.mel import MelConfig
from spectok.errors import SpectokError

__all__ = ["AudioTokenizer", "ImageTokenizer", "QuantizerOutput", "Tokenizer", "TokenizerOutput", "Vocoder",
           "audio_tokenizer", "eval_mode"]


@contextlib.contextmanager
def eval_mode(*modules: nn.Module | None) -> Iterator[None]:
    """Every submodule of ``modules`` in eval mode inside the block, each back to its own mode after.

    Batch norm then uses its running statistics (and leaves them alone) and dropout is off, so
    what runs inside is a pure function of its input whatever mode the caller left the models in.
    """
    saved = [(m, m.training) for mod in modules if mod is not None for m in mod.modules()]
    for m, _ in saved:
        m.training = False
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag


@dataclass
class QuantizerOutput:
    """What a quantizer returns.

    Attributes:
        quantized: ``[B, D, *spatial]`` float, the straight-through quantized latents
            (same shape as the input ``z``).
        codes: ``[B, K, *spatial]`` int64, code indices for K codebooks (K = 1 for plain
            VQ, K = stages for residual VQ; FSQ uses K = 1 with the implicit index).
        loss: scalar, the quantizer's own training loss (codebook + beta * commitment),
            already weighted; 0 where the quantizer has none (EMA codebook, FSQ).
        metrics: scalar floats for logging, e.g. ``{"perplexity": ..., "commitment": ...}``.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TokenizerOutput:
    """What a tokenizer's ``forward`` returns in training.

    Attributes:
        reconstruction: ``[B, n_mels, T]`` log-mel (same units and length as the input).
        quantizer: the quantizer's output on the latent (``quantized``, raw ``codes``,
            ``loss``, ``metrics``).
        codes: ``[B, K, T']`` int64, the tokens in the :meth:`Tokenizer.encode` layout.
    """

    reconstruction: torch.Tensor
    quantizer: QuantizerOutput
    codes: torch.Tensor


class Tokenizer(nn.Module, metaclass=abc.ABCMeta):
    """What every tokenizer provides, audio or image (``spectok.Tokenizer``).

    - ``encode(x) -> codes [B, K, ...]`` int64, pure: no loss, no statistics, no state change,
      even in training mode; ``decode(codes) -> x``.
    - ``forward(x, mask=None) -> TokenizerOutput``: the training path.

    Declared facts: ``codebooks`` (the sizes of the physical codebooks, in stage order),
    ``rows_per_codebook`` (row ``r`` of ``codes`` uses codebook ``r // rows_per_codebook``:
    stage-major), ``hparams`` (the constructor arguments, set by :func:`spectok.artifacts.register`),
    ``registered_name``; derived: ``codebook_sizes`` (one per row) and ``fingerprint()``.
    """

    rows_per_codebook: int = 1
    hparams: dict[str, Any]
    registered_name: str
    #: the log-mels an audio tokenizer reads; None for an image tokenizer
    mel_config: MelConfig | None = None

    @property
    @abc.abstractmethod
    def codebooks(self) -> list[int]:
        """Sizes of the physical codebooks (one per quantizer stage)."""

    @property
    def codebook_sizes(self) -> list[int]:
        """Size of the codebook behind each of the K code rows (the layout of ``codebooks``)."""
        return [s for s in self.codebooks for _ in range(self.rows_per_codebook)]

    def row_codebook(self, row: int) -> int:
        """The index in :attr:`codebooks` of the codebook that token row ``row`` uses."""
        return row // self.rows_per_codebook

    @abc.abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """input -> codes int64 (pure)."""

    @abc.abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes -> input space."""

    def fingerprint(self) -> str:
        """Identifies the tokenizer's configuration (class and constructor arguments), not its weights."""
        return hashlib.sha256(json.dumps([type(self).__name__, getattr(self, "hparams", {})], sort_keys=True,
                                         default=str).encode()).hexdigest()[:16]


class AudioTokenizer(Tokenizer):
    """A tokenizer of log-mel spectrograms: what the Pipeline, streaming and evaluation rely on.

    - ``encode(mel [B, n_mels, T]) -> codes [B, K, T']`` int64, ``T' = ceil(T / time_downsample)``.
    - ``decode(codes [B, K, T']) -> mel [B, n_mels, T' * time_downsample]``.

    Declared facts, besides :class:`Tokenizer`'s: ``mel_config`` (the :class:`MelConfig` of the
    log-mels it reads), ``time_downsample`` (mel frames per token column), ``receptive_field``
    (mel frames one column depends on; ``None``: not stated, so chunked or streamed encoding is
    refused) and ``decoder_receptive_field`` (code columns one decoded frame depends on; ``None``:
    streamed decoding refused, chunked decoding approximate); derived: ``frame_rate`` (columns per
    second) and ``bitrate`` (nominal bits per second).
    """

    mel_config: MelConfig
    time_downsample: int = 1

    @property
    def receptive_field(self) -> int | None:
        """Mel frames one token column depends on; ``None`` when not stated."""
        return None

    @property
    def decoder_receptive_field(self) -> int | None:
        """Code columns one decoded mel frame depends on; ``None`` when not stated."""
        return None

    @property
    def frame_rate(self) -> float:
        """Token columns per second of audio."""
        return self.mel_config.frame_rate / self.time_downsample

    @property
    def bitrate(self) -> float:
        """Nominal bits per second: frame_rate * sum over rows of log2(codebook size)."""
        return self.frame_rate * sum(math.log2(k) for k in self.codebook_sizes)


def audio_tokenizer(tokenizer: Tokenizer) -> AudioTokenizer:
    """``tokenizer`` as an :class:`AudioTokenizer`, or a :class:`SpectokError` saying it is not one."""
    if not isinstance(tokenizer, AudioTokenizer):
        raise SpectokError(f"{type(tokenizer).__name__} is not an audio tokenizer (it reads no log-mels): "
                           "there is no audio to encode or decode with it")
    return tokenizer


class ImageTokenizer(Tokenizer):
    """A tokenizer of images: ``encode(images [B, C, S, S]) -> codes [B, K, N]``, ``decode`` back.

    Declared facts, besides :class:`Tokenizer`'s: ``image_size`` (pixels per side) and
    ``in_channels``; it has no mel config, frame rate or bit rate.
    """

    image_size: int
    in_channels: int


class Vocoder(nn.Module, metaclass=abc.ABCMeta):
    """The contract every vocoder provides (``spectok.Vocoder``).

    ``forward(mel [B, n_mels, T]) -> waveform [B, T * hop]`` float32 in [-1, 1]. Each vocoder
    carries the ``mel_config`` it was trained for (so ``hop`` and ``sample_rate`` follow);
    :meth:`check_mel` raises a :class:`~spectok.errors.MelMismatchError` naming the differing
    fields when it is joined with a tokenizer (or features) made with another front end.
    ``receptive_field`` is the number of mel frames one output frame depends on, ``None`` when
    not stated: streamed vocoding is then refused and chunked vocoding is approximate at chunk
    borders. :meth:`vocode` is the entry point for a piece of a longer mel: it says where the
    piece starts, for vocoders whose output depends on the position (Griffin-Lim's seeded
    initial phase).
    """

    mel_config: MelConfig

    @property
    def sample_rate(self) -> int:
        return self.mel_config.sample_rate

    @property
    def hop(self) -> int:
        """Output samples per mel frame."""
        return self.mel_config.hop_length

    @property
    def receptive_field(self) -> int | None:
        return None

    @property
    def lookahead(self) -> int | None:
        """Mel frames *after* its own that one output frame depends on (what a stream waits for);
        half the receptive field unless a vocoder with a one-sided reach says less."""
        rf = self.receptive_field
        return None if rf is None else rf // 2

    @property
    def input_rows(self) -> int:
        """Rows of the spectrogram ``forward`` takes: ``n_mels`` (a vocoder on linear spectra says so)."""
        return self.mel_config.n_mels

    def check_mel(self, other: MelConfig, what: str = "tokenizer") -> None:
        self.mel_config.check_compatible(other, what=f"vocoder and {what} mel configs", sides=("vocoder", what))

    @abc.abstractmethod
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel ``[B, n_mels, T]`` -> waveform ``[B, T * hop]``."""

    def vocode(self, mel: torch.Tensor, start_frame: int = 0) -> torch.Tensor:
        """``forward`` on frames ``[start_frame, start_frame + T)`` of a longer log-mel."""
        return self(mel)
