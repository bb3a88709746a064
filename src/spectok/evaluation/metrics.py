"""Quality metrics of a reconstruction, its interval over a set, and bitrates.

Mel-domain metrics take two log-mels ``[n_mels, T]`` (or ``[B, n_mels, T]``) made by
:class:`~spectok.audio.mel.MelSpectrogram`, i.e. ``ln`` of the mel magnitude (``power=1``)
or of the mel power (``power=2``); they never fail for equal shapes.

Waveform metrics take two aligned mono float waveforms ``[T]`` at ``sample_rate`` Hz and
return a :class:`Measured`: a value, or the reason it could not be measured (a clip shorter
than PESQ accepts, a silent reference, NaN samples, a missing optional package). They never
raise, so one bad clip cannot stop an evaluation.

Definitions (natural log ``ln``; ``k = 20 / ln 10`` dB per neper of amplitude):

- **log-mel L1 / MSE**: mean of ``|a - b|`` / ``(a - b)^2`` over bands and frames, in the
  front end's own units (nepers of magnitude for ``power=1``).
- **LSD** (log-spectral distance, dB) over mel bands: per frame
  ``sqrt(mean_bands (k * (ln A - ln B))^2)`` on amplitudes, averaged over frames.
- **MFCC distance** (dB): the mel-cepstral distortion (MCD) formula applied to MFCC-style
  cepstra, ``c = DCT-II_ortho(ln A)`` over mel bands of
  the log mel *amplitude* (``power=2`` mels are halved first), coefficients ``c_1 .. c_D``
  (``D = 24`` by default; ``c_0``, the frame energy, excluded); per frame
  ``(10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2)``, averaged over all frames (no silence
  removal, no time warping: the signals are aligned). These are MFCC-style cepstra of the
  Slaney/HTK mel filter bank, not SPTK all-pass mel-cepstra, so values are comparable
  between spectok reports, not to MCDs computed with SPTK ``mcep`` (published vocoder MCDs of
  4-8 dB); hence its name, which does not say MCD.
- **LSD** over the linear STFT (the form bandwidth-extension and vocoder papers report, in
  ``log10`` power units, not dB): power spectrogram ``S = |STFT|^2`` (Hann, 2,048-point,
  hop 512), per frame ``sqrt(mean_f (log10(S + 1e-10) - log10(Ŝ + 1e-10))^2)``, averaged
  over frames, at the signals' own rate. ``spectok eval`` takes the mean over the bins up to
  the mel front end's ``fmax`` (what the tokens describe): above it a mel vocoder has nothing
  to reproduce, and those bins would swamp the figure.
- **PESQ** (ITU-T P.862.2 wideband, MOS-LQO 1.04-4.64): both signals resampled to 16 kHz;
  audio below 16 kHz is scored narrowband (P.862, 1.02-4.55) at 8 kHz instead, since
  upsampling cannot create the 4-8 kHz band wideband PESQ expects.
- **STOI** (Taal et al. 2011, 0-1), pystoi at the signal's own rate (it resamples to 10 kHz).
- **DNSMOS** (P.835 SIG/BAK/OVRL and P.808 MOS, 1-5), non-intrusive, when the optional
  ``speechmos`` package is installed (its ONNX models ship inside the wheel).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from spectok.audio.io import resample

DB_PER_NEPER = 20.0 / math.log(10.0)  # dB of amplitude per natural-log unit
MCD_CONSTANT = 10.0 * math.sqrt(2.0) / math.log(10.0)  # = (10 / ln 10) * sqrt(2)


@dataclass(frozen=True)
class Measured:
    """A metric's value, or why it has none.

    Attributes:
        value: the score, ``None`` when it could not be measured.
        failure: one-line reason when ``value`` is ``None``.
        note: a remark on a measured value (e.g. "narrowband (8 kHz)").
    """

    value: float | None
    failure: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None

    @classmethod
    def fail(cls, reason: str) -> Measured:
        return cls(None, reason)


# ---- mel domain ------------------------------------------------------------------------------
def _pair(ref: torch.Tensor | np.ndarray, est: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(ref.detach().cpu() if isinstance(ref, torch.Tensor) else ref, dtype=np.float64)
    b = np.asarray(est.detach().cpu() if isinstance(est, torch.Tensor) else est, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"log-mels differ in shape: {a.shape} vs {b.shape}")
    if a.ndim < 2 or a.size == 0:
        raise ValueError(f"expected log-mels [n_mels, T] or [B, n_mels, T], got shape {a.shape}")
    return a, b


def log_mel_l1(ref, est) -> float:
    """Mean absolute difference of two log-mels (front-end log units)."""
    a, b = _pair(ref, est)
    return float(np.mean(np.abs(a - b)))


def log_mel_mse(ref, est) -> float:
    """Mean squared difference of two log-mels (front-end log units squared)."""
    a, b = _pair(ref, est)
    return float(np.mean(np.square(a - b)))


def _amplitude_scale(power: float) -> float:
    """Factor turning ``ln`` of the front end's mel into ``ln`` of an amplitude."""
    if power not in (1.0, 2.0):
        raise ValueError(f"power must be 1.0 (magnitude) or 2.0 (power), got {power}")
    return 1.0 / power


