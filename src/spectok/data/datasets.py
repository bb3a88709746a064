"""Training and validation data over a prepared folder: mel crops and padded batches.

A prepared folder (``spectok prepare``, read by :func:`spectok.data.prepare.open_prepared`)
holds one log-mel ``[n_mels, frames]`` per utterance and a manifest naming its split.

- :class:`MelCropDataset` serves random crops of ``crop_frames`` frames for training and
  whole utterances (or fixed crops from the start) for validation. A random crop is a
  pure function of ``(seed, epoch, index)``, never of a global or per-worker RNG, so the
  data a resumed run sees is exactly the data an uninterrupted run would have seen, with
  any number of loader workers. The engine calls :meth:`MelCropDataset.set_epoch` (inside
  the loader worker, through :class:`EpochIndexed`).
- :class:`PadCollate` pads a list of mels to one batch with the log floor
  (``mel_config.silence``, never 0) and returns a mask of real frames.
- :func:`mel_data_spec` builds both sets and the collate as a
  :class:`~spectok.data.spec.DataSpec`: what most tasks return from ``data()``.

Batch layout (what :class:`PadCollate` returns)::

    {"mel": float32 [B, n_mels, T],   # padded with mel_config.silence
     "mask": float32 [B, T],          # 1 = real frame, 0 = padding
     "lengths": int64 [B]}            # real frames per item

``T`` is the longest item rounded up to a multiple of ``pad_multiple`` (e.g. the model's
total time downsampling, so every token column covers whole frames).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from spectok.audio.mel import MelConfig
from spectok.data.prepare import open_prepared
from spectok.data.spec import DataSpec
from spectok.errors import DataError, MelMismatchError


class MelCropDataset(Dataset):
    """Log-mels of one split of a prepared set, cropped to ``crop_frames`` frames.

    Args:
        prepared: a ``PreparedSet`` (``.root``, ``.mel_config``, ``.split(name)``,
            ``.load_mel(id) -> np.ndarray [n_mels, frames]``).
        split: manifest split name, e.g. "train" or "valid".
        crop_frames: frames per item; ``None`` serves whole utterances. Utterances shorter
            than the crop are served whole (the collate pads and masks them).
        random_crop: a random start per item (training); otherwise crops start at frame 0
            (validation with fixed long crops).
        seed: the crop seed; with :meth:`set_epoch` and the item index it fixes each crop.
        min_frames: utterances with fewer frames are left out.

    Items are dicts ``{"mel": float32 Tensor [n_mels, t], "id": str, "index": int}``.
    """

    def __init__(self, prepared: Any, split: str, crop_frames: int | None, *, random_crop: bool = True,
                 seed: int = 0, min_frames: int = 1) -> None:
        if crop_frames is not None and crop_frames < 1:
            raise DataError(f"{prepared.root}: crop_frames must be positive, got {crop_frames}")
        self.prepared = prepared
        self.split = split
        self.mel_config: MelConfig = prepared.mel_config
        self.records = [r for r in prepared.split(split) if int(r.get("frames", min_frames)) >= min_frames]
        if not self.records:
            raise DataError(f"{prepared.root}: no utterances with >= {min_frames} frames in split {split!r}")
        self.crop_frames = crop_frames
        self.random_crop = random_crop
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the crops of ``epoch`` (called by the engine before each epoch's loader)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def crop_start(self, index: int, frames: int) -> int:
        """First frame of item ``index``'s crop of an utterance with ``frames`` frames."""
        if self.crop_frames is None or frames <= self.crop_frames or not self.random_crop:
            return 0
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(rng.integers(0, frames - self.crop_frames + 1))

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        mel = self.prepared.load_mel(rec["id"])
        if mel.ndim != 2 or mel.shape[0] != self.mel_config.n_mels:
            raise DataError(f"{self.prepared.root}: mel of {rec['id']!r} has shape {tuple(mel.shape)}, "
                            f"expected [{self.mel_config.n_mels}, frames]")
        start = self.crop_start(index, mel.shape[1])
        if self.crop_frames is not None:
            mel = mel[:, start:start + self.crop_frames]
        tensor = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))
        return {"mel": tensor, "id": rec["id"], "index": index}


