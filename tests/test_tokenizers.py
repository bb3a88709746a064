"""The convolutional tokenizers: shapes, padding, rates, receptive field, artifacts, loading."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from spectok.artifacts import register, save_release
from spectok.audio.mel import MelConfig
from spectok.errors import ArtifactError, SpectokError
from spectok.tokenizers import ConvVQVAE1d, ConvVQVAE2d, ImageVQVAE, load_tokenizer

PRESETS = Path(__file__).resolve().parents[1] / "configs" / "tokenizer"
VQ = {"type": "vq", "dim": 8, "codebook_size": 32}
SILENCE = MelConfig.preset("hifigan-22k").silence


def tiny2d(**kw) -> ConvVQVAE2d:
    args = dict(channels=[8, 8, 16], strides=[[4, 2], [5, 1]], num_res_blocks=1, quantizer=VQ)
    args.update(kw)
    return ConvVQVAE2d(**args).eval()


def tiny1d(**kw) -> ConvVQVAE1d:
    args = dict(channels=[16, 16, 16], strides=[2, 2], num_res_blocks=1, quantizer=VQ)
    args.update(kw)
    return ConvVQVAE1d(**args).eval()


def log_mel(batch: int, frames: int, n_mels: int = 80, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n_mels, frames, generator=g) * 2 - 5


@pytest.mark.parametrize("frames", [1, 7, 37, 64])
def test_2d_shapes_for_odd_lengths(frames):
    m = tiny2d()
    mel = log_mel(2, frames)
    codes = m.encode(mel)
    assert codes.dtype == torch.int64
    assert codes.shape == (2, 80 // 20, math.ceil(frames / 2))
    assert m.decode(codes).shape == (2, 80, codes.shape[-1] * 2)
    out = m(mel)
    assert out.reconstruction.shape == mel.shape
    assert torch.equal(out.codes, codes)


@pytest.mark.parametrize("frames", [1, 5, 38])
def test_1d_rvq_shapes(frames):
    m = tiny1d(quantizer={"type": "rvq", "num_quantizers": 3, "dim": 8, "codebook_size": 16})
    codes = m.encode(log_mel(2, frames))
    assert codes.shape == (2, 3, math.ceil(frames / 4))
    assert m.codebook_sizes == [16, 16, 16]
    assert m.decode(codes).shape == (2, 80, codes.shape[-1] * 4)


@pytest.mark.parametrize("frames", [1, 6, 37])
def test_1d_groups_make_a_token_grid_with_a_wider_decoder(frames):
    fsq = {"type": "fsq", "levels": [5, 5, 5], "dim": 3}
    m = tiny1d(quantizer=fsq, groups=4, decoder_channels=[32, 32, 32], decoder_res_blocks=[0, 1, 2])
    mel = log_mel(2, frames)
    codes = m.encode(mel)
    assert codes.shape == (2, 4, math.ceil(frames / 4))
    assert m.codebook_sizes == [125] * 4
    assert m.bitrate == pytest.approx(m.frame_rate * 4 * math.log2(125))
    assert int(codes.min()) >= 0 and int(codes.max()) < 125
    out = m(mel)
    assert torch.equal(out.codes, codes) and out.reconstruction.shape == mel.shape
    # decode(encode(x)) is the forward pass's reconstruction: the groups go back where they came from
    torch.testing.assert_close(m.decode(codes)[..., :frames], out.reconstruction)
    assert m.decoder.net[0].in_channels == 32 and m.encoder.net[-1].out_channels == 16
    # each group is its own token: changing one group's code changes the decoded mel
    changed = codes.clone()
    changed[:, 2] = (changed[:, 2] + 1) % 125
    assert not torch.equal(m.decode(changed), m.decode(codes))


def test_1d_groups_with_padding_mask_and_rvq():
    m = tiny1d(quantizer={"type": "rvq", "num_quantizers": 2, "dim": 4, "codebook_size": 16}, groups=3).train()
    mask = torch.ones(2, 16)
    mask[1, 9:] = 0
    out = m(log_mel(2, 16), mask)
    assert out.codes.shape == (2, 2 * 3, 4)  # stage-major: stage 0's 3 groups, then stage 1's
    assert m.codebook_sizes == [16] * 6
    with pytest.raises(SpectokError, match="decoder_channels"):
        tiny1d(decoder_channels=[8, 8])
    with pytest.raises(SpectokError, match="groups"):
        tiny1d(groups=0)


def test_2d_rvq_codes_are_stage_major_rows():
    m = tiny2d(quantizer={"type": "rvq", "num_quantizers": 2, "dim": 8, "codebook_size": 16})
    codes = m.encode(log_mel(1, 10))
    assert codes.shape == (1, 2 * 4, 5)
    assert m.codebook_sizes == [16] * 8
    torch.testing.assert_close(m.decode(codes), m._reconstruct(m.quantizer(m._latent(log_mel(1, 10))).quantized))


def test_inputs_are_padded_with_the_log_floor(monkeypatch):
    m = tiny1d()
    seen = {}
    original = m.encoder.forward

    def spy(x):
        seen["x"] = x.clone()
        return original(x)

    monkeypatch.setattr(m.encoder, "forward", spy)
    m.encode(log_mel(1, 9))  # 9 frames -> padded to 12 (time downsampling 4)
    x = seen["x"]
    assert x.shape[-1] == 12
    expected = (SILENCE - m.norm_mean) / m.norm_std
    torch.testing.assert_close(x[..., 9:], torch.full_like(x[..., 9:], expected))


def test_padding_equals_explicit_silence():
    m = tiny2d()
    mel = log_mel(1, 9)
    padded = torch.cat([mel, torch.full((1, 80, 1), SILENCE)], dim=-1)
    assert torch.equal(m.encode(mel), m.encode(padded))


def test_rates_derived_from_the_dctts_preset():
    cfg = yaml.safe_load((PRESETS / "dctts-spectrogram-vq.yaml").read_text())["model"]
    mel = MelConfig.coerce(cfg["mel"])
    freq_down = math.prod(s[0] for s in cfg["strides"])
    time_down = math.prod(s[1] for s in cfg["strides"])
    rows = mel.n_mels // freq_down
    columns_per_s = mel.sample_rate / mel.hop_length / time_down
    expected = rows * math.log2(cfg["quantizer"]["codebook_size"]) * columns_per_s
    from spectok.artifacts import build_section

    m = build_section(cfg, "tokenizer")
    assert m.frame_rate == pytest.approx(columns_per_s)
    assert m.codebook_sizes == [cfg["quantizer"]["codebook_size"]] * rows
    assert m.bitrate == pytest.approx(expected)
    assert m.time_downsample == time_down


@pytest.mark.parametrize("make", [lambda: tiny1d(dilations=[1, 3], norm="none"),
                                  lambda: tiny2d(norm="batch", num_res_blocks=[1, 0, 2], dilations=[1, 2])])
def test_receptive_field_matches_gradient_support(make):
    m = make()
    mel = log_mel(1, 200).requires_grad_(True)
    z = m.pre_quant(m.encoder(m._to_input((mel - m.norm_mean) / m.norm_std)))
    z[..., 200 // m.time_downsample // 2].sum().backward()  # a column far from both edges
    touched = (mel.grad.abs().sum(1)[0] > 0).nonzero().flatten()
    span = int(touched.max() - touched.min() + 1)
    assert span == m.receptive_field


def test_bad_inputs_raise_clear_errors():
    m = tiny2d()
    with pytest.raises(SpectokError, match="n_mels|80"):
        m.encode(torch.zeros(1, 40, 10))
    with pytest.raises(SpectokError, match="codes"):
        m.decode(torch.zeros(1, 3, 5, dtype=torch.long))
    with pytest.raises(SpectokError, match="divisible"):
        ConvVQVAE2d(channels=[8, 8, 8], strides=[[3, 1], [1, 1]], quantizer=VQ)


@pytest.mark.parametrize("norm,act", [("batch", "relu"), ("none", "gelu"), ("group", "swish")])
def test_norm_and_activation_options_train(norm, act):
    m = tiny2d(norm=norm, act=act).train()
    out = m(log_mel(2, 16))
    (out.reconstruction.mean() + out.quantizer.loss).backward()
    assert m.encoder.net[0].weight.grad is not None


def test_artifact_round_trip_gives_equal_outputs(tmp_path):
    m = tiny1d(quantizer={"type": "fsq", "levels": [5, 4, 3], "dim": 8})
    path = save_release(m, tmp_path / "tok.safetensors")
    loaded = load_tokenizer(path)
    mel = log_mel(2, 21)
    codes = m.encode(mel)
    assert torch.equal(loaded.encode(mel), codes)
    torch.testing.assert_close(loaded.decode(codes), m.decode(codes), rtol=0, atol=0)
    assert loaded.fingerprint() == m.fingerprint()
    assert loaded.mel_config == m.mel_config


@register("test-tokenizers-dummy-vocoder", "vocoder")
class _DummyVocoder(nn.Module):
    def __init__(self, width: int = 2) -> None:
        super().__init__()
        self.proj = nn.Linear(width, width)


def test_load_tokenizer_refuses_vocoders_and_corrupt_files(tmp_path):
    voc = save_release(_DummyVocoder(), tmp_path / "voc.safetensors")
    with pytest.raises(ArtifactError, match="vocoder, not a tokenizer"):
        load_tokenizer(voc)
    good = save_release(tiny1d(), tmp_path / "tok.safetensors")
    data = good.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="trunc.safetensors"):
        load_tokenizer(tmp_path / "trunc.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00garbage" * 50)
    with pytest.raises(ArtifactError, match="junk.safetensors"):
        load_tokenizer(tmp_path / "junk.safetensors")
    with pytest.raises(ArtifactError, match="not found"):
        load_tokenizer(tmp_path / "missing.safetensors")


def test_the_pipeline_resamples_and_uses_the_tokenizers_own_front_end(ljspeech_wavs):
    from spectok.audio import MelSpectrogram, load_audio, resample
    from spectok.audio.mel import INFERENCE_STFT_DTYPE
    from spectok.pipeline import Pipeline

    m = tiny2d(mel="l2arctic-16k-128", strides=[[4, 2], [2, 2]])
    wav, sr = load_audio(ljspeech_wavs[0])
    wav = wav[: sr * 2]
    codes = torch.from_numpy(Pipeline(m).encode(wav, sr).codes)[None]
    wav16 = resample(wav, sr, 16000)
    mel = MelSpectrogram("l2arctic-16k-128", INFERENCE_STFT_DTYPE)(torch.from_numpy(wav16))
    assert codes.shape == (1, 128 // 8, math.ceil(mel.shape[-1] / 4))
    assert torch.equal(codes, m.encode(mel))


def test_image_vqvae_shapes_and_bits():
    m = ImageVQVAE(channels=[8, 16, 16], num_res_blocks=1, quantizer={"type": "vq", "dim": 8, "codebook_size": 512})
    m.eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    codes = m.encode(x)
    assert codes.shape == (3, 8, 8)
    assert m.decode(codes).shape == x.shape
    assert m.bits_per_image == 64 * math.log2(512)
    with pytest.raises(AttributeError):
        _ = m.frame_rate


def test_speech_presets_keep_their_bitrate_targets():
    """``default`` (16 kHz) within 1.4 kbps; ``ljspeech22k`` (the DCTTS setting) at most the DCTTS rate."""
    from spectok.artifacts import build_section

    models = {name: build_section(yaml.safe_load((PRESETS / f"{name}.yaml").read_text())["model"], "tokenizer")
              for name in ("default", "ljspeech22k", "dctts-spectrogram-vq")}
    assert models["default"].mel_config.preset_name() == "speech-16k" and models["default"].bitrate <= 1400
    assert models["ljspeech22k"].mel_config.preset_name() == "hifigan-22k"
    assert models["ljspeech22k"].bitrate <= models["dctts-spectrogram-vq"].bitrate


def test_tokenizer_encode_is_pure_in_training_mode():
    """An EMA-VQ tokenizer in train mode: encode() leaves every weight and buffer bit-identical."""
    from spectok.tokenizers import ConvVQVAE1d

    torch.manual_seed(0)
    tok = ConvVQVAE1d(mel="speech-16k", channels=(16, 16), strides=(2,), num_res_blocks=0, norm="none",
                      quantizer={"type": "vq", "dim": 8, "codebook_size": 32, "ema": True, "kmeans_init": False,
                                 "dead_code_threshold": 1.0})
    mel = torch.randn(2, 80, 40) - 5
    tok.train()
    before = {k: v.clone() for k, v in tok.state_dict().items()}
    codes = tok.encode(mel)
    assert all(torch.equal(before[k], v) for k, v in tok.state_dict().items())
    tok.eval()
    assert torch.equal(codes, tok.encode(mel))
    tok.train()
    tok(mel)
    assert any(not torch.equal(before[k], v) for k, v in tok.state_dict().items())  # the control
