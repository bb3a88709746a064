"""Corpus readers on the real layouts in ../shared/data and on small crafted layouts."""

from __future__ import annotations

import pickle
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO_CORPUS, shared_path

from spectok.data.corpora import CORPORA, Cifar10, CorpusItem, hash_split, in_shard, open_corpus, safe_id
from spectok.errors import DataError

SAFE = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$")


def check_items(items: list[CorpusItem]) -> None:
    """Invariants every audio corpus keeps: unique safe ids, real files, known splits, sorted."""
    ids = [it.id for it in items]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    for it in items:
        assert SAFE.match(it.id), it.id
        assert it.path.is_absolute() and it.path.is_file()
        assert it.split in ("train", "valid", "test")
        assert it.speaker


def test_ljspeech(ljspeech_root: Path) -> None:
    items = open_corpus("ljspeech", ljspeech_root).items()
    check_items(items)
    ids = {it.id for it in items}
    assert {"LJ001-0001", "LJ002-0020", "LJ050-0131"} <= ids
    assert len(items) == len((ljspeech_root / "metadata.csv").read_text().strip().splitlines())
    first = next(it for it in items if it.id == "LJ001-0002")
    assert first.text == "in being comparatively modern." and first.speaker == "LJ"
    assert first.path == (ljspeech_root / "wavs" / "LJ001-0002.wav").resolve()
    assert Counter(it.split for it in items)["valid"] >= 1


def test_librispeech(librispeech_root: Path) -> None:
    corpus = open_corpus("librispeech", librispeech_root)
    items = corpus.items()
    check_items(items)
    assert len(items) == len(list(librispeech_root.rglob("*.flac")))
    it = items[0]
    speaker, chapter, _ = it.id.split("-")
    assert it.speaker == speaker and it.path.parent.name == chapter
    # only train-clean-100 is present: valid and test are held out of it by the hash
    splits = Counter(i.split for i in items)
    assert splits["train"] > splits["valid"] > 0 and splits["test"] > 0
    # the subset folder itself is an equally good root
    sub = open_corpus("librispeech", librispeech_root / "train-clean-100").items()
    assert [(i.id, i.split) for i in sub] == [(i.id, i.split) for i in items]


def test_librispeech_subset_names_and_transcripts(tmp_path: Path, librispeech_root: Path) -> None:
    src = sorted(librispeech_root.rglob("*.flac"))[:2]
    for subset, f in zip(("dev-clean", "test-clean"), src):
        spk, chap, _ = f.stem.split("-")
        d = tmp_path / subset / spk / chap
        d.mkdir(parents=True)
        (d / f.name).symlink_to(f)
        (d / f"{spk}-{chap}.trans.txt").write_text(f"{f.stem} HELLO WORLD\n")
    items = open_corpus("librispeech", tmp_path).items()
    assert sorted(i.split for i in items) == ["test", "valid"]
    assert all(i.text == "HELLO WORLD" for i in items)


def test_l2arctic() -> None:
    root = shared_path("cmu_arctic-l2arctic-layout")
    items = open_corpus("l2arctic", root).items()
    check_items(items)
    assert len(items) == len(list(root.glob("*/wav/*.wav")))
    assert {it.speaker for it in items} == {p.name for p in root.iterdir() if (p / "wav").is_dir()}
    assert "aew_arctic_a0001" in {it.id for it in items}


def test_speech_commands() -> None:
    root = shared_path("speech_commands-mini")
    items = open_corpus("speech_commands", root).items()
    check_items(items)
    assert all("_background_noise_" not in str(it.path) for it in items)
    testing = (root / "testing_list.txt").read_text().split()
    validation = (root / "validation_list.txt").read_text().split()
    for it in items:
        rel = f"{it.path.parent.name}/{it.path.name}"
        assert it.split == ("test" if rel in testing else "valid" if rel in validation else "train")
        assert it.text == it.path.parent.name
    assert len(items) == len([p for p in root.glob("*/*.wav") if not p.parent.name.startswith("_")])


def test_speech_commands_requires_lists(tmp_path: Path) -> None:
    (tmp_path / "yes").mkdir()
    with pytest.raises(DataError, match="testing_list.txt"):
        open_corpus("speech_commands", tmp_path).items()


def test_fsdd() -> None:
    root = shared_path("free-spoken-digit-dataset")
    items = open_corpus("fsdd", root).items()
    check_items(items)
    assert len(items) == len(list((root / "recordings").glob("*.wav")))
    for it in items[:200]:
        digit, speaker, index = it.id.split("_")
        assert it.text == digit and it.speaker == speaker
        assert (it.split == "test") == (int(index) < 5)  # the official FSDD test split
    splits = Counter(it.split for it in items)
    assert splits["test"] == len(items) // 10 and splits["valid"] > 0


def test_fsdd_rejects_foreign_names(tmp_path: Path) -> None:
    (tmp_path / "hello.wav").write_bytes(b"x")
    with pytest.raises(DataError, match="hello.wav"):
        open_corpus("fsdd", tmp_path).items()


def test_folder_on_demo_corpus() -> None:
    if not DEMO_CORPUS.exists():
        pytest.skip(f"{DEMO_CORPUS} absent")
    items = open_corpus("folder", DEMO_CORPUS).items()
    check_items(items)
    voices = {p.name for p in DEMO_CORPUS.iterdir() if p.is_dir()}
    assert {it.speaker for it in items} == voices and 4 <= len(voices) <= 6
    assert 40 <= len(items) <= 60
    assert all(it.text for it in items)  # from metadata.csv
    meta_ids = [line.split("|")[0] for line in (DEMO_CORPUS / "metadata.csv").read_text().splitlines()]
    assert sorted(meta_ids) == [it.id for it in items]


