"""Registry of training tasks: the ``task:`` key of a training config names one of these.

Entries are "module:Class" strings, imported only when used.
"""

from __future__ import annotations

import importlib

from spectok.errors import SpectokError

TASKS: dict[str, str] = {
    # name: "module:Class" (a spectok.training.task.TrainTask subclass); add yours here.
}


def task_class(name: str) -> type:
    if name not in TASKS:
        raise SpectokError(f"unknown training task {name!r}; known: {sorted(TASKS)}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)
