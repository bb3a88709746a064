"""The tokenizer interface: log-mel (or image) in, integer codes out, and back."""

from __future__ import annotations

import abc
import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from spectok.audio.mel import MelConfig


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


class Tokenizer(nn.Module, metaclass=abc.ABCMeta):
    """The contract every tokenizer provides; callers type against it (``spectok.Tokenizer``).

    - ``encode(mel [B, n_mels, T]) -> codes [B, K, T']`` int64, ``T' = ceil(T / time_downsample)``;
      pure: no loss, no statistics, no state change, even in training mode.
    - ``decode(codes [B, K, T']) -> mel [B, n_mels, T' * time_downsample]``.
    - ``forward(mel, mask=None) -> TokenizerOutput``: the training path (reconstruction,
      quantizer output with its loss and metrics, codes).

    Declared facts:

    - ``mel_config``: the :class:`MelConfig` of the log-mels it reads (``None`` for images).
    - ``time_downsample``: mel frames per token column.
    - ``receptive_field``: mel frames one column depends on (``None``: not stated, so chunked
      or streamed encoding is refused).
    - ``decoder_receptive_field``: code columns one decoded mel frame depends on (``None``: not
      stated, so streamed decoding is refused and chunked decoding is approximate).
    - ``codebooks``: the sizes of the physical codebooks, in stage order.
    - ``rows_per_codebook``: the token layout. Row ``r`` of ``codes`` uses codebook
      ``r // rows_per_codebook`` (stage-major: a 4-row grid with a 2-stage residual quantizer
      has rows 0-3 on codebook 0 and rows 4-7 on codebook 1).
    - derived: ``codebook_sizes`` (one per row), ``frame_rate`` (columns per second),
      ``bitrate`` (bits per second), and ``fingerprint()`` (the configuration's identity).
    """

    mel_config: MelConfig | None
    time_downsample: int = 1
    rows_per_codebook: int = 1

    @property
    @abc.abstractmethod
    def codebooks(self) -> list[int]:
        """Sizes of the physical codebooks (one per quantizer stage)."""

    @property
    def receptive_field(self) -> int | None:
        """Mel frames one token column depends on; ``None`` when not stated."""
        return None

    @property
    def decoder_receptive_field(self) -> int | None:
        """Code columns one decoded mel frame depends on; ``None`` when not stated."""
        return None

    @property
    def codebook_sizes(self) -> list[int]:
        """Size of the codebook behind each of the K code rows (the layout of ``codebooks``)."""
        return [s for s in self.codebooks for _ in range(self.rows_per_codebook)]

    def row_codebook(self, row: int) -> int:
        """The index in :attr:`codebooks` of the codebook that token row ``row`` uses."""
        return row // self.rows_per_codebook

    @property
    def frame_rate(self) -> float:
        """Token columns per second of audio."""
        if self.mel_config is None:
            raise AttributeError("an image tokenizer has no frame rate")
        return self.mel_config.frame_rate / self.time_downsample

    @property
    def bitrate(self) -> float:
        """Nominal bits per second: frame_rate * sum over rows of log2(codebook size)."""
        return self.frame_rate * sum(math.log2(k) for k in self.codebook_sizes)

    @abc.abstractmethod
    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel ``[B, n_mels, T]`` -> codes ``[B, K, T']`` int64 (pure)."""

    @abc.abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[B, K, T']`` -> log-mel ``[B, n_mels, T' * time_downsample]``."""

    def fingerprint(self) -> str:
        """Identifies the tokenizer's configuration (architecture, quantizer, mel); see artifacts."""
        import hashlib
        import json

        hp = getattr(self, "hparams", {})
        return hashlib.sha256(json.dumps([type(self).__name__, hp], sort_keys=True, default=str)
                              .encode()).hexdigest()[:16]
