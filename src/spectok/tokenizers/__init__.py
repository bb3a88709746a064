"""Tokenizers: log-mel (or image) → integer codes ``[B, K, T']`` → log-mel.

- :class:`ConvVQVAE2d` (``conv2d-vqvae``): the mel as an image, a rows × columns token grid
  (the DCTTS Spectrogram VQ shape).
- :class:`ConvVQVAE1d` (``conv1d-vqvae``): mel bins as channels, K codebooks per column.
- :class:`ImageVQVAE` (``image-vqvae``): RGB images (CIFAR-10).
- :class:`PatchGANDiscriminator`: the VQGAN discriminator (training only).
- :func:`load_tokenizer`: a release artifact back as an eval-mode tokenizer.

Their training tasks live in :mod:`spectok.training.tokenizer_task`.
"""

from spectok.contracts import Tokenizer
from spectok.tokenizers.conv import ConvVQVAE, ConvVQVAE1d, ConvVQVAE2d, TokenizerOutput
from spectok.tokenizers.image import ImageVQVAE
from spectok.tokenizers.loading import load_tokenizer
from spectok.tokenizers.vqgan import PatchGANDiscriminator

__all__ = ["ConvVQVAE", "ConvVQVAE1d", "ConvVQVAE2d", "ImageVQVAE", "PatchGANDiscriminator", "Tokenizer",
           "TokenizerOutput", "load_tokenizer"]
