"""Vocoders: log-mel ``[B, n_mels, T]`` -> waveform ``[B, T * hop_length]``.

- :class:`GriffinLim`: no training, built by name ("griffin-lim").
- :class:`ISTFTVocoder` ("istft-vocoder"): ConvNeXt backbone + iSTFT head, the fast CPU default.
- :class:`HiFiGANGenerator` ("hifigan"): V1/V2/V3 presets; discriminators in ``discriminators``.
- :class:`CNNVocoder` ("cnn-vocoder"): an interpolation + convolution network, spectral losses only.

Trained vocoders are release artifacts: :func:`load_vocoder` loads them (and Griffin-Lim by name).
"""

from spectok.contracts import Vocoder
from spectok.vocoders.cnn import CNNVocoder
from spectok.vocoders.griffin_lim import GriffinLim
from spectok.vocoders.hifigan import HiFiGANGenerator
from spectok.vocoders.istft import ISTFTVocoder
from spectok.vocoders.loading import load_vocoder

__all__ = ["CNNVocoder", "GriffinLim", "HiFiGANGenerator", "ISTFTVocoder", "Vocoder", "load_vocoder"]
