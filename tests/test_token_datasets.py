"""Token datasets (``spectok tokenize``) on real corpora: the Parquet files, their readers, shards,
resume after kill -9, failures, and the loader's layouts with their exact inverses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path

import spectok
from spectok.data.corpora import open_corpus
from spectok.data.token_loader import (
    TokenDataset,
    collate_tokens,
    delay_codes,
    flatten_codes,
    undelay_codes,
    unflatten_codes,
)
from spectok.data.token_shards import code_dtype, launcher_shard, tokenize_corpus
from spectok.errors import DataError

pytest.importorskip("pyarrow", reason="token datasets need pyarrow (the 'tokens' extra)")
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def lj_items():
    return list(open_corpus("ljspeech", shared_path("LJSpeech-1.1")))


@pytest.fixture(scope="module")
def dataset(lj_items, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tokens") / "lj"
    report = tokenize_corpus(lj_items, out, "default", corpus="ljspeech", part_size=8, progress=False)
    assert report.utterances == len(lj_items) == 27 and report.failed == 0
    return out


def _rows(root: Path) -> dict[str, dict]:
    import pyarrow.dataset as ds

    table = ds.dataset(root, format="parquet", exclude_invalid_files=False,
                       ignore_prefixes=[".", "_", "dataset.json", "failures"]).to_table()
    return {r["id"]: r for r in table.to_pylist()}


def test_rows_hold_the_codes_of_the_pipeline_and_the_transcripts(dataset, lj_items):
    import pyarrow.parquet as pq

    card = spectok.data.token_loader.read_card(dataset)
    assert card["fingerprint"] == spectok.load_tokenizer("default").fingerprint() and card["code_dtype"] == "uint16"
    table = pq.read_table(dataset / "train")
    assert str(table.schema.field("codes").type) == "list<element: list<element: uint16>>"
    rows = _rows(dataset)
    assert len(rows) == 27 and {r["split"] for r in rows.values()} <= {"train", "valid", "test"}
    item = lj_items[0]
    pipe = spectok.Pipeline(spectok.load_tokenizer("default"))
    wav, sr = spectok.load_audio(item.path, pipe.sample_rate)
    want = pipe.encode(wav, sample_rate=sr)
    row = rows[item.id]
    assert np.array_equal(np.asarray(row["codes"]), want.codes)
    assert row["text"] == item.text and row["num_samples"] == want.num_samples
    assert row["duration"] == pytest.approx(want.num_samples / sr)


def test_pandas_and_hugging_face_datasets_read_it_as_it_is(dataset):
    pandas = pytest.importorskip("pandas")
    hf = pytest.importorskip("datasets")
    df = pandas.concat([pandas.read_parquet(dataset / s) for s in ("train", "valid", "test")
                        if (dataset / s).is_dir()])
    assert len(df) == 27
    loaded = hf.load_dataset("parquet", data_dir=str(dataset))
    assert sum(len(split) for split in loaded.values()) == 27
    first = loaded["train"][0]
    assert len(first["codes"]) == 5 and isinstance(first["text"], str)


def test_two_shards_make_one_dataset(lj_items, dataset, tmp_path):
    out = tmp_path / "sharded"
    for i in range(2):
        tokenize_corpus(lj_items, out, "default", corpus="ljspeech", shard=(i, 2), part_size=8, progress=False)
    assert len(list(out.glob("*/shard0of2-*.parquet"))) and len(list(out.glob("*/shard1of2-*.parquet")))
    whole, sharded = _rows(dataset), _rows(out)
    assert sharded.keys() == whole.keys()
    assert all(sharded[k]["codes"] == whole[k]["codes"] for k in whole)
    assert len(TokenDataset(out, "train")) == len(TokenDataset(dataset, "train"))


def test_another_tokenizer_or_sharding_is_refused(lj_items, dataset, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(dataset, out)
    with pytest.raises(DataError, match="shards"):
        tokenize_corpus(lj_items, out, "default", corpus="ljspeech", shard=(0, 3), part_size=8, progress=False)
    with pytest.raises(DataError, match="fingerprint"):
        tokenize_corpus(lj_items, out, "ljspeech22k", corpus="ljspeech", part_size=8, progress=False)


def test_a_rerun_does_only_the_missing_parts(lj_items, dataset, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(dataset, out)
    lost = sorted(out.glob("train/*.parquet"))[1]
    lost.unlink()
    report = tokenize_corpus(lj_items, out, "default", corpus="ljspeech", part_size=8, progress=False)
    assert report.parts_done == 1 and report.parts_skipped >= 2
    assert _rows(out).keys() == _rows(dataset).keys()


def test_kill_9_at_any_moment_leaves_only_whole_files_and_resumes(tmp_path, dataset):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "spectok", "tokenize", "ljspeech", str(shared_path("LJSpeech-1.1")), str(out),
           "--part-size", "2", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    def visible() -> list[Path]:  # pathlib's "*" also matches hidden names: the temporaries are left out
        return [p for p in out.glob("*/*.parquet") if not p.name.startswith(".")]

    while time.time() < deadline and len(visible()) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    import pyarrow.parquet as pq

    files = visible()
    assert 3 <= len(files) < 14  # stopped part-way
    for f in files:
        pq.read_table(f)  # every visible file is whole
    subprocess.run([*cmd[:-2], "--part-size", "2"], check=True, capture_output=True)
    assert not list(out.glob("*/.*"))  # no temporary left
    rows, whole = _rows(out), _rows(dataset)
    assert rows.keys() == whole.keys() and all(rows[k]["codes"] == whole[k]["codes"] for k in whole)


def test_a_corrupt_file_is_listed_and_skipped(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for wav in sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))[:3]:
        shutil.copy(wav, folder / wav.name)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    out = tmp_path / "tokens"
    rc = subprocess.run([sys.executable, "-m", "spectok", "tokenize", "folder", str(folder), str(out), "--threads",
                         "1"], capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    assert "broken.wav" in rc.stderr and "3 utterances tokenized" in rc.stdout
    failures = list((out / "failures").glob("*.jsonl"))
    assert len(failures) == 1 and "broken.wav" in failures[0].read_text()


def test_the_shard_comes_from_the_launcher():
    assert launcher_shard({}) == (0, 1)
    assert launcher_shard({"RANK": "3", "WORLD_SIZE": "8"}) == (3, 8)
    assert launcher_shard({"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10",
                           "SLURM_ARRAY_TASK_COUNT": "4"}) == (2, 4)
    assert code_dtype([256]) == np.uint8 and code_dtype([2048, 1000]) == np.uint16 and code_dtype([70000]) == np.uint32


def test_layouts_invert_exactly_on_real_tokens(dataset):
    items = list(TokenDataset(dataset, "train"))[:4]
    assert len(items) == 4
    sizes = spectok.data.token_loader.read_card(dataset)["codebook_sizes"]
    offsets = [sum(sizes[:k]) for k in range(len(sizes))]
    for it in items:
        c = it["codes"]
        flat = flatten_codes(c)
        assert flat.shape == (c.numel(),) and torch.equal(flat[: c.shape[0]], c[:, 0])
        assert torch.equal(unflatten_codes(flat, c.shape[0]), c)
        assert torch.equal(unflatten_codes(flatten_codes(c, offsets), c.shape[0], offsets), c)
        delayed = delay_codes(c, pad=-1)
        assert delayed.shape == (c.shape[0], c.shape[1] + c.shape[0] - 1)
        assert (delayed[1, 0] == -1) and torch.equal(delayed[1, 1:c.shape[1] + 1], c[1])
        assert torch.equal(undelay_codes(delayed), c)


@pytest.mark.parametrize("layout", ["codes", "flat", "delay"])
def test_collate_pads_and_masks(dataset, layout):
    items = list(TokenDataset(dataset, "train"))[:3]
    batch = collate_tokens(items, layout=layout, pad=-1)
    k, lengths = items[0]["codes"].shape[0], [it["codes"].shape[1] for it in items]
    assert batch["lengths"].tolist() == lengths
    for i, it in enumerate(items):
        if layout == "codes":
            got = batch["codes"][i][:, batch["mask"][i]]
        elif layout == "flat":
            got = unflatten_codes(batch["codes"][i][batch["mask"][i]], k)
        else:
            got = undelay_codes(batch["codes"][i][:, batch["mask"][i]])
        assert torch.equal(got, it["codes"])
    assert int(batch["mask"].sum()) == sum(lengths) * (k if layout == "flat" else 1) + (
        len(items) * (k - 1) if layout == "delay" else 0)


def test_workers_read_each_utterance_once(dataset):
    loader = torch.utils.data.DataLoader(TokenDataset(dataset, "train"), batch_size=4, num_workers=2,
                                         collate_fn=collate_tokens)
    ids = [i for batch in loader for i in batch["id"]]
    assert sorted(ids) == sorted(it["id"] for it in TokenDataset(dataset, "train"))


def test_the_token_lm_example_runs_and_reports_its_rates(tmp_path):
    """examples/token_lm.py end to end on the 27 LJSpeech clips, a few CPU-seconds of training."""
    lj = shared_path("LJSpeech-1.1")
    script = Path(__file__).resolve().parents[1] / "examples" / "token_lm.py"
    proc = subprocess.run([sys.executable, str(script), "-t", "default", "--corpus", f"ljspeech={lj}",
                           "--cpu-minutes", "0.05", "--work", str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads((tmp_path / "default" / "results.json").read_text())
    assert r["nominal_bits_per_second"] == 1375.0 and r["test_utterances"] > 0
    assert 0 < r["order0_entropy_of_test_bits_per_second"] <= r["nominal_bits_per_second"]
    assert r["lm_bits_per_second"] > 0 and "| default | 1375 |" in proc.stdout
