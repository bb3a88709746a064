"""A corpus into a token dataset: Parquet files of codes with their transcripts, ready for LM training.

:func:`tokenize_corpus` encodes every utterance of a corpus (any layout :func:`open_corpus` reads)
with one tokenizer and writes ``OUT`` as::

    OUT/dataset.json                               the dataset card (tokenizer, rates, schema)
    OUT/{split}/shard{i}of{n}-part{k:05d}.parquet   rows of one part of one shard of one split
    OUT/failures/shard{i}of{n}-part{k:05d}.jsonl    files of that part that could not be read

Row schema (one row per utterance): ``id``, ``speaker``, ``split``, ``text`` (null where the corpus
has none), ``codes`` (``[K, T']`` as K lists, the smallest unsigned integer type that holds every
codebook), ``num_samples`` (at the tokenizer's sample rate), ``duration`` (seconds).

Work is cut so that nothing needs coordinating: a machine takes the utterances whose id hashes
to its shard ``i`` of ``n`` (``--shard``, or the launcher's RANK/WORLD_SIZE or Slurm array
variables); within a shard each split's utterances, sorted by id, are cut into parts of
``part_size``. A part is the unit of work and of resume: it is encoded whole and written to a
hidden temporary name, then renamed, so after a kill at any moment every visible Parquet file
is complete, and a re-run does only the parts that are missing. Once every shard has run, the
folder is the whole dataset: readers take every ``*.parquet`` under a split folder (pyarrow,
pandas, Hugging Face ``datasets``'s ``load_dataset("parquet", data_dir=OUT)``, and
:class:`spectok.data.token_loader.TokenDataset`).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spectok._version import __version__
from spectok.audio.io import load_audio
from spectok.data.corpora import CorpusItem, in_shard
from spectok.errors import DataError, SpectokError
from spectok.fsutil import atomic_path, remove_stale_temps, write_json_atomic
from spectok.models import resolve_tokenizer
from spectok.pipeline import Pipeline
from spectok.tokenizers.loading import load_tokenizer

CARD = "dataset.json"
FORMAT = "spectok-token-dataset/1"


@dataclass(frozen=True)
class Part:
    """One unit of work: a split's utterances ``items`` written to ``path``."""

    split: str
    index: int
    items: tuple[CorpusItem, ...]
    path: Path
    failures: Path


@dataclass
class TokenizeReport:
    """What one :func:`tokenize_corpus` call did."""

    out: Path
    parts_done: int = 0
    parts_skipped: int = 0
    utterances: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    wall: float = 0.0
    failures: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.audio_seconds / max(self.wall, 1e-9)  # audio hours per hour
        return (f"{self.out}: {self.utterances} utterances tokenized ({self.audio_seconds / 3600:.2f} h of audio, "
                f"{rate:.0f} audio hours per hour) in {self.parts_done} part(s), {self.parts_skipped} already "
                f"done, {self.failed} failed")


def launcher_shard(environ: dict[str, str] | None = None) -> tuple[int, int]:
    """``(i, n)`` from the launcher that started this process: ``torchrun`` (RANK, WORLD_SIZE) or a
    Slurm array (SLURM_ARRAY_TASK_ID relative to SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT);
    ``(0, 1)`` otherwise."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" in env and "RANK" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"])
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        return (int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", 0)),
                int(env["SLURM_ARRAY_TASK_COUNT"]))
    return 0, 1


def code_dtype(codebook_sizes: list[int]) -> np.dtype:
    """The smallest unsigned integer type holding every code (``uint8`` for codebooks up to 256)."""
    top = max(codebook_sizes) - 1
    for dt in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def require_pyarrow() -> None:
    """Token datasets are Parquet: say how to get pyarrow when it is missing."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise SpectokError("token datasets need pyarrow: pip install 'spectok[tokens]'") from None


