"""Finite scalar quantization (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple").

Each of ``d = len(levels)`` channels is bounded to ``L_i`` values and rounded; the product
of the per-channel grids is an implicit codebook of ``prod(levels)`` codes, with nothing to
learn, so nothing can collapse. The paper's recommended levels: 2^8 codes ``[8, 6, 5]``,
2^10 ``[8, 5, 5, 5]``, 2^12 ``[7, 5, 5, 5, 5]``, 2^14 ``[8, 8, 8, 6, 5]``, 2^16 ``[8, 8, 8, 5, 5, 5]``.

Codes: K = 1 code row whose value is the mixed-radix index
``sum_i digit_i * prod_{j<i} L_j`` with ``digit_i in [0, L_i)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from spectok.quantizers import ops
from spectok.quantizers.base import Quantizer, QuantizerOutput


class FSQ(Quantizer):
    """Finite scalar quantizer with an implicit codebook of ``prod(levels)`` codes.

    ``forward(z [B, D, *spatial]) -> QuantizerOutput`` with ``codes [B, 1, *spatial]`` int64 in
    ``[0, prod(levels))`` and a zero loss; ``decode(codes)`` returns exactly ``quantized`` in eval
    mode. Bounding, rounding and indexing run in float32 with autocast disabled.

    Per channel with ``L`` levels: ``b = tanh(z + shift) * (L - 1)(1 - eps)/2 - offset`` (``offset``
    = 0.5 for even ``L`` so that exactly ``L`` integers are reachable; ``shift = atanh(offset / half)`` puts
    ``z = 0`` on a grid point, except for ``L = 2``), ``digit = round(b) + L // 2``,
    and the quantized value is ``(digit - L // 2) / (L // 2)`` in ``[-1, 1]``; gradients pass
    straight through the rounding.

    Args:
        levels: number of levels per channel, each >= 2.
        dim: channels D of the latents; when it differs from ``len(levels)``, linear projections
            map ``D -> len(levels)`` before quantization and back after it. ``None``: ``len(levels)``.
        eps: keeps the bound strictly inside the outer rounding edges.
    """

    def __init__(self, levels: list[int], dim: int | None = None, eps: float = 1e-3) -> None:
        super().__init__()
        levels = [int(x) for x in levels]
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ: levels must be a non-empty list of integers >= 2, got {levels}")
        size = math.prod(levels)
        if size >= 2**62:
            raise ValueError(f"FSQ: implicit codebook of {size} codes does not fit int64 indices")
        self.levels = levels
        self.dim = int(dim or len(levels))
        self.eps = float(eps)
        self._config: dict[str, Any] = dict(type="fsq", levels=levels, dim=self.dim, eps=self.eps)
        d = len(levels)
        self.project_in: nn.Module = nn.Linear(self.dim, d) if self.dim != d else nn.Identity()
        self.project_out: nn.Module = nn.Linear(d, self.dim) if self.dim != d else nn.Identity()
        lv = torch.tensor(levels, dtype=torch.float32)
        basis = torch.cumprod(torch.tensor([1] + levels[:-1], dtype=torch.int64), dim=0)
        self.register_buffer("_levels", lv, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    @property
    def codebook_sizes(self) -> list[int]:
        return [self.codebook_size]

    # ---- grid arithmetic (rows [N, d]) -------------------------------------------------
    def bound(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, d]`` float32 -> values in ``(-L//2 - 0.5, L//2 + 0.5)`` per channel, rounding to ``L`` integers."""
        half_l = (self._levels - 1) * (1 - self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        # Even L: shift so that z = 0 lands on a grid point. L = 2 cannot (0 is a bin edge), so no shift:
        # the two levels split at z = 0 (sign quantization).
        shift = torch.where(offset < half_l, torch.atanh((offset / half_l).clamp(max=0.999)), 0.0)
        return torch.tanh(x + shift) * half_l - offset

    def digits_to_values(self, digits: torch.Tensor) -> torch.Tensor:
        """Integer digits ``[N, d]`` in ``[0, L)`` -> quantized values ``[N, d]`` float32 in ``[-1, 1]``."""
        half_w = torch.div(self._levels, 2, rounding_mode="floor")
        return (digits.float() - half_w) / half_w

    def digits_to_index(self, digits: torch.Tensor) -> torch.Tensor:
        """``[N, d]`` digits -> ``[N]`` int64 mixed-radix indices."""
        return (digits.long() * self._basis).sum(dim=-1)

    def index_to_digits(self, index: torch.Tensor) -> torch.Tensor:
        """``[N]`` int64 indices -> ``[N, d]`` int64 digits (inverse of :meth:`digits_to_index`)."""
        return torch.div(index.long()[:, None], self._basis, rounding_mode="floor") % self._levels.long()

    # ---- Quantizer ---------------------------------------------------------------------
    def _digits(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z [B, D, *spatial]`` -> (bounded rows ``[N, d]`` float32, their digits ``[N, d]`` int64)."""
        e = self.project_in(ops.to_rows(z))
        with torch.autocast(device_type=z.device.type, enabled=False):
            b = self.bound(e.float())
            half_w = torch.div(self._levels, 2, rounding_mode="floor")
            digits = (torch.round(b.detach()) + half_w).long()
            digits = torch.minimum(digits.clamp_min(0), self._levels.long() - 1)  # guards NaN/inf edge cases
        return b, digits

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, D, *spatial]`` -> ``codes [B, 1, *spatial]`` int64 (no metrics)."""
        ops.check_latents(z, self.dim, "FSQ")
        return self.digits_to_index(self._digits(z)[1]).reshape(z.shape[0], *z.shape[2:]).unsqueeze(1)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z [B, D, *spatial]``; returns codes ``[B, 1, *spatial]`` and a zero loss."""
        ops.check_latents(z, self.dim, "FSQ")
        batch_shape = (z.shape[0], *z.shape[2:])
        b, digits = self._digits(z)
        with torch.autocast(device_type=z.device.type, enabled=False):
            half_w = torch.div(self._levels, 2, rounding_mode="floor")
            idx = self.digits_to_index(digits)
            scaled = b / half_w
            out = self.digits_to_values(digits) + (scaled - scaled.detach())
        quantized = ops.from_rows(self.project_out(out), batch_shape)
        metrics = ops.usage_metrics(idx, self.codebook_size)
        return QuantizerOutput(quantized=quantized, codes=idx.reshape(batch_shape).unsqueeze(1),
                               loss=out.new_zeros(()), metrics=metrics)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, 1, *spatial]`` int -> ``quantized [B, D, *spatial]``."""
        ops.check_codes(codes, self.codebook_sizes, "FSQ.decode")
        batch_shape = (codes.shape[0], *codes.shape[2:])
        with torch.autocast(device_type=codes.device.type, enabled=False):
            values = self.digits_to_values(self.index_to_digits(codes[:, 0].reshape(-1)))
            values = values + 0.0  # same arithmetic as forward's straight-through sum, so results match bit for bit
        return ops.from_rows(self.project_out(values), batch_shape)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, dim={self.dim}, codebook_size={self.codebook_size}"
