"""spectok prepare: outputs, resume, failures, config refusal, shards, kill safety, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DEMO_CORPUS, REPO, shared_path

from spectok.audio import MelSpectrogram, load_audio
from spectok.cli.main import main as cli
from spectok.data.corpora import CorpusItem, in_shard, open_corpus
from spectok.data.prepare import open_prepared, prepare, trim_bounds
from spectok.errors import DataError, MelMismatchError

PRESET = "speech-16k"  # the arctic clips are 16 kHz: no resampling in these tests
ROW_KEYS = {"id", "speaker", "split", "text", "frames", "seconds", "path", "sha1", "trim_start", "trim_end",
            "source_bytes", "source_mtime_ns"}


@pytest.fixture
def arctic():
    return open_corpus("l2arctic", shared_path("cmu_arctic-l2arctic-layout"))


def strict_rows(path: Path) -> list[dict]:
    """Every line must parse: a repaired manifest has no torn line anywhere."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_outputs_and_manifest(arctic, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = prepare(arctic, out, mel=PRESET, trim_silence_db=35, dtype="float32")
    assert report.done == len(arctic) and report.failed == 0 and report.ok
    ps = open_prepared(out)
    assert ps.mel_config.fingerprint() == MelSpectrogram(PRESET).config.fingerprint()
    assert json.loads((out / "mel.json").read_text())["fingerprint"] == ps.mel_config.fingerprint()
    assert [r["id"] for r in ps.records] == [it.id for it in arctic]
    assert sum(len(ps.split(s)) for s in ("train", "valid", "test")) == len(arctic)
    mel_fn = MelSpectrogram(PRESET)
    trimmed = 0
    for item, row in zip(arctic, ps.records):
        assert set(row) == ROW_KEYS
        assert row["path"] == str(item.path) and Path(row["path"]).is_absolute()
        assert row["speaker"] == item.speaker and row["split"] == item.split
        wav, sr = load_audio(row["path"], ps.mel_config.sample_rate)
        s, e = row["trim_start"], row["trim_end"]
        assert 0 <= s < e <= len(wav)
        trimmed += (s > 0) + (e < len(wav))
        assert row["seconds"] == pytest.approx((e - s) / sr, abs=1e-4)
        assert row["frames"] == ps.mel_config.num_frames(e - s)
        assert row["sha1"] == hashlib.sha1(Path(row["path"]).read_bytes()).hexdigest()
        mel = ps.load_mel(row["id"])
        assert mel.dtype == np.float32 and mel.shape == (ps.mel_config.n_mels, row["frames"])
        expected = mel_fn(torch.from_numpy(wav[s:e]))[0].numpy()
        np.testing.assert_allclose(mel, expected, atol=1e-5)  # the aligned waveform gives the stored mel
    assert trimmed > 0  # arctic clips start and end with silence


def test_float16_storage_is_close(arctic, tmp_path: Path) -> None:
    items = list(arctic)[:2]
    prepare(items, tmp_path / "a", mel=PRESET, dtype="float16")
    ps = open_prepared(tmp_path / "a")
    assert np.load(ps.mel_path(items[0].id)).dtype == np.float16
    wav, _ = load_audio(items[0].path, 16000)
    expected = MelSpectrogram(PRESET)(torch.from_numpy(wav))[0].numpy()
    np.testing.assert_allclose(ps.load_mel(items[0].id), expected, atol=1e-2)


def test_trim_bounds_on_a_tone() -> None:
    t = np.arange(5000) / 16000
    wav = np.concatenate([np.zeros(1000), 0.5 * np.sin(2 * np.pi * 440 * t), 1e-4 * np.ones(2000)])
    s, e = trim_bounds(wav.astype(np.float32), top_db=40, frame_length=256, hop_length=64)
    assert 1000 - 256 <= s <= 1000 and 6000 <= e <= 6000 + 256
    assert trim_bounds(np.zeros(4000, np.float32), 40, 256, 64) == (0, 4000)
    assert trim_bounds(np.ones(100, np.float32), 40, 256, 64) == (0, 100)


