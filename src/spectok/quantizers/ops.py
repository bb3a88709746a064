"""Small tensor helpers shared by the quantizers: layout, nearest-code search, k-means,
gradient estimators and the torch.distributed collectives that keep codebooks identical
on every rank.

Layout convention: quantizers take channel-first latents ``z [B, D, *spatial]`` and work
internally on flat rows ``[N, D]`` with ``N = B * prod(spatial)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import distributed as dist

# ---- torch.distributed ------------------------------------------------------------------


def world_size() -> int:
    """Number of ranks when a default process group is initialised, else 1."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def rank() -> int:
    """This process's rank (0 without torch.distributed)."""
    return dist.get_rank() if world_size() > 1 else 0


def all_reduce_sum_(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks in place (no-op on one process). Every rank must call it."""
    if world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``t`` with rank ``src``'s copy, in place (no-op on one process)."""
    if world_size() > 1:
        dist.broadcast(t, src=src)
    return t


# ---- layout -----------------------------------------------------------------------------


def to_rows(z: torch.Tensor) -> torch.Tensor:
    """``[B, D, *spatial] -> [N, D]`` with ``N = B * prod(spatial)`` (channel-last, row-major)."""
    return z.movedim(1, -1).reshape(-1, z.shape[1])


def from_rows(rows: torch.Tensor, batch_shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`to_rows`: ``[N, D] -> [B, D, *spatial]`` given ``batch_shape = (B, *spatial)``."""
    return rows.reshape(*batch_shape, rows.shape[-1]).movedim(-1, 1)


def check_latents(z: torch.Tensor, dim: int, who: str) -> None:
    """Raise a clear ValueError unless ``z`` is ``[B, dim, *spatial]`` floating point."""
    if z.dim() < 2:
        raise ValueError(f"{who}: expected latents [B, D, *spatial], got shape {tuple(z.shape)}")
    if z.shape[1] != dim:
        raise ValueError(f"{who}: expected {dim} channels in dim 1 of [B, D, *spatial], got shape {tuple(z.shape)}")
    if not z.is_floating_point():
        raise ValueError(f"{who}: latents must be floating point, got {z.dtype}")


def exporting() -> bool:
    """True while the model is being traced into a graph (``torch.export``, which the ONNX exporter
    uses, or ``torch.jit.trace``): helpers that read tensor values then skip themselves."""
    return torch.compiler.is_exporting() or torch.jit.is_tracing()


def check_codes(codes: torch.Tensor, sizes: list[int], who: str) -> None:
    """Raise a clear ValueError unless ``codes`` is integer ``[B, k, *spatial]`` with rows in range.

    Skipped while :func:`exporting` (the range check reads values; it never changes codes).
    """
    if exporting():
        return
    if codes.dim() < 2 or codes.is_floating_point() or codes.dtype == torch.bool:
        raise ValueError(f"{who}: expected integer codes [B, K, *spatial], got {codes.dtype} {tuple(codes.shape)}")
    if codes.shape[1] < 1 or codes.shape[1] > len(sizes):
        raise ValueError(f"{who}: codes have {codes.shape[1]} rows; this quantizer has 1..{len(sizes)}")
    if codes.numel() == 0:
        return
    for i in range(codes.shape[1]):
        lo, hi = int(codes[:, i].min()), int(codes[:, i].max())
        if lo < 0 or hi >= sizes[i]:
            raise ValueError(f"{who}: code row {i} holds values in [{lo}, {hi}], outside [0, {sizes[i] - 1}]")


# ---- nearest code -----------------------------------------------------------------------


def nearest_code(x: torch.Tensor, codebook: torch.Tensor, max_elements: int = 1 << 19) -> torch.Tensor:
    """Index of the nearest codebook row (squared L2) for each row of ``x``.

    Args:
        x: ``[N, d]`` float32.
        codebook: ``[K, d]`` float32.
        max_elements: the ``[n, K]`` distance block is computed in chunks of at most this many
            entries (the default, 2 MB of float32, stays in cache between the product and the argmin:
            about 2x faster than one block on a minute of columns).

    Returns:
        ``[N]`` int64. Ties go to the lowest index. ``|x|^2`` is dropped (constant per row),
        which also keeps huge inputs from overflowing. ``|c|^2 - 2 x.c`` is one fused ``addmm``.
    """
    c2 = codebook.pow(2).sum(1)
    step = max(1, max_elements // max(1, codebook.shape[0]))
    cbt = codebook.t()
    out = [torch.addmm(c2, chunk, cbt, alpha=-2.0).min(dim=1).indices for chunk in x.split(step)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)


def code_sums(idx: torch.Tensor, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-code counts ``[K]`` and sums of assigned rows ``[K, d]`` (float32), summed over ranks."""
    counts = torch.bincount(idx, minlength=k).to(torch.float32)
    sums = torch.zeros(k, x.shape[1], dtype=torch.float32, device=x.device).index_add_(0, idx, x.float())
    packed = all_reduce_sum_(torch.cat([counts[:, None], sums], dim=1))
    return packed[:, 0].contiguous(), packed[:, 1:].contiguous()


def sample_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` rows of ``x`` chosen at random (without replacement when ``x`` has enough rows)."""
    if x.shape[0] >= n:
        pick = torch.randperm(x.shape[0], device=x.device)[:n]
    else:
        pick = torch.randint(0, x.shape[0], (n,), device=x.device)
    return x[pick]


def kmeans_plus_plus(x: torch.Tensor, k: int, max_rows: int | None = None) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): ``k`` rows of ``x [N, d]``, each drawn with
    probability proportional to its squared distance from the seeds chosen so far.

    ``max_rows`` caps the rows considered (a random subset) to bound the cost ``O(k * rows * d)``.
    When ``x`` has fewer distinct rows than ``k``, the remaining seeds repeat rows.
    """
    if max_rows is not None and x.shape[0] > max_rows:
        x = x[torch.randperm(x.shape[0], device=x.device)[:max_rows]]
    seeds = torch.empty(k, x.shape[1], dtype=x.dtype, device=x.device)
    seeds[0] = x[torch.randint(0, x.shape[0], (1,), device=x.device)]
    d2 = (x - seeds[0]).pow(2).sum(1)
    for i in range(1, k):
        total = d2.sum()
        if not torch.isfinite(total) or total <= 0:
            j = torch.randint(0, x.shape[0], (1,), device=x.device)
        else:
            j = torch.multinomial(d2 / total, 1)
        seeds[i] = x[j]
        d2 = torch.minimum(d2, (x - seeds[i]).pow(2).sum(1))
    return seeds


def broadcast_from_rank0(make: Callable[[], torch.Tensor], rows: torch.Tensor, n: int) -> torch.Tensor | None:
    """``make()`` evaluated on rank 0 (shape ``[n, d]`` float32) and broadcast to every rank.

    ``rows [N, d]`` are this rank's candidate rows; returns ``None`` on every rank when rank 0 has none.
    """
    have = torch.tensor([float(rows.shape[0])], device=rows.device)
    broadcast_(have)
    if have.item() == 0:
        return None
    out = make().float() if rank() == 0 else torch.empty(n, rows.shape[1], device=rows.device)
    return broadcast_(out.contiguous())


def broadcast_rows_from_rank0(x: torch.Tensor, n: int) -> torch.Tensor | None:
    """``n`` rows sampled at random from rank 0's ``x [N, d]``, identical on every rank (``None`` if none)."""
    return broadcast_from_rank0(lambda: sample_rows(x.float(), n), x, n)


def kmeans(x: torch.Tensor, k: int, iters: int, cosine: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
    """k-means on ``x [N, d]`` (float32), run jointly over all ranks.

    Seeds come from k-means++ on (a subset of) rank 0's rows and are broadcast; each Lloyd
    iteration sums assignments over ranks, so every rank ends with bit-identical centroids.
    Empty clusters keep their previous centroid (dead-code restart revives them later). With
    ``cosine`` rows and centroids are unit vectors (spherical k-means).

    Returns:
        ``(centroids [k, d], counts [k])`` float32, counts from the last assignment over all ranks;
        ``None`` on every rank when rank 0 has no rows.
    """
    if cosine:
        x = F.normalize(x, dim=1)
    centroids = broadcast_from_rank0(lambda: kmeans_plus_plus(x, k, max_rows=max(4096, 16 * k)), x, k)
    if centroids is None:
        return None
    counts = torch.zeros(k, device=x.device)
    for _ in range(max(1, iters)):
        counts, sums = code_sums(nearest_code(x, centroids), x, k)
        new = sums / counts.clamp_min(1.0)[:, None]
        if cosine:
            new = F.normalize(new, dim=1)
        centroids = torch.where(counts[:, None] > 0, new, centroids)
    return centroids, counts


# ---- gradient estimators ----------------------------------------------------------------


def straight_through(e: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Value exactly ``q``; gradient passes to ``e`` unchanged (``e - e.detach()`` is exactly 0)."""
    return q.detach() + (e - e.detach())


def rotation_trick(e: torch.Tensor, q: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Value exactly ``q``; gradient to ``e`` through the rotation-and-rescale that maps ``e`` onto ``q``.

    Fifty et al. 2024, "Restructuring vector quantization with the rotation trick": with
    ``u = e/|e|``, ``v = q/|q|``, ``w = (u+v)/|u+v|`` and ``R = I - 2ww^T + 2vu^T`` (so ``Ru = v``),
    the forward value is ``(|q|/|e|) R e = q`` and the backward pass treats ``R`` and the scale as
    constants. Rows with ``|e| < eps`` fall back to the identity (plain straight-through).

    Args:
        e: ``[N, d]`` encoder rows (with gradient). q: ``[N, d]`` their codes.
    """
    with torch.no_grad():
        ne = e.norm(dim=1, keepdim=True)
        nq = q.norm(dim=1, keepdim=True)
        u = e / ne.clamp_min(eps)
        v = q / nq.clamp_min(eps)
        w = F.normalize(u + v, dim=1, eps=eps)
        ok = ne > eps
        scale = torch.where(ok, nq / ne.clamp_min(eps), torch.ones_like(ne))
        u, v, w = (torch.where(ok, t, torch.zeros_like(t)) for t in (u, v, w))
    rotated = e - 2.0 * w * (w * e).sum(1, keepdim=True) + 2.0 * v * (u * e).sum(1, keepdim=True)
    moved = scale * rotated
    return q.detach() + (moved - moved.detach())


# ---- usage ------------------------------------------------------------------------------


def usage_metrics(idx: torch.Tensor, k: int) -> dict[str, float]:
    """Batch-level ``perplexity`` (exp of the code entropy in nats) and ``used_fraction`` of ``k`` codes.

    Works for implicit codebooks of any size (counts only the codes that occur). Empty (``{}``)
    while :func:`exporting`: the counts are data-dependent and no graph output.
    """
    if exporting():
        return {}
    if idx.numel() == 0:
        return {"perplexity": 0.0, "used_fraction": 0.0}
    _, counts = torch.unique(idx.reshape(-1), return_counts=True)
    p = counts.double() / counts.sum()
    h = -(p * torch.log(p)).sum().item()
    return {"perplexity": math.exp(h), "used_fraction": counts.numel() / k}
