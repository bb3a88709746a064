"""The exceptions spectok raises on bad input. Each message names the file (or object) and the reason."""

from __future__ import annotations


class SpectokError(Exception):
    """Base class: the CLI prints these as one line instead of a traceback."""


class AudioError(SpectokError):
    """An audio file is missing, empty, undecodable or holds invalid samples."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MelMismatchError(SpectokError, ValueError):
    """Two objects were joined whose mel front ends differ; the message names the differing fields."""


class ArtifactError(SpectokError):
    """A release artifact (safetensors) or training checkpoint cannot be read or does not fit."""


class TokenFileError(SpectokError):
    """A token file is truncated, corrupt, foreign, or does not fit the tokenizer."""


class DataError(SpectokError):
    """A corpus, prepared folder or manifest is missing or malformed."""


class ConfigError(SpectokError, ValueError):
    """A configuration value is wrong (an unknown quantizer type, a bad argument)."""
