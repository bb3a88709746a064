"""Corpus readers: one small class per corpus, each listing :class:`CorpusItem` rows.

Every audio corpus yields items ``(id, path, speaker, split, text)`` sorted by id. Ids are
unique and filesystem-safe (they name ``OUT/mels/<id>.npy``). Corpora with an official
split use it (LibriSpeech subset names, Speech Commands lists, FSDD's recordings 0-4);
the others get a deterministic split from a hash of the id, so the same file lands in
the same split on every machine and every run (:func:`hash_split`).

CIFAR-10 is the one image corpus: :meth:`Cifar10.load` returns uint8 images and labels.
"""

from __future__ import annotations

import csv
import hashlib
import pickle
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from spectok.audio.io import AUDIO_EXTENSIONS
from spectok.errors import DataError, SpectokError

SPLITS = ("train", "valid", "test")
_SAFE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True)
class CorpusItem:
    """One recording of a corpus.

    Attributes:
        id: unique, filesystem-safe name (no "/", no leading "."): the mel is ``mels/<id>.npy``.
        path: absolute path of the source audio file.
        speaker: speaker name (a voice folder, a LibriSpeech speaker number, ...).
        split: "train", "valid" or "test".
        text: transcript or label where the corpus has one, else ``None``.
    """

    id: str
    path: Path
    speaker: str
    split: str
    text: str | None = None

    def failure(self, error: BaseException) -> dict:
        """``{"id", "path", "error"}`` for a failure record: the reason always names this item's file
        (a spectok error as it is, another with its type)."""
        reason = str(error) if isinstance(error, SpectokError) else f"{type(error).__name__}: {error}"
        if not reason.startswith(str(self.path)):
            reason = f"{self.path}: {reason}"
        return {"id": self.id, "path": str(self.path), "error": reason}


def safe_id(name: str) -> str:
    """Make ``name`` a filesystem-safe id: "/" becomes "__", other odd characters "_"."""
    s = _SAFE.sub("_", name.replace("\\", "/").replace("/", "__"))
    return "_" + s[1:] if s.startswith(".") else s


