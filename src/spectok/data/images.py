"""CIFAR-10 as a PyTorch dataset for the image tokenizer: uint8 images in, model-range batches out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spectok.data.corpora import Cifar10
from spectok.tokenizers.image import to_model_range


class CifarImages(torch.utils.data.Dataset):
    """One split of CIFAR-10 as items ``{"image": uint8 Tensor [32, 32, 3], "label": int64}``.

    Read with :class:`spectok.data.corpora.Cifar10` from ``root`` (the
    ``cifar-10-batches-py`` folder, or its parent): "train" and "valid" (a deterministic
    5 % held out of the training batches), or "test". ``limit`` keeps the first N images.
    """

    def __init__(self, root: str, split: str = "train", limit: int | None = None) -> None:
        base = Path(root)
        if (base / "cifar-10-batches-py").is_dir():
            base = base / "cifar-10-batches-py"
        images, labels = Cifar10(base).load(split)
        if limit is not None:
            images, labels = images[: int(limit)], labels[: int(limit)]
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[index], "label": self.labels[index]}


def collate_images(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Items of :class:`CifarImages` → ``{"image": float32 [B, 3, H, W] in [-1, 1], "label": int64 [B]}``."""
    return {"image": to_model_range(torch.stack([it["image"] for it in items])),
            "label": torch.stack([torch.as_tensor(it["label"]) for it in items])}