def log_spectral_distance(ref, est, power: float = 1.0) -> float:
    """LSD in dB over mel bands: frame-wise RMS of the dB difference, averaged over frames.

    Args:
        ref, est: log-mels ``[n_mels, T]`` or ``[B, n_mels, T]``.
        power: the front end's ``MelConfig.power`` (1 magnitude, 2 power).
    """
    a, b = _pair(ref, est)
    d = DB_PER_NEPER * _amplitude_scale(power) * (a - b)
    return float(np.mean(np.sqrt(np.mean(np.square(d), axis=-2))))


def mel_cepstra(log_mel, n_cepstra: int = 24, power: float = 1.0) -> np.ndarray:
    """Cepstra ``c_1 .. c_n`` ``[..., n, T]`` of a log-mel: orthonormal DCT-II over bands of ``ln`` amplitude."""
    from scipy.fft import dct

    x = np.asarray(log_mel.detach().cpu() if isinstance(log_mel, torch.Tensor) else log_mel, dtype=np.float64)
    if not 1 <= n_cepstra < x.shape[-2]:
        raise ValueError(f"n_cepstra must be in [1, n_mels - 1] = [1, {x.shape[-2] - 1}], got {n_cepstra}")
    c = dct(x * _amplitude_scale(power), type=2, axis=-2, norm="ortho")
    return c[..., 1:n_cepstra + 1, :]


def mfcc_distance(ref, est, n_cepstra: int = 24, power: float = 1.0) -> float:
    """MFCC distance in dB (the MCD formula on MFCC-style cepstra), mean over frames of
    ``10·√2/ln10 · sqrt(sum_{d=1..n_cepstra} (c_d - c'_d)^2)``."""
    a, b = _pair(ref, est)
    diff = mel_cepstra(a, n_cepstra, power) - mel_cepstra(b, n_cepstra, power)
    return float(np.mean(MCD_CONSTANT * np.sqrt(np.sum(np.square(diff), axis=-2))))


def mel_metrics(ref, est, power: float = 1.0, n_cepstra: int = 24) -> dict[str, float]:
    """All mel-domain metrics: ``{"mel_l1", "mel_mse", "lsd_db", "mfcc_dist_db"}``."""
    n = min(n_cepstra, np.shape(ref)[-2] - 1)
    return {"mel_l1": log_mel_l1(ref, est), "mel_mse": log_mel_mse(ref, est),
            "lsd_db": log_spectral_distance(ref, est, power), "mfcc_dist_db": mfcc_distance(ref, est, n, power)}


# ---- waveform ------------------------------------------------------------------------------
def _wave_pair(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray] | str:
    """Float64 copies cut to a common length, or the reason they cannot be compared."""
    a, b = np.asarray(ref, dtype=np.float64).reshape(-1), np.asarray(est, dtype=np.float64).reshape(-1)
    n = min(len(a), len(b))
    if n == 0:
        return "empty signal"
    a, b = a[:n], b[:n]
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return "signal holds NaN or infinite samples"
    if not np.any(a):
        return "reference is digital silence"
    return a, b


def stft_lsd(ref: np.ndarray, est: np.ndarray, sample_rate: int | None = None, fmax: float | None = None,
             n_fft: int = 2048, hop_length: int = 512, eps: float = 1e-10) -> Measured:
    """Log-spectral distance over the linear STFT power spectrogram, in ``log10`` units.

    Args:
        ref, est: aligned waveforms ``[T]`` (cut to the shorter), at the same rate.
        sample_rate, fmax: with both, only the bins at or below ``fmax`` Hz count.
        n_fft, hop_length: STFT geometry (Hann window of ``n_fft``, centred frames).
        eps: added to the power before ``log10`` (-100 dB), so digital silence is finite.
    """
    pair = _wave_pair(ref, est)
    if isinstance(pair, str):
        return Measured.fail(pair)
    a, b = (torch.from_numpy(np.ascontiguousarray(x)) for x in pair)
    if len(a) < n_fft // 2 + 1:
        return Measured.fail(f"too short for the STFT LSD ({len(a)} samples; it needs {n_fft // 2 + 1})")
    window = torch.hann_window(n_fft, dtype=torch.float64)
    power = [torch.stft(x, n_fft, hop_length, window=window, center=True, return_complex=True).abs().square()
             for x in (a, b)]
    d = torch.log10(power[0] + eps) - torch.log10(power[1] + eps)  # [F, frames]
    if sample_rate and fmax:
        d = d[: int(fmax * n_fft / sample_rate) + 1]
    return Measured(float(d.square().mean(0).sqrt().mean()))


