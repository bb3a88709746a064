"""``load_vocoder``: one call for Griffin-Lim (by name) and trained vocoders (release artifacts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from spectok.audio.mel import MelConfig
from spectok.errors import ArtifactError, SpectokError
from spectok.vocoders.base import Vocoder

#: Vocoders built by name, without weights: name -> class path. Each needs a mel config.
NAMED: dict[str, str] = {"griffin-lim": "spectok.vocoders.griffin_lim:GriffinLim"}


def load_vocoder(path_or_name: str | os.PathLike, mel_config: MelConfig | dict | str | None = None,
                 map_location: str | torch.device = "cpu", **kwargs: Any) -> Vocoder:
    """A ready (eval-mode) vocoder: ``vocoder(mel [B, n_mels, T]) -> waveform [B, T * hop]``.

    Args:
        path_or_name: ``"griffin-lim"`` or a release artifact (``.safetensors``) written by
            ``spectok export`` from a vocoder training run.
        mel_config: required for ``"griffin-lim"`` (the front end of the mels it will invert);
            for an artifact, if given, it is checked against the artifact's own mel config.
        map_location: device to load weights onto.
        **kwargs: constructor options of a named vocoder (e.g. ``n_iter=64``).

    Raises:
        SpectokError: an unknown name, or ``"griffin-lim"`` without a mel config.
        ArtifactError: a missing, corrupt or non-vocoder artifact.
        MelMismatchError: ``mel_config`` differs from the artifact's (naming the fields).
    """
    import importlib

    name = str(path_or_name)
    if name in NAMED:
        if mel_config is None:
            raise SpectokError(f"vocoder {name!r} needs a mel config: load_vocoder({name!r}, mel_config=...)")
        module, cls = NAMED[name].split(":")
        return getattr(importlib.import_module(module), cls)(mel_config, **kwargs).to(map_location).eval()
    if kwargs:
        raise SpectokError(f"options {sorted(kwargs)} apply only to named vocoders {sorted(NAMED)}")
    p = Path(name)
    if not p.exists():
        raise ArtifactError(f"{p}: no such vocoder artifact (and not a vocoder name: {sorted(NAMED)})")
    from spectok import artifacts

    model = artifacts.load_release(p, kind="vocoder", map_location=map_location)
    if mel_config is not None:
        model.check_mel(MelConfig.coerce(mel_config), what=str(p))
    return model
