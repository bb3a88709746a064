"""Config values checked where they are read: unknown keys refused with the nearest valid name, and
values of the wrong type refused with the expected one, so a typo in ``--set`` or a YAML file is an
error before any work, never a setting silently ignored."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from spectok.errors import ConfigError

_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true/false", "None": "null"}


def check_keys(where: str, given: Mapping[str, Any], known: Iterable[str]) -> None:
    """Refuse a key of ``given`` outside ``known``, naming the nearest known one (``where``: "loss", ...)."""
    known = sorted(known)
    for key in sorted(set(given) - set(known)):
        near = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError(f"config {where}: unknown key {key!r}; {hint}known: {', '.join(known) or 'none'}")


def check_type(name: str, value: Any, annotation: str) -> None:
    """Refuse ``value`` unless it fits a simple annotation (``"int"``, ``"float | None"``, ...), naming the
    expected type; other annotations (lists, unions of classes) are left to the code that reads them."""
    options = [t.strip() for t in annotation.split("|")]
    if any(o != "None" and o not in _TYPES for o in options):
        return
    if value is None and "None" in options:
        return
    allowed = tuple(t for o in options if o != "None" for t in _TYPES[o])
    if isinstance(value, bool) and "bool" not in options:  # YAML's true is not the integer 1 here
        allowed = ()
    if not isinstance(value, allowed):
        raise ConfigError(f"config {name}: expected {' or '.join(_WORDS[o] for o in options)}, got {value!r}")


def check_kwargs(where: str, cls: type, kwargs: Mapping[str, Any]) -> None:
    """Check constructor arguments against ``cls.__init__``'s signature: unknown names (unless it takes
    ``**kwargs``) with the nearest valid one, and simple-typed values with the expected type."""
    params = dict(inspect.signature(cls).parameters)  # the constructor's, without self
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        check_keys(where, kwargs, [n for n, p in params.items() if p.kind is not p.VAR_POSITIONAL])
    for key, value in kwargs.items():
        if key in params and isinstance(params[key].annotation, str):
            check_type(f"{where}.{key}", value, params[key].annotation)
