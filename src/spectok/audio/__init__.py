"""Audio I/O (``io``) and the one mel front end (``mel``); names load on first use (PEP 562)."""

from __future__ import annotations

import importlib
from typing import Any

_API = {"AUDIO_EXTENSIONS": "io", "load_audio": "io", "resample": "io", "save_audio": "io",
        "PRESETS": "mel", "MelConfig": "mel", "MelSpectrogram": "mel"}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f"spectok.audio.{_API[name]}"), name)
    raise AttributeError(f"module 'spectok.audio' has no attribute {name!r}")
