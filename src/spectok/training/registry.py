"""Registry of training tasks: the ``task:`` key of a training config names one of these.

Entries are "module:Class" strings, imported only when used. A config's ``task:`` may also
be a "module:Class" string itself, for a task defined outside spectok (e.g. in a test).
"""

from __future__ import annotations

import importlib

from spectok.errors import SpectokError

TASKS: dict[str, str] = {
    # name: "module:Class" (a spectok.training.task.TrainTask subclass); add yours here.
    "tokenizer": "spectok.training.tokenizer_task:TokenizerTask",
    "vqgan": "spectok.training.tokenizer_task:VQGANTask",
    "image-tokenizer": "spectok.training.tokenizer_task:ImageTokenizerTask",
    "vocoder": "spectok.training.vocoder_task:VocoderTask",
    "vocoder-gan": "spectok.training.vocoder_task:GANVocoderTask",
}


def task_class(name: str) -> type:
    """The TrainTask class registered as ``name``, or named directly as "module:Class"."""
    if name in TASKS:
        target = TASKS[name]
    elif isinstance(name, str) and ":" in name:
        target = name
    else:
        raise SpectokError(f"unknown training task {name!r}; known: {sorted(TASKS)} (or give 'module:Class')")
    module, cls = target.split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        raise SpectokError(f"training task {name!r}: cannot import {target} ({e})") from e
