import librosa
import numpy as np
import pytest
import torch

from spectok.audio import MelConfig, MelSpectrogram, load_audio
from spectok.errors import MelMismatchError, SpectokError


def reference_log_mel(wav: np.ndarray, c: MelConfig) -> np.ndarray:
    """Independent computation: librosa STFT + librosa filter bank, numpy log."""
    y = np.pad(wav, (c.padding, c.padding), mode="reflect")
    stft = librosa.stft(y, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                        window="hann", center=False)
    mag = np.sqrt(np.abs(stft) ** 2 + c.magnitude_eps)
    fb = librosa.filters.mel(sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax,
                             norm="slaney", htk=False)
    return np.log(np.maximum(fb @ mag, c.log_floor))


@pytest.mark.parametrize("preset", ["hifigan-22k", "speech-16k", "l2arctic-16k-128"])
def test_matches_librosa_on_real_clips(ljspeech_wavs, preset):
    c = MelConfig.preset(preset)
    mel = MelSpectrogram(c)
    for path in ljspeech_wavs[:3]:
        wav, _ = load_audio(path, c.sample_rate)
        ours = mel(torch.from_numpy(wav))[0].double().numpy()
        ref = reference_log_mel(wav.astype(np.float64), c)
        assert ours.shape == ref.shape == (c.n_mels, c.num_frames(len(wav)))
        assert np.abs(ours - ref).max() <= 1e-4


def test_hifigan_preset_is_exact_front_end():
    c = MelConfig.preset("hifigan-22k")
    assert (c.sample_rate, c.n_fft, c.hop_length, c.win_length, c.n_mels) == (22050, 1024, 256, 1024, 80)
    assert (c.fmin, c.fmax, c.center, c.power, c.log_floor, c.padding) == (0.0, 8000.0, False, 1.0, 1e-5, 384)


@pytest.mark.parametrize("n", [600, 1000, 256 * 10, 256 * 10 + 1, 22050])
@pytest.mark.parametrize("center", [False, True])
def test_frame_count_formula(n, center):
    c = MelConfig(center=center)
    out = MelSpectrogram(c)(torch.randn(2, n))
    assert out.shape == (2, 80, c.num_frames(n))
    if not center and n % 256 == 0:
        assert c.num_frames(n) == n // 256


def test_batched_equals_single_and_deterministic():
    m = MelSpectrogram("hifigan-22k")
    x = torch.randn(3, 5000)
    batch = m(x)
    for i in range(3):
        torch.testing.assert_close(m(x[i]), batch[i : i + 1], rtol=0, atol=1e-5)
    assert torch.equal(m(x), batch)


def test_silence_gives_log_floor():
    m = MelSpectrogram("hifigan-22k")
    out = m(torch.zeros(1, 4096))
    assert torch.allclose(out, torch.full_like(out, m.config.silence), atol=1e-3)


def test_fingerprint_stable_and_diff_names_fields(tmp_path):
    a = MelConfig.preset("hifigan-22k")
    assert a.fingerprint() == MelConfig(**a.to_dict()).fingerprint()
    assert a.fingerprint() == "7f30f00c222e0f7c"  # stable: a change orphans stored mels
    b = MelConfig.preset("speech-16k")
    assert a.fingerprint() != b.fingerprint()
    with pytest.raises(MelMismatchError, match="sample_rate.*hop_length"):
        a.check_compatible(b)
    (tmp_path / "m.yaml").write_text("mel:\n  sample_rate: 16000\n  n_mels: 64\n")
    assert MelConfig.coerce(str(tmp_path / "m.yaml")).n_mels == 64
    with pytest.raises(SpectokError, match="unknown mel preset|neither"):
        MelConfig.coerce("nope")


def test_follows_device_and_autocast():
    m = MelSpectrogram("speech-16k")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(torch.randn(1, 16000))
    assert out.dtype == torch.float32


def test_numbers_from_yaml_are_coerced_so_the_fingerprint_is_stable(tmp_path):
    """YAML reads 1e-9 as a string and 8000 as an int: the config and its fingerprint must not change."""
    import pytest

    from spectok.errors import SpectokError

    ref = MelConfig.preset("hifigan-22k")
    f = tmp_path / "mel.yaml"
    f.write_text("sample_rate: 22050\nn_fft: 1024\nhop_length: 256\nwin_length: 1024\nn_mels: 80\n"
                 "fmin: 0\nfmax: 8000\nmagnitude_eps: 1e-9\nlog_floor: 1e-5\n")
    mine = MelConfig.coerce(f)
    assert mine == ref and mine.fingerprint() == ref.fingerprint()
    assert isinstance(mine.magnitude_eps, float) and isinstance(mine.fmax, float)
    with pytest.raises(SpectokError, match="n_mels must be an integer"):
        MelConfig(n_mels=80.5)
    with pytest.raises(SpectokError, match="log_floor must be a number"):
        MelConfig(log_floor="tiny")


@pytest.mark.parametrize("preset", ["speech-16k", "hifigan-22k"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_blocked_forward_equals_one_pass_and_keeps_gradients(preset, dtype):
    """Without gradients a long signal runs in blocks of frames: the very same numbers as one pass;
    with gradients (training losses) it stays one differentiable pass."""
    front = MelSpectrogram(preset, stft_dtype=dtype)
    samples = (3 * front.BLOCK_FRAMES + 17) * front.config.hop_length
    x = torch.randn(2, samples, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        blocked = front(x)
        whole = front.mel_from_magnitude(front.magnitude(x))
    assert blocked.shape == whole.shape and blocked.shape[-1] > 3 * front.BLOCK_FRAMES
    assert torch.equal(blocked, whole)
    xg = x.clone().requires_grad_(True)
    front(xg).sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
