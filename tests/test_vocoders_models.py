"""Vocoder models: the shape contract, mel checks, artifact round trips, spectral losses."""

from __future__ import annotations

import pytest
import torch

from spectok import artifacts
from spectok.audio.mel import MelConfig, MelSpectrogram
from spectok.audio.spectral import stft_magnitude
from spectok.errors import ArtifactError, MelMismatchError, SpectokError
from spectok.losses import mel_l1_loss, multi_resolution_stft_loss, spectral_convergence
from spectok.vocoders import CNNVocoder, GriffinLim, HiFiGANGenerator, ISTFTVocoder, load_vocoder
from spectok.vocoders.cnn import upsample_factors
from spectok.vocoders.discriminators import HiFiGANDiscriminator

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {
    "istft": lambda mel: ISTFTVocoder(mel, dim=16, hidden=32, n_layers=2),
    "hifigan-v3": lambda mel: HiFiGANGenerator(mel, preset="v3", channels=16),
    "hifigan-v1": lambda mel: HiFiGANGenerator(mel, preset="v1", channels=16),
    "cnn": lambda mel: CNNVocoder(mel, channels=16, min_channels=4, pre_blocks=1, post_blocks=1),
    "cnn-linear-2heads": lambda mel: CNNVocoder(mel, input="linear", channels=16, min_channels=4, heads=2,
                                                upsample="linear"),
    "griffin-lim": lambda mel: GriffinLim(mel, n_iter=2),
}


def _input(vocoder, b: int, t: int) -> torch.Tensor:
    rows = getattr(vocoder, "in_channels", vocoder.mel_config.n_mels)
    return torch.randn(b, rows, t) - 4


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_vocoder_maps_frames_to_frames_times_hop(name):
    voc = TINY[name]("hifigan-22k").eval()
    with torch.no_grad():
        wav = voc(_input(voc, 2, 7))
    assert wav.shape == (2, 7 * 256) and wav.dtype == torch.float32
    assert torch.isfinite(wav).all() and wav.abs().max() <= 1.0


@pytest.mark.parametrize("name", sorted(TINY))
def test_bf16_autocast_still_returns_float32(name):
    voc = TINY[name]("hifigan-22k").eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        wav = voc(_input(voc, 1, 4))
    assert wav.dtype == torch.float32 and wav.shape == (1, 4 * 256) and torch.isfinite(wav).all()


@pytest.mark.parametrize("name", ["istft", "cnn"])
def test_hop_160_front_end(name):
    voc = TINY[name]("speech-16k").eval()
    with torch.no_grad():
        assert voc(_input(voc, 1, 5)).shape == (1, 5 * 160)


def test_hifigan_rejects_rates_that_do_not_make_the_hop():
    with pytest.raises(SpectokError, match=r"multiply to 256, not the mel hop 160"):
        HiFiGANGenerator("speech-16k", preset="v1")


def test_hifigan_presets_have_the_papers_sizes():
    """V1 13.9 M, V2 0.9 M, V3 1.5 M generator parameters (HiFi-GAN paper, Table 1)."""
    counts = {p: sum(x.numel() for x in HiFiGANGenerator(preset=p).parameters()) / 1e6 for p in ("v1", "v2", "v3")}
    assert round(counts["v1"], 1) == 13.9 and round(counts["v2"], 1) == 0.9 and round(counts["v3"], 1) == 1.5


def test_upsample_factors():
    assert upsample_factors(256) == [2] * 8
    assert upsample_factors(160) == [2] * 5 + [5]


def test_wrong_input_shape_names_the_expected_layout():
    with pytest.raises(SpectokError, match=r"\[B, 80, T\]"):
        TINY["istft"]("hifigan-22k")(torch.zeros(1, 513, 4))
    with pytest.raises(SpectokError, match=r"log linear spectrogram \[B, 513, T\]"):
        TINY["cnn-linear-2heads"]("hifigan-22k")(torch.zeros(1, 80, 4))


def test_mel_mismatch_names_the_fields():
    voc = TINY["istft"]("hifigan-22k")
    with pytest.raises(MelMismatchError, match=r"n_mels \(vocoder 80, tokenizer 128\)"):
        voc.check_mel(MelConfig.preset("l2arctic-16k-128"))
    voc.check_mel(MelConfig.preset("hifigan-22k"))


