"""The iSTFT vocoder (Vocos-like): a ConvNeXt backbone at frame rate and an inverse-STFT head.

Everything before the head runs at the mel frame rate (~86 frames/s at 22,050 Hz, hop 256),
so the network costs ``hop`` times fewer steps than a sample-rate generator; the head
predicts a complex STFT frame per mel frame and one overlap-add turns it into samples.
This makes it the fast CPU default.

Layout (feature extractor -> backbone -> head, as in gemelo-ai/vocos)::

    log-mel [B, n_mels, T] --Conv1d(k=7)--> [B, dim, T] --LayerNorm--> ConvNeXt blocks x n_layers
        --LayerNorm--> Linear(dim, n_fft + 2) --> log|S| [B, T, F], phase [B, T, F]   (F = n_fft/2 + 1)
        --> S = exp(min(log|S|, max_log_magnitude)) * (cos phase + i sin phase)   (frames-last [B, T, F])
        --> irfft, Hann window, overlap-add with hop_length --> crop --> waveform [B, T * hop]

The head's frames are laid out like the front end's (frame ``t`` starts at ``t * hop`` of the
signal padded by ``(n_fft - hop) // 2``), so output sample ``n`` lines up with input frame
``n // hop``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import spectok.artifacts as artifacts
from spectok.audio.mel import MelConfig
from spectok.audio.spectral import overlap_add
from spectok.contracts import Vocoder
from spectok.errors import SpectokError


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k) -> LayerNorm -> Linear(dim, hidden) -> GELU -> Linear(hidden, dim), scaled residual.

    ``[B, dim, T] -> [B, dim, T]``; the layer scale starts at ``layer_scale`` so a deep stack
    starts close to the identity.
    """

    def __init__(self, dim: int, hidden: int, kernel_size: int = 7, layer_scale: float = 0.125) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, hidden)
        self.pw2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)  # [B, T, dim]
        y = self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


@artifacts.register("istft-vocoder", "vocoder")
class ISTFTVocoder(Vocoder):
    """Log-mel ``[B, n_mels, T]`` -> waveform ``[B, T * hop_length]`` through an iSTFT head.

    Args:
        mel: the front end of the input mels (``MelConfig``, dict, preset or YAML path).
        dim: backbone channels.
        hidden: ConvNeXt inner width (Vocos uses 3 x dim).
        n_layers: ConvNeXt blocks.
        kernel_size: depthwise kernel (frames).
        n_fft: head FFT size (default: the mel config's ``n_fft``); the head hop is the mel hop.
        max_log_magnitude: log-magnitudes are clamped here before ``exp`` (Vocos clips at 100).
    """

    def __init__(self, mel: MelConfig | dict | str = "hifigan-22k", dim: int = 256, hidden: int = 768,
                 n_layers: int = 8, kernel_size: int = 7, n_fft: int | None = None,
                 max_log_magnitude: float = math.log(100.0)) -> None:
        super().__init__()
        self.mel_config = MelConfig.coerce(mel)
        c = self.mel_config
        self.n_fft = int(n_fft or c.n_fft)
        if self.n_fft < c.hop_length:
            raise SpectokError(f"ISTFTVocoder: n_fft {self.n_fft} is below the hop length {c.hop_length}")
        self.max_log_magnitude = max_log_magnitude
        self.embed = nn.Conv1d(c.n_mels, dim, 7, padding=3)
        self.norm_in = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, hidden, kernel_size, 1.0 / n_layers) for _ in range(n_layers))
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, self.n_fft + 2)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.kernel_size, self.n_layers = kernel_size, n_layers

    @property
    def receptive_field(self) -> int:
        """Mel frames one output frame depends on (both sides and itself).

        The input conv reaches 3 frames each way, each ConvNeXt block ``kernel_size // 2``, and the
        overlap-add ``ceil((n_fft - hop) / 2 / hop)`` + 1 head frames (the windows that overlap the
        output frame's samples): a piece vocoded with that much context on both sides equals the
        whole-mel result.
        """
        hop = self.mel_config.hop_length
        pad = (self.n_fft - hop) // 2
        ola = max(math.ceil(pad / hop), math.ceil((self.n_fft - pad - 1) / hop) - 1)
        return 2 * (3 + self.n_layers * (self.kernel_size // 2) + ola) + 1

    def backbone(self, mel: torch.Tensor) -> torch.Tensor:
        """``[B, n_mels, T] -> [B, T, dim]`` frame features."""
        c = self.mel_config
        if mel.dim() != 3 or mel.shape[1] != c.n_mels:
            raise SpectokError(f"ISTFTVocoder: expected a log-mel [B, {c.n_mels}, T], got {tuple(mel.shape)}")
        x = self.embed(mel)
        x = self.norm_in(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.norm_out(x.transpose(1, 2))

    def spectrum(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, T, dim]`` -> complex STFT ``[B, T, n_fft // 2 + 1]`` (fp32, frames-last)."""
        out = self.head(features).float()  # [B, T, n_fft + 2]
        log_mag, phase = out.chunk(2, dim=-1)
        mag = torch.exp(log_mag.clamp(max=self.max_log_magnitude))
        return torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        c = self.mel_config
        t = mel.shape[-1]
        spec = self.spectrum(self.backbone(mel))
        with torch.autocast(device_type=mel.device.type, enabled=False):
            frames = torch.fft.irfft(spec, n=self.n_fft, dim=-1)  # [B, T, n_fft]
            wav = overlap_add(frames, self.window, c.hop_length)
        pad = (self.n_fft - c.hop_length) // 2
        wav = wav[:, pad: pad + t * c.hop_length]
        if wav.shape[-1] < t * c.hop_length:
            wav = F.pad(wav, (0, t * c.hop_length - wav.shape[-1]))
        return wav if self.training else wav.clamp(-1.0, 1.0)
