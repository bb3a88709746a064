"""ONNX export: onnxruntime gives the same codes as torch, and mels within a stated tolerance.

Tolerances: decoded log-mels within 1e-3 (natural-log units) of torch, about 1e-4 of their
typical magnitude; vocoder audio within 1e-5 absolute (full scale 1.0). Float32 kernels differ
between the two runtimes only in summation order.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'spectok[eval]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'spectok[eval]')")

MEL_ATOL = 1e-3
AUDIO_ATOL = 1e-5


def _tokenizer(kind: str = "1d", quantizer: dict | None = None):
    from spectok.tokenizers import ConvVQVAE1d, ConvVQVAE2d

    torch.manual_seed(0)
    quantizer = quantizer or {"type": "vq", "dim": 8, "codebook_size": 64}
    if kind == "1d":
        return ConvVQVAE1d(mel="speech-16k", channels=(16, 16, 16), strides=(2, 2), num_res_blocks=1,
                           quantizer=quantizer).eval()
    if kind == "1d-groups":  # the default preset's shape: 4 FSQ tokens per column, a wider decoder
        return ConvVQVAE1d(mel="hifigan-22k", channels=(16, 16), strides=(2,), num_res_blocks=[0, 1], norm="none",
                           groups=4, decoder_channels=(32, 32), dilations=(1, 3),
                           quantizer={"type": "fsq", "levels": [5, 5, 5], "dim": 3}).eval()
    return ConvVQVAE2d(mel="hifigan-22k", channels=(16, 16, 16), num_res_blocks=1, quantizer=quantizer).eval()


def _real_mels(n_mels_config, lengths):
    """Log-mels of real speech cut to ``lengths`` frames (plus noise input when the data is absent)."""
    from conftest import SHARED_DATA

    from spectok.audio.io import load_audio
    from spectok.audio.mel import MelSpectrogram

    clips = sorted((SHARED_DATA / "LJSpeech-1.1" / "wavs").glob("*.wav"))[:1]
    if clips:
        wav, _ = load_audio(clips[0], n_mels_config.sample_rate)
        full = MelSpectrogram(n_mels_config)(torch.from_numpy(wav))
    else:
        full = torch.randn(1, n_mels_config.n_mels, max(lengths)) * 2 - 5
    return [full[..., :t].contiguous() for t in lengths]


def _compare(tok, outdir) -> None:
    enc = ort.InferenceSession(str(outdir / "encoder.onnx"))
    dec = ort.InferenceSession(str(outdir / "decoder.onnx"))
    for mel in _real_mels(tok.mel_config, [203, 64, 501, 7]):
        batch = torch.cat([mel, mel.flip(-1)])  # batch of 2
        codes = enc.run(None, {"mel": batch.numpy()})[0]
        want = tok.encode(batch).numpy()
        assert codes.dtype == np.int64
        np.testing.assert_array_equal(codes, want)
        mel_onnx = dec.run(None, {"codes": want})[0]
        np.testing.assert_allclose(mel_onnx, tok.decode(torch.from_numpy(want)).numpy(), rtol=0, atol=MEL_ATOL)


def test_cli_export_artifact_to_onnx_matches_torch(tmp_path, capsys) -> None:
    from spectok.artifacts import save_release
    from spectok.cli.main import main

    tok = _tokenizer("1d")
    art = save_release(tok, tmp_path / "tok.safetensors")
    assert main(["export", str(art), "--onnx", str(tmp_path / "onnx")]) == 0
    manifest = json.loads((tmp_path / "onnx" / "spectok-onnx.json").read_text())
    assert manifest["fingerprint"] == tok.fingerprint() and manifest["codebook_sizes"] == [64]
    assert manifest["mel"]["sample_rate"] == 16000 and manifest["time_downsample"] == 4
    _compare(tok, tmp_path / "onnx")


def test_grouped_fsq_tokenizer_exports(tmp_path) -> None:
    from spectok.onnx_export import export_onnx

    tok = _tokenizer("1d-groups")
    export_onnx(tok, tmp_path)
    _compare(tok, tmp_path)


def test_export_needs_an_output(tmp_path, capsys) -> None:
    from spectok.cli.main import main

    assert main(["export", str(tmp_path), ]) == 1
    assert "--onnx" in capsys.readouterr().err


def test_residual_vq_encoder_exports(tmp_path) -> None:
    """ResidualVQ's eval path branches on no tensor values, so its encoder exports and gives torch's codes."""
    from spectok.onnx_export import EncodeGraph, _export

    tok = _tokenizer("1d", {"type": "rvq", "num_quantizers": 3, "dim": 8, "codebook_size": 32})
    mels = _real_mels(tok.mel_config, [64, 203, 7])
    _export(EncodeGraph(tok), mels[0], tmp_path / "encoder.onnx", "mel", "codes", metadata={})
    enc = ort.InferenceSession(str(tmp_path / "encoder.onnx"))
    for mel in mels:
        batch = torch.cat([mel, mel.flip(-1)])  # batch of 2
        codes = enc.run(None, {"mel": batch.numpy()})[0]
        assert codes.shape == (2, 3, -(-mel.shape[-1] // 4))
        np.testing.assert_array_equal(codes, tok.encode(batch).numpy())


def test_value_reading_quantizer_helpers_skip_while_exporting(monkeypatch) -> None:
    from spectok.quantizers import ops

    idx = torch.tensor([0, 1, 1, 3])
    assert ops.usage_metrics(idx, 4)["used_fraction"] == 0.75
    with pytest.raises(ValueError, match="outside"):
        ops.check_codes(torch.full((1, 1, 2), 9), [4], "t")
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    assert ops.exporting()
    assert ops.usage_metrics(idx, 4) == {}
    ops.check_codes(torch.full((1, 1, 2), 9), [4], "t")  # no error: the range check reads values


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "quantizer"), [("2d", None), ("1d", {"type": "fsq", "levels": [8, 5, 5, 5]})])
def test_other_tokenizers_export(tmp_path, kind, quantizer) -> None:
    from spectok.onnx_export import export_onnx

    tok = _tokenizer(kind, quantizer)
    export_onnx(tok, tmp_path)
    _compare(tok, tmp_path)


def test_istft_vocoder_exports(tmp_path) -> None:
    from spectok import artifacts
    from spectok.onnx_export import export_onnx

    voc = artifacts.build("istft-vocoder", {"mel": "speech-16k", "dim": 32, "hidden": 64, "n_layers": 2}).eval()
    manifest = json.loads(export_onnx(voc, tmp_path).read_text())
    assert manifest["vocoder"]["file"] == "vocoder.onnx" and manifest["mel"]["hop_length"] == 160
    session = ort.InferenceSession(str(tmp_path / "vocoder.onnx"))
    for mel in _real_mels(voc.mel_config, [100, 37]):
        audio = session.run(None, {"mel": mel.numpy()})[0]
        with torch.no_grad():
            want = voc(mel).numpy()
        assert audio.shape == want.shape == (1, mel.shape[-1] * 160)
        np.testing.assert_allclose(audio, want, rtol=0, atol=AUDIO_ATOL)


@pytest.mark.slow
def test_unexportable_vocoder_is_a_clear_error(tmp_path) -> None:
    from spectok.errors import SpectokError
    from spectok.onnx_export import export_onnx
    from spectok.vocoders import GriffinLim

    with pytest.raises(SpectokError, match="cannot export GriffinLim to ONNX"):
        export_onnx(GriffinLim("speech-16k", n_iter=2), tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_released_default_exports_and_matches_torch(tmp_path) -> None:
    """The packaged `default` (residual VQ, 5 x 2,048 codes): `spectok export default --onnx` gives
    torch's codes exactly and its mels within MEL_ATOL, on real speech."""
    import spectok
    from spectok.cli.main import main

    assert main(["export", "default", "--onnx", str(tmp_path / "onnx")]) == 0
    tok = spectok.load_tokenizer("default")
    manifest = json.loads((tmp_path / "onnx" / "spectok-onnx.json").read_text())
    assert manifest["codebook_sizes"] == [2048] * 5 and manifest["fingerprint"] == tok.fingerprint()
    _compare(tok, tmp_path / "onnx")
