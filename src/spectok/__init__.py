"""spectok: speech into discrete tokens and back.

The public API is re-exported here; everything else is an implementation detail.
"""

__version__ = "0.1.0"

from spectok.audio import MelConfig, MelSpectrogram, load, save  # noqa: E402
from spectok.data.corpora import open_corpus  # noqa: E402
from spectok.data.features import open_prepared, prepare  # noqa: E402
from spectok.errors import (  # noqa: E402
    ArtifactError,
    AudioError,
    DataError,
    MelMismatchError,
    SpectokError,
    TokenFileError,
)
from spectok.pipeline import Pipeline  # noqa: E402
from spectok.tokenizers.loading import load_tokenizer  # noqa: E402
from spectok.tokens import TokenFile, read_tokens, write_tokens  # noqa: E402
from spectok.vocoders.loading import load_vocoder  # noqa: E402

__all__ = [
    "ArtifactError",
    "AudioError",
    "DataError",
    "MelConfig",
    "MelMismatchError",
    "MelSpectrogram",
    "Pipeline",
    "SpectokError",
    "TokenFile",
    "TokenFileError",
    "__version__",
    "load",
    "load_tokenizer",
    "load_vocoder",
    "open_corpus",
    "open_prepared",
    "prepare",
    "read_tokens",
    "save",
    "write_tokens",
]
