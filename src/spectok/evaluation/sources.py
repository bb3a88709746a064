"""What ``spectok eval`` evaluates: utterances from prepared folders, audio folders or files.

Each DATA argument is one of:

- a **prepared folder** (``spectok prepare`` output, recognised by its ``mel.json``): its
  ``test`` split when that has items, else ``valid``, else every item. The utterance is the
  source audio named in the manifest, cut to the same trim bounds the stored mel used; the
  stored mels themselves are not read (the reference mel is recomputed with the
  tokenizer's front end, so a folder prepared with another front end or in float16 still
  gives exact references). Items whose preparation failed are listed as skipped.
- a **folder of audio**, searched recursively for :data:`~spectok.audio.io.AUDIO_EXTENSIONS`
  (other files are ignored; audio-named files that cannot be decoded are skipped later, and
  listed);
- a single **audio file**.

Items are sorted by id within each argument; ``limit`` keeps the first N overall.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spectok.audio.io import AUDIO_EXTENSIONS
from spectok.data.prepare import open_prepared
from spectok.errors import DataError

SPLIT_ORDER = ("test", "valid")


@dataclass(frozen=True)
class EvalItem:
    """One utterance to evaluate.

    Attributes:
        id: unique name in the report (manifest id, or the path relative to its folder).
        path: source audio file.
        trim: ``(start, end)`` sample bounds at ``trim_rate`` Hz, or ``None`` for the whole file.
        trim_rate: the rate the bounds count samples at (the prepared folder's mel rate).
    """

    id: str
    path: Path
    trim: tuple[int, int] | None = None
    trim_rate: int | None = None

    def bounds(self, sample_rate: int, num_samples: int) -> tuple[int, int]:
        """The trim bounds converted to ``sample_rate`` and clipped to ``num_samples``."""
        if self.trim is None or self.trim_rate is None:
            return 0, num_samples
        scale = sample_rate / self.trim_rate
        start, end = round(self.trim[0] * scale), round(self.trim[1] * scale)
        return max(0, min(start, num_samples)), max(0, min(end, num_samples))


@dataclass
class Collection:
    """Items found, what each DATA argument was, and files skipped before evaluation."""

    items: list[EvalItem]
    sources: list[dict]
    skipped: list[dict]


def _prepared(root: Path, prefix: str) -> tuple[list[EvalItem], dict, list[dict]]:
    ps = open_prepared(root)
    split, rows = "all", ps.records
    for name in SPLIT_ORDER:
        if ps.split(name):
            split, rows = name, ps.split(name)
            break
    rate = ps.mel_config.sample_rate
    items = []
    for r in rows:
        trim = (int(r["trim_start"]), int(r["trim_end"])) if "trim_start" in r and "trim_end" in r else None
        items.append(EvalItem(prefix + r["id"], Path(r["path"]), trim, rate if trim else None))
    skipped = [{"id": prefix + str(e.get("id")), "path": str(e.get("path", "")),
                "reason": f"failed in 'spectok prepare': {e.get('error', 'unknown reason')}"} for e in ps.errors]
    source = {"path": str(root), "kind": "prepared", "split": split, "items": len(items),
              "mel_fingerprint": ps.mel_config.fingerprint()}
    return items, source, skipped


def _folder(root: Path, prefix: str) -> tuple[list[EvalItem], dict]:
    files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS
                   and not any(part.startswith(".") for part in f.relative_to(root).parts))
    items = [EvalItem(prefix + f.relative_to(root).with_suffix("").as_posix(), f) for f in files]
    return items, {"path": str(root), "kind": "audio-folder", "split": None, "items": len(items)}


def collect(data: Sequence[str | os.PathLike], limit: int | None = None) -> Collection:
    """Find the utterances of every DATA argument (see the module doc).

    With more than one argument, ids are prefixed with the argument's folder name (and its
    position when two share a name) so they stay unique.

    Raises:
        DataError: nothing evaluable was found at all (a missing argument alone is reported in
            ``skipped`` and the others go on).
    """
    if limit is not None and limit < 1:
        raise DataError(f"--limit must be >= 1, got {limit}")
    roots = [Path(d) for d in data]
    if not roots:
        raise DataError("no DATA given: name a prepared folder, a folder of audio or audio files")
    names = [r.name or str(r) for r in roots]
    items: list[EvalItem] = []
    sources: list[dict] = []
    skipped: list[dict] = []
    for i, root in enumerate(roots):
        prefix = ""
        if len(roots) > 1:
            prefix = f"{names[i]}/" if names.count(names[i]) == 1 else f"{i}-{names[i]}/"
        if not root.exists():  # reported and skipped: the other arguments are still evaluated
            skipped.append({"id": prefix + (root.stem or str(root)), "path": str(root),
                            "reason": "no such file or folder"})
            continue
        if root.is_dir() and (root / "mel.json").is_file():
            found, source, bad = _prepared(root, prefix)
            skipped += bad
        elif root.is_dir():
            found, source = _folder(root, prefix)
        else:
            found = [EvalItem(prefix + root.stem, root)]
            source = {"path": str(root), "kind": "file", "split": None, "items": 1}
        items += found
        sources.append(source)
    missing = [s["path"] for s in skipped if s["reason"] == "no such file or folder"]
    if not items and missing and len(missing) == len(roots):
        raise DataError(f"{', '.join(missing)}: no such file or folder")
    if not items:
        raise DataError(f"no audio found in {', '.join(map(str, roots))} "
                        f"(looked for {', '.join(AUDIO_EXTENSIONS)} files and prepared folders)")
    if limit is not None:
        items = items[:limit]
    return Collection(items, sources, skipped)
