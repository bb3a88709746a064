"""Vector quantization with a codebook that stays alive: :class:`VectorQuantizer`.

Defaults (what we would pick for a new speech tokenizer, and what the codebook benchmark
measures): EMA codebook updates (decay 0.99, Laplace-smoothed counts), k-means
initialisation on the first training batch, dead-code restart from recent encoder
outputs, squared-L2 nearest code, commitment weight beta = 0.25, plain straight-through
gradients. Low-dimensional factorized codes in the ViT-VQGAN style are
``codebook_dim=8, distance="cosine"``.

Every codebook change (EMA, k-means, restart) is computed from statistics summed over
torch.distributed ranks and from candidates chosen on rank 0 and broadcast, so codebooks
stay bit-identical on every rank without relying on DDP's buffer broadcast.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spectok.quantizers import ops
from spectok.quantizers.base import Quantizer, QuantizerOutput


class VectorQuantizer(Quantizer):
    """Nearest-code vector quantizer over channel-first latents of any spatial rank.

    ``forward(z [B, D, *spatial], mask=None) -> QuantizerOutput`` with ``quantized`` shaped like
    ``z`` and ``codes [B, 1, *spatial]`` int64 in ``[0, codebook_size)``. ``decode(codes)`` returns
    exactly ``quantized`` in eval mode. The codebook lookup (projection, normalisation,
    distances, argmin, losses) runs in float32 with autocast disabled; the output projection
    (if any) follows the caller's autocast.

    Loss (already weighted, a scalar): ``codebook_term + beta * commitment`` where
    ``codebook_term = |sg(e) - q|^2`` trains the codebook and ``commitment = |e - sg(q)|^2`` trains
    the encoder (``e``: projected encoder rows, ``q``: their codes, means over rows and channels).
    With ``ema=True`` the codebook is not trained by gradients and the loss is ``beta * commitment``.

    Args:
        codebook_size: number of codes K (>= 1).
        dim: channels D of the latents.
        codebook_dim: dimension of the code vectors; when it differs from ``dim``, linear
            projections map ``D -> codebook_dim`` before the lookup and back after it
            (factorized codes, ViT-VQGAN; pair with ``distance="cosine"``).
        distance: ``"l2"`` (squared Euclidean) or ``"cosine"`` (rows and codes L2-normalised,
            so the lookup is by angle and the codes lie on the unit sphere).
        beta: commitment weight, on the encoder-side term only.
        ema: update the codebook as an exponential moving average of assigned encoder rows
            (van den Oord et al. 2017, appendix) instead of by gradient.
        decay: EMA decay per training step.
        eps: Laplace smoothing of the EMA counts (avoids division by zero for unused codes).
        kmeans_init: initialise the codebook with k-means (k-means++ seeds) on the encoder rows of the
            first training batches (all ranks' rows). Otherwise codes start uniform in ``[-1/K, 1/K]``
            (the VQ-VAE seeds).
        kmeans_iters: Lloyd iterations of that k-means.
        kmeans_init_rows: k-means runs at the first training step by which at least this many rows
            (summed over ranks) have been collected; until then codes come from the initial codebook
            and no codebook statistics are kept. ``None``: ``4 * codebook_size``, so small batches do
            not leave most codes as copies of one another.
        dead_code_threshold: a code whose EMA usage falls below this fraction of the expected
            usage (EMA rows per step / K) is replaced by a random recent encoder row. The
            threshold is relative, so it does not depend on batch size; 0 disables restarts.
        rotation_trick: pass gradients with the rotation trick (Fifty et al. 2024) instead of
            plain straight-through.
    """

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        *,
        codebook_dim: int | None = None,
        distance: str = "l2",
        beta: float = 0.25,
        ema: bool = True,
        decay: float = 0.99,
        eps: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        kmeans_init_rows: int | None = None,
        dead_code_threshold: float = 0.1,
        rotation_trick: bool = False,
    ) -> None:
        super().__init__()
        if codebook_size < 1 or dim < 1:
            raise ValueError(f"VectorQuantizer: codebook_size and dim must be >= 1, got {codebook_size}, {dim}")
        if distance not in ("l2", "cosine"):
            raise ValueError(f"VectorQuantizer: distance must be 'l2' or 'cosine', got {distance!r}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"VectorQuantizer: decay must be in [0, 1), got {decay}")
        if dead_code_threshold < 0 or beta < 0 or eps <= 0:
            raise ValueError("VectorQuantizer: dead_code_threshold and beta must be >= 0 and eps > 0")
        cdim = int(codebook_dim or dim)
        self._config: dict[str, Any] = dict(
            type="vq", codebook_size=int(codebook_size), dim=int(dim), codebook_dim=cdim, distance=distance,
            beta=float(beta), ema=bool(ema), decay=float(decay), eps=float(eps), kmeans_init=bool(kmeans_init),
            kmeans_iters=int(kmeans_iters),
            kmeans_init_rows=int(kmeans_init_rows if kmeans_init_rows is not None else 4 * codebook_size),
            dead_code_threshold=float(dead_code_threshold),
            rotation_trick=bool(rotation_trick))
        self.codebook_size, self.dim, self.codebook_dim = int(codebook_size), int(dim), cdim
        self.distance, self.beta, self.ema, self.decay, self.eps = distance, float(beta), bool(ema), decay, eps
        self.kmeans_iters, self.dead_code_threshold = int(kmeans_iters), float(dead_code_threshold)
        self.kmeans_init_rows = self._config["kmeans_init_rows"]
        self._pending: list[torch.Tensor] = []  # rows collected for k-means (not saved; refilled on resume)
        self.rotation_trick = bool(rotation_trick)
        self.project_in: nn.Module = nn.Linear(dim, cdim) if cdim != dim else nn.Identity()
        self.project_out: nn.Module = nn.Linear(cdim, dim) if cdim != dim else nn.Identity()

        init = torch.empty(codebook_size, cdim).uniform_(-1.0 / codebook_size, 1.0 / codebook_size)
        if self.ema:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_sum", torch.zeros_like(init))  # EMA of the sum of rows assigned per code
        else:
            self.codebook = nn.Parameter(init)
        # EMA of rows assigned to each code per step, over all ranks. It starts at 0: a code never used
        # keeps its initial vector, and comparing usage only relative to the mean needs no bias correction.
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("initialized", torch.tensor(not kmeans_init))

    #: buffers that a release artifact leaves out because loading rebuilds them (see below)
    derived_buffers = ("ema_sum",)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """A state without ``ema_sum`` (a release artifact: it is derivable, and as large as the
        codebook) gets it rebuilt as ``codebook * smoothed counts``, which the EMA update keeps equal
        to it, so fine-tuning continues the EMA where training left it."""
        key = prefix + "ema_sum"
        if self.ema and key not in state_dict and prefix + "codebook" in state_dict \
                and prefix + "cluster_size" in state_dict:
            counts = state_dict[prefix + "cluster_size"]
            n = counts.sum()
            smoothed = (counts + self.eps) / (n + self.codebook_size * self.eps) * n
            state_dict[key] = state_dict[prefix + "codebook"] * smoothed[:, None]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ---- public API --------------------------------------------------------------------
    @property
    def codebook_sizes(self) -> list[int]:
        return [self.codebook_size]

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        """Quantize ``z [B, D, *spatial]``.

        Args:
            z: latents, channel-first.
            mask: optional ``[B, *spatial]`` bool, True at real positions. Padded positions are
                still quantized but take no part in losses, EMA statistics, k-means or restarts.

        Returns:
            QuantizerOutput with ``quantized [B, D, *spatial]``, ``codes [B, 1, *spatial]`` int64,
            scalar ``loss`` and metrics ``perplexity``, ``used_fraction`` (of this batch),
            ``commitment``, ``codebook`` and ``restarted_codes`` (codes restarted in this call).
        """
        ops.check_latents(z, self.dim, "VectorQuantizer")
        batch_shape = (z.shape[0], *z.shape[2:])
        valid = self._flat_mask(mask, batch_shape, z.device)
        e = self.project_in(ops.to_rows(z))
        with torch.autocast(device_type=z.device.type, enabled=False):
            e = e.float()
            if self.distance == "cosine":
                e = F.normalize(e, dim=1)
            e_valid = e.detach() if valid is None else e.detach()[valid]
            if self.training and not bool(self.initialized):
                self._kmeans_init(e_valid)
            cb = self._effective_codebook()
            idx = ops.nearest_code(e.detach(), cb.detach())
            q = F.embedding(idx, cb)
            commitment = self._masked_mse(e, q.detach(), valid)
            codebook_term = self._masked_mse(q, e.detach(), valid) if not self.ema else commitment.new_zeros(())
            loss = codebook_term + self.beta * commitment
            out = ops.rotation_trick(e, q) if self.rotation_trick else ops.straight_through(e, q)
            dead = 0
            if self.training and bool(self.initialized):
                dead = self._update(e_valid, idx if valid is None else idx[valid])
        quantized = ops.from_rows(self.project_out(out), batch_shape)
        codes = idx.reshape(batch_shape).unsqueeze(1)
        metrics = ops.usage_metrics(idx if valid is None else idx[valid], self.codebook_size)
        metrics.update(commitment=float(commitment.detach()), codebook=float(codebook_term.detach()),
                       restarted_codes=float(dead))
        return QuantizerOutput(quantized=quantized, codes=codes, loss=loss, metrics=metrics)

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, D, *spatial]`` -> ``codes [B, 1, *spatial]`` int64: the nearest codes, nothing else."""
        ops.check_latents(z, self.dim, "VectorQuantizer")
        batch_shape = (z.shape[0], *z.shape[2:])
        return self.nearest(ops.to_rows(z)).reshape(batch_shape).unsqueeze(1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, 1, *spatial]`` int -> ``quantized [B, D, *spatial]`` (the code vectors, projected out)."""
        ops.check_codes(codes, self.codebook_sizes, "VectorQuantizer.decode")
        return self._vectors(codes)

    def nearest(self, rows: torch.Tensor) -> torch.Tensor:
        """Latent rows ``[N, D]`` -> ``[N]`` int64, the nearest code of each (no statistics, no losses)."""
        e = self.project_in(rows)
        with torch.autocast(device_type=rows.device.type, enabled=False):
            e = e.float()
            if self.distance == "cosine":
                e = F.normalize(e, dim=1)
            return ops.nearest_code(e, self._effective_codebook())

    def vectors(self, idx: torch.Tensor) -> torch.Tensor:
        """Code indices ``[N]`` -> their vectors, projected out: ``[N, D]`` (no range check)."""
        with torch.autocast(device_type=idx.device.type, enabled=False):
            q = F.embedding(idx.long(), self._effective_codebook())
        return self.project_out(q)

    def _vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """:meth:`decode` without the range check (codes this quantizer made itself)."""
        batch_shape = (codes.shape[0], *codes.shape[2:])
        return ops.from_rows(self.vectors(codes[:, 0].reshape(-1)), batch_shape)

    def extra_repr(self) -> str:
        c = self._config
        return (f"codebook_size={c['codebook_size']}, dim={c['dim']}, codebook_dim={c['codebook_dim']}, "
                f"distance={c['distance']}, beta={c['beta']}, ema={c['ema']}, "
                f"dead_code_threshold={c['dead_code_threshold']}, rotation_trick={c['rotation_trick']}")

    # ---- internals ---------------------------------------------------------------------
    def _effective_codebook(self) -> torch.Tensor:
        """``[K, codebook_dim]`` float32 code vectors as used in the lookup (unit length for cosine)."""
        cb = self.codebook.float()
        return F.normalize(cb, dim=1) if self.distance == "cosine" else cb

    @staticmethod
    def _flat_mask(mask: torch.Tensor | None, batch_shape: tuple[int, ...], device: torch.device
                   ) -> torch.Tensor | None:
        if mask is None:
            return None
        if tuple(mask.shape) != batch_shape:
            raise ValueError(f"VectorQuantizer: mask must be [B, *spatial] = {list(batch_shape)}, "
                             f"got {list(mask.shape)}")
        return mask.to(device=device, dtype=torch.bool).reshape(-1)

    @staticmethod
    def _masked_mse(a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        if valid is None:
            return F.mse_loss(a, b)
        if not bool(valid.any()):
            return (a - b).sum() * 0.0
        return F.mse_loss(a[valid], b[valid])

    def _smoothed_counts(self) -> torch.Tensor:
        """Laplace-smoothed EMA counts: ``(c + eps) / (n + K eps) * n`` (same total n, never 0)."""
        n = self.cluster_size.sum()
        return (self.cluster_size + self.eps) / (n + self.codebook_size * self.eps) * n

    @torch.no_grad()
    def _kmeans_init(self, rows: torch.Tensor) -> None:
        """Collect rows; once ``kmeans_init_rows`` are held over all ranks, run k-means on all of them.

        The decision uses the row count summed over ranks, so every rank initialises at the same step.
        """
        self._pending.append(rows)
        held = ops.all_reduce_sum_(torch.tensor([float(sum(r.shape[0] for r in self._pending))],
                                                device=rows.device))
        if held.item() < self.kmeans_init_rows:
            return
        result = ops.kmeans(torch.cat(self._pending), self.codebook_size, self.kmeans_iters,
                            self.distance == "cosine")
        if result is None:  # rank 0 holds no rows yet (all masked): keep collecting
            return
        self._pending.clear()
        centroids, counts = result
        self.codebook.data.copy_(centroids)
        self.cluster_size.copy_(counts)
        if self.ema:
            self.ema_sum.copy_(centroids * self._smoothed_counts()[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, rows: torch.Tensor, idx: torch.Tensor) -> int:
        """One training step of codebook upkeep: EMA statistics, EMA codebook, dead-code restart.

        Returns the number of codes restarted.
        """
        counts, sums = ops.code_sums(idx, rows, self.codebook_size)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        if self.ema:
            self.ema_sum.mul_(self.decay).add_(sums, alpha=1.0 - self.decay)
            means = self.ema_sum / self._smoothed_counts().clamp_min(1e-30)[:, None]
            self.codebook.copy_(torch.where(self.cluster_size[:, None] > 0, means, self.codebook))
        if self.dead_code_threshold <= 0:
            return 0
        expected = self.cluster_size.sum() / self.codebook_size
        dead = self.cluster_size < self.dead_code_threshold * expected
        n_dead = int(dead.sum())
        if n_dead == 0:
            return 0
        fresh = ops.broadcast_rows_from_rank0(rows, n_dead)
        if fresh is None:
            return 0
        # A restarted code gets the expected usage as a grace period before it can be declared dead again.
        self.cluster_size[dead] = expected
        self.codebook.data[dead] = fresh
        if self.ema:
            self.ema_sum[dead] = fresh * self._smoothed_counts()[dead][:, None]
        return n_dead
