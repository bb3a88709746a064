"""Audio loading and saving: soundfile for I/O, soxr for resampling.

Waveforms are float32 numpy arrays of shape ``[T]`` (samples, mono) in [-1, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spectok.errors import AudioError
from spectok.fsutil import atomic_path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif")


def resample(waveform: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a ``[T]`` float32 waveform from ``orig_sr`` to ``target_sr`` Hz (soxr, high quality)."""
    if orig_sr == target_sr:
        return waveform
    import soxr

    return soxr.resample(waveform, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def load_audio(path: str | os.PathLike, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Load an audio file as mono float32.

    Args:
        path: a wav, flac, ogg or mp3 file.
        sample_rate: resample to this rate in Hz; ``None`` keeps the file's rate.

    Returns:
        ``(waveform [T] float32, sample_rate)``. Stereo is down-mixed by averaging channels.

    Raises:
        AudioError: naming the path, when the file is missing, empty, undecodable,
            holds no samples, or holds NaN/inf samples.
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "file not found")
    if p.is_dir():
        raise AudioError(p, "is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise AudioError(p, "empty file (0 bytes)")
    import soundfile as sf

    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types (LibsndfileError, RuntimeError, TypeError)
        raise AudioError(p, f"cannot decode audio ({type(e).__name__}: {e})") from e
    if data.shape[0] == 0:
        raise AudioError(p, "no samples (zero-length audio)")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wav).all():
        raise AudioError(p, "contains NaN or infinite samples")
    wav = np.ascontiguousarray(wav, dtype=np.float32)
    if sample_rate is not None and sample_rate != sr:
        wav = resample(wav, sr, sample_rate)
        sr = sample_rate
    return wav, int(sr)


def save_audio(path: str | os.PathLike, waveform: np.ndarray, sample_rate: int) -> None:
    """Write a mono ``[T]`` waveform atomically (format from the suffix: .wav is PCM16, .flac 16-bit).

    Accepts numpy arrays or torch tensors; values are clipped to [-1, 1].
    """
    wav = np.asarray(waveform.detach().cpu() if hasattr(waveform, "detach") else waveform, dtype=np.float32)
    if wav.ndim != 1:
        wav = wav.reshape(-1) if wav.size == max(wav.shape) else wav.mean(axis=0)
    wav = np.clip(wav, -1.0, 1.0)
    with atomic_path(path) as tmp:
        import soundfile as sf

        sf.write(str(tmp), wav, int(sample_rate), subtype="PCM_16" if tmp.suffix.lower() in (".wav", ".flac")
                 else None)
