"""Waveform discriminators: HiFi-GAN's multi-period (MPD) and multi-scale (MSD), the
multi-resolution spectrogram discriminator (MRD, UnivNet's and Vocos'), and their union.

Every discriminator maps a waveform ``[B, T]`` to ``(scores, features)``: ``scores`` a list of
logit maps (one per sub-discriminator), ``features`` a list (per sub-discriminator) of lists
of intermediate activations, which is what :func:`spectok.losses.lsgan_d_loss`,
:func:`~spectok.losses.lsgan_g_loss` and :func:`~spectok.losses.feature_matching_loss`
consume. ``width`` scales every channel count (1.0 = the paper) so CPU runs can afford them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

LRELU_SLOPE = 0.1
Output = tuple[list[torch.Tensor], list[list[torch.Tensor]]]


def _ch(c: int, width: float) -> int:
    return max(4, int(round(c * width)))


def _run_convs(x: torch.Tensor, convs: nn.ModuleList, post: nn.Module) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``convs`` each followed by a leaky ReLU, then ``post``: ``(flattened scores, every layer's output)``."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        feats.append(x)
    x = post(x)
    feats.append(x)
    return x.flatten(1), feats


class PeriodDiscriminator(nn.Module):
    """Folds ``[B, T]`` into ``[B, 1, T / p, p]`` (reflect-padding T to a multiple of ``p``) and
    applies 2-D convolutions with ``(k, 1)`` kernels, so each column sees samples ``p`` apart."""

    def __init__(self, period: int, width: float = 1.0, kernel: int = 5, stride: int = 3) -> None:
        super().__init__()
        self.period = period
        chans = [1] + [_ch(c, width) for c in (32, 128, 512, 1024)]
        pad = (kernel - 1) // 2
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (kernel, 1), (stride, 1), padding=(pad, 0))) for a, b in zip(chans, chans[1:]))
        self.convs.append(weight_norm(nn.Conv2d(chans[-1], chans[-1], (kernel, 1), 1, padding=(pad, 0))))
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, t = wav.shape
        if t % self.period:
            wav = F.pad(wav.unsqueeze(1), (0, self.period - t % self.period), mode="reflect").squeeze(1)
        return _run_convs(wav.reshape(b, 1, -1, self.period), self.convs, self.post)


class MultiPeriodDiscriminator(nn.Module):
    """Period discriminators for periods 2, 3, 5, 7, 11 (co-prime, to cover distinct periodicities)."""

    def __init__(self, periods: tuple[int, ...] | list[int] = (2, 3, 5, 7, 11), width: float = 1.0) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, width) for p in periods)

    def forward(self, wav: torch.Tensor) -> Output:
        outs = [d(wav) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]


class ScaleDiscriminator(nn.Module):
    """Grouped, strided 1-D convolutions over a waveform (MelGAN's discriminator, as in HiFi-GAN)."""

    # (out channels, kernel, stride, groups) after the first layer of 128 channels, kernel 15.
    LAYERS = ((128, 41, 2, 4), (256, 41, 2, 16), (512, 41, 4, 16), (1024, 41, 4, 16), (1024, 41, 1, 16),
              (1024, 5, 1, 1))

    def __init__(self, width: float = 1.0, use_spectral_norm: bool = False) -> None:
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        convs = [norm(nn.Conv1d(1, _ch(128, width), 15, 1, padding=7))]
        cin = _ch(128, width)
        for cout, k, s, g in self.LAYERS:
            cout = _ch(cout, width)
            groups = g if cin % g == 0 and cout % g == 0 else 1
            convs.append(norm(nn.Conv1d(cin, cout, k, s, groups=groups, padding=(k - 1) // 2)))
            cin = cout
        self.convs = nn.ModuleList(convs)
        self.post = norm(nn.Conv1d(cin, 1, 3, 1, padding=1))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _run_convs(wav.unsqueeze(1), self.convs, self.post)


class MultiScaleDiscriminator(nn.Module):
    """Scale discriminators on the raw waveform (spectral norm) and on ×2 and ×4 average-pooled copies."""

    def __init__(self, scales: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(ScaleDiscriminator(width, use_spectral_norm=i == 0) for i in range(scales))

    def forward(self, wav: torch.Tensor) -> Output:
        scores, feats = [], []
        for i, d in enumerate(self.discriminators):
            if i:
                wav = F.avg_pool1d(wav.unsqueeze(1), 4, 2, padding=2).squeeze(1)
            s, f = d(wav)
            scores.append(s)
            feats.append(f)
        return scores, feats


#: (n_fft, hop, win) of the MRD at 22-24 kHz (UnivNet, Vocos); at 16 kHz they span 32-128 ms windows.
MRD_RESOLUTIONS = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))


class MultiResolutionDiscriminator(nn.Module):
    """One :class:`SpectrogramDiscriminator` per ``(n_fft, hop, win)`` resolution."""

    def __init__(self, resolutions: tuple | list | None = None, width: float = 1.0) -> None:
        super().__init__()
        resolutions = MRD_RESOLUTIONS if resolutions is None else resolutions
        self.discriminators = nn.ModuleList(SpectrogramDiscriminator(*map(int, r), width) for r in resolutions)

    def forward(self, wav: torch.Tensor) -> Output:
        outs = [d(wav) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]


class SpectrogramDiscriminator(nn.Module):
    """2-D convolutions over one resolution's log-compressed magnitude ``[B, 1, frames, F]``.

    The magnitude is ``|STFT|`` (Hann, centred) raised to 0.3 (UnivNet's input is the plain
    magnitude; the compression keeps quiet bins in view). Five 3x9 / 3x3 convolutions, the
    middle three with stride 2 along frequency, then a 3x3 convolution to one logit map.
    """

    def __init__(self, n_fft: int, hop: int, win: int, width: float = 1.0) -> None:
        super().__init__()
        self.n_fft, self.hop, self.win = n_fft, hop, win
        c = _ch(32, width)
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, c, (3, 9), padding=(1, 4))),
            *(weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))) for _ in range(3)),
            weight_norm(nn.Conv2d(c, c, (3, 3), padding=(1, 1))),
        ])
        self.post = weight_norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))
        self.register_buffer("window", torch.hann_window(win), persistent=False)

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(wav.float(), self.n_fft, self.hop, self.win, self.window, center=True, return_complex=True)
        mag = (spec.real.square() + spec.imag.square() + 1e-9).pow(0.15)  # |S| ** 0.3
        return _run_convs(mag.transpose(1, 2).unsqueeze(1), self.convs, self.post)


