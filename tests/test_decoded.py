"""spectok prepare-decoded: a prepared folder whose mels are a tokenizer's reconstructions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectok.cli.main import main
from spectok.data.prepared import open_prepared

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    from spectok.artifacts import save_release
    from spectok.tokenizers import ConvVQVAE1d

    folder = tmp_path_factory.mktemp("tok")
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        tok = ConvVQVAE1d(mel="hifigan-22k", channels=(16, 16), strides=(2,), num_res_blocks=1, norm="none",
                          groups=2, quantizer={"type": "fsq", "levels": [5, 5, 5], "dim": 3})
        out.append(save_release(tok, folder / f"tok{seed}.safetensors"))
    return out


def test_decoded_copy_holds_the_reconstructions_and_the_same_manifest(tiny_prepared, tokenizers, tmp_path) -> None:
    from spectok.tokenizers import load_tokenizer

    dst = tmp_path / "dec"
    assert main(["prepare-decoded", str(tiny_prepared), str(dst), "-t", str(tokenizers[0])]) == 0
    src, dec = open_prepared(tiny_prepared), open_prepared(dst)
    assert dec.records == src.records and dec.mel_config == src.mel_config
    tok = load_tokenizer(tokenizers[0])
    for row in src.records[:3]:
        mel = src.load_mel(row["id"])
        want = tok.decode(tok.encode(torch.from_numpy(mel.astype(np.float32))[None]))[0, :, : mel.shape[1]]
        got = dec.load_mel(row["id"])
        assert got.shape == mel.shape
        np.testing.assert_allclose(got, want.numpy(), atol=1e-6)
        assert np.abs(got - mel).mean() > 0.1  # an untrained tokenizer: clearly not the input


def test_resume_skips_and_another_tokenizer_is_refused(tiny_prepared, tokenizers, tmp_path, capsys) -> None:
    from spectok.data.decoded import prepare_decoded

    dst = tmp_path / "dec"
    assert prepare_decoded(tiny_prepared, dst, tokenizers[0]) == len(open_prepared(tiny_prepared).records)
    assert prepare_decoded(tiny_prepared, dst, tokenizers[0]) == 0
    assert main(["prepare-decoded", str(tiny_prepared), str(dst), "-t", str(tokenizers[1])]) == 1
    assert "decoded by another tokenizer" in capsys.readouterr().err


def test_front_end_mismatch_is_refused(tiny_prepared, tmp_path) -> None:
    from spectok.artifacts import save_release
    from spectok.data.decoded import prepare_decoded
    from spectok.errors import MelMismatchError
    from spectok.tokenizers import ConvVQVAE1d

    tok = ConvVQVAE1d(mel="speech-16k", channels=(8, 8), strides=(2,), num_res_blocks=0, norm="none",
                      quantizer={"type": "fsq", "levels": [5, 5, 5], "dim": 3})
    path = save_release(tok, tmp_path / "t16.safetensors")
    with pytest.raises(MelMismatchError, match="sample_rate"):
        prepare_decoded(tiny_prepared, tmp_path / "x", path)
