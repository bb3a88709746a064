"""The quantizer contract shared by every quantizer in spectok."""

from __future__ import annotations

import torch
from torch import nn

from spectok.contracts import QuantizerOutput  # noqa: F401  (re-exported: a quantizer's output)


class Quantizer(nn.Module):
    """Base class: ``forward(z [B, D, *spatial]) -> QuantizerOutput``; ``encode(z) -> codes``;
    ``decode(codes) -> quantized``.

    ``forward`` is the training path: straight-through values, losses, batch metrics and (in
    training mode) codebook upkeep. ``encode`` is pure inference: the codes ``forward`` would
    give in eval mode, with no loss, no metrics, no host synchronisation and no state change,
    whatever the mode. In eval mode ``decode(forward(z).codes)`` equals ``forward(z).quantized``
    exactly, and ``encode(z)`` equals ``forward(z).codes``.
    ``codebook_sizes`` lists the size of each of the K codebooks (bits per code = log2).
    ``config`` is the JSON-friendly dict ``{"type": ..., **constructor kwargs}`` that
    ``spectok.quantizers.build_quantizer`` turns back into an equal quantizer. Learned
    quantizers also accept ``forward(z, mask=None)`` with ``mask [B, *spatial]`` bool, True at
    real (unpadded) positions. Codebook upkeep (EMA, k-means, restarts) happens in training-mode
    forward calls and uses torch.distributed collectives when a process group is initialised:
    every rank must then make the same training-mode calls.
    """

    dim: int
    #: JSON-friendly constructor arguments with ``"type"``, set by each subclass's constructor.
    _config: dict

    @property
    def codebook_sizes(self) -> list[int]:
        raise NotImplementedError

    @property
    def config(self) -> dict:
        """JSON-friendly constructor arguments with ``"type"``: ``build_quantizer(q.config)`` rebuilds it."""
        return dict(self._config)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def encode(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """``z [B, D, *spatial]`` -> ``codes [B, K, *spatial]`` int64 (pure; see the class docstring)."""
        raise NotImplementedError

    def decode(self, codes: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError
