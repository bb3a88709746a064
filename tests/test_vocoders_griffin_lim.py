"""Griffin-Lim: shapes, the pseudo-inverse, convergence on a real clip, loading by name."""

from __future__ import annotations

import pytest
import torch

from spectok.audio import load_audio
from spectok.audio.mel import MelConfig, MelSpectrogram
from spectok.errors import MelMismatchError, SpectokError
from spectok.vocoders import GriffinLim, load_vocoder

pytestmark = pytest.mark.usefixtures("single_thread")


def _spectral_convergence(wav: torch.Tensor, target_mag: torch.Tensor, front: MelSpectrogram) -> float:
    mag = front.magnitude(wav)
    return float(torch.linalg.norm(mag - target_mag) / torch.linalg.norm(target_mag))


@pytest.mark.parametrize("preset", ["hifigan-22k", "speech-16k"])
def test_output_length_is_frames_times_hop(preset):
    cfg = MelConfig.preset(preset)
    mel = torch.randn(3, cfg.n_mels, 17) - 4.0
    wav = GriffinLim(cfg, n_iter=2)(mel)
    assert wav.shape == (3, 17 * cfg.hop_length)
    assert wav.dtype == torch.float32 and torch.isfinite(wav).all()


def test_center_true_config_also_gives_frames_times_hop():
    cfg = MelConfig(sample_rate=16000, n_fft=512, hop_length=128, win_length=512, n_mels=40, center=True)
    wav = GriffinLim(cfg, n_iter=2)(torch.randn(2, 40, 9) - 3)
    assert wav.shape == (2, 9 * 128)


def test_pseudo_inverse_recovers_a_mel_inside_the_band():
    """mel -> magnitude -> mel is close to the identity (the filter bank is wide, not square)."""
    cfg = MelConfig.preset("hifigan-22k")
    front = MelSpectrogram(cfg)
    torch.manual_seed(0)
    wav = 0.1 * torch.randn(1, 64 * cfg.hop_length)
    mel = front(wav)
    gl = GriffinLim(cfg, nnls_iters=50)
    mag = gl.mel_to_magnitude(mel)
    assert mag.shape == (1, cfg.n_fft // 2 + 1, 64) and (mag >= 0).all()
    back = front.mel_from_magnitude(mag)
    assert (back - mel).abs().mean() < 0.1
    plain = GriffinLim(cfg, nnls_iters=0).mel_to_magnitude(mel)
    assert (front.mel_from_magnitude(plain) - mel).abs().mean() >= (back - mel).abs().mean()


def test_power_spectrogram_configs_are_undone():
    cfg = MelConfig(power=2.0)
    front = MelSpectrogram(cfg)
    wav = 0.1 * torch.randn(1, 32 * cfg.hop_length, generator=torch.Generator().manual_seed(1))
    mag = GriffinLim(cfg, nnls_iters=50).mel_to_magnitude(front(wav))
    # a power mel inverted to a magnitude: squaring it gives back the power mel
    assert (front.mel_from_magnitude(mag.square()) - front(wav)).abs().mean() < 0.15


def test_iterations_improve_spectral_convergence_on_real_speech(ljspeech_wavs):
    cfg = MelConfig.preset("hifigan-22k")
    wav, _ = load_audio(ljspeech_wavs[0], cfg.sample_rate)
    wav = torch.from_numpy(wav[: cfg.sample_rate // cfg.hop_length * cfg.hop_length])  # 1 s
    front = MelSpectrogram(cfg)
    mel = front(wav)
    target = GriffinLim(cfg).mel_to_magnitude(mel)
    for init in ("random", "pghi"):
        sc = [_spectral_convergence(GriffinLim(cfg, n_iter=n, init=init)(mel), target, front) for n in (0, 4, 16)]
        assert sc[0] > sc[1] > sc[2]
    y = GriffinLim(cfg, n_iter=16, init="random")(mel)
    zero = GriffinLim(cfg, n_iter=0, init="random")(mel)
    assert (front(y) - mel).abs().mean() < 0.5 * (front(zero) - mel).abs().mean()


@pytest.mark.parametrize("preset", ["hifigan-22k", "speech-16k"])
def test_phase_gradient_start_beats_random_phases_on_real_speech(ljspeech_wavs, preset):
    """The phase-gradient start is more consistent than random phases with no iteration, and after
    8 iterations than random phases after 12 (2 s of real speech)."""
    cfg = MelConfig.preset(preset)
    wav, _ = load_audio(ljspeech_wavs[0], cfg.sample_rate)
    wav = torch.from_numpy(wav[: 2 * cfg.sample_rate // cfg.hop_length * cfg.hop_length])
    front = MelSpectrogram(cfg)
    mel = front(wav)
    target = GriffinLim(cfg).mel_to_magnitude(mel)

    def sc(init: str, n: int) -> float:
        return _spectral_convergence(GriffinLim(cfg, n_iter=n, init=init)(mel), target, front)

    assert sc("pghi", 0) < 0.8 * sc("random", 0)
    assert sc("pghi", 8) < 0.95 * sc("random", 12)


def test_batched_equals_one_by_one():
    cfg = MelConfig.preset("speech-16k")
    mel = torch.randn(2, cfg.n_mels, 12) - 5
    gl = GriffinLim(cfg, n_iter=4)
    both = gl(mel)
    assert torch.allclose(both[1], gl(mel[1:])[0], atol=1e-5)


def test_load_by_name_needs_a_mel_config_and_checks_it():
    with pytest.raises(SpectokError, match="mel config"):
        load_vocoder("griffin-lim")
    gl = load_vocoder("griffin-lim", mel_config="hifigan-22k", n_iter=3)
    assert isinstance(gl, GriffinLim) and gl.n_iter == 3 and not gl.training
    with pytest.raises(MelMismatchError, match="sample_rate.*hop_length"):
        gl.check_mel(MelConfig.preset("speech-16k"))


def test_bad_input_shape_names_the_expected_shape():
    with pytest.raises(SpectokError, match=r"\[B, 80, T\]"):
        GriffinLim("hifigan-22k")(torch.zeros(1, 40, 5))