class HiFiGANDiscriminator(nn.Module):
    """MPD, MSD and MRD together: ``wav [B, T] -> (scores, features)`` over all their sub-discriminators.

    Args:
        periods: MPD periods (empty: no MPD).
        scales: MSD scales (0: no MSD).
        width: channel multiplier for every one of them (1.0 = the papers' sizes).
        resolutions: MRD ``(n_fft, hop, win)`` triples (empty, the default: no MRD). The MRD
            costs a few per cent of MSD's CPU time per step, which makes MPD + MRD (Vocos'
            pair) the affordable adversarial setting on a CPU.
    """

    def __init__(self, periods: tuple[int, ...] | list[int] = (2, 3, 5, 7, 11), scales: int = 3,
                 width: float = 1.0, resolutions: tuple | list = ()) -> None:
        super().__init__()
        self.mpd = MultiPeriodDiscriminator(periods, width) if periods else None
        self.msd = MultiScaleDiscriminator(scales, width) if scales else None
        self.mrd = MultiResolutionDiscriminator(resolutions, width) if resolutions else None

    def forward(self, wav: torch.Tensor) -> Output:
        scores: list[torch.Tensor] = []
        feats: list[list[torch.Tensor]] = []
        for d in (self.mpd, self.msd, self.mrd):
            if d is not None:
                s, f = d(wav)
                scores += s
                feats += f
        return scores, feats
