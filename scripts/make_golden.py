"""Regenerate tests/golden/tiny_fsq.npz on purpose: the codes and decoded log-mel of a tiny seeded
tokenizer on half a second of a real LJSpeech clip. tests/test_golden.py compares against it and
never writes it; run this only when a change of outputs is intended, and say why in the commit.

Usage::

    python scripts/make_golden.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "tiny_fsq.npz"
CLIP = REPO.parent / "shared" / "data" / "LJSpeech-1.1" / "wavs" / "LJ001-0001.wav"


def tiny_tokenizer() -> torch.nn.Module:
    """A seeded, untrained 1-D FSQ tokenizer at 16 kHz (the default's design, narrower)."""
    from spectok.tokenizers import ConvVQVAE1d

    torch.manual_seed(1234)
    tok = ConvVQVAE1d(mel="speech-16k", channels=(24, 32), strides=(2,), num_res_blocks=(0, 1), dilations=(1, 3),
                      norm="none", groups=2, quantizer={"type": "fsq", "levels": [5, 5, 5], "dim": 3})
    with torch.no_grad():
        tok.pre_quant.weight.mul_(20.0)  # spread the latents over the FSQ grid, so codes vary
    return tok.eval()


def golden_inputs() -> np.ndarray:
    """The log-mel ``[80, 50]`` of the clip's first half second (float64 prepared front end)."""
    from spectok.audio.io import load_audio
    from spectok.audio.mel import MelSpectrogram

    wav, sr = load_audio(CLIP, 16000)
    return MelSpectrogram("speech-16k")(torch.from_numpy(wav[: sr // 2]))[0].numpy()


def main() -> int:
    mel = golden_inputs()
    tok = tiny_tokenizer()
    with torch.no_grad():
        codes = tok.encode(torch.from_numpy(mel)[None].float())[0]
        decoded = tok.decode(codes[None])[0, :, : mel.shape[1]]
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(GOLDEN, codes=codes.numpy().astype(np.int16), mel=decoded.numpy().astype(np.float32))
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes): codes {tuple(codes.shape)}, "
          f"{len(np.unique(codes.numpy()))} distinct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
