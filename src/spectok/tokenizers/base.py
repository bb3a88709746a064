"""The tokenizer interface: log-mel (or image) in, integer codes out, and back."""

from __future__ import annotations

import math

import torch
from torch import nn

from spectok.audio.mel import MelConfig


class Tokenizer(nn.Module):
    """Base class of every tokenizer.

    Subclasses set ``self.mel_config`` (a :class:`MelConfig`, ``None`` for images) and
    ``self.quantizer``, and implement :meth:`encode` and :meth:`decode`:

    - ``encode(mel [B, n_mels, T]) -> codes [B, K, T']`` int64, where K is the number of
      codebooks or frequency rows of the token grid and ``T' = ceil(T / time_downsample)``.
    - ``decode(codes [B, K, T']) -> mel [B, n_mels, T' * time_downsample]``.
    - ``forward(mel) -> TokenizerOutput``-like dict used in training (reconstruction,
      quantizer output).

    Derived properties: ``frame_rate`` (token columns per second), ``codebook_sizes``
    (one entry per row K), ``bitrate`` (bits per second = frame_rate * sum(log2 K_i)).
    """

    mel_config: MelConfig | None
    time_downsample: int = 1

    @property
    def codebook_sizes(self) -> list[int]:
        """Size of the codebook behind each of the K code rows."""
        raise NotImplementedError

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

    def encode(self, mel: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def decode(self, codes: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Identifies the tokenizer's configuration (architecture, quantizer, mel); see artifacts."""
        import hashlib
        import json

        hp = getattr(self, "hparams", {})
        return hashlib.sha256(json.dumps([type(self).__name__, hp], sort_keys=True, default=str)
                              .encode()).hexdigest()[:16]