def unit_hash(key: str, salt: str = "split") -> float:
    """A stable number in [0, 1) from ``key`` (sha1; independent of Python's hash seed)."""
    digest = hashlib.sha1(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def hash_split(ids: list[str], valid: float = 0.05, test: float = 0.05) -> dict[str, str]:
    """Assign each id to "train", "valid" or "test" from a hash of the id.

    An id goes to valid when its hash is below ``valid``, to test when below
    ``valid + test``, else to train. Small corpora are fixed up deterministically: with
    at least 2 ids and ``valid > 0`` valid is never empty, with at least 3 and ``test > 0``
    test is never empty (the train ids with the smallest hashes move), and train keeps
    at least one id.
    """
    if valid < 0 or test < 0 or valid + test >= 1:
        raise DataError(f"split ratios must be >= 0 and leave room for train (valid {valid}, test {test})")
    h = {i: unit_hash(i) for i in ids}
    out = {i: "valid" if u < valid else "test" if u < valid + test else "train" for i, u in h.items()}
    for name, ratio, needed in (("valid", valid, 2), ("test", test, 3)):
        if ratio > 0 and len(ids) >= needed and name not in out.values():
            train = sorted((u, i) for i, u in h.items() if out[i] == "train")
            if len(train) > 1:
                out[train[0][1]] = name
    return out


def select_items(items: list[CorpusItem], speakers: list[str] | None = None, num_speakers: int | None = None,
                 max_per_speaker: int | None = None, seed: int = 0) -> list[CorpusItem]:
    """A deterministic subset: the named ``speakers`` (or ``num_speakers`` of them, chosen by a hash of
    the speaker and ``seed``), with at most ``max_per_speaker`` utterances each (chosen the same way).

    Raises:
        DataError: a named speaker is not in the corpus, or a count is below 1.
    """
    present = sorted({it.speaker for it in items})
    if speakers is not None:
        missing = sorted(set(speakers) - set(present))
        if missing:
            raise DataError(f"speakers {missing} are not in the corpus (it has {len(present)}: "
                            f"{', '.join(present[:12])}{', ...' if len(present) > 12 else ''})")
        chosen = set(speakers)
    elif num_speakers is not None:
        if num_speakers < 1:
            raise DataError(f"--num-speakers must be >= 1, got {num_speakers}")
        chosen = set(sorted(present, key=lambda sp: unit_hash(sp, f"speakers-{seed}"))[:num_speakers])
    else:
        chosen = set(present)
    out = [it for it in items if it.speaker in chosen]
    if max_per_speaker is not None:
        if max_per_speaker < 1:
            raise DataError(f"--max-per-speaker must be >= 1, got {max_per_speaker}")
        by_speaker: dict[str, list[CorpusItem]] = {}
        for it in sorted(out, key=lambda it: unit_hash(it.id, f"utterances-{seed}")):
            by_speaker.setdefault(it.speaker, []).append(it)
        keep = {it.id for group in by_speaker.values() for it in group[:max_per_speaker]}
        out = [it for it in out if it.id in keep]
    return out


def in_shard(item_id: str, index: int, count: int) -> bool:
    """True when ``item_id`` belongs to shard ``index`` of ``count`` (a hash of the id)."""
    if not 0 <= index < count:
        raise DataError(f"shard {index}/{count}: need 0 <= index < count")
    return int(unit_hash(item_id, "shard") * 2**32) % count == index


class Corpus:
    """Base class of the audio corpora. Subclasses implement :meth:`scan`.

    Args:
        root: the corpus folder, laid out as the original corpus lays itself out.
        valid_ratio, test_ratio: fractions for the hash split of corpora without an official one.
    """

    name: ClassVar[str] = ""

    def __init__(self, root: str | Path, valid_ratio: float = 0.05, test_ratio: float = 0.05) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise DataError(f"{self.root}: {self.name} corpus root is not a folder (missing or not a directory)")
        self.valid_ratio = valid_ratio
        self.test_ratio = test_ratio
        self._items: list[CorpusItem] | None = None

    def scan(self) -> list[CorpusItem]:
        """List the corpus's items (any order). Raises DataError on a malformed layout."""
        raise NotImplementedError

    def items(self) -> list[CorpusItem]:
        """All items, sorted by id; cached. Raises DataError on an empty corpus or duplicate ids."""
        if self._items is None:
            items = sorted(self.scan(), key=lambda it: it.id)
            if not items:
                raise DataError(f"{self.root}: no audio found for the {self.name} layout")
            dupes = sorted({a.id for a, b in zip(items, items[1:]) if a.id == b.id})
            if dupes:
                raise DataError(f"{self.root}: duplicate item ids {dupes[:5]} (files whose names clash)")
            self._items = items
        return self._items

    def split_by_hash(self, rows: list[tuple[str, Path, str, str | None]]) -> list[CorpusItem]:
        """Build items from ``(id, path, speaker, text)`` rows with the hash split."""
        split = hash_split([r[0] for r in rows], self.valid_ratio, self.test_ratio)
        return [CorpusItem(i, p, s, split[i], t) for i, p, s, t in rows]

    def __iter__(self) -> Iterator[CorpusItem]:
        return iter(self.items())

    def __len__(self) -> int:
        return len(self.items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"


def _audio_files(folder: Path) -> list[Path]:
    """Audio files under ``folder``, recursively, skipping hidden files and folders."""
    return [p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)]


class LJSpeech(Corpus):
    """LJSpeech: ``metadata.csv`` (``id|text|normalized``) and ``wavs/<id>.wav`` (or ``.flac``).

    One speaker ("LJ"); hash split. The normalised text is the item's text.
    """

    name = "ljspeech"

    def scan(self) -> list[CorpusItem]:
        meta = self.root / "metadata.csv"
        if not meta.is_file():
            raise DataError(f"{meta}: missing (an LJSpeech root holds metadata.csv and wavs/)")
        rows = []
        with open(meta, encoding="utf-8", newline="") as f:
            for n, fields in enumerate(csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE), 1):
                if not fields or not fields[0].strip():
                    continue
                if len(fields) < 2:
                    raise DataError(f"{meta}:{n}: expected 'id|text|normalized', got {'|'.join(fields)!r}")
                uid = fields[0].strip()
                path = next((p for ext in (".wav", ".flac") if (p := self.root / "wavs" / f"{uid}{ext}").is_file()),
                            None)
                if path is None:
                    raise DataError(f"{self.root / 'wavs' / uid}.wav: listed in {meta} but missing")
                rows.append((safe_id(uid), path, "LJ", fields[-1]))
        return self.split_by_hash(rows)