def schema(dtype: np.dtype):
    """The Parquet schema of a token dataset whose codes have ``dtype``."""
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("speaker", pa.string()), ("split", pa.string()), ("text", pa.string()),
                      ("codes", pa.list_(pa.list_(pa.from_numpy_dtype(dtype)))), ("num_samples", pa.int64()),
                      ("duration", pa.float64())])


def plan(items: list[CorpusItem], out: Path, shard: tuple[int, int], part_size: int) -> list[Part]:
    """The parts of ``shard``: each split's items of the shard, sorted by id, cut every ``part_size``."""
    i, n = shard
    by_split: dict[str, list[CorpusItem]] = {}
    for it in sorted((it for it in items if in_shard(it.id, i, n)), key=lambda it: it.id):
        by_split.setdefault(it.split, []).append(it)
    parts = []
    for split, rows in sorted(by_split.items()):
        for k in range(0, len(rows), part_size):
            name = f"shard{i}of{n}-part{k // part_size:05d}"
            parts.append(Part(split, k // part_size, tuple(rows[k:k + part_size]), out / split / f"{name}.parquet",
                              out / "failures" / f"{split}-{name}.jsonl"))
    return parts


def dataset_card(tokenizer: Any, tokenizer_name: str, corpus: str, shard_count: int, part_size: int) -> dict:
    """What ``dataset.json`` holds: enough to decode the codes and to refuse mixing tokenizers."""
    dtype = code_dtype(list(tokenizer.codebook_sizes))
    return {"format": FORMAT, "spectok_version": __version__, "tokenizer": tokenizer_name,
            "tokenizer_class": type(tokenizer).__name__, "fingerprint": tokenizer.fingerprint(),
            "sample_rate": tokenizer.mel_config.sample_rate, "frame_rate": tokenizer.frame_rate,
            "codebook_sizes": list(tokenizer.codebook_sizes), "bitrate": tokenizer.bitrate,
            "code_dtype": dtype.name, "corpus": corpus, "shards": shard_count, "part_size": part_size,
            "columns": {"id": "utterance id", "speaker": "speaker", "split": "train / valid / test",
                        "text": "transcript (null where the corpus has none)",
                        "codes": "[K, T'] token ids, K codebooks by T' columns",
                        "num_samples": "samples at sample_rate", "duration": "seconds"}}


def check_card(out: Path, card: dict) -> None:
    """Write ``OUT/dataset.json``, or refuse an existing one made with another tokenizer or sharding."""
    path = out / CARD
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        for key in ("fingerprint", "shards", "part_size", "corpus"):
            if old.get(key) != card[key]:
                raise DataError(f"{out}: already holds a token dataset with {key} {old.get(key)!r}, not "
                                f"{card[key]!r}; choose another output folder")
        return
    write_json_atomic(path, card)


class _Worker:
    """Per-process state: the pipeline, built once per process."""

    pipe = None
    dtype: np.dtype | None = None

    @classmethod
    def init(cls, tokenizer: str, single_thread: bool) -> None:
        import torch


        if single_thread:
            torch.set_num_threads(1)
        if cls.pipe is None:
            cls.pipe = Pipeline(load_tokenizer(resolve_tokenizer(tokenizer)))
            cls.dtype = code_dtype(list(cls.pipe.tokenizer.codebook_sizes))

    @classmethod
    def run(cls, part: Part) -> dict:
        """Encode and write one part; ``{"rows", "seconds", "failures"}``."""
        import pyarrow as pa
        import pyarrow.parquet as pq


        rows: dict[str, list] = {k: [] for k in schema(cls.dtype).names}
        failures = []
        sr = cls.pipe.sample_rate
        for it in part.items:
            try:
                wav, _ = load_audio(it.path, sr)
                tokens = cls.pipe.encode(wav, sample_rate=sr)
            except Exception as e:  # noqa: BLE001  (one bad file must not stop the run; the reason is kept)
                failures.append(it.failure(e))
                continue
            for key, value in (("id", it.id), ("speaker", it.speaker), ("split", it.split), ("text", it.text),
                               ("codes", list(np.asarray(tokens.codes).astype(cls.dtype))),
                               ("num_samples", int(tokens.num_samples)), ("duration", tokens.num_samples / sr)):
                rows[key].append(value)
        table = pa.Table.from_pydict(rows, schema=schema(cls.dtype))
        if failures:
            with atomic_path(part.failures) as tmp:
                tmp.write_text("".join(json.dumps(f) + "\n" for f in failures), encoding="utf-8")
        with atomic_path(part.path, durable=True) as tmp:  # visible only once whole
            pq.write_table(table, tmp, compression="zstd")
        return {"rows": table.num_rows, "seconds": float(sum(rows["duration"])), "failures": failures}


