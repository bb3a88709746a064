"""Convolutional VQ-VAE tokenizers over log-mels, in two shapes.

- :class:`ConvVQVAE2d` (``"conv2d-vqvae"``) treats the log-mel as a one-channel image
  ``[B, 1, n_mels, T]`` and downsamples frequency and time separately, so the latent is
  a grid of ``rows = n_mels / freq_downsample`` × ``T' = T / time_downsample`` vectors,
  each quantized on its own. Codes are ``[B, K, T']`` with ``K = rows`` (times the number
  of quantizer stages for a residual quantizer, stage-major). The DCTTS Spectrogram VQ
  is this model with frequency ÷20 and time ÷2 (a 4-row grid).
- :class:`ConvVQVAE1d` (``"conv1d-vqvae"``) treats the mel bins as channels
  ``[B, n_mels, T]`` and downsamples time only; each column is ``groups`` latent vectors
  (1 by default), each quantized by Kq codebooks (Kq stages of residual VQ, or 1 for
  VQ/FSQ), so codes are ``[B, Kq * groups, T']``. Its decoder may be wider than its
  encoder (``decoder_channels``), since encoding runs the encoder alone.

Both share one pipeline (:class:`ConvVQVAE`)::

    mel [B, n_mels, T] (log, natural units)
      → pad T to a multiple of time_downsample with the log floor (silence, never 0)
      → normalise (mel - norm_mean) / norm_std        (fixed scalars stored as hparams)
      → encoder → 1×1 pre-quant conv → quantizer → 1×1 post-quant conv → decoder
      → de-normalise → crop back to T                   = reconstruction [B, n_mels, T]

The quantizer is built by :func:`spectok.quantizers.build_quantizer` from a dict
(``{"type": "vq" | "rvq" | "fsq", ...}``), so configs hold it as plain data; its ``dim``
sets the width of the 1×1 projections.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from spectok.artifacts import register
from spectok.audio.mel import MelConfig
from spectok.contracts import AudioTokenizer, TokenizerOutput, eval_mode
from spectok.errors import SpectokError
from spectok.quantizers import build_quantizer
from spectok.tokenizers.blocks import ConvDecoder, ConvEncoder


def pad_to_multiple(x: torch.Tensor, multiple: int, value: float) -> torch.Tensor:
    """Pad the last axis of ``x`` on the right up to a multiple of ``multiple`` with ``value``."""
    extra = (-x.shape[-1]) % multiple
    return F.pad(x, (0, extra), value=value) if extra else x


class ConvVQVAE(AudioTokenizer):
    """Shared pipeline of the 1-D and 2-D convolutional VQ-VAEs (not registered itself).

    Subclasses set ``self.encoder``, ``self.decoder``, ``self.quantizer``,
    ``self.pre_quant``/``self.post_quant`` and implement ``_to_input``/``_from_output``
    (mel ↔ network layout) and ``_to_tokens``/``_from_tokens`` (quantizer codes ↔
    ``[B, K, T']``).
    """

    dims: int
    groups: int = 1  # token rows per column of a 1-D model (ConvVQVAE1d); always 1 in 2-D

    def _setup(self, mel: MelConfig | dict | str, quantizer: dict, norm_mean: float, norm_std: float) -> None:
        self.mel_config = MelConfig.coerce(mel)
        if norm_std <= 0:
            raise SpectokError(f"norm_std must be positive, got {norm_std}")
        self.norm_mean, self.norm_std = float(norm_mean), float(norm_std)
        self.quantizer = build_quantizer(quantizer)
        self._quantizer_takes_mask = "mask" in inspect.signature(self.quantizer.forward).parameters
        self.time_downsample = int(self.encoder.downsample[-1])
        conv = nn.Conv1d if self.dims == 1 else nn.Conv2d
        width = self.quantizer.dim * self.groups
        self.pre_quant = conv(self.encoder.net[-1].out_channels, width, 1)
        self.post_quant = conv(width, self.decoder.net[0].in_channels, 1)

    # ---- facts for inference -------------------------------------------------------------
    @property
    def receptive_field(self) -> int:
        """Mel frames one token column depends on through the convolutions (time axis).

        Chunked and streamed encoding, with context around each piece taken from this figure
        (aligned to ``time_downsample`` on the left), reproduce whole-input codes only for a
        time-local encoder: ``norm="none"``, or ``"batch"`` in eval mode.
        GroupNorm (the DCTTS preset's normalisation) pools statistics over the whole input, so
        with it chunked codes are an approximation and streaming is refused.
        """
        return self.encoder.receptive_field

    @property
    def decoder_receptive_field(self) -> int:
        """Code columns one decoded mel frame depends on (time axis; exact streaming and chunked
        decoding keep this many columns of context, split over both sides)."""
        return self.decoder.receptive_field

    @property
    def codebooks(self) -> list[int]:
        return list(self.quantizer.codebook_sizes)

    @property
    def rows(self) -> int:
        """Token rows per quantizer stage: frequency rows in 2-D, ``groups`` in 1-D."""
        return self.groups

    @property
    def rows_per_codebook(self) -> int:
        return self.rows

    @property
    def silence(self) -> float:
        """The log-mel value of silence (the log floor) used to pad inputs."""
        return self.mel_config.silence

    # ---- the pipeline ----------------------------------------------------------------------
    def _check_mel(self, mel: torch.Tensor) -> None:
        if mel.dim() != 3 or mel.shape[1] != self.mel_config.n_mels:
            raise SpectokError(f"expected a log-mel [B, {self.mel_config.n_mels}, T], got {tuple(mel.shape)}")
        if mel.shape[-1] == 0:
            raise SpectokError("cannot tokenize an empty log-mel (T = 0)")

    def _latent(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel ``[B, n_mels, T]`` → pre-quant latent (padded to a multiple of the hop)."""
        self._check_mel(mel)
        x = pad_to_multiple(mel.float(), self.time_downsample, self.silence)
        x = (x - self.norm_mean) / self.norm_std
        return self._split_groups(self.pre_quant(self.encoder(self._to_input(x))))

    def _reconstruct(self, quantized: torch.Tensor) -> torch.Tensor:
        """quantized latent → log-mel ``[B, n_mels, T' * time_downsample]``."""
        y = self._from_output(self.decoder(self.post_quant(self._merge_groups(quantized))))
        return y * self.norm_std + self.norm_mean

    def latent_mask(self, mask: torch.Tensor, columns: int) -> torch.Tensor:
        """Frame mask ``[B, T]`` (1 = real) → token-column mask ``[B, *latent_spatial]`` bool.

        A column is real when its first frame is (padding is always on the right).
        """
        cols = mask[:, :: self.time_downsample][:, :columns] > 0
        if cols.shape[1] < columns:
            cols = torch.nn.functional.pad(cols, (0, columns - cols.shape[1]), value=False)
        return cols if self._latent_dims == 1 else cols[:, None, :].expand(-1, self.rows, -1)

    def forward(self, mel: torch.Tensor, mask: torch.Tensor | None = None) -> TokenizerOutput:
        """log-mel ``[B, n_mels, T]`` (+ frame mask ``[B, T]``) → :class:`TokenizerOutput`.

        The reconstruction is cropped to T. With a mask, padded token columns still get
        codes but take no part in the quantizer's losses and codebook statistics.
        """
        z = self._latent(mel)
        if mask is not None and self._quantizer_takes_mask:
            q = self.quantizer(z, mask=self.latent_mask(mask, z.shape[-1]))
        else:
            q = self.quantizer(z)
        rec = self._reconstruct(q.quantized)[..., : mel.shape[-1]]
        return TokenizerOutput(reconstruction=rec, quantizer=q, codes=self._to_tokens(q.codes))

    @torch.no_grad()
    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel ``[B, n_mels, T]`` → codes ``[B, K, ceil(T / time_downsample)]`` int64.

        Pure: the encoder in eval mode for the call (batch norm's running statistics, no dropout;
        the model's modes are restored after) and the quantizer's
        :meth:`~spectok.quantizers.base.Quantizer.encode` path, so no loss, no statistics and no
        codebook update, even in training mode."""
        with eval_mode(self):
            return self._to_tokens(self.quantizer.encode(self._latent(mel))).long()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[B, K, T']`` → log-mel ``[B, n_mels, T' * time_downsample]``."""
        k = len(self.codebook_sizes)
        if codes.dim() != 3 or codes.shape[1] != k:
            raise SpectokError(f"expected codes [B, {k}, T'], got {tuple(codes.shape)}")
        return self._reconstruct(self.quantizer.decode(self._from_tokens(codes.long())))

    # ---- layout hooks ----------------------------------------------------------------------
    @property
    def _latent_dims(self) -> int:
        """Spatial axes of what the quantizer sees: 2 (rows × T') for a grid, 1 (T') otherwise."""
        return 2 if self.dims == 2 or self.groups > 1 else 1

    def _to_input(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _from_output(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _split_groups(self, z: torch.Tensor) -> torch.Tensor:
        """1-D grouped latent ``[B, dim * groups, T']`` → ``[B, dim, groups, T']`` (identity otherwise)."""
        return z.reshape(z.shape[0], -1, self.groups, z.shape[-1]) if self.groups > 1 else z

    def _merge_groups(self, q: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_split_groups`."""
        return q.reshape(q.shape[0], -1, q.shape[-1]) if self.groups > 1 else q

    def _to_tokens(self, codes: torch.Tensor) -> torch.Tensor:
        """Quantizer codes ``[B, Kq, (rows,) T']`` → ``[B, Kq * rows, T']`` (stage-major)."""
        return codes.reshape(codes.shape[0], -1, codes.shape[-1])

    def _from_tokens(self, codes: torch.Tensor) -> torch.Tensor:
        if self._latent_dims == 1:
            return codes
        return codes.reshape(codes.shape[0], -1, self.rows, codes.shape[-1])


@register("conv2d-vqvae", "tokenizer")
class ConvVQVAE2d(ConvVQVAE):
    """2-D VQ-VAE: the log-mel as an image, tokens on a ``rows × T'`` grid.

    Args:
        mel: the mel front end (MelConfig, dict of fields, or preset name).
        quantizer: quantizer spec for :func:`spectok.quantizers.build_quantizer`.
        channels: encoder widths, ``len(strides) + 1`` of them (the decoder mirrors them).
        strides: per-stage ``[freq, time]`` strides; their products are the frequency and
            time downsampling (``n_mels`` must be divisible by the frequency product).
        num_res_blocks: residual blocks per stage and in the middle (an int, or a list per stage + middle).
        norm: ``"group"``, ``"batch"`` or ``"none"``; act: ``"swish"``, ``"relu"``, ``"gelu"``.
        dilations: time dilations of the residual blocks (cycled).
        norm_mean, norm_std: fixed input normalisation of the log-mel (natural log units).

    Shapes: mel ``[B, n_mels, T]`` → codes ``[B, Kq * rows, ceil(T / time_down)]``.
    """

    dims = 2

    def __init__(self, mel: MelConfig | dict | str = "hifigan-22k", quantizer: dict | None = None,
                 channels: Sequence[int] = (64, 128, 128), strides: Sequence[Sequence[int]] = ((4, 2), (5, 1)),
                 num_res_blocks: int | Sequence[int] = 2, norm: str = "group", act: str = "swish",
                 dilations: Sequence[int] = (1,), dropout: float = 0.0,
                 norm_mean: float = -5.0, norm_std: float = 2.0) -> None:
        super().__init__()
        quantizer = quantizer or {"type": "vq", "dim": 64, "codebook_size": 128}
        kw = dict(dims=2, num_res_blocks=num_res_blocks, norm=norm, act=act, dilations=list(dilations),
                  dropout=dropout)
        self.encoder = ConvEncoder(1, list(channels), [tuple(s) for s in strides], **kw)
        self.decoder = ConvDecoder(1, list(channels), [tuple(s) for s in strides], **kw)
        self._setup(mel, quantizer, norm_mean, norm_std)
        self.freq_downsample = int(self.encoder.downsample[0])
        if self.mel_config.n_mels % self.freq_downsample:
            raise SpectokError(f"n_mels {self.mel_config.n_mels} is not divisible by the frequency "
                               f"downsampling {self.freq_downsample} (product of the strides' first entries)")

    @property
    def rows(self) -> int:
        return self.mel_config.n_mels // self.freq_downsample

    def _to_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1)  # [B, 1, n_mels, T]

    def _from_output(self, y: torch.Tensor) -> torch.Tensor:
        return y.squeeze(1)


@register("conv1d-vqvae", "tokenizer")
class ConvVQVAE1d(ConvVQVAE):
    """1-D VQ-VAE: mel bins as channels, one column of codes per ``time_downsample`` frames.

    Args: as :class:`ConvVQVAE2d`, with integer time ``strides``; ``dilations`` widen the
    residual blocks' receptive field in time (e.g. ``[1, 3, 9]``), and:

        groups: token rows per column. The pre-quant projection makes ``groups`` vectors of
            the quantizer's ``dim`` per column, each quantized on its own (as the rows of the
            2-D grid are), so a column carries ``groups`` codes from one shared codebook
            (times the stages of a residual quantizer).
        decoder_channels, decoder_res_blocks, decoder_dilations: the decoder's widths,
            residual blocks and time dilations when they differ from the encoder's (``None``:
            mirror it). A light encoder with a
            heavier decoder keeps encoding fast, since encoding runs only the encoder.

    Shapes: mel ``[B, n_mels, T]`` → codes ``[B, Kq * groups, ceil(T / time_down)]``.
    """

    dims = 1

    def __init__(self, mel: MelConfig | dict | str = "hifigan-22k", quantizer: dict | None = None,
                 channels: Sequence[int] = (256, 256, 256), strides: Sequence[int] = (2, 2),
                 num_res_blocks: int | Sequence[int] = 2, norm: str = "group", act: str = "swish",
                 dilations: Sequence[int] = (1, 3), dropout: float = 0.0,
                 norm_mean: float = -5.0, norm_std: float = 2.0, groups: int = 1,
                 decoder_channels: Sequence[int] | None = None,
                 decoder_res_blocks: int | Sequence[int] | None = None,
                 decoder_dilations: Sequence[int] | None = None) -> None:
        super().__init__()
        quantizer = quantizer or {"type": "vq", "dim": 64, "codebook_size": 512}
        if int(groups) < 1:
            raise SpectokError(f"groups must be >= 1, got {groups}")
        self.groups = int(groups)
        mel_config = MelConfig.coerce(mel)
        kw = dict(dims=1, norm=norm, act=act, dilations=list(dilations), dropout=dropout)
        strides = [int(s) for s in strides]
        self.encoder = ConvEncoder(mel_config.n_mels, list(channels), strides, num_res_blocks=num_res_blocks, **kw)
        dec_channels = list(channels if decoder_channels is None else decoder_channels)
        if len(dec_channels) != len(strides) + 1:
            raise SpectokError(f"decoder_channels needs {len(strides) + 1} widths (one per stride plus one), "
                               f"got {dec_channels}")
        dec_kw = dict(kw, dilations=list(dilations if decoder_dilations is None else decoder_dilations))
        self.decoder = ConvDecoder(mel_config.n_mels, dec_channels, strides, **dec_kw,
                                   num_res_blocks=num_res_blocks if decoder_res_blocks is None else decoder_res_blocks)
        self._setup(mel_config, quantizer, norm_mean, norm_std)

    def _to_input(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _from_output(self, y: torch.Tensor) -> torch.Tensor:
        return y
