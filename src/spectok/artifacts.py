"""One way to save and load a model: a model registry and the release artifact format.

A release artifact is one ``.safetensors`` file: the weights, plus a metadata entry
``"spectok"`` holding JSON::

    {"format": 1, "kind": "tokenizer" | "vocoder", "class": <registered name>,
     "config": <constructor kwargs>, "training": {...}, "spectok_version": "..."}

Loading needs no pickle: the class is looked up in the registry and rebuilt from its
constructor kwargs, then the weights are loaded strictly.

Models become saveable with the :func:`register` class decorator, which records the
constructor arguments (defaults applied) in ``model.hparams``. Constructor arguments
must be JSON-friendly; a :class:`~spectok.audio.mel.MelConfig` is stored as a dict, so
constructors taking a mel config should accept ``MelConfig | dict | str`` and call
``MelConfig.coerce``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
from pathlib import Path
from typing import Any

import torch

from spectok import registry
from spectok._version import __version__
from spectok.audio.mel import MelConfig
from spectok.contracts import Tokenizer, Vocoder
from spectok.errors import ArtifactError
from spectok.fsutil import atomic_path
from spectok.validation import check_kwargs

FORMAT_VERSION = 1
def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _is_mel_file(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike)) and str(value).endswith((".yaml", ".yml", ".json"))


def register(name: str, kind: str):
    """Class decorator: register ``cls`` under ``name`` (``kind`` is "tokenizer", "vocoder", ...)
    and record its constructor kwargs in ``self.hparams`` (JSON-friendly)."""

    def deco(cls: type) -> type:
        registry.add(kind, name, cls)  # refuses a second class under the same name
        init = cls.__init__
        sig = inspect.signature(init)

        @functools.wraps(init)
        def wrapped(self, *args, **kwargs):
            if not hasattr(self, "hparams"):  # the outermost registered class records its own kwargs
                bound = sig.bind(self, *args, **kwargs)
                bound.apply_defaults()
                hp = dict(bound.arguments)
                hp.pop("self")
                for p in sig.parameters.values():
                    if p.kind is inspect.Parameter.VAR_KEYWORD:
                        hp.update(hp.pop(p.name, {}))
                if _is_mel_file(hp.get("mel")):  # the artifact carries the fields, not a path it may lose

                    hp["mel"] = MelConfig.coerce(hp["mel"]).to_dict()
                object.__setattr__(self, "hparams", _jsonable(hp))
            init(self, *args, **kwargs)

        cls.__init__ = wrapped
        cls.registered_name = name
        cls.registered_kind = kind
        return cls

    return deco


def build(name: str, config: dict[str, Any]) -> torch.nn.Module:
    """Build a registered model (tokenizer, vocoder, discriminator) from its constructor kwargs."""
    kind = registry.model_kind(name)
    if kind is None:
        known = sorted(n for k in registry.MODEL_KINDS for n in registry.names(k))
        raise ArtifactError(f"unknown model class {name!r}; known: {known}")
    cls = registry.get(kind, name)
    check_kwargs(f"model ({name})", cls, config)
    return cls(**config)


def build_section(section: dict[str, Any] | None, kind: str) -> torch.nn.Module:
    """A registered ``kind`` ("tokenizer" or "vocoder") from a config's ``model:`` section: its ``class``
    (a registered name) and the constructor kwargs."""
    section = dict(section or {})
    name = section.pop("class", None)
    known = registry.names(kind)
    if name not in known:
        raise ArtifactError(f"the model section needs a {kind} 'class', one of {', '.join(known)} (got {name!r})")
    return build(name, section)


def describe(model: torch.nn.Module, training: dict | None = None) -> dict[str, Any]:
    """The JSON header of ``model``'s release artifact."""
    if not hasattr(model, "registered_name"):
        raise ArtifactError(f"{type(model).__name__} is not a registered model (use @artifacts.register)")
    return {"format": FORMAT_VERSION, **identity(model), "config": model.hparams, "training": training or {},
            "spectok_version": __version__}


def identity(model: torch.nn.Module) -> dict[str, Any]:
    """What identifies a model in an exported file: ``class`` and ``kind`` (registered names, else
    the Python class name and ``None``), its ``mel`` config and ``mel_fingerprint`` when it has one,
    and its own ``fingerprint`` when it defines one."""
    info: dict[str, Any] = {"class": getattr(model, "registered_name", type(model).__name__),
                            "kind": getattr(model, "registered_kind", None)}
    mel = model.mel_config if isinstance(model, (Tokenizer, Vocoder)) else None
    if mel is not None:
        info["mel"] = mel.to_dict()
        info["mel_fingerprint"] = mel.fingerprint()
    if isinstance(model, Tokenizer):
        info["fingerprint"] = model.fingerprint()
    return info


