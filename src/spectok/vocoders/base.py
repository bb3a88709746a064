"""The vocoder interface: log-mel ``[B, n_mels, T]`` -> waveform ``[B, samples]``."""

from __future__ import annotations

import torch
from torch import nn

from spectok.audio.mel import MelConfig


class Vocoder(nn.Module):
    """Base class of every vocoder.

    ``forward(mel [B, n_mels, T]) -> waveform [B, T * hop_length]`` float32 in [-1, 1].
    Each vocoder carries the ``mel_config`` it was trained for; :meth:`check_mel` raises a
    :class:`~spectok.errors.MelMismatchError` naming the differing fields when joined with
    a tokenizer (or features) made with another front end.
    """

    mel_config: MelConfig

    @property
    def sample_rate(self) -> int:
        return self.mel_config.sample_rate

    def check_mel(self, other: MelConfig, what: str = "tokenizer") -> None:
        self.mel_config.check_compatible(other, what=f"vocoder and {what} mel configs")

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError
