"""The VQGAN parts of the DCTTS Spectrogram VQ: a PatchGAN discriminator and the adaptive weight.

The generator is a :class:`~spectok.tokenizers.conv.ConvVQVAE2d`; the two-phase training
(generator, then discriminator on detached fakes) is :class:`spectok.training.tokenizer_task.VQGANTask`.
Hinge and feature-matching losses live in :mod:`spectok.losses`.

Generator objective after ``disc_start`` steps (taming-transformers' VQGAN, with β on the
encoder-side term inside the quantizer loss)::

    L_G = w_rec * L_rec + w_q * L_q + disc_weight * λ * L_hinge_G (+ w_fm * L_fm)
    λ   = clamp(‖∇_W L_rec‖ / (‖∇_W L_hinge_G‖ + 1e-4), 0, max_weight).detach()

where ``W`` is the weight of the decoder's last convolution.
"""

from __future__ import annotations

import torch
from torch import nn

from spectok.artifacts import register
from spectok.tokenizers.blocks import norm_layer


@register("patchgan", "discriminator")
class PatchGANDiscriminator(nn.Module):
    """PatchGAN (pix2pix / taming-transformers style) over a normalised log-mel image.

    ``forward(x [B, in_channels, n_mels, T]) -> (logits [B, 1, H', T'], features)``: one
    real/fake logit per overlapping patch, and the activations after each block (for
    feature matching). ``n_layers`` stride-2 blocks (each halving both axes, so inputs
    need at least ``2 ** (n_layers + 2)`` bins and frames), then a stride-1 block and a
    1-channel output conv; 4×4 kernels throughout.

    Args:
        in_channels: 1 for a mel image, 3 for RGB.
        channels: width of the first block (doubling per block, capped at 8×).
        n_layers: number of stride-2 blocks after the first.
        norm: ``"batch"`` (as in pix2pix), ``"group"`` or ``"none"``.
    """

    def __init__(self, in_channels: int = 1, channels: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        blocks = [nn.Sequential(nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), act())]
        c = channels
        for i in range(1, n_layers + 1):
            c_next = channels * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            blocks.append(nn.Sequential(nn.Conv2d(c, c_next, 4, stride=stride, padding=1, bias=norm == "none"),
                                        norm_layer(norm, c_next, 2), act()))
            c = c_next
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv2d(c, 1, 4, stride=1, padding=1)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return self.out(x), feats


def _init_weights(m: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convs, N(1, 0.02) norm scales."""
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def adaptive_weight(rec_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor,
                    max_weight: float = 1e4) -> torch.Tensor:
    """λ = ‖∇_W rec_loss‖ / (‖∇_W gan_loss‖ + 1e-4), clamped to ``[0, max_weight]`` and detached.

    ``last_layer`` is the weight ``W`` of the generator's final layer. Both losses must
    depend on it; the graph is retained for the following ``backward``. Returns a
    finite scalar tensor even when the GAN gradient vanishes (then λ = ``max_weight`` at most).
    """
    g_rec = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_gan = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    lam = g_rec.norm() / (g_gan.norm() + 1e-4)
    return torch.nan_to_num(lam, nan=0.0, posinf=max_weight).clamp(0.0, max_weight).detach()


def gan_active(step: int, disc_start: int) -> bool:
    """Whether the adversarial terms are on at training ``step`` (validation passes step -1: off)."""
    return step >= 0 and step >= disc_start
