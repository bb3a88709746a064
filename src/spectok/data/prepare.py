"""Feature preparation: a corpus -> a prepared folder of log-mels (read it with
:func:`open_prepared`; the layout and the manifest fields are described in
:mod:`spectok.data.prepared`).

Parallel: a process pool (forked workers, one torch thread each) computes mels; only
this process writes the manifest. Resumable: ids with a manifest row and a mel file are
skipped. Kill safety: mels are written under a temporary name and renamed; a manifest
row is appended (written whole, flushed, fsync'ed every second) only after its mel is in
place, so a row always has its mel; a torn last line left by a kill, and temporary
files of this shard, are removed when the next run starts. Shards (``shard=(i, n)``)
take the ids whose hash falls in shard ``i`` and write their own manifest and errors
files, so several machines can fill one folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spectok._version import __version__
from spectok.audio.io import load_audio
from spectok.audio.mel import MelConfig, MelSpectrogram
from spectok.data.corpora import Cifar10, CorpusItem, in_shard
from spectok.data.prepared import PreparedSet, open_prepared, read_meta, read_rows
from spectok.errors import DataError
from spectok.fsutil import atomic_path, write_json_atomic, write_text_atomic
from spectok.inference.chunking import ChunkedMel, array_reader, spans

#: longest clip, in mel frames, whose STFT is computed in one piece; longer ones go in pieces of
#: this size, with the same features (:class:`~spectok.inference.chunking.ChunkedMel`)
MEL_CHUNK_FRAMES = 1024

DTYPES = ("float16", "float32")
__all__ = ["DTYPES", "PrepareReport", "PreparedSet", "open_prepared", "prepare", "trim_bounds"]


@dataclass
class PrepareReport:
    """What one :func:`prepare` run did. ``seconds`` counts audio prepared in this run."""

    out_dir: Path
    done: int = 0
    skipped: int = 0
    failed: int = 0
    changed: int = 0  #: of ``done``: items redone because their source file changed since prepared
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
        redone = f" ({self.changed} redone: source changed)" if self.changed else ""
        return (f"{self.out_dir}: {self.done} prepared{redone} ({amount} of audio{speed}), "
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
    block = max(1, 2 ** 22 // frame_length)  # frames per block: bounded memory on long files
    energy = np.concatenate([np.mean(np.square(frames[i:i + block], dtype=np.float64), axis=1)
                             for i in range(0, len(frames), block)])
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
        except Exception as e:  # noqa: BLE001  (one bad file must not stop the run; the reason is kept)
            return item.failure(e)

    @classmethod
    def run_many(cls, items: list[CorpusItem]) -> list[dict]:
        return [cls.run(it) for it in items]

    @classmethod
    def _prepare(cls, item: CorpusItem) -> dict:
        import torch


        cfg: MelConfig = cls.mel.config
        stamp = source_stamp(item.path)
        with open(item.path, "rb") as f:
            sha1 = hashlib.file_digest(f, "sha1").hexdigest()
        wav, sr = load_audio(item.path, cfg.sample_rate)
        start, end = 0, len(wav)
        if cls.settings["trim_silence_db"] is not None:
            start, end = trim_bounds(wav, cls.settings["trim_silence_db"], cfg.win_length, cfg.hop_length)
        clip = wav[start:end]
        out = Path(cls.settings["mel_dir"]) / f"{item.id}.npy"
        dtype = cls.settings["dtype"]
        if cfg.num_frames(len(clip)) <= MEL_CHUNK_FRAMES:
            with torch.inference_mode():
                mel = cls.mel(torch.from_numpy(clip))[0].numpy()
            with atomic_path(out) as tmp, open(tmp, "wb") as f:
                np.save(f, mel.astype(dtype), allow_pickle=False)
            frames = mel.shape[1]
        else:  # long files: the STFT in pieces (float64 spectra of a whole hour would take ~3 GB), each
            # piece written into the .npy at once (the same file np.save writes; no whole mel in memory)
            chunked = ChunkedMel(cls.mel, array_reader(clip), len(clip))
            frames = chunked.num_frames
            with atomic_path(out) as tmp:
                arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(cfg.n_mels, frames))
                for a, b in spans(frames, MEL_CHUNK_FRAMES):
                    arr[:, a:b] = chunked.frames(a, b).numpy().astype(dtype)
                arr.flush()
                del arr
        return {"id": item.id, "speaker": item.speaker, "split": item.split, "text": item.text,
                "frames": int(frames), "seconds": round((end - start) / sr, 4),
                "path": str(Path(item.path).resolve()), "sha1": sha1, "trim_start": int(start), "trim_end": int(end),
                **stamp}


def source_stamp(path: str | Path) -> dict:
    """``{"source_bytes", "source_mtime_ns"}`` of a source file ({} when it cannot be read)."""
    try:
        st = os.stat(path)
    except OSError:
        return {}
    return {"source_bytes": st.st_size, "source_mtime_ns": st.st_mtime_ns}


def _source_changed(row: dict, item: CorpusItem) -> bool:
    """Whether ``item``'s file differs (size or modification time) from when ``row`` was prepared.

    A row without these fields never counts as changed (there is nothing to compare); a source
    that is gone does (its retry is then reported as a failure, and the earlier mel is kept).
    """
    if "source_bytes" not in row:
        return False
    now = source_stamp(item.path)
    return now.get("source_bytes") != row["source_bytes"] or now.get("source_mtime_ns") != row.get("source_mtime_ns")


class _Appender:
    """Appends JSON lines to a file, each written whole and flushed (a killed process loses at most
    a torn last line, which :func:`_repair_jsonl` cuts), fsync'ed at most every ``sync_every`` s
    and on close: ``fsutil.append_jsonl``'s fsync per row would cost ms per row, more than the
    mel of a short clip."""

    def __init__(self, path: Path, sync_every: float = 1.0) -> None:
        self.path, self.sync_every, self.f, self.synced = path, sync_every, None, time.monotonic()

    def write(self, row: dict) -> None:
        if self.f is None:
            self.f = open(self.path, "a", encoding="utf-8")
        self.f.write(json.dumps(row, sort_keys=True) + "\n")
        self.f.flush()
        if time.monotonic() - self.synced > self.sync_every:
            os.fsync(self.f.fileno())
            self.synced = time.monotonic()

    def close(self) -> None:
        if self.f is not None:
            os.fsync(self.f.fileno())
            self.f.close()
            self.f = None


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
    meta = read_meta(out)
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


def _start_pool(todo: list[CorpusItem], jobs: int, config: MelConfig, settings: dict):
    """Fork ``jobs`` workers and submit ``todo`` in chunks; ``(pool, futures)``, or ``(None, [])``
    for ``jobs == 1``. Called before the progress bar starts its thread: forking a process
    that runs other threads can deadlock the children."""
    if jobs == 1 or len(todo) <= 1:
        return None, []
    _Worker.init(config.to_dict(), settings, single_thread=False)  # built here once, inherited by forks
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    size = max(1, min(16, len(todo) // (8 * jobs)))
    chunks = [todo[i: i + size] for i in range(0, len(todo), size)]
    pool = ProcessPoolExecutor(min(jobs, len(chunks)), mp_context=ctx, initializer=_Worker.init,
                               initargs=(config.to_dict(), settings, True))
    return pool, [pool.submit(_Worker.run_many, c) for c in chunks]


def _results(todo: list[CorpusItem], futures: list, config: MelConfig, settings: dict, out: Path) -> Iterator[dict]:
    """Rows as they finish: from the pool's ``futures``, or computed here when there are none."""
    if futures:
        try:
            for future in as_completed(futures):
                yield from future.result()
        except BrokenProcessPool as e:
            raise DataError(f"{out}: a worker process died (killed, or out of memory?): {e}; finished items "
                            "are saved, run again to resume") from e
        return
    import torch

    threads = torch.get_num_threads()
    _Worker.init(config.to_dict(), settings, single_thread=True)  # one thread, as in the workers
    try:
        yield from map(_Worker.run, todo)
    finally:
        torch.set_num_threads(threads)


