"""Codebook health over a whole epoch: :class:`CodebookStats`.

A batch's perplexity says little (a batch of 8 clips cannot use 1,024 codes); usage must
be counted over an epoch. Feed every batch's codes to :meth:`CodebookStats.update`, read
:meth:`CodebookStats.summary` at the end of the epoch, then :meth:`CodebookStats.reset`.
"""

from __future__ import annotations

import math

import torch

from spectok.quantizers import ops


def by_codebook(codes: torch.Tensor, rows_per_codebook: int) -> torch.Tensor:
    """Codes ``[B, K, T']`` regrouped as ``[B, K / r, r * T']``: the ``r = rows_per_codebook`` rows
    that share a codebook (stage-major, a 2-D grid's frequency rows) become one row."""
    b, k, t = codes.shape
    if rows_per_codebook < 1 or k % rows_per_codebook:
        raise ValueError(f"{k} token rows do not split into codebooks of {rows_per_codebook} rows")
    return codes.reshape(b, k // rows_per_codebook, rows_per_codebook * t)


class CodebookStats:
    """Usage counts of K codebooks, accumulated over many batches (and over ranks at summary time).

    Args:
        codebook_sizes: size of each of the K codebooks (a quantizer's ``codebook_sizes``), or one int.
        device: where the int64 counts live (default CPU); codes from other devices are counted and
            moved there. int64 counts never lose precision over long epochs.
    """

    def __init__(self, codebook_sizes: list[int] | int, device: torch.device | str | None = None) -> None:
        sizes = [codebook_sizes] if isinstance(codebook_sizes, int) else [int(k) for k in codebook_sizes]
        if not sizes or min(sizes) < 1:
            raise ValueError(f"CodebookStats: codebook sizes must be >= 1, got {codebook_sizes}")
        if max(sizes) > 1 << 26:
            raise ValueError(f"CodebookStats: a codebook of {max(sizes)} codes is too large to count densely")
        self.codebook_sizes = sizes
        self.counts = [torch.zeros(k, dtype=torch.int64, device=device) for k in sizes]

    @classmethod
    def of_codes(cls, codes: list, row_sizes: list[int] | tuple[int, ...], rows_per_codebook: int = 1
                 ) -> CodebookStats:
        """The counts of ``codes`` (a list of ``[K, T']`` arrays or tensors, e.g. token files' codes).

        ``row_sizes``: the codebook size of each of the K rows; ``rows_per_codebook`` rows in a row
        (stage-major, as a 2-D grid's frequency rows) share one codebook, which is counted once.
        """
        r = int(rows_per_codebook)
        stats = cls([int(k) for k in row_sizes[::max(r, 1)]])
        for c in codes:
            stats.update(by_codebook(torch.as_tensor(c).long()[None], r))
        return stats

    def reset(self) -> None:
        """Forget all counts (start of an epoch)."""
        for c in self.counts:
            c.zero_()

    @torch.no_grad()
    def update(self, codes: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Count ``codes [B, k, *spatial]`` (k <= K rows; row i counts toward codebook i).

        Args:
            codes: integer codes.
            mask: optional ``[B, *spatial]`` bool; only True positions are counted (padding excluded).
        """
        ops.check_codes(codes, self.codebook_sizes, "CodebookStats.update")
        for i in range(codes.shape[1]):
            row = codes[:, i]
            if mask is not None:
                if tuple(mask.shape) != tuple(row.shape):
                    raise ValueError(f"CodebookStats.update: mask must be {list(row.shape)}, got {list(mask.shape)}")
                row = row[mask.to(device=row.device, dtype=torch.bool)]
            self.counts[i] += torch.bincount(row.reshape(-1).long(), minlength=self.codebook_sizes[i]).to(
                self.counts[i].device)

    def global_counts(self) -> list[torch.Tensor]:
        """Counts per codebook summed over torch.distributed ranks (a collective: call on every rank)."""
        out = []
        for c in self.counts:
            out.append(ops.all_reduce_sum_(c.clone()))
        return out

    def summary(self, frame_rate: float | None = None) -> dict[str, float]:
        """Health figures of the counts so far, summed over ranks when torch.distributed is initialised.

        For each codebook ``i`` (keys prefixed ``row{i}/`` when K > 1) and for the whole quantizer:

        - ``used_fraction``: fraction of codes seen at least once (overall: of all the codebooks'
          codes together, ``1 - dead_codes / sum K_i``),
        - ``dead_codes``: codes never seen (sum over rows),
        - ``entropy_bits``: ``H = -sum p log2 p`` of the usage distribution (sum over rows: the
          entropy of independent rows, an upper bound of the joint entropy),
        - ``perplexity``: ``exp(H)`` in nats, i.e. ``2 ** entropy_bits`` (per row; the overall value
          is ``2 ** sum of row entropies``),
        - ``count``: code occurrences counted (first row),
        - with ``frame_rate`` (code columns per second): ``bits_per_second = frame_rate * sum H``
          (the rate an ideal entropy coder would need) and ``nominal_bits_per_second =
          frame_rate * sum log2 K_i``.

        Rows never updated report 0 entropy and used fraction 0.
        """
        counts = self.global_counts()
        rows = []
        for c, k in zip(counts, self.codebook_sizes):
            total = int(c.sum())
            used = int((c > 0).sum())
            if total > 0:
                p = c[c > 0].double() / total
                h = float(-(p * torch.log2(p)).sum())
            else:
                h = 0.0
            rows.append(dict(used_fraction=used / k, dead_codes=float(k - used), entropy_bits=h,
                             perplexity=2.0**h, count=float(total)))
        out: dict[str, float] = {}
        if len(rows) > 1:
            for i, r in enumerate(rows):
                out.update({f"row{i}/{key}": v for key, v in r.items()})
        h_sum = sum(r["entropy_bits"] for r in rows)
        out.update(used_fraction=1.0 - sum(r["dead_codes"] for r in rows) / sum(self.codebook_sizes),
                   dead_codes=sum(r["dead_codes"] for r in rows), entropy_bits=h_sum, perplexity=2.0**h_sum,
                   count=rows[0]["count"])
        if frame_rate is not None:
            out["bits_per_second"] = frame_rate * h_sum
            out["nominal_bits_per_second"] = frame_rate * sum(math.log2(k) for k in self.codebook_sizes)
        return out
