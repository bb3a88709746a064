"""Shared fixtures: the real recordings in ../shared/data, skipped with a reason where absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_CORPUS = REPO / "examples" / "demo-corpus"

torch.set_num_threads(2)


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data; skips the calling test when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} is absent (tests read ../shared/data beside the repo)")
    return p


@pytest.fixture
def ljspeech_root() -> Path:
    return shared_path("LJSpeech-1.1")


@pytest.fixture
def librispeech_root() -> Path:
    return shared_path("LibriSpeech")


@pytest.fixture
def ljspeech_wavs() -> list[Path]:
    return sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))