def pesq_score(ref: np.ndarray, est: np.ndarray, sample_rate: int, narrowband: bool | None = None) -> Measured:
    """PESQ MOS-LQO: wideband at 16 kHz, or narrowband at 8 kHz.

    Args:
        ref, est: aligned waveforms ``[T]`` at ``sample_rate`` Hz (cut to the shorter).
        narrowband: force the mode; ``None`` picks narrowband when ``sample_rate < 16000``.
            Pass ``True`` for audio whose *source* was below 16 kHz even if it was upsampled since.
    """
    try:
        from pesq import pesq
    except ImportError:
        return Measured.fail("pesq is not installed (pip install 'spectok[eval]')")
    pair = _wave_pair(ref, est)
    if isinstance(pair, str):
        return Measured.fail(pair)
    if narrowband is None:
        narrowband = sample_rate < 16000
    rate, mode = (8000, "nb") if narrowband else (16000, "wb")
    a, b = (resample(x.astype(np.float32), sample_rate, rate) for x in pair)
    seconds = len(a) / rate
    segments = _pesq_segments(len(a), rate)
    values, weights = [], []
    for start, end in segments:
        try:
            values.append(float(pesq(rate, a[start:end], b[start:end], mode)))
            weights.append(end - start)
        except Exception as e:  # cypesq raises BufferTooShortError, NoUtterancesError (RuntimeError subclasses)
            name = type(e).__name__
            if name == "BufferTooShortError" and len(segments) == 1:
                return Measured.fail(f"too short for PESQ ({seconds:.3f} s; it needs at least 0.25 s)")
            if name in ("BufferTooShortError", "NoUtterancesError") and len(segments) > 1:
                continue  # a silent or tiny segment of a long clip: the others score it
            msg = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
            return Measured.fail(f"PESQ failed ({name}: {msg})")
    if not values:
        return Measured.fail("PESQ found no speech in any segment")
    value = float(np.average(values, weights=weights))
    notes = [] if mode == "wb" else ["narrowband (8 kHz)"]
    if len(segments) > 1:
        notes.append(f"mean of {len(values)} segments of <= {PESQ_SEGMENT_SECONDS:.0f} s, weighted by length")
    return Measured(value, note="; ".join(notes) or None)


#: PESQ scores clips longer than this in segments (the C library crashes on a few minutes of audio)
PESQ_SEGMENT_SECONDS = 30.0


