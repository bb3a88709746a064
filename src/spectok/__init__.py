"""spectok: speech into discrete tokens and back.

The public API is re-exported here, loaded on first use (PEP 562), so ``import spectok`` and
the command line's ``--help`` stay fast and submodules never import this root.
"""

from __future__ import annotations

import importlib
from typing import Any

from spectok._version import __version__  # noqa: F401 (public)

#: public name -> module that defines it
_API: dict[str, str] = {
    "MelConfig": "spectok.audio.mel",
    "MelSpectrogram": "spectok.audio.mel",
    "load_audio": "spectok.audio.io",
    "save_audio": "spectok.audio.io",
    "open_corpus": "spectok.data.corpora",
    "open_prepared": "spectok.data.prepare",
    "prepare": "spectok.data.prepare",
    "TokenDataset": "spectok.data.token_loader",
    "collate_tokens": "spectok.data.token_loader",
    "tokenize_corpus": "spectok.data.token_shards",
    "ArtifactError": "spectok.errors",
    "AudioError": "spectok.errors",
    "DataError": "spectok.errors",
    "MelMismatchError": "spectok.errors",
    "SpectokError": "spectok.errors",
    "TokenFileError": "spectok.errors",
    "Pipeline": "spectok.pipeline",
    "Tokenizer": "spectok.contracts",
    "AudioTokenizer": "spectok.contracts",
    "ImageTokenizer": "spectok.contracts",
    "Vocoder": "spectok.contracts",
    "load_tokenizer": "spectok.tokenizers.loading",
    "load_vocoder": "spectok.vocoders.loading",
    "TokenFile": "spectok.tokens",
    "read_tokens": "spectok.tokens",
    "write_tokens": "spectok.tokens",
}

__all__ = sorted([*_API, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'spectok' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
