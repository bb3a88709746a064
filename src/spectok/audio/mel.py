"""THE mel front end of spectok: :class:`MelConfig` and :class:`MelSpectrogram`.

Data preparation, tokenizers, losses and vocoders all compute log-mels through this
module; nothing else in the project builds a mel filter bank or calls ``torch.stft``
for a mel.

Number of frames. With ``pad = n_fft // 2`` when ``center`` is true, else
``pad = (n_fft - hop_length) // 2`` (the HiFi-GAN convention), a waveform of ``T``
samples gives ``1 + (T + 2 * pad - n_fft) // hop_length`` frames
(:meth:`MelConfig.num_frames`). For the HiFi-GAN front end and ``T`` a multiple of the
hop this is exactly ``T / hop_length``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spectok.errors import MelMismatchError, SpectokError


@dataclass(frozen=True)
class MelConfig:
    """Everything that defines a log-mel spectrogram.

    Attributes:
        sample_rate: Hz.
        n_fft: FFT size in samples.
        hop_length: samples between frames.
        win_length: Hann window length in samples (``<= n_fft``).
        n_mels: number of mel bands.
        fmin, fmax: filter-bank edges in Hz (``fmax=None`` means Nyquist).
        center: pad ``n_fft // 2`` on both sides (librosa/torch default) when true;
            otherwise pad ``(n_fft - hop_length) // 2`` on both sides (HiFi-GAN).
        pad_mode: ``"reflect"`` or ``"constant"``.
        power: 1.0 for magnitude, 2.0 for power spectrogram.
        magnitude_eps: added to ``|X|^2`` before the square root (HiFi-GAN uses 1e-9).
        log_floor: ``log(clamp(mel, log_floor))``; ``log(log_floor)`` is the value of silence.
        mel_norm: ``"slaney"`` (area normalisation) or ``None``.
        mel_scale: ``"slaney"`` or ``"htk"``.
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0
    center: bool = False
    pad_mode: str = "reflect"
    power: float = 1.0
    magnitude_eps: float = 1e-9
    log_floor: float = 1e-5
    mel_norm: str | None = "slaney"
    mel_scale: str = "slaney"

    def __post_init__(self) -> None:
        self._coerce_numbers()
        if self.win_length > self.n_fft:
            raise SpectokError(f"MelConfig: win_length {self.win_length} > n_fft {self.n_fft}")
        if self.hop_length <= 0 or self.n_mels <= 0 or self.sample_rate <= 0:
            raise SpectokError("MelConfig: sample_rate, hop_length and n_mels must be positive")
        if self.fmax is not None and self.fmax > self.sample_rate / 2:
            raise SpectokError(f"MelConfig: fmax {self.fmax} Hz is above Nyquist ({self.sample_rate / 2} Hz)")
        if self.power not in (1.0, 2.0):
            raise SpectokError(f"MelConfig: power must be 1.0 (magnitude) or 2.0 (power), got {self.power}")

    def _coerce_numbers(self) -> None:
        """Integers as int, the rest as float, whatever the source wrote: YAML reads ``1e-9`` as a
        string and ``8000`` as an int, and neither may change the config or its fingerprint."""
        for name in ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels"):
            value = getattr(self, name)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise SpectokError(f"MelConfig: {name} must be an integer, got {value!r}") from None
            if not number.is_integer():
                raise SpectokError(f"MelConfig: {name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(number))
        for name in ("fmin", "fmax", "power", "magnitude_eps", "log_floor"):
            value = getattr(self, name)
            if value is None and name == "fmax":
                continue
            try:
                object.__setattr__(self, name, float(value))
            except (TypeError, ValueError):
                raise SpectokError(f"MelConfig: {name} must be a number, got {value!r}") from None

    # ---- identity -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A stable 16-hex-digit hash of the fields (independent of Python version and field order)."""
        canon = {k: (float(v) if isinstance(v, float) else v) for k, v in sorted(self.to_dict().items())}
        return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()[:16]

    def diff(self, other: MelConfig) -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ: ``{name: (self_value, other_value)}``."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}

    def check_compatible(self, other: MelConfig, what: str = "mel configs",
                         sides: tuple[str, str] | None = None) -> None:
        """Raise :class:`MelMismatchError` naming every differing field, if any; with ``sides`` (the names of
        ``self`` and ``other``, e.g. ``("vocoder", "tokenizer")``) each value is labelled with its side."""
        d = self.diff(other)
        if d:
            mine, theirs = sides or ("", "")
            label = (lambda side, v: f"{side} {v!r}") if sides else (lambda side, v: repr(v))
            join = ", " if sides else " vs "
            fields = ", ".join(f"{k} ({label(mine, x)}{join}{label(theirs, y)})" for k, (x, y) in d.items())
            raise MelMismatchError(f"{what} differ in: {fields}")

    def preset_name(self) -> str | None:
        """The name of the preset with exactly these fields (``"speech-16k"``), else None."""
        return next((name for name in PRESETS if MelConfig.preset(name) == self), None)

    # ---- derived quantities ---------------------------------------------------------
    @property
    def padding(self) -> int:
        """Samples padded on each side before the STFT."""
        return self.n_fft // 2 if self.center else (self.n_fft - self.hop_length) // 2

    @property
    def frame_rate(self) -> float:
        """Mel frames per second."""
        return self.sample_rate / self.hop_length

    @property
    def silence(self) -> float:
        """The log-mel value of silence, ``log(log_floor)``; used to pad batches."""
        import math

        return math.log(self.log_floor)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a waveform of ``num_samples`` samples."""
        return 1 + (num_samples + 2 * self.padding - self.n_fft) // self.hop_length

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known - {"fingerprint", "name"}
        if unknown:
            raise SpectokError(f"MelConfig: unknown fields {sorted(unknown)}")
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> MelConfig:
        import yaml

        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise SpectokError(f"{p}: cannot read mel config ({e})") from e
        if isinstance(data, dict) and "mel" in data and isinstance(data["mel"], (dict, str)):
            data = data["mel"]
        return cls.coerce(data)

    @classmethod
    def preset(cls, name: str) -> MelConfig:
        try:
            return cls(**PRESETS[name])
        except KeyError:
            raise SpectokError(f"unknown mel preset {name!r}; choose one of {sorted(PRESETS)}") from None

    @classmethod
    def coerce(cls, value: MelConfig | dict | str | os.PathLike) -> MelConfig:
        """Accept a MelConfig, a dict of fields, a preset name, or a YAML/JSON file path."""
        if isinstance(value, MelConfig):
            return value
        if isinstance(value, dict):
            return cls.from_dict(value)
        if isinstance(value, (str, os.PathLike)):
            if str(value) in PRESETS:
                return cls.preset(str(value))
            if Path(value).suffix in (".yaml", ".yml", ".json"):
                return cls.from_yaml(value)
            raise SpectokError(f"{value!r} is neither a mel preset ({sorted(PRESETS)}) nor a YAML file")
        raise SpectokError(f"cannot make a MelConfig from {type(value).__name__}")


PRESETS: dict[str, dict[str, Any]] = {
    # The exact HiFi-GAN LJSpeech front end (also used by the DCTTS Spectrogram VQ).
    "hifigan-22k": dict(sample_rate=22050, n_fft=1024, hop_length=256, win_length=1024, n_mels=80,
                        fmin=0.0, fmax=8000.0, center=False),
    # 16 kHz speech: 10 ms hop (160 samples, 100 frames/s), 40 ms window, 80 mels up to Nyquist.
    "speech-16k": dict(sample_rate=16000, n_fft=1024, hop_length=160, win_length=640, n_mels=80,
                       fmin=0.0, fmax=8000.0, center=False),
    # L2-ARCTIC VQ-VAE front end: 16 kHz, n_fft 1024, hop 256 (62.5 frames/s), 128 mels.
    "l2arctic-16k-128": dict(sample_rate=16000, n_fft=1024, hop_length=256, win_length=1024, n_mels=128,
                             fmin=0.0, fmax=8000.0, center=False),
}


#: STFT precision of the inference front end (``Pipeline``, the
#: ``encode``/``reconstruct`` commands). float32 runs ~2.5x faster on CPU than the float64 used to
#: prepare training features; its log-mels differ by at most ~1e-3 near the log floor, and with
#: the trained default tokenizer the codes agree on 99.9+ % of tokens (benchmarks/RESULTS.md,
#: "Inference"). Pass ``stft_dtype=torch.float64`` to ``Pipeline`` to reproduce prepared features.
INFERENCE_STFT_DTYPE = torch.float32


class MelSpectrogram(nn.Module):
    """Waveform ``[B, T]`` (or ``[T]``) float -> log-mel ``[B, n_mels, frames]`` float32.

    The STFT runs in ``stft_dtype`` (float64 by default: float32 FFTs err by ~1e-7 of the
    peak, which is 5e-4 in log space near the floor; float64 keeps prepared features within
    1e-6 of an exact computation and is still far faster than librosa on a CPU). Pass
    ``stft_dtype=torch.float32`` for speed where exactness does not matter (GPU training
    losses). The rest is fp32 whatever the surrounding autocast; the filter bank and window
    are buffers, so the module follows ``.to(device)``.
    """

    def __init__(self, config: MelConfig | dict | str, stft_dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        import librosa  # only for the filter bank

        self.config = MelConfig.coerce(config)
        c = self.config
        fb = librosa.filters.mel(sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax,
                                 htk=c.mel_scale == "htk", norm=c.mel_norm)
        self.register_buffer("filterbank", torch.from_numpy(fb).float(), persistent=False)  # [n_mels, F]
        self.stft_dtype = stft_dtype
        self.register_buffer("window", torch.hann_window(c.win_length, dtype=torch.float64), persistent=False)

    #: frames per block when :meth:`forward` runs without gradients: a block's spectrum (about 2 MB)
    #: stays in cache between the STFT, the magnitude and the filter bank, about 1.5x faster than
    #: one pass over a long signal, and the same numbers (every frame is computed on its own).
    BLOCK_FRAMES = 256

    def magnitude(self, waveform: torch.Tensor) -> torch.Tensor:
        """Linear STFT magnitude (``power`` applied) ``[B, n_fft // 2 + 1, frames]``."""
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            return self._magnitude_of_padded(self._padded(waveform))

    def _padded(self, waveform: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` or ``[T]`` -> ``[B, T + 2 * padding]`` in ``stft_dtype``: the signal the frames tile."""
        c = self.config
        x = waveform.unsqueeze(0) if waveform.dim() == 1 else waveform
        x = x.to(self.stft_dtype)
        if x.shape[-1] <= c.padding and c.pad_mode == "reflect":
            raise SpectokError(f"waveform of {x.shape[-1]} samples is too short for the mel front end "
                               f"(needs more than {c.padding})")
        return torch.nn.functional.pad(x.unsqueeze(1), (c.padding, c.padding), mode=c.pad_mode).squeeze(1)

    def _magnitude_of_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Padded signal ``[B, L]`` -> magnitude ``[B, F, (L - n_fft) // hop + 1]`` float32."""
        c = self.config
        spec = torch.stft(x, c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                          window=self.window.to(self.stft_dtype), center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()
        mag = torch.sqrt(power.add_(c.magnitude_eps)) if c.power == 1.0 else power
        return mag.float()

    def mel_from_magnitude(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Linear magnitude ``[B, F, frames]`` -> log-mel ``[B, n_mels, frames]``."""
        with torch.autocast(device_type=magnitude.device.type, enabled=False):
            mel = torch.matmul(self.filterbank.float(), magnitude.float())
            return torch.log(torch.clamp(mel, min=self.config.log_floor))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            x = self._padded(waveform)
            c, block = self.config, self.BLOCK_FRAMES
            frames = (x.shape[-1] - c.n_fft) // c.hop_length + 1
            if (torch.is_grad_enabled() and waveform.requires_grad) or frames <= block:
                return self.mel_from_magnitude(self._magnitude_of_padded(x))
            out = torch.empty(x.shape[0], c.n_mels, frames, device=x.device)
            for a in range(0, frames, block):
                b = min(frames, a + block)
                piece = x[:, a * c.hop_length: (b - 1) * c.hop_length + c.n_fft]
                out[:, :, a:b] = self.mel_from_magnitude(self._magnitude_of_padded(piece))
            return out

    def extra_repr(self) -> str:
        return f"fingerprint={self.config.fingerprint()}"
