"""Vocoders: log-mel ``[B, n_mels, T]`` -> waveform ``[B, T * hop_length]``.

- :class:`GriffinLim`: no training, built by name ("griffin-lim").
- Trained vocoders (registered release artifacts): see :func:`load_vocoder`.
"""

from spectok.vocoders.base import Vocoder
from spectok.vocoders.griffin_lim import GriffinLim
from spectok.vocoders.loading import load_vocoder

__all__ = ["GriffinLim", "Vocoder", "load_vocoder"]
