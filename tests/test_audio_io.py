import numpy as np
import pytest
import soundfile as sf

from spectok.audio import load_audio, save_audio
from spectok.errors import AudioError


def test_load_real_clip_and_resample(ljspeech_wavs):
    wav, sr = load_audio(ljspeech_wavs[0])
    assert sr == 22050 and wav.dtype == np.float32 and wav.ndim == 1 and len(wav) > sr
    wav16, sr16 = load_audio(ljspeech_wavs[0], sample_rate=16000)
    assert sr16 == 16000
    assert abs(len(wav16) - len(wav) * 16000 / 22050) <= 2


def test_stereo_is_downmixed(tmp_path):
    t = np.linspace(0, 1, 8000, dtype=np.float32)
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1) * 0.5
    sf.write(tmp_path / "s.wav", stereo, 8000, subtype="FLOAT")
    wav, _ = load_audio(tmp_path / "s.wav")
    np.testing.assert_allclose(wav, stereo.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("case,reason", [
    ("missing", "file not found"), ("empty", "empty file"), ("garbage", "cannot decode"),
    ("zero", "no samples"), ("nan", "NaN"),
])
def test_bad_files_raise_audio_error_naming_path(tmp_path, case, reason):
    p = tmp_path / f"{case}.wav"
    if case == "empty":
        p.write_bytes(b"")
    elif case == "garbage":
        p.write_bytes(b"RIFF\x00\x00not really a wave file at all" * 10)
    elif case == "zero":
        sf.write(p, np.zeros(0, dtype=np.float32), 16000)
    elif case == "nan":
        sf.write(p, np.array([0.1, np.nan, 0.2], dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as e:
        load_audio(p)
    assert str(p) in str(e.value) and reason in str(e.value)


def test_save_is_atomic_and_roundtrips(tmp_path):
    wav = (0.3 * np.sin(np.linspace(0, 100, 16000))).astype(np.float32)
    out = tmp_path / "sub" / "x.flac"
    save_audio(out, wav, 16000)
    assert [p.name for p in out.parent.iterdir()] == ["x.flac"]  # no temporary left behind
    back, sr = load_audio(out)
    assert sr == 16000 and np.abs(back - wav).max() < 1e-3


def test_long_files_are_read_and_resampled_in_blocks_with_the_same_samples(ljspeech_wavs, monkeypatch):
    """load_audio reads READ_BLOCK frames at a time through soxr's stream: identical to a whole load."""
    import soundfile as sf
    import soxr

    from spectok.audio import io

    data, sr = sf.read(ljspeech_wavs[0], dtype="float32")
    whole = soxr.resample(data, sr, 16000, quality="HQ")
    monkeypatch.setattr(io, "READ_BLOCK", 4099)  # dozens of odd-sized blocks
    wav, rate = io.load_audio(ljspeech_wavs[0], 16000)
    assert rate == 16000 and np.array_equal(wav, whole)
    same, _ = io.load_audio(ljspeech_wavs[0])
    assert np.array_equal(same, data)


def test_non_finite_audio_is_refused_by_the_api_and_never_written(tmp_path):
    import spectok
    from spectok.errors import AudioError

    pipe = spectok.Pipeline(spectok.load_tokenizer("default"))
    bad = np.zeros(16000, np.float32)
    bad[100] = np.nan
    with pytest.raises(AudioError, match="1 of 16000 samples are NaN or infinite"):
        pipe.encode(bad, sample_rate=16000)
    with pytest.raises(AudioError, match="NaN or infinite"):
        pipe.encode([np.full(8000, np.inf, np.float32)], sample_rate=16000)
    with pytest.raises(AudioError, match="not written"):
        save_audio(tmp_path / "x.wav", bad, 16000)
    assert not list(tmp_path.iterdir())


def test_clipping_is_reported_with_its_fraction(tmp_path):
    loud = np.zeros(1000, np.float32)
    loud[:250] = 3.0
    with pytest.warns(UserWarning, match="25.0% of the samples were beyond full scale"):
        save_audio(tmp_path / "loud.wav", loud, 16000)
    sf.write(tmp_path / "float.wav", loud, 16000, subtype="FLOAT")
    with pytest.warns(UserWarning, match="samples reach ±3, beyond full scale"):
        load_audio(tmp_path / "float.wav", 16000)
