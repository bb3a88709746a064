"""Residual vector quantization with quantizer dropout: :class:`ResidualVQ`.

Stage ``i`` quantizes what stages ``0..i-1`` left over (Zeghidour et al. 2021, SoundStream);
the quantized latent is the sum of the stage outputs. With quantizer dropout (SoundStream,
DAC) each training example uses a random number of stages, so one model decodes at any
``1..N`` stages: a variable bitrate.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from spectok.quantizers import ops
from spectok.quantizers.base import Quantizer, QuantizerOutput
from spectok.quantizers.vq import VectorQuantizer


class ResidualVQ(Quantizer):
    """N stages of :class:`VectorQuantizer` on successive residuals.

    ``forward(z [B, D, *spatial], n_quantizers=None, mask=None)`` returns ``codes [B, n, *spatial]``
    (one row per stage run) and ``quantized = sum_i stage_i(residual_i)``; ``decode(codes)`` uses
    as many stages as ``codes`` has rows and equals ``quantized`` exactly in eval mode.

    Training: with ``n_quantizers=None`` every example keeps all N stages except, with probability
    ``quantizer_dropout``, a uniformly drawn ``1..N``; stages beyond an example's count are still
    computed but add nothing to its output, its loss, or the codebook statistics (their code rows
    are returned but meaningless for that example). A given ``n_quantizers`` disables dropout.

    Gradients: each stage output is straight-through to its own input, and residuals are formed
    from detached stage outputs, so the encoder receives the reconstruction gradient once per
    active stage (as in SoundStream and DAC) plus every stage's commitment term.

    Args:
        num_quantizers: N stages.
        codebook_size: codes per stage (int for all stages).
        dim: channels D of the latents.
        quantizer_dropout: probability that an example draws its stage count at random.
        **vq_kwargs: passed to every stage's :class:`VectorQuantizer` (distance, beta, ema, ...).
    """

    def __init__(self, num_quantizers: int, codebook_size: int, dim: int, *, quantizer_dropout: float = 0.5,
                 **vq_kwargs: Any) -> None:
        super().__init__()
        if num_quantizers < 1:
            raise ValueError(f"ResidualVQ: num_quantizers must be >= 1, got {num_quantizers}")
        if not 0.0 <= quantizer_dropout <= 1.0:
            raise ValueError(f"ResidualVQ: quantizer_dropout must be in [0, 1], got {quantizer_dropout}")
        self.num_quantizers, self.dim = int(num_quantizers), int(dim)
        self.quantizer_dropout = float(quantizer_dropout)
        self.stages = nn.ModuleList(VectorQuantizer(codebook_size, dim, **vq_kwargs) for _ in range(num_quantizers))
        stage_cfg = {k: v for k, v in self.stages[0].config.items() if k not in ("type", "codebook_size", "dim")}
        self._config: dict[str, Any] = dict(type="rvq", num_quantizers=self.num_quantizers,
                                            codebook_size=int(codebook_size), dim=self.dim,
                                            quantizer_dropout=self.quantizer_dropout, **stage_cfg)

    @property
    def codebook_sizes(self) -> list[int]:
        return [s.codebook_size for s in self.stages]

    def _stage_counts(self, batch: int, n_quantizers: int | None,
                      device: torch.device) -> tuple[torch.Tensor, bool]:
        """``([B] int64, drawn)``: how many stages each example uses in this call, and whether
        quantizer dropout drew them (if not, every example uses all the stages run)."""
        if n_quantizers is not None:
            if not 1 <= n_quantizers <= self.num_quantizers:
                raise ValueError(f"ResidualVQ: n_quantizers must be in 1..{self.num_quantizers}, got {n_quantizers}")
            return torch.full((batch,), n_quantizers, dtype=torch.long, device=device), False
        counts = torch.full((batch,), self.num_quantizers, dtype=torch.long, device=device)
        if self.training and self.quantizer_dropout > 0 and self.num_quantizers > 1:
            drop = torch.rand(batch, device=device) < self.quantizer_dropout
            counts = torch.where(drop, torch.randint(1, self.num_quantizers + 1, (batch,), device=device), counts)
            return counts, True
        return counts, False

    def forward(self, z: torch.Tensor, n_quantizers: int | None = None,
                mask: torch.Tensor | None = None) -> QuantizerOutput:
        """Quantize ``z [B, D, *spatial]`` with up to ``n_quantizers`` stages.

        Args:
            z: latents, channel-first.
            n_quantizers: stages to use (default all; in training, all with quantizer dropout).
            mask: optional ``[B, *spatial]`` bool, True at real positions (see :class:`VectorQuantizer`).

        Returns:
            QuantizerOutput: ``codes [B, n, *spatial]`` with ``n = n_quantizers or N``; ``loss`` the sum
            of the stage losses; metrics ``stage{i}/perplexity`` etc. and ``n_quantizers_mean``.
        """
        ops.check_latents(z, self.dim, "ResidualVQ")
        batch, spatial = z.shape[0], tuple(z.shape[2:])
        # Without dropout every example uses every stage run: no branching on tensor values,
        # so the eval path traces into a static graph (torch.export, ONNX).
        counts, drawn = self._stage_counts(batch, n_quantizers, z.device)
        n_run = n_quantizers or self.num_quantizers
        bcast = (batch, 1, *([1] * len(spatial)))
        residual, total = z, None
        codes, loss, metrics = [], z.new_zeros((), dtype=torch.float32), {}
        for i, stage in enumerate(self.stages[:n_run]):
            active = counts > i
            stage_mask = None
            if (drawn and not bool(active.all())) or mask is not None:
                stage_mask = active.view(batch, *([1] * len(spatial))).expand(batch, *spatial)
                if mask is not None:
                    stage_mask = stage_mask & mask.to(device=z.device, dtype=torch.bool)
            out = stage(residual, mask=stage_mask)
            q = out.quantized * active.view(bcast).to(out.quantized.dtype)
            total = q if total is None else total + q
            residual = residual - out.quantized.detach()
            codes.append(out.codes)
            loss = loss + out.loss
            metrics.update({f"stage{i}/{k}": v for k, v in out.metrics.items()})
        metrics["n_quantizers_mean"] = float(counts.float().mean()) if drawn else float(n_run)
        return QuantizerOutput(quantized=total, codes=torch.cat(codes, dim=1), loss=loss, metrics=metrics)

    def encode(self, z: torch.Tensor, n_quantizers: int | None = None) -> torch.Tensor:
        """``z [B, D, *spatial]`` -> ``codes [B, n, *spatial]``: each stage codes the residual the
        previous stages' code vectors leave (as ``forward`` in eval mode); pure."""
        ops.check_latents(z, self.dim, "ResidualVQ")
        batch_shape = (z.shape[0], *z.shape[2:])
        residual, codes = ops.to_rows(z), []  # [N, D] rows throughout: no layout change per stage
        for stage in self.stages[: n_quantizers or self.num_quantizers]:
            idx = stage.nearest(residual)
            residual = residual - stage.vectors(idx)
            codes.append(idx)
        return torch.stack(codes, dim=-1).reshape(*batch_shape, len(codes)).movedim(-1, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, n, *spatial]`` (n <= N) -> ``quantized [B, D, *spatial]`` from the first n stages."""
        ops.check_codes(codes, self.codebook_sizes, "ResidualVQ.decode")
        total = None  # forward's extra multiplication by an all-ones stage mask is exact, so plain sums match
        for i in range(codes.shape[1]):
            q = self.stages[i].decode(codes[:, i : i + 1])
            total = q if total is None else total + q
        return total

    def extra_repr(self) -> str:
        return f"num_quantizers={self.num_quantizers}, quantizer_dropout={self.quantizer_dropout}"