def save_release(model: torch.nn.Module, path: str | os.PathLike, training: dict | None = None) -> Path:
    """Write ``model`` as one safetensors file with its JSON config in the metadata (atomically)."""
    from safetensors.torch import save_file

    header = describe(model, training)
    # buffers a module declares derivable (``derived_buffers``, rebuilt when loading) are left out
    derived = {f"{name}.{b}" if name else b for name, m in model.named_modules()
               for b in getattr(m, "derived_buffers", ())}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k not in derived}
    # safetensors refuses tensors that share memory (e.g. tied weights): clone them apart.
    state = {k: v.clone() for k, v in state.items()}
    out = Path(path)
    with atomic_path(out, durable=True) as tmp:
        save_file(state, str(tmp), metadata={"spectok": json.dumps(header, sort_keys=True)})
    return out


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """Read only the JSON header of a release artifact."""
    from safetensors import safe_open

    p = Path(path)
    if not p.exists():
        raise ArtifactError(f"{p}: file not found")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:
        raise ArtifactError(f"{p}: not a readable safetensors file (truncated or corrupt?): {e}") from e
    if "spectok" not in meta:
        raise ArtifactError(f"{p}: safetensors file without a spectok header (not a spectok artifact)")
    try:
        header = json.loads(meta["spectok"])
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{p}: corrupt spectok header ({e})") from e
    if header.get("format") != FORMAT_VERSION:
        raise ArtifactError(f"{p}: artifact format {header.get('format')!r}, "
                            f"this spectok reads {FORMAT_VERSION}")
    return header


def load_weights(model: torch.nn.Module, path: str | os.PathLike) -> dict[str, Any]:
    """Copy a release artifact's weights into ``model`` (fine-tuning from a released model).

    The artifact must hold the same class; the shapes must fit (``--set`` may change the
    loss or the optimizer, not the architecture). Returns the artifact's header.
    """
    from safetensors.torch import load_file

    p = Path(path)
    header = read_header(p)
    name = getattr(model, "registered_name", type(model).__name__)
    if header.get("class") != name:
        raise ArtifactError(f"{p}: holds a {header.get('class')}, the config trains a {name}")
    try:
        model.load_state_dict(load_file(str(p)), strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ArtifactError(f"{p}: its weights do not fit the model of this config (was the architecture "
                            f"changed with --set?): {' '.join(first[:2])}") from None
    return header


def _check_config_fits_the_file(path: Path, header: dict[str, Any]) -> None:
    """Build the model on the meta device (no memory) and compare its tensors with the file's, so a
    config asking for more than the file holds (huge channels, say) is refused before allocating."""
    from safetensors import safe_open

    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build(header["class"], header["config"]).state_dict().items()}
        with safe_open(str(path), framework="pt") as f:
            stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except ArtifactError:
        raise
    except Exception as e:  # a config the class refuses, or a damaged tensor table
        raise ArtifactError(f"{path}: its config or tensor table is unusable ({type(e).__name__}: {e})") from e
    # (keys the file leaves out, such as EMA sums rebuilt on loading, are checked by load_state_dict)
    wrong = sorted(k for k in shapes.keys() & stored.keys() if shapes[k] != stored[k])
    if wrong:
        raise ArtifactError(f"{path}: its config does not describe its weights ({wrong[0]} is "
                            f"{stored[wrong[0]]} in the file but {shapes[wrong[0]]} in its config); refused "
                            "before building the model")


def load_release(path: str | os.PathLike, kind: str | None = None,
                 map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a release artifact as an eval-mode model; ``kind`` checks it is e.g. a "tokenizer"."""
    from safetensors.torch import load_file

    p = Path(path)
    header = read_header(p)
    if kind is not None and header.get("kind") != kind:
        raise ArtifactError(f"{p}: is a {header.get('kind')}, not a {kind}")
    _check_config_fits_the_file(p, header)
    model = build(header["class"], header["config"])
    try:
        state = load_file(str(p), device=str(map_location))
    except Exception as e:
        raise ArtifactError(f"{p}: cannot read weights (truncated or corrupt?): {e}") from e
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ArtifactError(f"{p}: weights do not fit {header['class']}: {e}") from e
    model.artifact_header = header
    return model.to(map_location).eval()
