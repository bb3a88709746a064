"""Golden outputs: a tiny seeded tokenizer on a real clip must give the committed codes exactly and the
committed decoded log-mel within 1e-4 (float32 on one CPU build of torch 2.13). The file is written only
by scripts/make_golden.py, on purpose; a missing file is a failure."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from conftest import shared_path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def test_codes_and_decoded_mel_match_the_golden_file() -> None:
    import make_golden

    shared_path("LJSpeech-1.1", "wavs", "LJ001-0001.wav")
    assert make_golden.GOLDEN.is_file(), f"{make_golden.GOLDEN} is missing (committed, never written by tests)"
    want = np.load(make_golden.GOLDEN)
    tok = make_golden.tiny_tokenizer()
    mel = torch.from_numpy(make_golden.golden_inputs())[None].float()
    with torch.no_grad():
        codes = tok.encode(mel)[0]
        decoded = tok.decode(codes[None])[0, :, : mel.shape[-1]]
    assert len(np.unique(want["codes"])) > 20  # the codes vary, so an exact match means something
    np.testing.assert_array_equal(codes.numpy(), want["codes"].astype(np.int64))
    np.testing.assert_allclose(decoded.numpy(), want["mel"], rtol=0, atol=1e-4)
