"""Audio loading and saving: soundfile for I/O, soxr for resampling.

Waveforms are float32 numpy arrays of shape ``[T]`` (samples, mono) in [-1, 1].
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
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
    with AudioReader(path) as r:
        rate = r.sample_rate if sample_rate is None else int(sample_rate)
        return r.read_all(rate), rate


def _wav_promised_frames(path: Path) -> int | None:
    """Frames the RIFF ``data`` chunk of a PCM/float WAV says it holds (``None``: unknown, e.g. a
    streamed file whose size fields were never filled in, or not a plain RIFF file)."""
    import struct

    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = f.read(size + (size & 1))
                block = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
            elif cid == b"data":
                if not block or size in (0, 0xFFFFFFFF):
                    return None
                return size // block
            else:
                f.seek(size + (size & 1), 1)


class AudioReader:
    """One audio file, opened once, read whole or in pieces (a context manager).

    ``read(a, b)`` returns mono float32 samples ``[b - a]`` at the file's own rate, seeking in the
    file (a long recording is never loaded whole); :meth:`read_all` returns the whole file at any
    rate, as :func:`load_audio` does. Every problem is an :class:`AudioError` naming the file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        p = Path(path)
        if not p.exists():
            raise AudioError(p, "file not found")
        if p.is_dir():
            raise AudioError(p, "is a directory, not an audio file")
        if not p.is_file():
            raise AudioError(p, "not a regular file (a FIFO, device or socket), not an audio file")
        if p.stat().st_size == 0:
            raise AudioError(p, "empty file (0 bytes)")
        import soundfile as sf

        try:
            self.file = sf.SoundFile(str(p))
        except Exception as e:  # soundfile raises several types (LibsndfileError, RuntimeError, TypeError)
            raise AudioError(p, f"cannot decode audio ({type(e).__name__}: {e})") from e
        self.path = p
        self.sample_rate = int(self.file.samplerate)
        self.num_samples = int(self.file.frames)
        if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
            self.file.close()
            raise AudioError(p, f"its header states {self.sample_rate} Hz, outside {MIN_SAMPLE_RATE}-"
                                f"{MAX_SAMPLE_RATE} Hz (a damaged header? resampling it would need memory out of "
                                "all proportion)")
        promised = _wav_promised_frames(p) if p.suffix.lower() == ".wav" else None
        if promised is not None and promised > self.num_samples:
            self.file.close()
            raise AudioError(p, f"truncated WAV: its header promises {promised} samples, the file holds "
                                f"{self.num_samples}")

    def read(self, a: int, b: int) -> np.ndarray:
        """Mono float32 samples ``[a, b)`` at :attr:`sample_rate`."""
        try:
            self.file.seek(a)
            x = self.file.read(b - a, dtype="float32", always_2d=True)
        except Exception as e:
            raise AudioError(self.path, f"cannot decode audio ({type(e).__name__}: {e})") from e
        return np.ascontiguousarray(_mono(x, self.path), dtype=np.float32)

    def read_all(self, sample_rate: int | None = None) -> np.ndarray:
        """The whole file, mono float32, resampled to ``sample_rate`` (``None``: its own rate)."""
        self.file.seek(0)
        return _read_mono(self.file, self.path, self.sample_rate, sample_rate or self.sample_rate)

    def blocks(self, sample_rate: int | None = None) -> Iterator[np.ndarray]:
        """The whole file as consecutive mono float32 blocks at ``sample_rate`` (``None``: its own
        rate); joined, they equal :meth:`read_all`. Only one block is in memory at a time."""
        self.file.seek(0)
        return _mono_blocks(self.file, self.path, self.sample_rate, sample_rate or self.sample_rate)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _mono(block: np.ndarray, p: Path) -> np.ndarray:
    """``[frames, channels]`` float32 -> ``[frames]``, channels averaged; NaN or infinity is an AudioError."""
    mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(p, "contains NaN or infinite samples")
    peak = float(np.abs(mono).max()) if mono.size else 0.0
    if peak > 1.0 and str(p) not in _LOUD:
        import warnings

        _LOUD.add(str(p))
        warnings.warn(f"{p}: samples reach ±{peak:.3g}, beyond full scale (a float file not normalised to [-1, 1]); "
                      "what is decoded from it will clip: scale it first", stacklevel=2)
    return mono


#: sample rates an audio file may state (outside them the header is taken as damaged)
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 768_000

