"""What a training task's ``data()`` returns: its data sets and how to batch them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset


@dataclass
class DataSpec:
    """Data sets and collation for a task. ``collate`` turns a list of items into a batch dict."""

    train: Dataset
    valid: Dataset | None
    collate: Callable[[list[Any]], dict[str, torch.Tensor]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
