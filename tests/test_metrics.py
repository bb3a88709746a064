"""Metrics against known values: identity, noise at falling SNR, bitrate arithmetic, intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import shared_path

from spectok.audio.io import load_audio
from spectok.audio.mel import MelConfig, MelSpectrogram
from spectok.evaluation import metrics as M


@pytest.fixture(scope="module")
def lj_clip() -> tuple[np.ndarray, int]:
    wav, sr = load_audio(sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))[0])
    return wav[: 3 * sr], sr


@pytest.fixture(scope="module")
def libri_clip() -> tuple[np.ndarray, int]:
    wav, sr = load_audio(sorted(shared_path("LibriSpeech").rglob("*.flac"))[0])
    return wav[: 3 * sr], sr


def _noisy(wav: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(wav))
    scale = math.sqrt(np.mean(wav.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (wav + scale * noise).astype(np.float32)


# ---- identity ------------------------------------------------------------------------------
def test_identical_signals_give_ceiling_scores(lj_clip):
    wav, sr = lj_clip
    p = M.pesq_score(wav, wav, sr)
    assert p.ok and p.note is None and p.value == pytest.approx(4.644, abs=0.01)
    s = M.stoi_score(wav, wav, sr)
    assert s.ok and s.value == pytest.approx(1.0, abs=1e-6)


def test_identical_8khz_audio_is_scored_narrowband():
    wav, sr = load_audio(sorted(shared_path("free-spoken-digit-dataset", "recordings").glob("*.wav"))[0])
    p = M.pesq_score(wav, wav, sr)
    assert sr == 8000 and p.ok and p.note == "narrowband (8 kHz)"
    assert p.value == pytest.approx(4.549, abs=0.01)  # the P.862 narrowband ceiling


def test_identical_log_mels_give_zero_distances(lj_clip):
    wav, sr = lj_clip
    mel = MelSpectrogram(MelConfig.preset("hifigan-22k"))(torch.from_numpy(wav))[0]
    for name, value in M.mel_metrics(mel, mel.clone()).items():
        assert value == 0.0, name


# ---- known differences -----------------------------------------------------------------------
def test_pesq_and_stoi_fall_as_noise_rises(libri_clip):
    wav, sr = libri_clip
    snrs = [40, 20, 10, 0]
    pesq = [M.pesq_score(wav, _noisy(wav, snr), sr).value for snr in snrs]
    stoi = [M.stoi_score(wav, _noisy(wav, snr), sr).value for snr in snrs]
    assert all(v is not None for v in pesq + stoi)
    assert all(a > b for a, b in zip(pesq, pesq[1:])), pesq
    assert all(a > b for a, b in zip(stoi, stoi[1:])), stoi
    assert pesq[0] > 3.5 and pesq[-1] < 2.0


def test_stft_lsd_identity_gain_and_noise(libri_clip):
    wav, sr = libri_clip
    assert M.stft_lsd(wav, wav).value == 0.0
    # a gain of 10 (x100 in power) moves every bin by 2 in log10 power, except the few bins
    # where the 1e-10 floor dominates: the distance is 2 within 1 %
    assert M.stft_lsd(wav, 10 * wav).value == pytest.approx(2.0, rel=0.01)
    lsd = [M.stft_lsd(wav, _noisy(wav, snr)).value for snr in (40, 20, 10, 0)]
    assert all(a < b for a, b in zip(lsd, lsd[1:])), lsd
    assert not M.stft_lsd(wav[:500], wav[:500]).ok  # shorter than half a 2,048-point frame
    # a band the estimate lacks counts only when it lies below fmax
    from scipy.signal import butter, sosfiltfilt

    low = sosfiltfilt(butter(8, 4000, fs=sr, output="sos"), wav)
    assert M.stft_lsd(wav, low, sr, fmax=3500).value < 0.5 * M.stft_lsd(wav, low, sr).value


def test_mel_metrics_match_hand_computation():
    """A constant offset of d nepers on every band: L1 = d, MSE = d², LSD = d·20/ln10 dB and
    MFCC distance = 0 (an offset only moves c0, which is excluded); a ripple across bands moves the cepstra."""
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(80, 50, generator=g, dtype=torch.float64) - 5
    d = 0.3
    m = M.mel_metrics(ref, ref + d)
    assert m["mel_l1"] == pytest.approx(d) and m["mel_mse"] == pytest.approx(d * d)
    assert m["lsd_db"] == pytest.approx(d * 20 / math.log(10))
    assert m["mfcc_dist_db"] == pytest.approx(0.0, abs=1e-9)
    # one cosine of the DCT basis with amplitude a: only c_3 moves, by a·sqrt(n_mels/2)
    bands = torch.arange(80, dtype=torch.float64)
    a = 0.1
    ripple = a * torch.cos(math.pi * (bands + 0.5) * 3 / 80)[:, None].expand(80, 50)
    mcd = M.mfcc_distance(ref, ref + ripple)
    assert mcd == pytest.approx(M.MCD_CONSTANT * a * math.sqrt(40), rel=1e-9)
    # power mels are halved to amplitudes: the same dB difference as a magnitude offset of d/2
    assert M.log_spectral_distance(ref, ref + d, power=2.0) == pytest.approx(d / 2 * 20 / math.log(10))


def test_mel_metrics_refuse_different_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        M.log_mel_l1(torch.zeros(80, 10), torch.zeros(80, 11))


# ---- failures are recorded, not raised ----------------------------------------------------------
def test_short_silent_and_broken_signals_are_marked_not_fatal(lj_clip):
    wav, sr = lj_clip
    short = wav[sr: sr + sr // 10]  # 0.1 s of speech
    p = M.pesq_score(short, short, sr)
    assert not p.ok and "too short for PESQ" in p.failure
    s = M.stoi_score(short, short, sr)
    assert not s.ok and "too short for STOI" in s.failure
    silent = np.zeros(sr, dtype=np.float32)
    assert "silence" in M.pesq_score(silent, wav[:sr], sr).failure
    nan = wav.copy()
    nan[100] = np.nan
    assert "NaN" in M.stoi_score(wav, nan, sr).failure
    assert not M.pesq_score(wav, np.zeros(0), sr).ok


def test_dnsmos_when_speechmos_is_installed(lj_clip):
    if not M.dnsmos_available():
        pytest.skip("speechmos is not installed (optional DNSMOS)")
    wav, sr = lj_clip
    clean = M.dnsmos_scores(wav, sr)
    noisy = M.dnsmos_scores(_noisy(wav, 0), sr)
    assert set(clean) == set(M.DNSMOS_KEYS) and all(m.ok for m in clean.values())
    assert 1 <= clean["ovrl"].value <= 5
    assert clean["bak"].value > noisy["bak"].value + 0.5  # background noise is what BAK rates


# ---- aggregation -----------------------------------------------------------------------------
def test_summary_gives_the_student_t_interval():
    s = M.summarize([1.0, 2.0, 3.0, 4.0, float("nan"), None])
    assert s.n == 4 and s.mean == 2.5 and s.median == 2.5
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2  # t_{0.975, 3} · s / sqrt(n)
    assert s.ci_low == pytest.approx(2.5 - half) and s.ci_high == pytest.approx(2.5 + half)
    one = M.summarize([7.0])
    assert one.mean == 7.0 and one.ci_low is None
    assert M.summarize([]).mean is None


def test_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = sum(s.ci_low <= 1.0 <= s.ci_high for s in (M.summarize(rng.normal(1.0, 2.0, 10)) for _ in range(2000)))
    assert 0.93 < hits / 2000 < 0.97


# ---- bitrates --------------------------------------------------------------------------------
def test_nominal_bitrate_of_a_grid_and_of_rvq():
    # DCTTS grid: 22,050 Hz, hop 256, time /2 -> 43.07 columns/s, 4 rows of 512 codes: 9 bits each
    assert M.nominal_bitrate(22050 / 256 / 2, [512] * 4) == pytest.approx(22050 / 512 * 36)
    # EnCodec-like RVQ: 75 columns/s, 8 stages of 1,024 codes = 6 kbit/s
    assert M.nominal_bitrate(75, [1024] * 8) == pytest.approx(6000)
    # mixed sizes add their bits
    assert M.nominal_bitrate(50, [256, 16]) == pytest.approx(50 * 12)
    with pytest.raises(ValueError):
        M.nominal_bitrate(0, [2])


def test_bitrates_agree_with_real_tokenizers_and_codebook_stats():
    from spectok.quantizers import CodebookStats
    from spectok.tokenizers import ConvVQVAE1d, ConvVQVAE2d

    grid = ConvVQVAE2d(channels=[8, 8, 16], strides=[[4, 2], [5, 1]], num_res_blocks=1,
                       quantizer={"type": "vq", "dim": 8, "codebook_size": 32})
    rows = len(grid.codebook_sizes)
    assert rows == 4 and grid.frame_rate == pytest.approx(22050 / 256 / 2)
    assert M.nominal_bitrate(grid.frame_rate, grid.codebook_sizes) == pytest.approx(grid.frame_rate * 4 * 5)
    assert grid.bitrate == pytest.approx(M.nominal_bitrate(grid.frame_rate, grid.codebook_sizes))
    rvq = ConvVQVAE1d(channels=[16, 16, 16], strides=[2, 2], num_res_blocks=1,
                      quantizer={"type": "rvq", "dim": 8, "codebook_size": 64, "num_quantizers": 3})
    assert list(rvq.codebook_sizes) == [64] * 3
    assert M.nominal_bitrate(rvq.frame_rate, rvq.codebook_sizes) == pytest.approx(22050 / 256 / 4 * 18)
    # entropy bound: uniform use of all codes reaches the nominal rate, constant codes need nothing
    stats = CodebookStats([64] * 3)
    stats.update(torch.arange(64).repeat(3, 1)[None])
    s = stats.summary(rvq.frame_rate)
    entropies = [s[f"row{i}/entropy_bits"] for i in range(3)]
    assert M.entropy_bitrate(rvq.frame_rate, entropies) == pytest.approx(s["nominal_bits_per_second"])
    assert M.entropy_bitrate(rvq.frame_rate, [0.0, 0.0, 0.0]) == 0.0


def test_pesq_scores_a_three_minute_clip_in_segments(ljspeech_wavs) -> None:
    """The PESQ C library crashes (SIGSEGV) on a few minutes of audio: long clips are scored in
    segments of at most 30 s, combined by length, and the note says so. Run in a subprocess so a crash
    fails this test instead of killing the run."""
    import subprocess
    import sys

    code = f"""
import numpy as np
from spectok.audio.io import load_audio
from spectok.evaluation.metrics import pesq_score
paths = {[str(p) for p in ljspeech_wavs]!r}
wav = np.concatenate([load_audio(p, 16000)[0] for p in paths])
wav = np.tile(wav, int(np.ceil(180 * 16000 / len(wav))))[: 180 * 16000]
noisy = wav + 0.01 * np.random.default_rng(0).standard_normal(len(wav)).astype(np.float32)
m = pesq_score(wav, noisy, 16000)
assert m.value is not None and 1.0 < m.value < 4.7, m
assert "segments" in m.note, m.note
short = pesq_score(wav[:16000 * 5], noisy[:16000 * 5], 16000)
assert short.note is None and short.value is not None
print("ok", m.value, m.note)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok")