class EpochIndexed(Dataset):
    """Wraps a data set so that items are asked for as ``(epoch, index)``.

    The engine's sampler sends the epoch with every index, so a loader worker that lives for
    the whole run (one DataLoader iterator, no per-epoch restart) still serves each epoch's
    crops: ``dataset.set_epoch(epoch)`` is called in the worker before ``dataset[index]``.
    Data sets without ``set_epoch`` are indexed as they are.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if hasattr(self.dataset, "set_epoch") and getattr(self.dataset, "epoch", None) != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


@dataclass
class PadCollate:
    """Pad mels ``[n_mels, t_i]`` to one batch ``[B, n_mels, T]`` with ``pad_value``.

    Args:
        pad_value: the log-mel value of silence (``MelConfig.silence``), never 0.
        pad_multiple: round ``T`` up to a multiple of this (the model's time downsampling).
        min_frames: pad short batches up to at least this many frames.

    Accepts items that are dicts with a "mel" tensor or bare tensors; returns
    ``{"mel", "mask", "lengths"}`` (see the module docstring).
    """

    pad_value: float
    pad_multiple: int = 1
    min_frames: int = 1

    def __call__(self, items: list[Any]) -> dict[str, torch.Tensor]:
        mels = [it["mel"] if isinstance(it, dict) else it for it in items]
        if not mels:
            raise DataError("PadCollate: empty batch")
        n_mels = mels[0].shape[0]
        lengths = torch.tensor([m.shape[-1] for m in mels], dtype=torch.int64)
        t = max(int(lengths.max()), self.min_frames)
        t = math.ceil(t / self.pad_multiple) * self.pad_multiple
        mel = torch.full((len(mels), n_mels, t), float(self.pad_value), dtype=torch.float32)
        mask = torch.zeros(len(mels), t, dtype=torch.float32)
        for i, m in enumerate(mels):
            if m.shape[0] != n_mels:
                raise DataError(f"PadCollate: item {i} has {m.shape[0]} mel bands, item 0 has {n_mels}")
            mel[i, :, : m.shape[-1]] = m
            mask[i, : m.shape[-1]] = 1.0
        return {"mel": mel, "mask": mask, "lengths": lengths}


def mel_data_spec(prepared_dir: str | os.PathLike, crop_frames: int, *, valid_frames: int | None = None,
                  seed: int = 0, pad_multiple: int = 1, mel_config: MelConfig | None = None,
                  train_split: str = "train", valid_split: str = "valid", min_frames: int = 1):
    """Training crops and validation utterances of a prepared folder, as a ``DataSpec``.

    Args:
        prepared_dir: the prepared folder.
        crop_frames: frames per training crop.
        valid_frames: validation items are crops of at most this many frames from the start;
            ``None`` validates whole utterances.
        seed: crop seed (use the engine's ``config["train"]["seed"]``).
        pad_multiple: see :class:`PadCollate`.
        mel_config: the model's front end; a prepared set made with another one raises
            :class:`~spectok.errors.MelMismatchError` naming the differing fields.
        train_split, valid_split: manifest split names. A missing validation split gives
            ``valid=None`` (the engine then skips validation).
        min_frames: leave out utterances shorter than this.
    """
    prepared = open_prepared(prepared_dir)
    if mel_config is not None:
        try:
            mel_config.check_compatible(prepared.mel_config, what=f"model and prepared set {prepared.root} mel configs")
        except MelMismatchError as e:
            name = mel_config.preset_name()
            hint = f"--mel {name}" if name else "--mel and a YAML file of the model's mel config"
            raise MelMismatchError(f"{e}; prepare the data with {hint}") from None
    train = MelCropDataset(prepared, train_split, crop_frames, random_crop=True, seed=seed, min_frames=min_frames)
    valid = None
    if prepared.split(valid_split):
        valid = MelCropDataset(prepared, valid_split, valid_frames, random_crop=False, seed=seed,
                               min_frames=min_frames)
    collate = PadCollate(prepared.mel_config.silence, pad_multiple=pad_multiple, min_frames=pad_multiple)
    return DataSpec(train=train, valid=valid, collate=collate, extra={"prepared": prepared})
