"""Quantizers: latents ``[B, D, *spatial]`` to integer codes ``[B, K, *spatial]`` and back.

``build_quantizer(config)`` builds one from a JSON-friendly dict ``{"type": "vq" | "rvq" | "fsq",
**constructor kwargs}`` (the form stored in YAML presets and release-artifact headers); every
quantizer's ``config`` property gives that dict back.
"""

from __future__ import annotations

from typing import Any

from spectok import registry
from spectok.errors import ConfigError
from spectok.quantizers.base import Quantizer, QuantizerOutput
from spectok.quantizers.fsq import FSQ
from spectok.quantizers.residual import ResidualVQ
from spectok.quantizers.stats import CodebookStats
from spectok.quantizers.vq import VectorQuantizer


def build_quantizer(config: dict[str, Any]) -> Quantizer:
    """Build a quantizer from ``{"type": "vq" | "rvq" | "fsq", **kwargs}``.

    Raises:
        ConfigError: (a ``ValueError``) naming the unknown type or the bad keyword arguments.
    """
    if not isinstance(config, dict) or "type" not in config:
        raise ConfigError(f"quantizer config must be a dict with a 'type' key, got {config!r}")
    kwargs = dict(config)
    kind = kwargs.pop("type")
    if kind not in registry.names("quantizer"):
        raise ConfigError(f"unknown quantizer type {kind!r}; choose one of {registry.names('quantizer')}")
    try:
        return registry.get("quantizer", kind)(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"quantizer {config!r}: bad arguments for quantizer type {kind!r}: {e}") from e


__all__ = ["CodebookStats", "FSQ", "Quantizer", "QuantizerOutput", "ResidualVQ", "VectorQuantizer",
           "build_quantizer"]
