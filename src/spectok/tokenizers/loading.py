"""Loading a released tokenizer: ``spectok.load_tokenizer(path)``."""

from __future__ import annotations

import os

import torch

from spectok.errors import ArtifactError
from spectok.tokenizers.base import Tokenizer


def load_tokenizer(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Tokenizer:
    """Load a tokenizer release artifact (one ``.safetensors`` file, no pickle) in eval mode.

    Raises:
        ArtifactError: the file is missing, truncated or corrupt, is not a spectok
            artifact, or holds another kind of model (e.g. a vocoder); the message names
            the file and the reason.
    """
    from spectok.artifacts import load_release

    model = load_release(path, kind="tokenizer", map_location=map_location)
    if not isinstance(model, Tokenizer):
        raise ArtifactError(f"{path}: class {type(model).__name__} is registered as a tokenizer "
                            "but does not implement the Tokenizer interface")
    return model