def tokenize_corpus(items: Iterable[CorpusItem], out: str | os.PathLike, tokenizer: str = "default",
                    corpus: str = "custom", shard: tuple[int, int] = (0, 1), jobs: int = 1, part_size: int = 64,
                    progress: bool | None = None) -> TokenizeReport:
    """Encode ``items`` (the ones in ``shard``) with ``tokenizer`` into the token dataset ``out``.

    Args:
        items: a corpus (:func:`spectok.data.corpora.open_corpus`) or any iterable of items.
        out: the dataset folder (created; resumed when it exists).
        tokenizer: a released model's name or a tokenizer artifact.
        corpus: the corpus layout's name, recorded in the card.
        shard: ``(i, n)``: this machine's shard (see :func:`launcher_shard`).
        jobs: worker processes, each with one torch thread (1: this process, its threads).
        part_size: utterances per Parquet file (the unit of resume).
        progress: a tqdm bar with utterances/s and audio hours/s (None: when stderr is a terminal).

    Returns:
        A :class:`TokenizeReport`; unreadable files are listed there and in ``OUT/failures/``.

    Raises:
        DataError: ``out`` holds a dataset made with another tokenizer, sharding or corpus.
    """
    from tqdm import tqdm


    t0 = time.perf_counter()
    require_pyarrow()
    if jobs < 1 or part_size < 1:
        raise DataError(f"jobs and part_size must be >= 1 (got {jobs}, {part_size})")
    in_shard(".", *shard)  # validates the shard
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    tok = load_tokenizer(resolve_tokenizer(tokenizer))
    if getattr(tok, "mel_config", None) is None:
        raise DataError(f"{tokenizer}: an image tokenizer; token datasets are made of speech")
    out.mkdir(parents=True, exist_ok=True)
    check_card(out, dataset_card(tok, str(tokenizer), corpus, shard[1], part_size))
    for folder in out.iterdir():  # temporaries of killed writers (a live shard's on this machine are kept)
        if folder.is_dir():
            remove_stale_temps(folder)
    parts = plan(list(items), out, shard, part_size)
    todo = [p for p in parts if not p.path.is_file()]
    report = TokenizeReport(out, parts_skipped=len(parts) - len(todo))
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = None
    if jobs > 1 and len(todo) > 1:
        _Worker.init(str(tokenizer), single_thread=False)  # loaded once, inherited by the forks
        pool = ProcessPoolExecutor(min(jobs, len(todo)), mp_context=ctx, initializer=_Worker.init,
                                   initargs=(str(tokenizer), True))
    try:
        with tqdm(total=sum(len(p.items) for p in todo), unit="utt", desc="tokenize", dynamic_ncols=True,
                  disable=None if progress is None else not progress) as bar:
            if pool is None:
                _Worker.init(str(tokenizer), single_thread=False)
                results = (_Worker.run(p) for p in todo)
            else:
                results = (f.result() for f in as_completed([pool.submit(_Worker.run, p) for p in todo]))
            for res in results:
                report.parts_done += 1
                report.utterances += res["rows"]
                report.failed += len(res["failures"])
                report.failures += res["failures"]
                report.audio_seconds += res["seconds"]
                bar.update(res["rows"] + len(res["failures"]))
                elapsed = max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(audio_h_per_s=f"{report.audio_seconds / 3600 / elapsed:.4f}", failed=report.failed)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    report.wall = time.perf_counter() - t0
    return report
