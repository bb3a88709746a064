"""Feature preparation: corpus -> a folder of log-mels, and the reader of such a folder.

Layout of a prepared folder ``OUT``::

    OUT/mel.json                          MelConfig fields, fingerprint, dtype, trim setting
    OUT/mels/<id>.npy                     log-mel [n_mels, frames] (float16 or float32)
    OUT/manifest.jsonl                    one row per finished item (shard i of n:
                                          manifest-shard-i-of-n.jsonl; merged on read)
    OUT/errors.jsonl                      one row per failed item: id, path, reason
                                          (shard i of n: errors-shard-i-of-n.jsonl)

A manifest row: ``id, speaker, split, text, frames, seconds, path`` (absolute source
audio), ``sha1`` (of the source file's bytes), ``trim_start, trim_end``: the mel is
exactly ``MelSpectrogram(load(path, sr)[0][trim_start:trim_end])`` with ``sr`` the mel
sample rate, so a vocoder data set reloads the aligned waveform from these offsets.

Kill safety: mels are written under a temporary name and renamed; only the parent
process appends manifest rows, each one fsync'ed, and a torn last line left by a kill
is cut off when the next run starts. A row is appended only after its mel is in place,
so a row always has its mel. Resuming skips ids that have both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import re
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spectok import __version__
from spectok.audio.mel import MelConfig
from spectok.data.corpora import SPLITS, Cifar10, CorpusItem, in_shard
from spectok.errors import DataError, SpectokError
from spectok.fsutil import append_jsonl, atomic_path, read_jsonl, write_json_atomic, write_text_atomic

DTYPES = ("float16", "float32")


# ---------------------------------------------------------------------------------------
# Reading a prepared folder
# ---------------------------------------------------------------------------------------
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
        meta = _read_meta(self.root)
        if meta is None:
            raise DataError(f"{self.root}: not a prepared folder (no mel.json; run 'spectok prepare' first)")
        self.mel_config: MelConfig = meta["config"]
        self.dtype: str = meta["prepare"].get("dtype", "float32")
        rows: dict[str, dict] = {}
        for path in sorted(self.root.glob("manifest*.jsonl")):
            for row in _read_rows(path):
                rows[row["id"]] = row
        self.records: list[dict] = [rows[k] for k in sorted(rows)]
        self._by_id = rows
        self.errors: list[dict] = [r for p in sorted(self.root.glob("errors*.jsonl")) for r in _read_rows(p)
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


def _read_meta(root: Path) -> dict | None:
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


def _read_rows(path: Path) -> list[dict]:
    try:
        rows = read_jsonl(path)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: corrupt JSON-lines file ({e})") from e
    bad = [r for r in rows if not isinstance(r, dict) or "id" not in r]
    if bad:
        raise DataError(f"{path}: {len(bad)} rows without an id")
    return rows


# ---------------------------------------------------------------------------------------
# Preparing
# ---------------------------------------------------------------------------------------
@dataclass
class PrepareReport:
    """What one :func:`prepare` run did. ``seconds`` counts audio prepared in this run."""

    out_dir: Path
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    wall: float = 0.0
    failures: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False only when items were attempted and none succeeded."""
        return self.done > 0 or self.skipped > 0 or self.failed == 0

    def summary(self) -> str:
        speed = f", {self.seconds / self.wall:.0f}x real time" if self.wall > 0 and self.done else ""
        amount = f"{self.seconds / 3600:.2f} h" if self.seconds >= 3600 else f"{self.seconds / 60:.1f} min"
        return (f"{self.out_dir}: {self.done} prepared ({amount} of audio{speed}), "
                f"{self.skipped} already done, {self.failed} failed")


def trim_bounds(waveform: np.ndarray, top_db: float, frame_length: int, hop_length: int) -> tuple[int, int]:
    """Sample bounds ``(start, end)`` of ``waveform [T]`` without leading/trailing silence.

    Frames (``frame_length`` samples every ``hop_length``) whose RMS energy is more than
    ``top_db`` dB below the loudest frame's count as silence. Returns ``(0, T)`` when the
    clip is shorter than a frame, or entirely silent.
    """
    n = len(waveform)
    if n < frame_length or top_db <= 0:
        return 0, n
    frames = np.lib.stride_tricks.sliding_window_view(waveform, frame_length)[::hop_length]
    energy = np.mean(np.square(frames, dtype=np.float64), axis=1)
    peak = energy.max()
    if peak <= 0:
        return 0, n
    loud = np.flatnonzero(10.0 * np.log10(np.maximum(energy, 1e-20) / peak) > -top_db)
    return int(loud[0] * hop_length), int(min(n, loud[-1] * hop_length + frame_length))


