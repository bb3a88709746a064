"""The vocoder interface: log-mel ``[B, n_mels, T]`` -> waveform ``[B, samples]``."""

from __future__ import annotations

import abc

import torch
from torch import nn

from spectok.audio.mel import MelConfig


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