@pytest.mark.parametrize("name", ["istft", "hifigan-v3", "cnn-linear-2heads"])
def test_artifact_round_trip(tmp_path, name):
    torch.manual_seed(0)
    voc = TINY[name]("hifigan-22k").eval()
    x = _input(voc, 1, 6)
    path = artifacts.save_release(voc, tmp_path / "voc.safetensors", training={"steps": 1})
    back = load_vocoder(path)
    assert type(back) is type(voc) and not back.training
    assert back.hparams == voc.hparams and artifacts.read_header(path)["kind"] == "vocoder"
    with torch.no_grad():
        assert torch.equal(back(x), voc(x))
    with pytest.raises(MelMismatchError, match="sample_rate"):
        load_vocoder(path, mel_config="speech-16k")


def test_load_vocoder_errors(tmp_path):
    with pytest.raises(ArtifactError, match="no such vocoder artifact"):
        load_vocoder(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ArtifactError, match="bad.safetensors"):
        load_vocoder(bad)


def test_hifigan_remove_weight_norm_keeps_the_output():
    voc = TINY["hifigan-v3"]("hifigan-22k").eval()
    x = _input(voc, 1, 5)
    with torch.no_grad():
        before = voc(x)
        after = voc.remove_weight_norm()(x)
    assert torch.allclose(before, after, atol=1e-5)


def test_discriminators_return_scores_and_features_per_sub_discriminator():
    d = HiFiGANDiscriminator(periods=[2, 3], scales=2, width=0.05)
    scores, feats = d(torch.randn(2, 1000))  # 1000 is not a multiple of 3: padded
    assert len(scores) == len(feats) == 4
    assert all(s.shape[0] == 2 for s in scores) and all(len(f) >= 5 for f in feats)


# ---- spectral losses ----------------------------------------------------------------------------
def test_spectral_losses_are_zero_for_identical_signals_and_positive_otherwise():
    torch.manual_seed(0)
    x = 0.1 * torch.randn(2, 4096)
    y = x + 0.01 * torch.randn(2, 4096)
    same = multi_resolution_stft_loss(x, x)
    diff = multi_resolution_stft_loss(y, x)
    assert float(same["sc"]) == 0.0 and float(same["log_mag"]) == 0.0
    assert float(diff["sc"]) > 0 and float(diff["log_mag"]) > 0
    front = MelSpectrogram("hifigan-22k", stft_dtype=torch.float32)
    assert float(mel_l1_loss(x, x, front)) == 0.0 and float(mel_l1_loss(y, x, front)) > 0
    assert float(mel_l1_loss(y, front(x), front)) == float(mel_l1_loss(y, x, front))


def test_spectral_convergence_scale_and_gradient():
    mag = stft_magnitude(0.1 * torch.randn(1, 2048, generator=torch.Generator().manual_seed(1)), 512, 128, 512)
    assert float(spectral_convergence(mag * 0.5, mag)) == pytest.approx(0.5, rel=1e-5)
    pred = (0.1 * torch.randn(1, 2048)).requires_grad_()
    multi_resolution_stft_loss(pred, torch.zeros(1, 2048) + 0.01)["log_mag"].backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_stft_loss_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        multi_resolution_stft_loss(torch.zeros(1, 100), torch.zeros(1, 101))


def test_istft_head_inverts_the_front_ends_framing_exactly():
    """The head's overlap-add undoes the front end's framing: an iSTFT vocoder whose head emits
    the exact STFT frames of a signal (padded as the front end pads) returns that signal,
    sample-aligned with the input frames."""
    cfg = MelConfig.preset("hifigan-22k")
    voc = ISTFTVocoder(cfg, dim=8, hidden=8, n_layers=1).train()  # train mode: no output clamp
    x = torch.randn(2, 40 * cfg.hop_length, generator=torch.Generator().manual_seed(0))
    pad = (cfg.n_fft - cfg.hop_length) // 2
    xp = torch.nn.functional.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(xp, cfg.n_fft, cfg.hop_length, window=voc.window, center=False, return_complex=True)
    assert spec.shape[-1] == 40  # frames = samples / hop
    voc.spectrum = lambda features: spec.transpose(1, 2)  # [B, T, F], what the head would predict
    y = voc(torch.zeros(2, cfg.n_mels, 40))
    assert y.shape == x.shape and torch.allclose(y, x, atol=1e-4)
