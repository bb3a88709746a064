"""Griffin-Lim in torch: log-mel ``[B, n_mels, T]`` -> waveform ``[B, T * hop_length]``, no training.

Two steps:

1. **Mel to linear magnitude.** The front end computes ``log(clamp(M @ |X|^p, floor))`` with
   ``M`` the filter bank ``[n_mels, F]`` of :class:`~spectok.audio.mel.MelSpectrogram`. We undo
   the log, apply the clamped pseudo-inverse ``M^+`` (non-negative by clamping), optionally
   refine with a few multiplicative NNLS updates (Lee-Seung; they keep the estimate
   non-negative and lower ``||M S - mel||``), and undo the power (``p = 2`` -> square root).
   Bins outside ``[fmin, fmax]`` have no filter and stay at a tiny floor.
2. **Fast Griffin-Lim** (Perraudin, Balazs & Søndergaard 2013): alternate projections
   between consistent spectrograms (iSTFT then STFT) and the target magnitude, with the
   momentum term ``rebuilt - momentum / (1 + momentum) * previous`` (librosa's and
   torchaudio's form). The iterations run on the front end's *padded* signal domain
   (frames start at ``t * hop`` of the signal padded by ``mel_config.padding`` on each side,
   STFT with ``center=False``); the result is cropped by that padding, so the output has
   exactly ``T * hop_length`` samples, aligned with the input frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from spectok.audio.mel import MelConfig, MelSpectrogram
from spectok.audio.spectral import overlap_add, padded_window, window_envelope
from spectok.errors import SpectokError
from spectok.vocoders.base import Vocoder


class GriffinLim(Vocoder):
    """Batched fast Griffin-Lim over :class:`MelConfig` log-mels.

    Args:
        mel: the front end the mels were made with (``MelConfig``, dict, preset name or YAML).
        n_iter: Griffin-Lim iterations.
        momentum: fast Griffin-Lim momentum in ``[0, 1)``; 0 gives the classic algorithm.
        nnls_iters: multiplicative NNLS refinements of the pseudo-inverse magnitude (0 = plain
            clamped pseudo-inverse).
        init: initial phase, ``"random"`` (uniform, seeded) or ``"zeros"``.
        seed: seed of the random initial phase. Frame ``t`` starts from row ``t mod 1009`` of one
            seeded table of phases, whatever the batch, the length, or where a piece of a longer
            mel starts (:meth:`vocode`), so batched, chunked and streamed results agree.
        magnitude_power: raise the recovered magnitude to this power before phase
            reconstruction (1.0 = none; values ~1.2-1.5 sharpen harmonics as in some TTS recipes).

    ``forward(mel [B, n_mels, T]) -> waveform [B, T * hop_length]`` (float32). Nothing is
    trained; the module only holds the pseudo-inverse and window as buffers.

    Each iteration's iSTFT and STFT let a frame reach the ``ceil(n_fft / hop) - 1`` frames on
    either side, so after ``n_iter`` iterations and the final iSTFT an output frame depends on
    ``(n_iter + 1)`` such reaches each way: :attr:`receptive_field`. A piece vocoded with that
    much context on both sides equals the whole-mel result (what streaming relies on).
    """

    #: rows of the initial-phase table (a prime, about 10 s of frames at 100 frames/s)
    PHASE_PERIOD = 1009

    def __init__(self, mel: MelConfig | dict | str, n_iter: int = 32, momentum: float = 0.99,
                 nnls_iters: int = 10, init: str = "random", seed: int = 0, magnitude_power: float = 1.0) -> None:
        super().__init__()
        self.mel_config = MelConfig.coerce(mel)
        if n_iter < 0 or not 0.0 <= momentum < 1.0:
            raise SpectokError(f"GriffinLim: need n_iter >= 0 and 0 <= momentum < 1 (got {n_iter}, {momentum})")
        if init not in ("random", "zeros"):
            raise SpectokError(f"GriffinLim: init must be 'random' or 'zeros', got {init!r}")
        self.n_iter, self.momentum, self.nnls_iters = n_iter, momentum, nnls_iters
        self.init, self.seed, self.magnitude_power = init, seed, magnitude_power
        fb = MelSpectrogram(self.mel_config).filterbank.double()  # [n_mels, F], the front end's own
        self.register_buffer("filterbank", fb.float(), persistent=False)
        self.register_buffer("pinv", torch.linalg.pinv(fb).float(), persistent=False)  # [F, n_mels]
        self.register_buffer("window", padded_window(self.mel_config), persistent=False)
        g = torch.Generator(device="cpu").manual_seed(seed)
        phases = torch.rand(self.PHASE_PERIOD, self.mel_config.n_fft // 2 + 1, generator=g) * (2 * torch.pi)
        self.register_buffer("phase_table", phases, persistent=False)  # [PHASE_PERIOD, F]

    @property
    def receptive_field(self) -> int:
        """Mel frames one output frame depends on (both sides and itself)."""
        c = self.mel_config
        reach = (self.n_iter + 1) * (math.ceil(c.n_fft / c.hop_length) - 1)
        return 2 * reach + 1

    def mel_to_magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, n_mels, T]`` -> linear STFT magnitude ``[B, n_fft // 2 + 1, T]`` (non-negative)."""
        c = self.mel_config
        if mel.dim() != 3 or mel.shape[1] != c.n_mels:
            raise SpectokError(f"GriffinLim: expected a log-mel [B, {c.n_mels}, T], got {tuple(mel.shape)}")
        target = torch.exp(mel.float())  # the mel in linear units (of |X|^power)
        floor = 1e-10
        spec = torch.matmul(self.pinv, target).clamp_min(floor)
        num = torch.matmul(self.filterbank.t(), target) if self.nnls_iters else None
        for _ in range(self.nnls_iters):  # Lee-Seung multiplicative update for min ||M s - target||, s >= 0
            den = torch.matmul(self.filterbank.t(), torch.matmul(self.filterbank, spec)).clamp_min(floor)
            spec = spec * num / den
        mag = spec.sqrt() if c.power == 2.0 else spec
        return mag.pow(self.magnitude_power) if self.magnitude_power != 1.0 else mag

    def _stft(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` -> ``[B, T, F]`` (torch's STFT output is frames-major in memory: transposing is free)."""
        c = self.mel_config
        return torch.stft(x, c.n_fft, hop_length=c.hop_length, window=self.window, center=False,
                          return_complex=True).transpose(1, 2)

    def _istft(self, spec: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """``[B, T, F]`` -> ``[B, (T - 1) * hop + n_fft]`` (the padded signal domain)."""
        c = self.mel_config
        return overlap_add(torch.fft.irfft(spec, n=c.n_fft, dim=-1), self.window, c.hop_length, envelope)

    def reconstruct(self, magnitude: torch.Tensor, start_frame: int = 0) -> torch.Tensor:
        """Linear magnitude ``[B, F, T]`` -> waveform ``[B, T * hop_length]`` by fast Griffin-Lim.

        ``start_frame``: the global index of the first frame (it picks the initial phases).

        Internally everything is frames-last (``[B, T, F]``), the memory layout of ``torch.stft``'s
        output, so the element-wise updates run on contiguous tensors.
        """
        c = self.mel_config
        b, _, t = magnitude.shape
        mag = magnitude.float().transpose(1, 2).contiguous()  # [B, T, F]
        envelope = window_envelope(self.window, c.hop_length, t)
        if self.init == "random":
            rows = torch.arange(start_frame, start_frame + t, device=mag.device) % self.PHASE_PERIOD
            spec = torch.polar(mag, self.phase_table[rows].expand_as(mag))
        else:
            spec = mag.to(torch.complex64)
        prev = None
        alpha = self.momentum / (1 + self.momentum)
        for _ in range(self.n_iter):
            rebuilt = self._stft(self._istft(spec, envelope))
            d = rebuilt if prev is None else torch.sub(rebuilt, prev, alpha=alpha)
            # unit phase times the target magnitude, in real arithmetic (complex division and abs are slower)
            spec = d * (mag * torch.rsqrt(d.real.square() + d.imag.square() + 1e-30))
            prev = rebuilt
        wav = self._istft(spec, envelope)[:, c.padding: c.padding + t * c.hop_length]
        if wav.shape[-1] < t * c.hop_length:  # center=True: the last hop has no frame beyond it
            wav = F.pad(wav, (0, t * c.hop_length - wav.shape[-1]))
        return wav

    @torch.no_grad()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.vocode(mel)

    @torch.no_grad()
    def vocode(self, mel: torch.Tensor, start_frame: int = 0) -> torch.Tensor:
        with torch.autocast(device_type=mel.device.type, enabled=False):
            return self.reconstruct(self.mel_to_magnitude(mel), start_frame).clamp(-1.0, 1.0)

    @torch.no_grad()
    def from_linear(self, log_spec: torch.Tensor) -> torch.Tensor:
        """Log linear spectrogram ``[B, n_fft // 2 + 1, T]`` (``log`` of the front end's
        :meth:`~spectok.audio.mel.MelSpectrogram.magnitude`, i.e. of ``|X|^power``) -> ``[B, T * hop]``."""
        c = self.mel_config
        if log_spec.dim() != 3 or log_spec.shape[1] != c.n_fft // 2 + 1:
            raise SpectokError(f"GriffinLim: expected a log linear spectrogram [B, {c.n_fft // 2 + 1}, T], "
                               f"got {tuple(log_spec.shape)}")
        with torch.autocast(device_type=log_spec.device.type, enabled=False):
            spec = torch.exp(log_spec.float())
            mag = spec.sqrt() if c.power == 2.0 else spec
            return self.reconstruct(mag.pow(self.magnitude_power)).clamp(-1.0, 1.0)

    def extra_repr(self) -> str:
        return (f"n_iter={self.n_iter}, momentum={self.momentum}, nnls_iters={self.nnls_iters}, "
                f"mel={self.mel_config.fingerprint()}")
