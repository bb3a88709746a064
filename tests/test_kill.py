"""`kill -9` at random moments of every command, 20 times each (`-m slow`; docs/reliability.md).

For each command: one uninterrupted reference run; then 20 trials, each starting the same command
in a fresh folder, killing it with SIGKILL after a seeded random delay in (0, the reference's wall
time), checking that every output present is complete and valid (hidden temporary files aside),
and running the command again (the user's re-run; ``--resume`` for training). The resumed outputs
must equal the reference byte for byte (eval: every measured figure; its timings differ), and no
temporary file of the killed run may be left. The figures are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import shared_path
from test_engine_tinytask import cli_env, write_config

pytestmark = pytest.mark.slow

TRIALS = int(__import__("os").environ.get("SPECTOK_KILL_TRIALS", "20"))


def _start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "spectok", *map(str, argv)], env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _run(argv: list[str]) -> float:
    t0 = time.monotonic()
    proc = _start(argv)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, f"spectok {' '.join(map(str, argv))}: {proc.returncode}\n{err.decode()[-3000:]}"
    return time.monotonic() - t0


def _files(folder: Path) -> dict[str, bytes]:
    """Every non-hidden file under ``folder``: relative path -> bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*.tmp*")] if folder.exists() else []


def kill_trials(name: str, work: Path, first: Callable[[Path], list], again: Callable[[Path], list],
                check_partial: Callable[[Path], None], compare: Callable[[Path, Path], None]) -> dict:
    """The reference run, then TRIALS kill-and-rerun trials; returns counts for the record."""
    ref = work / "reference"
    wall = _run(first(ref))
    rng = random.Random(f"kill-{name}")
    outcomes = {"killed": 0, "finished_before_kill": 0}
    for i in range(TRIALS):
        out = work / f"trial{i}"
        proc = _start(first(out))
        time.sleep(rng.uniform(0.05, 1.0) * wall)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            outcomes["killed"] += 1
        else:
            outcomes["finished_before_kill"] += 1
        proc.communicate(timeout=900)
        if out.exists():
            check_partial(out)  # whatever the kill left is complete and valid
        _run(again(out))
        compare(ref, out)
        assert not _temps(out), f"{name} trial {i}: temporary files left: {_temps(out)}"
        shutil.rmtree(out)
    assert outcomes["killed"] >= TRIALS // 2, outcomes  # most trials were really interrupted
    return outcomes


def _same_files(ref: Path, out: Path, skip: tuple[str, ...] = ()) -> None:
    a, b = _files(ref), _files(out)
    keep = lambda d: {k: v for k, v in d.items() if not k.startswith(skip) and not k.endswith(skip)}  # noqa: E731
    a, b = keep(a), keep(b)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Ten real LJSpeech clips, cut to 2-4 s (a folder of WAVs at 22,050 Hz)."""
    folder = tmp_path_factory.mktemp("kill") / "clips"
    folder.mkdir()
    for i, w in enumerate(sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))[:10]):
        x, rate = sf.read(w, dtype="float32")
        sf.write(folder / f"clip{i:02d}.wav", x[: int(rate * (2 + i % 3))], rate)
    return folder


def _valid_audio(folder: Path) -> None:
    for p in folder.rglob("*.wav"):
        if not p.name.startswith("."):
            assert sf.info(str(p)).frames > 0 and np.isfinite(sf.read(p)[0]).all()


def _valid_tokens(folder: Path) -> None:
    from spectok.tokens import read_tokens

    for p in folder.rglob("*.sptk"):
        if not p.name.startswith("."):
            read_tokens(p)  # raises on a torn file


def test_kill_encode(tmp_path, clips):
    cmd = lambda out: ["encode", clips, "-t", "default", "-o", out, "-q", "--threads", "1"]  # noqa: E731
    kill_trials("encode", tmp_path, cmd, cmd, _valid_tokens, _same_files)


def test_kill_decode(tmp_path, clips):
    tokens = tmp_path / "tokens"
    _run(["encode", clips, "-t", "default", "-o", tokens, "-q"])
    cmd = lambda out: ["decode", tokens, "-t", "default", "-v", "griffin-lim", "--gl-iters", "8",  # noqa: E731
                       "-o", out, "-q", "--threads", "1"]
    kill_trials("decode", tmp_path, cmd, cmd, _valid_audio, _same_files)


def test_kill_reconstruct(tmp_path, clips):
    cmd = lambda out: ["reconstruct", clips, "-t", "default", "-v", "griffin-lim", "--gl-iters", "8",  # noqa: E731
                       "-o", out, "-q", "--threads", "1"]
    kill_trials("reconstruct", tmp_path, cmd, cmd, _valid_audio, _same_files)


def test_kill_prepare(tmp_path, clips):
    cmd = lambda out: ["prepare", "folder", clips, out, "-j", "1", "--threads", "1"]  # noqa: E731

    def partial(out: Path) -> None:
        for p in (out / "mels").rglob("*.npy") if (out / "mels").exists() else ():
            if not p.name.startswith("."):
                np.load(p)

    kill_trials("prepare", tmp_path, cmd, cmd, partial, lambda a, b: _same_files(a, b, skip=("prepare.log",)))


def test_kill_train(tmp_path, tiny_prepared):
    config = write_config(tmp_path / "tiny.yaml", steps=60, checkpoint_every=5, valid_every=10, keep_last=100)
    first = lambda out: ["train", "tokenizer", "--config", config, "--data", tiny_prepared,  # noqa: E731
                         "--out", out, "--threads", "1"]

    def again(out: Path) -> list:  # a run killed before it wrote its config is started afresh
        return ["train", "tokenizer", "--out", out, "--resume", "--threads", "1"] if (out / "config.yaml").exists() \
            else first(out)

    def partial(out: Path) -> None:
        from spectok.training.checkpoint import load_checkpoint

        for p in (out / "checkpoints").glob("step-*.pt") if (out / "checkpoints").exists() else ():
            load_checkpoint(p)

    def compare(ref: Path, out: Path) -> None:
        from spectok.training.checkpoint import load_checkpoint

        a = load_checkpoint(ref / "checkpoints" / "step-00000060.pt")["models"]["model"]
        b = load_checkpoint(out / "checkpoints" / "step-00000060.pt")["models"]["model"]
        assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)

    kill_trials("train", tmp_path, first, again, partial, compare)


def test_kill_eval(tmp_path, clips):
    data = tmp_path / "six"
    data.mkdir()
    for p in sorted(clips.glob("*.wav"))[:6]:
        shutil.copy(p, data / p.name)
    cmd = lambda out: ["eval", data, "-t", "default", "-v", "griffin-lim", "--gl-iters", "8", "-o", out,  # noqa: E731
                       "-q", "--no-dnsmos", "--threads", "1"]

    def partial(out: Path) -> None:
        if (out / "report.json").exists():
            json.loads((out / "report.json").read_text())

    def figures(folder: Path) -> dict:
        recs = [json.loads(x) for x in (folder / "utterances.jsonl").read_text().splitlines()[1:]]
        return {r["id"]: {k: r[k] for k in ("tokenizer", "tokenized", "copy", "gap", "failures")} for r in recs}

    def compare(ref: Path, out: Path) -> None:
        assert figures(ref) == figures(out)
        a, b = json.loads((ref / "report.json").read_text()), json.loads((out / "report.json").read_text())
        assert a["aggregate"] == b["aggregate"] and a["tokens"] == b["tokens"]

    kill_trials("eval", tmp_path, cmd, cmd, partial, compare)
