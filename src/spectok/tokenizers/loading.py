"""Loading a tokenizer: ``spectok.load_tokenizer(path_or_released_name)``."""

from __future__ import annotations

import os

import torch

from spectok.artifacts import load_release
from spectok.contracts import Tokenizer
from spectok.errors import ArtifactError
from spectok.models import resolve_tokenizer


def load_tokenizer(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Tokenizer:
    """Load a tokenizer in eval mode: a release artifact (one ``.safetensors`` file, no pickle)
    or the name of a model shipped with spectok (``"default"``; see ``spectok models``).

    Raises:
        ArtifactError: neither a file nor a released name; or the file is truncated or
            corrupt, is not a spectok artifact, or holds another kind of model (e.g. a
            vocoder); the message names the file and the reason.
    """
    path = resolve_tokenizer(path)
    model = load_release(path, kind="tokenizer", map_location=map_location)
    if not isinstance(model, Tokenizer):
        raise ArtifactError(f"{path}: class {type(model).__name__} is registered as a tokenizer "
                            "but does not implement the Tokenizer interface")
    return model
