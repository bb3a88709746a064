"""One registry of names -> classes, for every kind of thing a config or a file names.

- ``tokenizer``, ``vocoder``, ``discriminator``: the models (``conv1d-vqvae``, ``istft-vocoder``,
  ``patchgan``, ...), named by a config's ``model: {class: ...}`` and an artifact's header;
- ``named-vocoder``: vocoders built without weights (``griffin-lim``), named by ``-v``;
- ``task``: the training tasks (``tokenizer``, ``vqgan``, ``image-tokenizer``, ``vocoder``,
  ``vocoder-gan``), named by a config's ``task:``;
- ``quantizer``: ``vq``, ``rvq``, ``fsq``, named by a config's ``quantizer: {type: ...}``.

An entry is a class (models add themselves with :func:`spectok.artifacts.register` when their
module is imported) or a ``"module:Class"`` string imported on first lookup, so naming a training
task costs nothing until it is used. A name not registered may itself be ``"module:Class"`` (a
task or quantizer defined outside spectok). Nothing here imports torch or another spectok layer.
"""

from __future__ import annotations

import difflib
import importlib

from spectok.errors import ConfigError

MODEL_KINDS = ("tokenizer", "vocoder", "discriminator")

_ENTRIES: dict[str, dict[str, type | str]] = {
    "named-vocoder": {"griffin-lim": "spectok.vocoders.griffin_lim:GriffinLim"},
    "task": {"tokenizer": "spectok.training.tokenizer_task:TokenizerTask",
             "vqgan": "spectok.training.tokenizer_task:VQGANTask",
             "image-tokenizer": "spectok.training.tokenizer_task:ImageTokenizerTask",
             "vocoder": "spectok.training.vocoder_task:VocoderTask",
             "vocoder-gan": "spectok.training.vocoder_task:GANVocoderTask"},
    "quantizer": {"vq": "spectok.quantizers.vq:VectorQuantizer", "rvq": "spectok.quantizers.residual:ResidualVQ",
                  "fsq": "spectok.quantizers.fsq:FSQ"},
    **{kind: {} for kind in MODEL_KINDS},
}
#: the modules whose import registers the models (the model kinds are filled on first lookup)
_MODEL_PACKAGES = ("spectok.tokenizers", "spectok.vocoders")


def add(kind: str, name: str, target: type | str) -> None:
    """Register ``target`` (a class or ``"module:Class"``) as ``name`` of ``kind``; a second, different
    class under the same name is an error."""
    entries = _ENTRIES.setdefault(kind, {})
    old = entries.get(name)
    if old is not None and old is not target and not isinstance(old, str):
        raise ConfigError(f"{kind} name {name!r} registered twice ({old!r} and {target!r})")
    entries[name] = target


def names(kind: str) -> list[str]:
    """The registered names of ``kind``, sorted."""
    _load_models(kind)
    return sorted(_ENTRIES.get(kind, {}))


def get(kind: str, name: str) -> type:
    """The class registered as ``name`` of ``kind`` (or named directly as ``"module:Class"``).

    Raises:
        ConfigError: an unknown name (with the nearest registered one and the list), or a
            ``"module:Class"`` that does not import.
    """
    _load_models(kind)
    entries = _ENTRIES.get(kind, {})
    target = entries.get(name)
    if target is None:
        if not (isinstance(name, str) and ":" in name):
            near = difflib.get_close_matches(str(name), list(entries), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ConfigError(f"unknown {kind} {name!r}; {hint}known: {', '.join(sorted(entries)) or 'none'}")
        target = name
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        try:
            resolved = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"{kind} {name!r}: cannot import {target} ({e})") from e
        if name in entries:
            entries[name] = resolved
        return resolved
    return target


def entries(kind: str) -> dict[str, type]:
    """Every class of ``kind`` by name (lazy entries imported)."""
    return {n: get(kind, n) for n in names(kind)}


def model_kind(name: str) -> str | None:
    """The model kind (tokenizer, vocoder, discriminator) ``name`` is registered under, else None."""
    for kind in MODEL_KINDS:
        if name in names(kind):
            return kind
    return None


def _load_models(kind: str) -> None:
    if kind in MODEL_KINDS:
        for package in _MODEL_PACKAGES:
            importlib.import_module(package)