class LibriSpeech(Corpus):
    """LibriSpeech: ``[SUBSET/]SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac``, transcripts optional.

    The root may be the LibriSpeech folder (holding subsets) or one subset. The split
    comes from the subset name (``train-*``, ``dev-*``, ``test-*``), else from the hash.
    When no ``dev-*`` (or ``test-*``) subset is present, valid (or test) is held out of
    the training items by the hash, with the configured ratios, so training always has
    a validation set. Texts come from ``SPEAKER-CHAPTER.trans.txt`` where present.
    """

    name = "librispeech"
    _NAME = re.compile(r"^(\d+)-(\d+)-(\d+)$")
    _SUBSET_SPLIT = {"train": "train", "dev": "valid", "test": "test"}

    def scan(self) -> list[CorpusItem]:
        found = [p for p in self.root.rglob("*.flac") if self._NAME.match(p.stem)]
        texts: dict[str, str] = {}
        for trans in self.root.rglob("*.trans.txt"):
            for line in trans.read_text(encoding="utf-8").splitlines():
                uid, _, text = line.partition(" ")
                texts[uid] = text
        hashed, items = [], []
        for p in found:
            speaker, chapter, _ = self._NAME.match(p.stem).groups()
            if p.parent.name != chapter or p.parent.parent.name != speaker:
                raise DataError(f"{p}: not in the SPEAKER/CHAPTER folder its name gives ({speaker}/{chapter})")
            subset = p.parent.parent.parent.name.split("-")[0]
            row = (p.stem, p, speaker, texts.get(p.stem))
            if subset in self._SUBSET_SPLIT:
                items.append(CorpusItem(*row[:3], self._SUBSET_SPLIT[subset], row[3]))
            else:
                hashed.append(row)
        have = {it.split for it in items}
        if items and not {"valid", "test"} <= have:
            train = [it for it in items if it.split == "train"]
            held = hash_split([it.id for it in train], 0.0 if "valid" in have else self.valid_ratio,
                              0.0 if "test" in have else self.test_ratio)
            items = [it for it in items if it.split != "train"] + [
                CorpusItem(it.id, it.path, it.speaker, held[it.id], it.text) for it in train]
        return items + self.split_by_hash(hashed)


class L2Arctic(Corpus):
    """L2-ARCTIC: ``SPEAKER/wav/*.wav`` (transcripts in ``SPEAKER/transcript/*.txt`` where present).

    Ids are ``SPEAKER_UTT``; hash split.
    """

    name = "l2arctic"

    def scan(self) -> list[CorpusItem]:
        rows = []
        for wav in self.root.glob("*/wav/*.wav"):
            speaker = wav.parent.parent.name
            trans = wav.parent.parent / "transcript" / f"{wav.stem}.txt"
            text = trans.read_text(encoding="utf-8").strip() if trans.is_file() else None
            rows.append((safe_id(f"{speaker}_{wav.stem}"), wav, speaker, text))
        return self.split_by_hash(rows)


class SpeechCommands(Corpus):
    """Speech Commands: ``WORD/SPEAKER_nohash_N.wav``, ``testing_list.txt``, ``validation_list.txt``.

    Files in the lists go to test / valid, the rest to train; ``_background_noise_`` is
    excluded. Ids are ``WORD__SPEAKER_nohash_N``; the text is the word.
    """

    name = "speech_commands"

    def _list(self, name: str) -> set[str]:
        p = self.root / name
        if not p.is_file():
            raise DataError(f"{p}: missing (the official Speech Commands split lists are required)")
        return {line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()}

    def scan(self) -> list[CorpusItem]:
        test, valid = self._list("testing_list.txt"), self._list("validation_list.txt")
        items = []
        for wav in self.root.glob("*/*.wav"):
            word = wav.parent.name
            if word.startswith("_"):
                continue  # _background_noise_
            rel = f"{word}/{wav.name}"
            split = "test" if rel in test else "valid" if rel in valid else "train"
            speaker = wav.stem.split("_nohash_")[0]
            items.append(CorpusItem(safe_id(f"{word}/{wav.stem}"), wav, speaker, split, word))
        return items


class FSDD(Corpus):
    """Free Spoken Digit Dataset: ``[recordings/]DIGIT_SPEAKER_INDEX.wav``.

    Official split: recordings with index 0-4 are test; of the rest, a hash picks valid
    (``valid_ratio``). The text is the digit.
    """

    name = "fsdd"
    _NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)$")

    def scan(self) -> list[CorpusItem]:
        folder = self.root / "recordings" if (self.root / "recordings").is_dir() else self.root
        rows = []
        for wav in folder.glob("*.wav"):
            m = self._NAME.match(wav.stem)
            if m is None:
                raise DataError(f"{wav}: name is not DIGIT_SPEAKER_INDEX.wav")
            rows.append((wav.stem, wav, m.group(2), m.group(1), int(m.group(3))))
        rest = [r for r in rows if r[4] >= 5]
        split = hash_split([r[0] for r in rest], self.valid_ratio, 0.0)
        return [CorpusItem(i, p, s, "test" if n < 5 else split[i], t) for i, p, s, t, n in rows]


