"""``load_vocoder``: one call for Griffin-Lim (by name) and trained vocoders (release artifacts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

import spectok.models as models
from spectok import registry
from spectok.audio.mel import MelConfig
from spectok.contracts import Vocoder
from spectok.errors import ArtifactError, MelMismatchError, SpectokError

#: Vocoders built by name, without weights: name -> class path. Each needs a mel config.


def resolve_vocoder(path_or_name: str | os.PathLike, tokenizer: Any = None) -> str:
    """A released model's name -> its paired vocoder (a file, or ``"griffin-lim"``); anything else unchanged.

    ``"default"`` with a ``tokenizer`` means that tokenizer's pairing (see :func:`load_vocoder`).
    """
    name = str(path_or_name)
    if Path(name).is_file():
        return name
    if name == "default" and tokenizer is not None:
        return models.paired_vocoder(tokenizer_fingerprint=tokenizer.fingerprint())
    return models.paired_vocoder(name) if models.find(name) is not None else name


def load_vocoder(path_or_name: str | os.PathLike, mel_config: MelConfig | dict | str | None = None,
                 map_location: str | torch.device = "cpu", tokenizer: Any = None, **kwargs: Any) -> Vocoder:
    """A ready (eval-mode) vocoder: ``vocoder(mel [B, n_mels, T]) -> waveform [B, T * hop]``.

    Args:
        path_or_name: ``"griffin-lim"``, a release artifact (``.safetensors``) written by
            ``spectok export`` from a vocoder training run, or a released model's name
            (``"default"``, ``"ljspeech22k"``): the vocoder paired with it, Griffin-Lim where no
            trained vocoder beat Griffin-Lim on its tokenized speech (see ``spectok models``).
            ``"default"`` with ``tokenizer`` given means *that tokenizer's* pairing: the
            release whose tokenizer has its fingerprint, Griffin-Lim for any other tokenizer.
        mel_config: required for ``"griffin-lim"`` (the front end of the mels it will invert);
            for an artifact, if given, it is checked against the artifact's own mel config.
        map_location: device to load weights onto.
        tokenizer: the tokenizer the vocoder will follow (see ``"default"``); its mel config
            is used when ``mel_config`` is None.
        **kwargs: constructor options of a named vocoder (e.g. ``n_iter=64``).

    Raises:
        SpectokError: an unknown name, or ``"griffin-lim"`` without a mel config.
        ArtifactError: a missing, corrupt or non-vocoder artifact.
        MelMismatchError: ``mel_config`` differs from the artifact's (naming the fields).
    """
    name = resolve_vocoder(path_or_name, tokenizer)
    if tokenizer is not None and mel_config is None:
        mel_config = tokenizer.mel_config
    if name == "griffin-lim" and mel_config is None and models.find(str(path_or_name)) is not None:
        mel_config = MelConfig.coerce(models.find(str(path_or_name)).tokenizer_mel())
    named = registry.names("named-vocoder")
    if name in named:
        if mel_config is None:
            raise SpectokError(f"vocoder {name!r} needs a mel config: load_vocoder({name!r}, mel_config=...)")
        return registry.get("named-vocoder", name)(mel_config, **kwargs).to(map_location).eval()
    if kwargs:
        raise SpectokError(f"options {sorted(kwargs)} apply only to named vocoders {named}")
    p = Path(name)
    if not p.exists():
        raise ArtifactError(f"{p}: no such vocoder artifact, and not a vocoder name ({', '.join(named)}) "
                            f"or a released model ({', '.join(models.all_names()) or 'none'})")
    import spectok.artifacts as artifacts

    model = artifacts.load_release(p, kind="vocoder", map_location=map_location)
    if mel_config is not None:
        try:
            model.check_mel(MelConfig.coerce(mel_config))  # "vocoder and tokenizer mel configs differ in: ..."
        except MelMismatchError as e:
            raise MelMismatchError(f"{p}: {e}") from None
    return model