def _pesq_segments(n: int, rate: int) -> list[tuple[int, int]]:
    """``[start, end)`` sample ranges of at most :data:`PESQ_SEGMENT_SECONDS`, of equal length (one for short clips)."""
    size = int(PESQ_SEGMENT_SECONDS * rate)
    if n <= size:
        return [(0, n)]
    k = -(-n // size)
    bounds = [round(i * n / k) for i in range(k + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def stoi_score(ref: np.ndarray, est: np.ndarray, sample_rate: int, extended: bool = False) -> Measured:
    """STOI (or ESTOI with ``extended``) in [0, 1]; a clip with too few speech frames is a failure."""
    try:
        from pystoi import stoi
    except ImportError:
        return Measured.fail("pystoi is not installed (pip install 'spectok[eval]')")
    pair = _wave_pair(ref, est)
    if isinstance(pair, str):
        return Measured.fail(pair)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(stoi(pair[0], pair[1], sample_rate, extended=extended))
        except Exception as e:
            return Measured.fail(f"STOI failed ({type(e).__name__}: {e})")
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return Measured.fail(f"too short for STOI (fewer than 30 non-silent 10 kHz frames in "
                             f"{len(pair[0]) / sample_rate:.3f} s)")
    return Measured(value)


DNSMOS_KEYS = ("ovrl", "sig", "bak", "p808")


def dnsmos_available() -> bool:
    """Whether the optional ``speechmos`` package (and onnxruntime) can be imported."""
    try:
        import speechmos.dnsmos  # noqa: F401
    except Exception:
        return False
    return True


def dnsmos_scores(wav: np.ndarray, sample_rate: int) -> dict[str, Measured]:
    """DNSMOS of one signal at 16 kHz: ``{"ovrl", "sig", "bak", "p808"}`` (clips under 9 s are tiled by speechmos)."""
    try:
        from speechmos import dnsmos
    except Exception as e:
        return {k: Measured.fail(f"speechmos unavailable ({type(e).__name__})") for k in DNSMOS_KEYS}
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    if x.size == 0 or not np.isfinite(x).all() or not np.any(x):
        return {k: Measured.fail("empty, silent or non-finite signal") for k in DNSMOS_KEYS}
    x = np.clip(resample(x, sample_rate, 16000), -1.0, 1.0)
    try:
        out = dnsmos.run(x, 16000)
    except Exception as e:
        return {k: Measured.fail(f"DNSMOS failed ({type(e).__name__}: {e})") for k in DNSMOS_KEYS}
    return {k: Measured(float(out[f"{k}_mos"])) for k in DNSMOS_KEYS}


def waveform_metrics(ref: np.ndarray | None, est: np.ndarray, sample_rate: int, narrowband: bool,
                     fmax: float | None, dnsmos: bool) -> dict[str, Measured]:
    """The waveform metrics of one output against its reference, each a :class:`Measured`.

    ``{"pesq", "lsd_stft", "stoi"}`` plus ``dnsmos_*`` of ``est`` with ``dnsmos``; with ``ref=None``
    only DNSMOS (of ``est`` alone: the reference's own score). One call, so ``spectok eval`` can run
    the native libraries (PESQ, DNSMOS's onnxruntime) in its crash-isolated child process.
    """
    out: dict[str, Measured] = {}
    if ref is not None:
        out = {"pesq": pesq_score(ref, est, sample_rate, narrowband=narrowband),
               "lsd_stft": stft_lsd(ref, est, sample_rate, fmax),
               "stoi": stoi_score(ref, est, sample_rate)}
    if dnsmos:
        out.update({f"dnsmos_{k}": v for k, v in dnsmos_scores(est, sample_rate).items()})
    return out


# ---- aggregation ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """Mean of ``n`` values with a 95 % Student-t interval of the mean.

    The interval is ``mean ± t_{0.975, n-1} · s / √n`` (``s`` the sample standard deviation):
    exact for normal data, approximate (by the central limit theorem) otherwise. It is ``None``
    when ``n < 2``; with identical values it has zero width.
    """

    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    std: float | None
    median: float | None
    min: float | None
    max: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return dict(n=self.n, mean=self.mean, ci_low=self.ci_low, ci_high=self.ci_high, std=self.std,
                    median=self.median, min=self.min, max=self.max)


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """:class:`Summary` of the finite ``values`` (non-finite ones are ignored)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = len(x)
    if n == 0:
        return Summary(0, None, None, None, None, None, None, None)
    mean = float(x.mean())
    lo = hi = std = None
    if n >= 2:
        from scipy.stats import t

        std = float(x.std(ddof=1))
        half = float(t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
        lo, hi = mean - half, mean + half
    return Summary(n, mean, lo, hi, std, float(np.median(x)), float(x.min()), float(x.max()))


# ---- bitrates ------------------------------------------------------------------------------
def nominal_bitrate(frame_rate: float, codebook_sizes: Sequence[int]) -> float:
    """Bits per second of fixed-length codes: ``frame_rate · Σ_k log2 K_k``.

    ``frame_rate`` is token columns per second; one column holds one code of each of the
    ``len(codebook_sizes)`` rows (grid rows or RVQ stages).
    """
    if frame_rate <= 0 or not codebook_sizes or min(codebook_sizes) < 1:
        raise ValueError(f"need a positive frame rate and codebook sizes >= 1, got {frame_rate}, {codebook_sizes}")
    return float(frame_rate) * sum(math.log2(int(k)) for k in codebook_sizes)


def entropy_bitrate(frame_rate: float, row_entropies_bits: Sequence[float]) -> float:
    """The entropy bound in bits per second: ``frame_rate · Σ_k H_k`` (H_k in bits per code of row k).

    Summing per-row (unigram) entropies bounds what an ideal coder of independent codes
    needs; coding rows jointly or with context could need less.
    """
    return float(frame_rate) * float(sum(row_entropies_bits))
