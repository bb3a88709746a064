"""The reader of a prepared folder (written by :func:`spectok.data.prepare.prepare`).

Layout of a prepared folder ``OUT``::

    OUT/mel.json         MelConfig fields, fingerprint, prepare settings (dtype, trim)
    OUT/mels/<id>.npy    log-mel [n_mels, frames] (float16 or float32)
    OUT/manifest.jsonl   one row per finished item (shard i of n: manifest-shard-i-of-n.jsonl;
                         all are merged on read)
    OUT/errors.jsonl     one row per failed item: id, path, error
                         (shard i of n: errors-shard-i-of-n.jsonl)

A manifest row: ``id, speaker, split, text, frames, seconds`` (of the audio the mel
covers), ``path`` (absolute source audio), ``sha1`` (of the source file's bytes),
``trim_start, trim_end``: the mel is exactly
``MelSpectrogram(load_audio(path, sr)[0][trim_start:trim_end])`` with ``sr`` the mel sample
rate, so a vocoder data set reloads the aligned waveform from these offsets;
``source_bytes, source_mtime_ns``: the source file's size and modification time when it was
prepared (a resumed ``prepare`` redoes an item whose file has changed since, appending a new
row: the last row of an id wins).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spectok.audio.mel import MelConfig
from spectok.data.corpora import SPLITS
from spectok.errors import DataError, SpectokError
from spectok.fsutil import read_jsonl


class PreparedSet:
    """A prepared folder: its mel config, its manifest rows (all shards merged) and its mels.

    Attributes:
        root: the folder.
        mel_config: the :class:`MelConfig` every mel in it was computed with.
        records: manifest rows, deduplicated by id (the last row wins), sorted by id.
        errors: rows of the errors files for ids that have no manifest row.
        dtype: storage dtype of the mels ("float16" or "float32").
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        meta = read_meta(self.root)
        if meta is None:
            raise DataError(f"{self.root}: not a prepared folder (no mel.json; run 'spectok prepare' first)")
        self.mel_config: MelConfig = meta["config"]
        self.dtype: str = meta["prepare"].get("dtype", "float32")
        rows: dict[str, dict] = {}
        for path in sorted(self.root.glob("manifest*.jsonl")):
            for row in read_rows(path):
                rows[row["id"]] = row
        self.records: list[dict] = [rows[k] for k in sorted(rows)]
        self._by_id = rows
        self.errors: list[dict] = [r for p in sorted(self.root.glob("errors*.jsonl")) for r in read_rows(p)
                                   if r.get("id") not in rows]

    def split(self, name: str) -> list[dict]:
        """Rows of split ``name`` ("train", "valid" or "test"), sorted by id."""
        if name not in SPLITS:
            raise DataError(f"{self.root}: unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return [r for r in self.records if r["split"] == name]

    def mel_path(self, id: str) -> Path:
        return self.root / "mels" / f"{id}.npy"

    def load_mel(self, id: str) -> np.ndarray:
        """The log-mel of item ``id`` as float32 ``[n_mels, frames]``."""
        path = self.mel_path(id)
        try:
            mel = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: cannot read mel ({e})") from e
        if mel.ndim != 2 or mel.shape[0] != self.mel_config.n_mels:
            raise DataError(f"{path}: shape {mel.shape}, expected [{self.mel_config.n_mels}, frames]")
        return mel.astype(np.float32, copy=False)

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, id: str) -> bool:
        return id in self._by_id

    def __getitem__(self, id: str) -> dict:
        try:
            return self._by_id[id]
        except KeyError:
            raise DataError(f"{self.root}: no item {id!r} in the manifest") from None

    def __repr__(self) -> str:
        return f"PreparedSet({str(self.root)!r}, {len(self)} items, mel {self.mel_config.fingerprint()})"


def open_prepared(path: str | Path) -> PreparedSet:
    """Open a folder written by :func:`prepare`; DataError when it is not one."""
    p = Path(path)
    if not p.is_dir():
        raise DataError(f"{p}: not a prepared folder (missing or not a directory)")
    return PreparedSet(p)


def read_meta(root: Path) -> dict | None:
    """``{"config": MelConfig, "prepare": {...}}`` from ``root/mel.json``, None when absent."""
    path = root / "mel.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        config = MelConfig.from_dict(meta["mel"])
    except (OSError, ValueError, KeyError, TypeError, SpectokError) as e:
        raise DataError(f"{path}: malformed mel.json ({e})") from e
    if meta.get("fingerprint") not in (None, config.fingerprint()):
        raise DataError(f"{path}: fingerprint {meta['fingerprint']} does not match its fields")
    return {"config": config, "prepare": meta.get("prepare", {})}


def read_rows(path: Path) -> list[dict]:
    try:
        rows = read_jsonl(path)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: corrupt JSON-lines file ({e})") from e
    bad = [r for r in rows if not isinstance(r, dict) or "id" not in r]
    if bad:
        raise DataError(f"{path}: {len(bad)} rows without an id")
    return rows
