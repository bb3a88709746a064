"""Audio I/O and the one mel front end."""

from spectok.audio.io import AUDIO_EXTENSIONS, load, resample, save
from spectok.audio.mel import PRESETS, MelConfig, MelSpectrogram

__all__ = ["AUDIO_EXTENSIONS", "PRESETS", "MelConfig", "MelSpectrogram", "load", "resample", "save"]