class Folder(Corpus):
    """Any audio files under a folder, recursively.

    The id is the relative path without suffix, "/" -> "__" (``a/b/c.wav`` -> ``a__b__c``);
    the speaker is the parent folder's name (the root's own name for files at the top);
    hash split. Hidden files and folders are skipped. A ``metadata.csv`` at the root
    (``id|...|text``, ids as this class makes them) gives the texts, as in the demo corpus.
    """

    name = "folder"

    def scan(self) -> list[CorpusItem]:
        texts = {}
        meta = self.root / "metadata.csv"
        if meta.is_file():
            for line in meta.read_text(encoding="utf-8").splitlines():
                fields = line.split("|")
                if len(fields) >= 2:
                    texts[fields[0].strip()] = fields[-1]
        rows = []
        for p in _audio_files(self.root):
            uid = safe_id(p.relative_to(self.root).with_suffix("").as_posix())
            rows.append((uid, p, p.parent.name, texts.get(uid)))
        return self.split_by_hash(rows)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR-10 batches (dicts, lists, numpy arrays) and refuses anything else."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle protocol)
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


class Cifar10:
    """CIFAR-10 in the official Python pickle batches (``data_batch_1..5``, ``test_batch``, ``batches.meta``).

    ``load("train")`` reads every ``data_batch_*`` present minus a deterministic held-out
    ``valid_ratio`` of it (hash of the batch name and index), ``load("valid")`` that
    held-out part, ``load("test")`` the ``test_batch``. With ``valid_ratio=0`` train is the
    official training set. Pickles are read with an unpickler that only admits numpy arrays.
    """

    name = "cifar10"

    def __init__(self, root: str | Path, valid_ratio: float = 0.05, test_ratio: float = 0.0) -> None:
        self.root = Path(root).expanduser().resolve()
        if not (self.root / "batches.meta").is_file():
            raise DataError(f"{self.root}: not a CIFAR-10 folder (batches.meta missing)")
        self.valid_ratio = valid_ratio

    @property
    def label_names(self) -> list[str]:
        meta = self._read(self.root / "batches.meta")
        return [n.decode() for n in meta[b"label_names"]]

    def _read(self, path: Path) -> dict:
        try:
            with open(path, "rb") as f:
                return _ArrayUnpickler(f, encoding="bytes").load()
        except (OSError, pickle.UnpicklingError, EOFError, ValueError) as e:
            raise DataError(f"{path}: cannot read CIFAR-10 batch ({e})") from e

    def _batch(self, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self._read(path)
        try:
            data = np.asarray(d[b"data"], dtype=np.uint8)
            labels = np.asarray(d[b"labels"], dtype=np.int64)
            images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        except (KeyError, ValueError) as e:
            raise DataError(f"{path}: malformed CIFAR-10 batch ({e})") from e
        if len(images) != len(labels):
            raise DataError(f"{path}: {len(images)} images but {len(labels)} labels")
        held = np.array([unit_hash(f"{path.name}/{i}") < self.valid_ratio for i in range(len(labels))], dtype=bool)
        return np.ascontiguousarray(images), labels, held

    def load(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Images ``[N, 32, 32, 3]`` uint8 (HWC, RGB) and labels ``[N]`` int64 in 0..9."""
        if split == "test":
            images, labels, _ = self._batch(self._need(self.root / "test_batch"))
            return images, labels
        if split not in ("train", "valid"):
            raise DataError(f"cifar10: unknown split {split!r}; choose train, valid or test")
        batches = sorted(self.root.glob("data_batch_*"))
        if not batches:
            raise DataError(f"{self.root}: no data_batch_* files")
        parts = [self._batch(b) for b in batches]
        keep = [(h if split == "valid" else ~h) for _, _, h in parts]
        return (np.concatenate([im[k] for (im, _, _), k in zip(parts, keep)]),
                np.concatenate([lb[k] for (_, lb, _), k in zip(parts, keep)]))

    @staticmethod
    def _need(p: Path) -> Path:
        if not p.is_file():
            raise DataError(f"{p}: missing")
        return p


CORPORA: dict[str, type] = {c.name: c for c in (LJSpeech, LibriSpeech, L2Arctic, SpeechCommands, FSDD, Folder,
                                                 Cifar10)}


def open_corpus(name: str, root: str | Path, **kwargs) -> Corpus | Cifar10:
    """Open corpus ``name`` (a key of :data:`CORPORA`) at ``root``; kwargs go to its class."""
    try:
        cls = CORPORA[name]
    except KeyError:
        raise DataError(f"unknown corpus {name!r}; choose one of {', '.join(sorted(CORPORA))}") from None
    return cls(root, **kwargs)
