"""Reading a token dataset (``spectok tokenize``) for training: a streaming dataset, a padding
collate, and the two standard layouts of multi-codebook tokens with their exact inverses.

Layouts of ``codes [K, T]`` (K codebooks, T columns) for a language model that reads one
token per step:

- **flattened** (interleaved): ``[c0[0], c1[0], ..., c{K-1}[0], c0[1], ...]``, ``K * T``
  tokens; token ``t * K + k`` is codebook ``k`` of column ``t``.
- **delayed** (MusicGen, Copet et al. 2023): row ``k`` shifted right by ``k`` steps,
  ``[K, T + K - 1]``, the gaps filled with ``pad``; one step predicts K tokens at once, and
  codebook ``k`` of column ``t`` comes after codebooks ``< k`` of the same column.

To share one embedding table, the flattened layout can offset codebook ``k``'s ids by the sum
of the sizes of codebooks ``< k`` (``offsets=``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from spectok.data.token_shards import CARD, require_pyarrow
from spectok.errors import DataError

SPLITS = ("train", "valid", "test")


def flatten_codes(codes: torch.Tensor, offsets: list[int] | None = None) -> torch.Tensor:
    """``[..., K, T] -> [..., K * T]`` interleaved column by column (``offsets[k]`` added to row ``k``)."""
    if offsets is not None:
        codes = codes + torch.as_tensor(offsets, dtype=codes.dtype, device=codes.device)[:, None]
    return codes.transpose(-1, -2).reshape(*codes.shape[:-2], -1)


def unflatten_codes(flat: torch.Tensor, num_codebooks: int, offsets: list[int] | None = None) -> torch.Tensor:
    """The inverse of :func:`flatten_codes`: ``[..., K * T] -> [..., K, T]``."""
    if flat.shape[-1] % num_codebooks:
        raise DataError(f"{flat.shape[-1]} flattened tokens are not a whole number of {num_codebooks}-token columns")
    codes = flat.reshape(*flat.shape[:-1], -1, num_codebooks).transpose(-1, -2)
    if offsets is not None:
        codes = codes - torch.as_tensor(offsets, dtype=codes.dtype, device=codes.device)[:, None]
    return codes


def delay_codes(codes: torch.Tensor, pad: int) -> torch.Tensor:
    """``[..., K, T] -> [..., K, T + K - 1]``: row ``k`` starts ``k`` steps late; gaps hold ``pad``."""
    k, t = codes.shape[-2:]
    out = torch.full((*codes.shape[:-2], k, t + k - 1), pad, dtype=codes.dtype, device=codes.device)
    for i in range(k):
        out[..., i, i:i + t] = codes[..., i, :]
    return out


def undelay_codes(delayed: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`delay_codes`: ``[..., K, T + K - 1] -> [..., K, T]``."""
    k, n = delayed.shape[-2:]
    t = n - k + 1
    if t < 0:
        raise DataError(f"a delayed layout of {k} codebooks needs at least {k - 1} steps, got {n}")
    return torch.stack([delayed[..., i, i:i + t] for i in range(k)], dim=-2)


def read_card(root: str | os.PathLike) -> dict:
    """The dataset card (``dataset.json``) of a token dataset folder."""
    path = Path(root) / CARD
    if not path.is_file():
        raise DataError(f"{root}: not a token dataset (no {CARD}; make one with 'spectok tokenize')")
    return json.loads(path.read_text(encoding="utf-8"))


def split_files(root: str | os.PathLike, split: str) -> list[Path]:
    """The visible Parquet files of ``split`` (hidden temporaries of a running or killed job excluded)."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return sorted(p for p in (Path(root) / split).glob("*.parquet") if not p.name.startswith("."))


class TokenDataset(IterableDataset):
    """The utterances of one split of a token dataset, streamed file by file.

    Each item: ``{"id": str, "speaker": str, "text": str | None, "codes": LongTensor [K, T']}``.
    With several DataLoader workers (and, given ``rank``/``world_size``, several processes)
    each reads its own files, so every utterance is read once per epoch. ``len()`` is the
    number of utterances (from the Parquet footers, nothing decoded).

    Args:
        root: the dataset folder (``spectok tokenize``'s ``OUT``).
        split: "train", "valid" or "test".
        rank, world_size: this process's share of the files under DDP (default: all of them).
        max_columns: crop longer utterances to their first ``max_columns`` columns (None: whole).
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", rank: int = 0, world_size: int = 1,
                 max_columns: int | None = None) -> None:
        super().__init__()
        require_pyarrow()
        import pyarrow.parquet as pq

        self.root, self.split = Path(root), split
        self.card = read_card(root)
        self.files = split_files(root, split)
        if not self.files:
            raise DataError(f"{root}: no Parquet files in split {split!r}")
        self.rank, self.world_size, self.max_columns = rank, world_size, max_columns
        self._rows = [pq.ParquetFile(f).metadata.num_rows for f in self.files]

    @property
    def num_codebooks(self) -> int:
        return len(self.card["codebook_sizes"])

    def __len__(self) -> int:
        return sum(self._rows[self.rank::self.world_size])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        info = get_worker_info()
        files = self.files[self.rank::self.world_size]
        if info is not None:
            files = files[info.id::info.num_workers]
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=64,
                                                        columns=["id", "speaker", "text", "codes"]):
                for row in batch.to_pylist():
                    codes = torch.as_tensor(np.asarray(row["codes"], dtype=np.int64))
                    if self.max_columns is not None:
                        codes = codes[:, : self.max_columns]
                    yield {"id": row["id"], "speaker": row["speaker"], "text": row["text"], "codes": codes}


def collate_tokens(items: list[dict[str, Any]], layout: str = "codes", pad: int = -1) -> dict[str, Any]:
    """Pad a list of items to one batch.

    Args:
        items: :class:`TokenDataset` items.
        layout: ``"codes"`` (``[B, K, T]``), ``"flat"`` (``[B, K * T]``, interleaved) or
            ``"delay"`` (``[B, K, T + K - 1]``, MusicGen's delay pattern, gaps hold ``pad``).
        pad: the id of padding (and of the delay pattern's gaps).

    Returns:
        ``{"codes": LongTensor, "mask": BoolTensor (True on real tokens, same shape without K for
        "codes" and "delay": [B, T] / [B, T + K - 1]; [B, K * T] for "flat"), "lengths": [B] columns,
        "id", "speaker", "text": lists}``.
    """
    if layout not in ("codes", "flat", "delay"):
        raise DataError(f"layout must be 'codes', 'flat' or 'delay', got {layout!r}")
    lengths = torch.tensor([it["codes"].shape[-1] for it in items])
    k, t = items[0]["codes"].shape[0], int(lengths.max())
    codes = torch.full((len(items), k, t), pad, dtype=torch.long)
    for i, it in enumerate(items):
        codes[i, :, : it["codes"].shape[-1]] = it["codes"]
    mask = torch.arange(t)[None] < lengths[:, None]  # [B, T]
    if layout == "flat":
        codes, mask = flatten_codes(codes), mask.repeat_interleave(k, dim=1)
    elif layout == "delay":
        codes = delay_codes(codes, pad)
        # a step is real where any codebook holds a real token
        mask = torch.arange(t + k - 1)[None] < (lengths[:, None] + k - 1)
    return {"codes": codes, "mask": mask, "lengths": lengths, "id": [it["id"] for it in items],
            "speaker": [it["speaker"] for it in items], "text": [it["text"] for it in items]}