#: files already warned about samples beyond full scale (one warning per file)
_LOUD: set[str] = set()


#: frames read (and resampled) at a time: a long file never sits whole in memory at its own rate
READ_BLOCK = 1 << 20


def _mono_blocks(f, p: Path, sr: int, rate: int) -> Iterator[np.ndarray]:
    """Open soundfile ``f`` from its current position as consecutive mono float32 blocks at ``rate``,
    read and resampled :data:`READ_BLOCK` frames at a time; AudioError when it holds no samples."""
    import soxr

    stream = soxr.ResampleStream(sr, rate, 1, dtype="float32", quality="HQ") if rate != sr else None
    seen = 0
    while True:
        try:
            block = f.read(READ_BLOCK, dtype="float32", always_2d=True)
        except Exception as e:
            raise AudioError(p, f"cannot decode audio ({type(e).__name__}: {e})") from e
        last = len(block) < READ_BLOCK
        seen += len(block)
        mono = _mono(block, p)
        if stream is not None:
            mono = stream.resample_chunk(np.ascontiguousarray(mono), last=last)
        yield mono
        if last:
            break
    if seen == 0:
        raise AudioError(p, "no samples (zero-length audio)")


def _read_mono(f, p: Path, sr: int, rate: int) -> np.ndarray:
    """All of open soundfile ``f`` as mono float32 at ``rate``, read and resampled block by block.

    soxr's stream gives the same samples as resampling the whole signal at once, so the result
    equals a whole-file load; the output buffer is sized from the header and grown if it lied.
    """
    out = np.empty(math.ceil(max(f.frames, 0) * rate / sr) + 64, dtype=np.float32)
    n = 0
    for mono in _mono_blocks(f, p, sr, rate):
        if n + len(mono) > len(out):
            out = np.concatenate([out[:n], np.empty(n + len(mono) - len(out) + READ_BLOCK, np.float32)])
        out[n:n + len(mono)] = mono
        n += len(mono)
    if not out[:n].any():
        import warnings

        warnings.warn(f"{p}: every sample is 0 (pure silence)", stacklevel=3)
    return out[:n]


def _write_failure(folder: Path, error: Exception) -> str:
    """Why a write into ``folder`` failed, in the OS's words where libsndfile gives none."""
    import errno

    try:
        st = os.statvfs(folder)
        if st.f_bavail == 0 or st.f_favail == 0:
            return os.strerror(errno.ENOSPC)
    except OSError:
        pass
    if not os.access(folder, os.W_OK):
        return os.strerror(errno.EACCES)
    return str(error).strip() or type(error).__name__


def save_audio(path: str | os.PathLike, waveform, sample_rate: int) -> None:
    """Write mono audio atomically (format from the suffix: .wav is PCM16, .flac 16-bit).

    ``waveform``: a ``[T]`` numpy array or torch tensor, or an iterable of such blocks written one
    after another (a long output is then never whole in memory: ``Pipeline.decode_blocks``).
    Values are clipped to [-1, 1], with a warning giving the fraction clipped; NaN or infinite
    samples are an :class:`~spectok.errors.AudioError` (and nothing is written).
    """
    import warnings

    import soundfile as sf

    blocks = [waveform] if hasattr(waveform, "shape") else waveform
    clipped = total = 0
    with atomic_path(path) as tmp:
        subtype = "PCM_16" if tmp.suffix.lower() in (".wav", ".flac") else None
        try:
            with sf.SoundFile(str(tmp), "w", samplerate=int(sample_rate), channels=1, subtype=subtype) as f:
                for block in blocks:
                    wav = np.asarray(block.detach().cpu() if hasattr(block, "detach") else block, dtype=np.float32)
                    if wav.ndim != 1:
                        wav = wav.reshape(-1) if wav.size == max(wav.shape) else wav.mean(axis=0)
                    if not np.isfinite(wav).all():
                        raise AudioError(path, "not written: the waveform has NaN or infinite samples")
                    clipped += int(np.count_nonzero(np.abs(wav) > 1.0))
                    total += wav.size
                    f.write(np.clip(wav, -1.0, 1.0))
        except sf.LibsndfileError as e:  # libsndfile says "System error" for a full disk or a refused write
            raise AudioError(path, f"not written: {_write_failure(Path(path).parent, e)}") from None
    if clipped:
        warnings.warn(f"{path}: {clipped / total:.1%} of the samples were beyond full scale and clipped to [-1, 1]",
                      stacklevel=2)