class _Worker:
    """Per-process state: the mel module, built once per process (forked workers inherit the
    parent's, which saves each of them librosa's slow first filter-bank call)."""

    mel = None
    settings: dict = {}

    @classmethod
    def init(cls, config: dict, settings: dict, single_thread: bool) -> None:
        import torch

        from spectok.audio.mel import MelSpectrogram

        if single_thread:
            torch.set_num_threads(1)
        wanted = MelConfig.from_dict(config)
        if cls.mel is None or cls.mel.config != wanted:
            cls.mel = MelSpectrogram(wanted)
        cls.settings = settings

    @classmethod
    def run(cls, item: CorpusItem) -> dict:
        """Prepare one item; returns a manifest row, or ``{"id", "path", "error"}``."""
        try:
            return cls._prepare(item)
        except SpectokError as e:
            return {"id": item.id, "path": str(item.path), "error": str(e)}
        except Exception as e:  # noqa: BLE001  (one bad file must not stop the run; the reason is kept)
            return {"id": item.id, "path": str(item.path), "error": f"{item.path}: {type(e).__name__}: {e}"}

    @classmethod
    def run_many(cls, items: list[CorpusItem]) -> list[dict]:
        return [cls.run(it) for it in items]

    @classmethod
    def _prepare(cls, item: CorpusItem) -> dict:
        import torch

        from spectok.audio.io import load

        cfg: MelConfig = cls.mel.config
        sha1 = hashlib.sha1(Path(item.path).read_bytes()).hexdigest()
        wav, sr = load(item.path, cfg.sample_rate)
        start, end = 0, len(wav)
        if cls.settings["trim_silence_db"] is not None:
            start, end = trim_bounds(wav, cls.settings["trim_silence_db"], cfg.win_length, cfg.hop_length)
        with torch.inference_mode():
            mel = cls.mel(torch.from_numpy(wav[start:end]))[0].numpy()
        out = Path(cls.settings["mel_dir"]) / f"{item.id}.npy"
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.save(f, mel.astype(cls.settings["dtype"]), allow_pickle=False)
        return {"id": item.id, "speaker": item.speaker, "split": item.split, "text": item.text,
                "frames": int(mel.shape[1]), "seconds": round((end - start) / sr, 4),
                "path": str(Path(item.path).resolve()), "sha1": sha1, "trim_start": int(start), "trim_end": int(end)}


def _check_ids(items: list[CorpusItem]) -> list[CorpusItem]:
    """Refuse ids that cannot name ``mels/<id>.npy`` safely, and duplicates."""
    seen: set[str] = set()
    for it in items:
        if not it.id or "/" in it.id or "\\" in it.id or it.id.startswith(".") or it.id in seen:
            why = "is duplicated" if it.id in seen else "is not a safe file name (see corpora.safe_id)"
            raise DataError(f"{it.path}: item id {it.id!r} {why}")
        seen.add(it.id)
    return items


def _shard_names(shard: tuple[int, int]) -> tuple[str, str]:
    i, n = shard
    if n == 1:
        return "manifest.jsonl", "errors.jsonl"
    return f"manifest-shard-{i}-of-{n}.jsonl", f"errors-shard-{i}-of-{n}.jsonl"


def _repair_jsonl(path: Path) -> None:
    """Cut a torn last line (left by a killed writer) so the next append starts clean."""
    if not path.exists():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    keep = data[: data.rfind(b"\n") + 1]
    write_text_atomic(path, keep.decode("utf-8", errors="replace"))


_TMP = re.compile(r"^\.(.+)\.tmp\d+\.npy$")


def _remove_stale_temps(mel_dir: Path, shard: tuple[int, int]) -> None:
    """Remove temporary mel files a killed run of this shard left behind."""
    for p in mel_dir.glob(".*.tmp*.npy"):
        m = _TMP.match(p.name)
        if m and in_shard(m.group(1), *shard):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def _check_or_write_meta(out: Path, config: MelConfig, settings: dict) -> None:
    meta = _read_meta(out)
    if meta is not None:
        meta["config"].check_compatible(config, what=f"{out / 'mel.json'} and the requested mel config")
        old = {k: meta["prepare"].get(k) for k in settings}
        diff = {k: (old[k], settings[k]) for k in settings if old[k] != settings[k]}
        if diff:
            fields = ", ".join(f"{k} ({a!r} vs {b!r})" for k, (a, b) in diff.items())
            raise DataError(f"{out / 'mel.json'}: prepared with other settings; they differ in: {fields}")
        return
    write_json_atomic(out / "mel.json", {"mel": config.to_dict(), "fingerprint": config.fingerprint(),
                                         "prepare": settings, "spectok_version": __version__})