def test_resume_skips_finished_items(arctic, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare(arctic, out, mel=PRESET)
    first = sorted(out.glob("mels/*.npy"))
    stamps = {p: p.stat().st_mtime_ns for p in first}
    again = prepare(arctic, out, mel=PRESET)
    assert (again.done, again.skipped, again.failed) == (0, len(arctic), 0) and again.ok
    first[0].unlink()
    third = prepare(arctic, out, mel=PRESET)
    assert (third.done, third.skipped) == (1, len(arctic) - 1)
    assert all(p.stat().st_mtime_ns == stamps[p] for p in first[1:])
    assert len(open_prepared(out)) == len(arctic) and len(strict_rows(out / "manifest.jsonl")) == len(arctic) + 1


def test_resume_redoes_items_whose_source_changed(tmp_path: Path) -> None:
    import soundfile as sf

    src = tmp_path / "audio"
    src.mkdir()
    clips = sorted(shared_path("cmu_arctic-l2arctic-layout").rglob("*.wav"))[:3]
    for c in clips:
        (src / c.name).write_bytes(c.read_bytes())
    out = tmp_path / "out"
    first = prepare(open_corpus("folder", src), out, mel=PRESET)
    assert first.done == 3 and first.changed == 0
    before = {r["id"]: r for r in open_prepared(out).records}
    target = src / clips[1].name
    wav, sr = sf.read(target)
    sf.write(target, wav[: len(wav) // 2], sr)  # the user replaced the file with a shorter take
    again = prepare(open_corpus("folder", src), out, mel=PRESET)
    assert (again.done, again.changed, again.skipped) == (1, 1, 2) and "redone: source changed" in again.summary()
    after = {r["id"]: r for r in open_prepared(out).records}
    tid = next(i for i in after if after[i]["path"] == str(target.resolve()))
    assert after[tid]["frames"] < before[tid]["frames"] and after[tid]["sha1"] != before[tid]["sha1"]
    assert open_prepared(out).load_mel(tid).shape[-1] == after[tid]["frames"]
    assert all(after[i] == before[i] for i in after if i != tid)
    assert (prepare(open_corpus("folder", src), out, mel=PRESET).done, len(open_prepared(out))) == (0, 3)


def test_failures_are_logged_and_the_run_goes_on(tmp_path: Path) -> None:
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    for src in sorted(shared_path("cmu_arctic-l2arctic-layout").glob("*/wav/*.wav"))[:2]:
        (corpus_dir / f"{src.parent.parent.name}_{src.name}").symlink_to(src)
    (corpus_dir / "garbage.wav").write_bytes(b"RIFF not really a wave file" * 10)
    (corpus_dir / "empty.flac").write_bytes(b"")
    out = tmp_path / "out"
    report = prepare(open_corpus("folder", corpus_dir), out, mel=PRESET)
    assert (report.done, report.failed) == (2, 2) and report.ok
    errors = strict_rows(out / "errors.jsonl")
    assert sorted(e["id"] for e in errors) == ["empty", "garbage"]
    assert all(e["path"] in e["error"] for e in errors)  # the reason names the file
    ps = open_prepared(out)
    assert len(ps) == 2 and sorted(e["id"] for e in ps.errors) == ["empty", "garbage"]
    # the CLI exits 0 when something succeeded and 1 when nothing did
    assert cli(["prepare", "folder", str(corpus_dir), str(tmp_path / "cli"), "--mel", PRESET]) == 0
    for f in list(corpus_dir.glob("*.wav"))[:10]:
        if f.is_symlink():
            f.unlink()
    bad = prepare(open_corpus("folder", corpus_dir), tmp_path / "bad", mel=PRESET)
    assert (bad.done, bad.failed, bad.ok) == (0, 2, False)
    assert cli(["prepare", "folder", str(corpus_dir), str(tmp_path / "bad2"), "--mel", PRESET]) == 1


def test_other_mel_config_or_settings_refused(arctic, tmp_path: Path) -> None:
    items = list(arctic)[:1]
    prepare(items, tmp_path, mel=PRESET)
    with pytest.raises(MelMismatchError, match=r"hop_length.*win_length|win_length.*hop_length"):
        prepare(items, tmp_path, mel="l2arctic-16k-128")
    with pytest.raises(DataError, match="dtype"):
        prepare(items, tmp_path, mel=PRESET, dtype="float32")
    with pytest.raises(DataError, match="trim_silence_db"):
        prepare(items, tmp_path, mel=PRESET, trim_silence_db=30)


def test_shards_partition_and_merge(arctic, tmp_path: Path) -> None:
    out = tmp_path / "out"
    reports = [prepare(arctic, out, mel=PRESET, shard=(i, 3)) for i in range(3)]
    assert sum(r.done for r in reports) == len(arctic)
    shard_ids = [{r["id"] for r in strict_rows(out / f"manifest-shard-{i}-of-3.jsonl")}
                 if (out / f"manifest-shard-{i}-of-3.jsonl").exists() else set() for i in range(3)]
    assert sum(len(s) for s in shard_ids) == len(set().union(*shard_ids)) == len(arctic)
    whole = tmp_path / "whole"
    prepare(arctic, whole, mel=PRESET)
    merged, single = open_prepared(out), open_prepared(whole)
    assert [(r["id"], r["split"], r["frames"]) for r in merged.records] == \
        [(r["id"], r["split"], r["frames"]) for r in single.records]
    assert prepare(arctic, out, mel=PRESET).skipped == len(arctic)  # an unsharded run sees the shards' work


def test_repairs_torn_manifest_and_stale_temps(arctic, tmp_path: Path) -> None:
    prepare(arctic, tmp_path, mel=PRESET)
    victim = arctic.items()[0].id
    (tmp_path / "mels" / f"{victim}.npy").unlink()
    stale = tmp_path / "mels" / f".{victim}.tmp999999.npy"
    stale.write_bytes(b"\x93NUMPY half")
    with open(tmp_path / "manifest.jsonl", "a") as f:
        f.write('{"id": "torn')  # a writer killed mid-line
    assert len(open_prepared(tmp_path)) == len(arctic)  # the reader tolerates the torn last line
    report = prepare(arctic, tmp_path, mel=PRESET)
    assert report.done == 1 and not stale.exists()
    assert len(strict_rows(tmp_path / "manifest.jsonl")) == len(arctic) + 1


def test_kill_at_any_moment_leaves_a_consistent_folder(tmp_path: Path) -> None:
    if not DEMO_CORPUS.exists():
        pytest.skip(f"{DEMO_CORPUS} absent")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "spectok", "prepare", "folder", str(DEMO_CORPUS), str(out),
                             "-j", "2"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest, deadline = out / "manifest.jsonl", time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if manifest.exists() and manifest.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.01)
    finished = proc.poll() is not None
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, wherever they are
    proc.wait()
    if finished:
        pytest.skip("prepare finished before it could be killed")
    n = len(open_corpus("folder", DEMO_CORPUS))
    ps = open_prepared(out)
    assert 3 <= len(ps) < n
    for npy in (out / "mels").iterdir():  # whatever has a final name is complete; the rest is a temp name
        if npy.name.startswith("."):
            assert re.fullmatch(r"\..+\.tmp\d+\.npy", npy.name), npy.name
        else:
            assert np.load(npy).shape[0] == ps.mel_config.n_mels
    for row in ps.records:
        assert ps.load_mel(row["id"]).shape[1] == row["frames"]
    report = prepare(open_corpus("folder", DEMO_CORPUS), out)
    assert report.skipped == len(ps) and report.done == n - len(ps) and report.failed == 0
    assert not list((out / "mels").glob(".*"))  # no temporary file remains
    rows = strict_rows(manifest)
    assert len(rows) == len({r["id"] for r in rows}) == n == len(list((out / "mels").iterdir()))


def test_prepared_reader_errors(arctic, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a prepared folder"):
        open_prepared(tmp_path / "missing")
    with pytest.raises(DataError, match="mel.json"):
        open_prepared(tmp_path)
    (tmp_path / "mel.json").write_text("{not json")
    with pytest.raises(DataError, match="malformed"):
        open_prepared(tmp_path)
    out = tmp_path / "ok"
    prepare(list(arctic)[:1], out, mel=PRESET)
    ps = open_prepared(out)
    with pytest.raises(DataError, match="split"):
        ps.split("dev")
    with pytest.raises(DataError, match="nope"):
        ps.load_mel("nope")
    with pytest.raises(DataError, match="nope"):
        ps["nope"]


def test_cli_usage_errors(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli(["prepare", "folder", str(tmp_path), str(tmp_path / "o"), "--shard", "3/2"])
    assert e.value.code == 2
    capsys.readouterr()
    assert cli(["prepare", "folder", str(tmp_path / "none"), str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "none" in err and err.startswith("spectok prepare: error:")


def test_unsafe_or_duplicate_ids_and_images_refused(arctic, tmp_path: Path) -> None:
    item = arctic.items()[0]
    for bad in ("../escape", ".hidden", ""):
        with pytest.raises(DataError, match="not a safe file name"):
            prepare([CorpusItem(bad, item.path, "s", "train")], tmp_path, mel=PRESET)
    with pytest.raises(DataError, match="duplicated"):
        prepare([item, item], tmp_path, mel=PRESET)
    with pytest.raises(DataError, match="not an audio corpus"):
        prepare(open_corpus("cifar10", shared_path("cifar-10-batches-py")), tmp_path, mel=PRESET)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="relies on forked workers inheriting a patch")
def test_a_dying_worker_is_reported_and_the_rest_is_kept(arctic, tmp_path: Path, monkeypatch) -> None:
    from spectok.data import prepare as prepare_module

    victim = arctic.items()[-1].id
    original = prepare_module._Worker._prepare.__func__

    def crash_on_victim(cls, item):
        if item.id == victim:
            os._exit(3)  # as if the kernel's OOM killer struck
        return original(cls, item)

    monkeypatch.setattr(prepare_module._Worker, "_prepare", classmethod(crash_on_victim))
    with pytest.raises(DataError, match="worker process died"):
        prepare(arctic, tmp_path, mel=PRESET, jobs=2)
    monkeypatch.undo()
    ps = open_prepared(tmp_path)
    assert victim not in ps and all(ps.load_mel(r["id"]).shape[1] == r["frames"] for r in ps.records)
    report = prepare(arctic, tmp_path, mel=PRESET)
    assert report.done + report.skipped == len(arctic) and len(open_prepared(tmp_path)) == len(arctic)


def test_cli_mel_yaml_shard_and_dtype(tmp_path: Path) -> None:
    corpus_dir = tmp_path / "corpus" / "spk"
    corpus_dir.mkdir(parents=True)
    for src in sorted(shared_path("cmu_arctic-l2arctic-layout").glob("*/wav/*.wav"))[:4]:
        (corpus_dir / f"{src.parent.parent.name}_{src.name}").symlink_to(src)
    yaml_file = tmp_path / "mel.yaml"
    yaml_file.write_text("mel:\n  sample_rate: 16000\n  n_fft: 512\n  hop_length: 128\n  win_length: 512\n"
                         "  n_mels: 40\n  fmax: 8000.0\n")
    out = tmp_path / "out"
    for i in range(2):
        assert cli(["prepare", "folder", str(tmp_path / "corpus"), str(out), "--mel", str(yaml_file),
                    "--shard", f"{i}/2", "--dtype", "float32", "--trim-silence", "30"]) == 0
    ps = open_prepared(out)
    assert len(ps) == 4 and ps.mel_config.n_mels == 40 and ps.dtype == "float32"
    assert {r["speaker"] for r in ps.records} == {"spk"}
    owners = {i for r in ps.records for i in (0, 1) if in_shard(r["id"], i, 2)}
    assert sorted(p.name for p in out.glob("manifest*.jsonl")) == [f"manifest-shard-{i}-of-2.jsonl" for i in
                                                                   sorted(owners)]
    assert ps.load_mel(ps.records[0]["id"]).shape == (40, ps.records[0]["frames"])


def test_speaker_subset_is_deterministic_recorded_and_checked_on_resume(tmp_path, capsys) -> None:
    """--speakers / --num-speakers / --max-per-speaker on the real L2-ARCTIC layout and LibriSpeech."""
    from spectok.cli.main import main as cli

    root = shared_path("cmu_arctic-l2arctic-layout")
    out = tmp_path / "l2"
    assert cli(["prepare", "l2arctic", str(root), str(out), "--speakers", "slt,awb", "--max-per-speaker", "1"]) == 0
    ps = open_prepared(out)
    assert sorted(r["speaker"] for r in ps.records) == ["awb", "slt"]
    meta = json.loads((out / "mel.json").read_text())
    assert meta["prepare"]["selection"] == {"speakers": ["slt", "awb"], "num_speakers": None,
                                           "max_per_speaker": 1, "seed": 0}
    capsys.readouterr()
    assert cli(["prepare", "l2arctic", str(root), str(out), "--speakers", "slt", "--max-per-speaker", "1"]) == 1
    assert "selection" in capsys.readouterr().err
    assert cli(["prepare", "l2arctic", str(root), str(tmp_path / "x"), "--speakers", "nobody"]) == 1
    assert "not in the corpus" in capsys.readouterr().err
    libri = shared_path("LibriSpeech")
    picks = []
    for run in ("a", "b"):
        assert cli(["prepare", "librispeech", str(libri), str(tmp_path / run), "--num-speakers", "3",
                    "--seed", "7", "--max-per-speaker", "1"]) == 0
        picks.append(sorted(r["speaker"] for r in open_prepared(tmp_path / run).records))
    assert picks[0] == picks[1] and len(set(picks[0])) == 3


def test_a_long_file_is_prepared_in_pieces_with_the_same_bytes(tmp_path, monkeypatch):
    """A file longer than one STFT piece is written into its .npy piece by piece: the file equals the
    one-piece computation byte for byte."""
    from spectok.data import prepare as P
    from spectok.data.corpora import CorpusItem

    wavs = sorted(Path(__file__).resolve().parents[2].joinpath("shared", "data", "LJSpeech-1.1", "wavs").glob("*.wav"))
    if not wavs:
        pytest.skip("../shared/data is absent")
    items = [CorpusItem(id="lj", path=wavs[0], speaker="LJ", split="train")]
    whole = P.prepare(items, tmp_path / "whole", mel="speech-16k", dtype="float16", progress=False)
    monkeypatch.setattr(P, "MEL_CHUNK_FRAMES", 64)
    pieces = P.prepare(items, tmp_path / "pieces", mel="speech-16k", dtype="float16", progress=False)
    assert whole.done == pieces.done == 1
    a, b = (next((tmp_path / d / "mels").rglob("*.npy")).read_bytes() for d in ("whole", "pieces"))
    assert a == b and len(a) > 10_000
