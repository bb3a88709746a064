"""Tiny stand-in models for the inference tests: a time-local tokenizer and a frame-rate vocoder.

They depend only on the base interfaces, so the pipeline, CLI and ONNX tests exercise
spectok's inference code whatever state the real model modules are in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spectok.artifacts import register
from spectok.audio.mel import MelConfig
from spectok.contracts import AudioTokenizer, Vocoder

SMALL_MEL = MelConfig(sample_rate=16000, n_fft=512, hop_length=128, win_length=512, n_mels=32,
                      fmin=0.0, fmax=8000.0)


@register("test-tiny-tokenizer", "tokenizer")
class TinyTokenizer(AudioTokenizer):
    """Conv encoder (time stride ``d``) + K nearest-code rows of ``dim`` each; no normalisation over time.

    mel ``[B, n_mels, T]`` -> codes ``[B, rows, ceil(T / d)]``; decode -> ``[B, n_mels, T' d]``.
    """

    def __init__(self, mel: MelConfig | dict | str = "speech-16k", d: int = 4, rows: int = 2,
                 codebook_size: int = 64, dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.mel_config = MelConfig.coerce(mel)
        self.time_downsample, self.rows, self.dim = d, rows, dim
        n = self.mel_config.n_mels
        self.encoder = nn.Sequential(nn.Conv1d(n, 16, 5, padding=2), nn.ReLU(),
                                     nn.Conv1d(16, 16, 2 * d, stride=d, padding=d // 2), nn.ReLU(),
                                     nn.Conv1d(16, rows * dim, 3, padding=1))
        self.codebook = nn.Parameter(torch.randn(rows, codebook_size, dim))
        self.decoder = nn.Sequential(nn.Conv1d(rows * dim, 16, 3, padding=1), nn.ReLU(),
                                     nn.ConvTranspose1d(16, n, 2 * d, stride=d, padding=d // 2))

    @torch.no_grad()
    def fit_codebook(self, mel: torch.Tensor) -> TinyTokenizer:
        """Set each row's codes to latent vectors drawn from ``mel [n_mels, T]``, so codes vary."""
        z = self.latent(mel[None])[0]  # [rows, dim, T']
        g = torch.Generator().manual_seed(0)
        for r in range(self.rows):
            pick = torch.randint(0, z.shape[-1], (self.codebook.shape[1],), generator=g)
            self.codebook[r] = z[r, :, pick].T
        return self

    @property
    def receptive_field(self) -> int:
        return 4 + 4 * self.time_downsample  # layers (k5, s1), (k2d, sd), (k3, s1)

    @property
    def codebooks(self) -> list[int]:
        return [self.codebook.shape[1]] * self.rows  # one codebook per row

    def latent(self, mel: torch.Tensor) -> torch.Tensor:
        extra = (-mel.shape[-1]) % self.time_downsample
        x = F.pad(mel, (0, extra), value=self.mel_config.silence)
        z = self.encoder((x + 5.0) / 2.5)
        return z.reshape(z.shape[0], self.rows, self.dim, -1)  # [B, rows, dim, T']

    @torch.no_grad()
    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        z = self.latent(mel)
        dist = ((z.unsqueeze(2) - self.codebook[None, :, :, :, None]) ** 2).sum(3)  # [B, rows, size, T']
        return dist.argmin(2)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        b, k, t = codes.shape
        q = torch.stack([self.codebook[r][codes[:, r]] for r in range(k)], 1)  # [B, rows, T', dim]
        return self.decoder(q.permute(0, 1, 3, 2).reshape(b, k * self.dim, t)) * 2.5 - 5.0


@register("test-frame-vocoder", "vocoder")
class FrameVocoder(Vocoder):
    """Not a real vocoder: one fixed sine cycle per frame, its amplitude the frame's mel energy; ``[B, T * hop]``.

    Frame-local (each output frame depends on its input frame only), so chunking it is exact.
    """

    def __init__(self, mel: MelConfig | dict | str = "speech-16k") -> None:
        super().__init__()
        self.mel_config = MelConfig.coerce(mel)
        self.gain = nn.Parameter(torch.tensor(0.05))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        hop = self.mel_config.hop_length
        amp = torch.repeat_interleave(mel.exp().mean(1), hop, dim=-1)
        cycle = torch.sin(2 * torch.pi * torch.arange(hop, dtype=amp.dtype) / hop).repeat(mel.shape[-1])
        return (self.gain * amp * cycle).clamp(-1, 1)