def _results(todo: list[CorpusItem], jobs: int, config: MelConfig, settings: dict, out: Path) -> Iterator[dict]:
    """Rows for ``todo`` as they finish: in this process (``jobs == 1``) or from a process pool."""
    import torch

    threads = torch.get_num_threads()
    if jobs == 1 or len(todo) <= 1:  # one torch thread, as in the workers; restored after
        _Worker.init(config.to_dict(), settings, single_thread=True)
        try:
            yield from map(_Worker.run, todo)
        finally:
            torch.set_num_threads(threads)
        return
    _Worker.init(config.to_dict(), settings, single_thread=False)  # built here once, inherited by forks
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    size = max(1, min(16, len(todo) // (8 * jobs)))
    chunks = [todo[i: i + size] for i in range(0, len(todo), size)]
    pool = ProcessPoolExecutor(min(jobs, len(chunks)), mp_context=ctx, initializer=_Worker.init,
                               initargs=(config.to_dict(), settings, True))
    try:
        for future in as_completed([pool.submit(_Worker.run_many, c) for c in chunks]):
            yield from future.result()
    except BrokenProcessPool as e:
        raise DataError(f"{out}: a worker process died (killed, or out of memory?): {e}; finished items "
                        "are saved, run again to resume") from e
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def prepare(corpus: Iterable[CorpusItem], out_dir: str | Path, mel: MelConfig | dict | str = "hifigan-22k",
            jobs: int = 1, trim_silence_db: float | None = None, shard: tuple[int, int] = (0, 1),
            dtype: str = "float16", progress: bool | None = None) -> PrepareReport:
    """Compute the log-mel of every item of ``corpus`` (in ``shard``) into ``out_dir``.

    Args:
        corpus: a corpus from :func:`spectok.data.corpora.open_corpus`, or any iterable of items.
        out_dir: the prepared folder (created; resumed when it exists).
        mel: a MelConfig, a dict of its fields, a preset name or a YAML file.
        jobs: worker processes (1: in this process).
        trim_silence_db: trim leading/trailing audio more than this many dB below the
            loudest frame; None keeps the whole file.
        shard: ``(i, n)``: prepare only the items whose id hashes to shard ``i`` of ``n``.
        dtype: "float16" or "float32" storage of the mels.
        progress: show a tqdm bar (None: when stderr is a terminal).

    Returns:
        A :class:`PrepareReport`. Failed items are listed in the errors file, not raised.

    Raises:
        MelMismatchError / DataError: ``out_dir`` holds mels made with another config.
    """
    t0 = time.perf_counter()
    config = MelConfig.coerce(mel)
    if dtype not in DTYPES:
        raise DataError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if jobs < 1:
        raise DataError(f"jobs must be >= 1, got {jobs}")
    in_shard(".", *shard)  # validates the shard
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if isinstance(corpus, Cifar10):
        raise DataError(f"{corpus!r} is not an audio corpus (CIFAR-10 images are read with .load(split))")
    items = _check_ids([it for it in corpus if in_shard(it.id, *shard)])
    mel_dir = out / "mels"
    mel_dir.mkdir(parents=True, exist_ok=True)
    settings = {"dtype": dtype, "trim_silence_db": trim_silence_db}
    _check_or_write_meta(out, config, settings)
    manifest_name, errors_name = _shard_names(shard)
    manifest, errors = out / manifest_name, out / errors_name
    for f in (manifest, errors):
        _repair_jsonl(f)
    _remove_stale_temps(mel_dir, shard)

    finished = {r["id"] for p in out.glob("manifest*.jsonl") for r in _read_rows(p)}
    todo = [it for it in items if not (it.id in finished and (mel_dir / f"{it.id}.npy").is_file())]
    report = PrepareReport(out, skipped=len(items) - len(todo))
    worker_settings = dict(settings, mel_dir=str(mel_dir))
    from tqdm import tqdm

    with tqdm(total=len(todo), unit="file", desc="prepare", disable=None if progress is None else not progress,
              dynamic_ncols=True) as bar:
        for row in _results(todo, jobs, config, worker_settings, out):
            if "error" in row:
                append_jsonl(errors, row)
                report.failed += 1
                report.failures.append(row)
                bar.set_postfix(failed=report.failed)
            else:
                append_jsonl(manifest, row)  # after the mel is in place: a row always has its mel
                report.done += 1
                report.seconds += row["seconds"]
            bar.update(1)
    report.wall = time.perf_counter() - t0
    return report
