"""An image VQ-VAE (CIFAR-10, 3×32×32) on the same convolutional blocks as the mel tokenizers.

Images are float ``[B, 3, H, W]`` in [-1, 1] (:func:`to_model_range` converts uint8
``[N, H, W, 3]``). Two stride-2 stages give an 8×8 latent grid for 32×32 inputs; with a
512-entry codebook that is 64 tokens of 9 bits = 576 bits per image.

Codes follow the tokenizer layout ``[B, K, T']`` with the grid's rows as K and its
columns as T' (``[B, 8, 8]`` for plain VQ; ``[B, Kq * 8, 8]`` stage-major for RVQ).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from spectok.artifacts import register
from spectok.contracts import ImageTokenizer, QuantizerOutput, TokenizerOutput
from spectok.errors import SpectokError
from spectok.quantizers import build_quantizer
from spectok.tokenizers.blocks import ConvDecoder, ConvEncoder


def to_model_range(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` (0..255) → float32 ``[N, 3, H, W]`` in [-1, 1]."""
    x = torch.as_tensor(np.asarray(images))
    if x.dim() != 4 or x.shape[-1] != 3:
        raise SpectokError(f"expected uint8 images [N, H, W, 3], got {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


@register("image-vqvae", "tokenizer")
class ImageVQVAE(ImageTokenizer):
    """VQ-VAE over RGB images.

    Args:
        quantizer: spec for :func:`spectok.quantizers.build_quantizer`.
        image_size: side of the square input in pixels (32 for CIFAR-10).
        channels, strides, num_res_blocks, norm, act: see :class:`~spectok.tokenizers.blocks.ConvEncoder`;
            the strides' products must divide ``image_size``.

    Shapes: images ``[B, 3, S, S]`` → codes ``[B, Kq * S/d, S/d]`` (d = total stride) → images.
    """

    mel_config = None

    def __init__(self, quantizer: dict | None = None, image_size: int = 32, in_channels: int = 3,
                 channels: Sequence[int] = (64, 128, 128), strides: Sequence[Sequence[int]] = ((2, 2), (2, 2)),
                 num_res_blocks: int | Sequence[int] = 2, norm: str = "group", act: str = "swish") -> None:
        super().__init__()
        quantizer = quantizer or {"type": "vq", "dim": 64, "codebook_size": 512}
        kw = dict(dims=2, num_res_blocks=num_res_blocks, norm=norm, act=act)
        self.encoder = ConvEncoder(in_channels, list(channels), [tuple(s) for s in strides], **kw)
        self.decoder = ConvDecoder(in_channels, list(channels), [tuple(s) for s in strides], **kw)
        self.quantizer = build_quantizer(quantizer)
        self.pre_quant = torch.nn.Conv2d(channels[-1], self.quantizer.dim, 1)
        self.post_quant = torch.nn.Conv2d(self.quantizer.dim, channels[-1], 1)
        self.image_size, self.in_channels = int(image_size), int(in_channels)
        down = self.encoder.downsample
        if image_size % down[0] or image_size % down[1]:
            raise SpectokError(f"image_size {image_size} is not divisible by the downsampling {down}")
        self.grid = (image_size // down[0], image_size // down[1])

    @property
    def codebooks(self) -> list[int]:
        return list(self.quantizer.codebook_sizes)

    @property
    def rows_per_codebook(self) -> int:
        """The latent grid's rows share their stage's codebook."""
        return self.grid[0]

    @property
    def bits_per_image(self) -> float:
        """Nominal bits per image: columns × sum over rows of log2(codebook size)."""
        return self.grid[1] * sum(math.log2(k) for k in self.codebook_sizes)

    def _check(self, x: torch.Tensor) -> None:
        want = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise SpectokError(f"expected images [B, {', '.join(map(str, want))}], got {tuple(x.shape)}")

    def _quantize(self, x: torch.Tensor) -> QuantizerOutput:
        self._check(x)
        return self.quantizer(self.pre_quant(self.encoder(x.float())))

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        """images ``[B, 3, S, S]`` in [-1, 1] → :class:`TokenizerOutput` (reconstruction in [-1, 1] scale)."""
        q = self._quantize(x)
        rec = self.decoder(self.post_quant(q.quantized))
        return TokenizerOutput(reconstruction=rec, quantizer=q, codes=q.codes.reshape(x.shape[0], -1, self.grid[1]))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """images ``[B, 3, S, S]`` → codes ``[B, K, S/d]`` int64 (pure: the quantizer's ``encode``)."""
        self._check(x)
        codes = self.quantizer.encode(self.pre_quant(self.encoder(x.float())))
        return codes.reshape(x.shape[0], -1, self.grid[1]).long()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[B, K, S/d]`` → images ``[B, 3, S, S]`` (unclamped, [-1, 1] scale)."""
        k = len(self.codebook_sizes)
        if codes.dim() != 3 or tuple(codes.shape[1:]) != (k, self.grid[1]):
            raise SpectokError(f"expected codes [B, {k}, {self.grid[1]}], got {tuple(codes.shape)}")
        q = self.quantizer.decode(codes.long().reshape(codes.shape[0], -1, *self.grid))
        return self.decoder(self.post_quant(q))