def prepare(corpus: Iterable[CorpusItem], out_dir: str | Path, mel: MelConfig | dict | str = "speech-16k",
            jobs: int = 1, trim_silence_db: float | None = None, shard: tuple[int, int] = (0, 1),
            dtype: str = "float16", progress: bool | None = None,
            selection: dict | None = None) -> PrepareReport:
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
        selection: how ``corpus`` was subset (e.g. ``{"speakers": [...], "max_per_speaker": 20,
            "seed": 0}``), recorded in ``mel.json``; resuming with another selection is refused.

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
    settings = {"dtype": dtype, "trim_silence_db": trim_silence_db, "selection": selection}
    _check_or_write_meta(out, config, settings)
    manifest_name, errors_name = _shard_names(shard)
    manifest, errors = out / manifest_name, out / errors_name
    for f in (manifest, errors):
        _repair_jsonl(f)
    _remove_stale_temps(mel_dir, shard)

    finished = {r["id"]: r for p in sorted(out.glob("manifest*.jsonl")) for r in read_rows(p)}  # last row wins
    changed = {it.id for it in items if it.id in finished and _source_changed(finished[it.id], it)}
    todo = [it for it in items
            if it.id in changed or not (it.id in finished and (mel_dir / f"{it.id}.npy").is_file())]
    report = PrepareReport(out, skipped=len(items) - len(todo))
    worker_settings = dict(settings, mel_dir=str(mel_dir))
    from tqdm import tqdm

    rows, failures = _Appender(manifest), _Appender(errors)
    pool, futures = _start_pool(todo, jobs, config, worker_settings)
    try:
        with tqdm(total=len(todo), unit="file", desc="prepare", dynamic_ncols=True,
                  disable=None if progress is None else not progress) as bar:
            for row in _results(todo, futures, config, worker_settings, out):
                if "error" in row:
                    failures.write(row)
                    report.failed += 1
                    report.failures.append(row)
                    bar.set_postfix(failed=report.failed)
                else:
                    rows.write(row)  # after the mel is in place: a row always has its mel
                    report.done += 1
                    report.changed += row["id"] in changed
                    report.seconds += row["seconds"]
                bar.update(1)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        rows.close()
        failures.close()
    report.wall = time.perf_counter() - t0
    return report
