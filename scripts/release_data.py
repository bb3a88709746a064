"""The training and held-out data of the released models, from the real speech in ../shared/data.

Two prepared folders, one per released model, each split by whole speakers (multi-speaker)
or whole clips (LJSpeech), so a model card's held-out figures never saw their speakers:

- ``speech16k`` (front end ``speech-16k``): LibriSpeech train-clean-100 (251 speakers) and
  the multi-speaker folders of ``extra/`` (LibriSpeech, LibriTTS, VCTK, VCC2016, CMU ARCTIC,
  CommonVoice, Hi-Fi TTS) and the CMU ARCTIC clips in the L2-ARCTIC layout, all resampled to
  16 kHz by ``prepare``. No LJSpeech: its speaker stays unseen, so the demo's fine-tuning
  (on LJSpeech clips, the only ones the package may ship) starts from a voice the model never heard.
  - test: whole speakers never trained on: LibriTTS test-clean (17 speakers), LibriSpeech
    dev-clean 84, 251 and 2412, VCTK p230, p233, p236, p243, p244.
  - valid (picks the exported step): 8 other LibriSpeech train-clean-100 speakers, by hash.
- ``ljspeech22k`` (front end ``hifigan-22k``): the 27 LJSpeech clips and ``extra/LJSpeech-1.1``;
  test: 24 whole clips by hash, valid: 12 more.

Usage::

    python scripts/release_data.py speech16k runs/data/release/speech16k [-j 2]
    python scripts/release_data.py ljspeech22k runs/data/release/ljspeech22k
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from spectok.data.corpora import CorpusItem, open_corpus, safe_id, unit_hash

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_SPEAKERS = {"LibriSpeech:84", "LibriSpeech:251", "LibriSpeech:2412",
                 *(f"VCTK:{s}" for s in ("p230", "p233", "p236", "p243", "p244"))}
MEL = {"speech16k": "speech-16k", "ljspeech22k": "hifigan-22k"}


def _extra_rows(data: Path) -> list[dict]:
    with open(data / "extra" / "MANIFEST.tsv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _ljspeech_items(data: Path) -> list[CorpusItem]:
    """Every LJSpeech clip (the 27 and extra/), split by hash of the clip: ~7 % test, ~3.5 % valid."""
    items = [*open_corpus("ljspeech", data / "LJSpeech-1.1"), *open_corpus("ljspeech", data / "extra" / "LJSpeech-1.1")]
    out = []
    for it in sorted(items, key=lambda i: i.id):
        h = unit_hash(it.id, "release")
        split = "test" if h < 0.07 else "valid" if h < 0.105 else "train"
        out.append(CorpusItem(it.id, it.path, "LJ", split, it.text))
    return out


def speech16k_items(data: Path = DATA) -> list[CorpusItem]:
    """Items of the ``default`` model's data, split by whole speakers (see the module docstring)."""
    rows = []  # (id, path, speaker key)
    for p in sorted((data / "LibriSpeech" / "train-clean-100").rglob("*.flac")):
        rows.append((p.stem, p, f"LibriSpeech:{p.stem.split('-')[0]}"))
    for p in sorted((data / "cmu_arctic-l2arctic-layout").glob("*/wav/*.wav")):
        rows.append((f"l2layout-{p.parts[-3]}-{p.stem}", p, f"CMU_ARCTIC:{p.parts[-3]}"))
    for r in _extra_rows(data):
        path = data / "extra" / r["file"]
        if r["corpus"] == "LJSpeech":
            continue
        rows.append((safe_id(f"{r['corpus']}-{r['spk']}-{Path(r['file']).stem}"), path, f"{r['corpus']}:{r['spk']}"))
    libri_train = sorted({s for _, _, s in rows if s.startswith("LibriSpeech:") and s not in TEST_SPEAKERS})
    valid = set(sorted(libri_train, key=lambda s: unit_hash(s, "release-valid"))[:8])
    items = []
    for uid, path, speaker in rows:
        test = speaker in TEST_SPEAKERS or speaker.startswith("LibriTTS:")
        split = "test" if test else "valid" if speaker in valid else "train"
        items.append(CorpusItem(safe_id(uid), path, speaker, split))
    return items


def items_for(name: str, data: Path = DATA) -> list[CorpusItem]:
    if not data.is_dir():
        raise SystemExit(f"{data}: not found (the release data is read from ../shared/data)")
    return speech16k_items(data) if name == "speech16k" else _ljspeech_items(data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=sorted(MEL))
    ap.add_argument("out", help="the prepared folder (resumed when it exists)")
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    from spectok.data.prepare import prepare

    items = items_for(args.name, args.data)
    report = prepare(items, args.out, mel=MEL[args.name], jobs=args.jobs, dtype="float16")
    print(report.summary())
    for split in ("train", "valid", "test"):
        chosen = [it for it in items if it.split == split]
        print(f"  {split}: {len(chosen)} clips, {len({it.speaker for it in chosen})} speakers")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