def test_folder_ids_speakers_and_hidden_files(tmp_path: Path) -> None:
    src = sorted(shared_path("cmu_arctic-l2arctic-layout").glob("*/wav/*.wav"))
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a" / "b" / "x y.wav").symlink_to(src[0])
    (tmp_path / "top.wav").symlink_to(src[1])
    (tmp_path / ".hidden" / "z.wav").symlink_to(src[2])
    (tmp_path / "a" / "notes.txt").write_text("not audio")
    items = open_corpus("folder", tmp_path).items()
    assert [(it.id, it.speaker) for it in items] == [("a__b__x_y", "b"), ("top", tmp_path.name)]
    assert sorted(it.split for it in items) == ["train", "valid"]  # valid never empty with >= 2 items


def test_folder_clashing_ids_refused(tmp_path: Path) -> None:
    src = sorted(shared_path("cmu_arctic-l2arctic-layout").glob("*/wav/*.wav"))
    (tmp_path / "a b.wav").symlink_to(src[0])
    (tmp_path / "a_b.flac").symlink_to(src[1])
    with pytest.raises(DataError, match="duplicate"):
        open_corpus("folder", tmp_path).items()


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_missing_root_names_path(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=re.escape(str(missing))):
        c = open_corpus(name, missing)
        c.items()


def test_malformed_roots(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="metadata.csv"):
        open_corpus("ljspeech", tmp_path).items()
    (tmp_path / "metadata.csv").write_text("LJ999-0001|text|text\n")
    with pytest.raises(DataError, match="LJ999-0001"):
        open_corpus("ljspeech", tmp_path).items()
    with pytest.raises(DataError, match="no audio"):
        open_corpus("folder", tmp_path).items()
    with pytest.raises(DataError, match="unknown corpus"):
        open_corpus("timit", tmp_path)


def test_hash_split_is_deterministic_and_order_free() -> None:
    ids = [f"utt{i:05d}" for i in range(4000)]
    a = hash_split(ids, 0.1, 0.2)
    b = hash_split(list(reversed(ids)), 0.1, 0.2)
    assert a == b
    counts = Counter(a.values())
    assert abs(counts["valid"] / 4000 - 0.1) < 0.02 and abs(counts["test"] / 4000 - 0.2) < 0.025
    # an id's split does not depend on the other ids (in corpora large enough to need no fix-up)
    c = hash_split(ids[:2000], 0.1, 0.2)
    assert all(c[i] == a[i] for i in ids[:2000])


@pytest.mark.parametrize("n", [2, 3, 5])
def test_hash_split_small_corpora(n: int) -> None:
    split = hash_split([f"x{i}" for i in range(n)], 0.05, 0.05)
    values = Counter(split.values())
    assert values["valid"] >= 1 and values["train"] >= 1
    assert values["test"] >= (1 if n >= 3 else 0)
    assert hash_split(["only"], 0.05, 0.05) == {"only": "train"}
    with pytest.raises(DataError):
        hash_split(["a"], 0.6, 0.5)


def test_shards_partition() -> None:
    ids = [f"id{i}" for i in range(500)]
    owners = [[k for k in range(4) if in_shard(i, k, 4)] for i in ids]
    assert all(len(o) == 1 for o in owners)
    assert min(Counter(o[0] for o in owners).values()) > 80
    with pytest.raises(DataError):
        in_shard("x", 4, 4)


def test_safe_id() -> None:
    assert safe_id("a/b/c") == "a__b__c"
    assert safe_id(".hidden/x y") == "_hidden__x_y"
    assert safe_id("en-us+f3_01.x") == "en-us+f3_01.x"


def test_cifar10() -> None:
    root = shared_path("cifar-10-batches-py")
    c = open_corpus("cifar10", root)
    assert isinstance(c, Cifar10)
    assert c.label_names[:2] == ["airplane", "automobile"] and len(c.label_names) == 10
    x_test, y_test = c.load("test")
    assert x_test.shape == (10000, 32, 32, 3) and x_test.dtype == np.uint8
    assert y_test.dtype == np.int64 and set(np.unique(y_test)) == set(range(10))
    with open(root / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")  # the official way, for comparison only
    assert np.array_equal(x_test[7, :, :, 0].reshape(-1), raw[b"data"][7, :1024])  # R plane, row-major
    assert np.array_equal(x_test[7, :, :, 2].reshape(-1), raw[b"data"][7, 2048:])
    x_tr, y_tr = c.load("train")
    x_va, y_va = c.load("valid")
    n_batches = len(list(root.glob("data_batch_*")))
    assert len(x_tr) + len(x_va) == 10000 * n_batches and 0 < len(x_va) < len(x_tr)
    assert x_tr.shape[1:] == (32, 32, 3) and y_va.dtype == np.int64
    full, _ = Cifar10(root, valid_ratio=0.0).load("train")
    assert len(full) == 10000 * n_batches
    with pytest.raises(DataError, match="split"):
        c.load("dev")


def test_cifar10_refuses_foreign_pickles(tmp_path: Path) -> None:
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a"]}))
    (tmp_path / "test_batch").write_bytes(pickle.dumps(Counter({"a": 1})))  # a non-numpy global
    with pytest.raises(DataError, match="refusing"):
        Cifar10(tmp_path).load("test")
    (tmp_path / "test_batch").write_bytes(b"\x80\x04truncated")
    with pytest.raises(DataError, match="test_batch"):
        Cifar10(tmp_path).load("test")
