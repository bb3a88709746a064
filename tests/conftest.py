"""Shared fixtures: the real recordings in ../shared/data, skipped with a reason where absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_CORPUS = REPO / "examples" / "demo-corpus"

torch.set_num_threads(2)


def train_and_export(kind: str, config: dict, data: Path, tmp_path: Path, name: str) -> Path:
    """``spectok train KIND`` on ``config`` (written as YAML) into the run folder ``tmp_path/run``, then
    ``spectok export`` to ``tmp_path/name``; returns the artifact's path."""
    import yaml

    from spectok.cli.main import main

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    assert main(["train", kind, "--config", str(cfg), "--data", str(data), "--out", str(run)]) == 0
    assert main(["export", str(run), "-o", str(tmp_path / name)]) == 0
    return tmp_path / name


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data; skips the calling test when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} is absent (tests read ../shared/data beside the repo)")
    return p


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread for a module of tiny models (``pytestmark = pytest.mark.usefixtures("single_thread")``).
    On a shared, oversubscribed 2-core machine two OpenMP threads spin against each other and
    run such tests ~20x slower than one."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def ljspeech_root() -> Path:
    return shared_path("LJSpeech-1.1")


@pytest.fixture
def librispeech_root() -> Path:
    return shared_path("LibriSpeech")


@pytest.fixture
def ljspeech_wavs() -> list[Path]:
    return sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory) -> Path:
    """A prepared folder (spectok.data.prepare.prepare) of 8 real LJSpeech clips with the
    HiFi-GAN 22 kHz front end, float32: the first 6 in split "train", the last 2 in "valid"."""
    from spectok.data.corpora import CorpusItem
    from spectok.data.prepare import prepare

    wavs = sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))[:8]
    items = [CorpusItem(id=w.stem, path=w, speaker="LJ", split="valid" if i >= 6 else "train")
             for i, w in enumerate(wavs)]
    out = tmp_path_factory.mktemp("prepared") / "lj8"
    report = prepare(items, out, mel="hifigan-22k", dtype="float32", progress=False)
    assert report.failed == 0 and report.done == len(items), report.summary()
    return out
