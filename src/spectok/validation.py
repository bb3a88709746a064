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
_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true/false", "None": "null",
          "dict": "a mapping", "list": "a list", "tuple": "a list"}


def check_keys(where: str, given: Mapping[str, Any], known: Iterable[str] | Mapping[str, str]) -> None:
    """Refuse a key of ``given`` outside ``known``, naming the nearest known one (``where``: "loss", ...);
    where ``known`` maps each key to a type annotation, a value of another type too."""
    if isinstance(known, Mapping):
        for key, value in given.items():
            if key in known:
                check_type(f"{where}.{key}", value, known[key])
    known = sorted(known)
    for key in sorted(set(given) - set(known)):
        near = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError(f"config {where}: unknown key {key!r}; {hint}known: {', '.join(known) or 'none'}")


def check_type(name: str, value: Any, annotation: str) -> None:
    """Refuse ``value`` unless it fits ``annotation`` (a string such as ``"int"``, ``"float | None"``,
    ``"Sequence[int]"``, ``"int | Sequence[int]"``), naming the expected type. An annotation naming a
    class this check does not know (``MelConfig``) accepts anything: the code that reads it checks."""
    verdict = _fits(value, annotation.strip())
    if verdict is False:
        raise ConfigError(f"config {name}: expected {_describe(annotation.strip())}, got {value!r}")


def _split(text: str, sep: str) -> list[str]:
    """``text`` split at top-level ``sep`` (outside brackets)."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += c == "["
        depth -= c == "]"
        if c == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return [*parts, text[start:].strip()]


def _fits(value: Any, annotation: str) -> bool | None:
    """True or False where the annotation is understood; None (accept) where it names another class."""
    options = _split(annotation, "|")
    if len(options) > 1:
        verdicts = [_fits(value, o) for o in options]
        return True if True in verdicts else None if None in verdicts else False
    a = options[0]
    if a == "None":
        return value is None
    if a in _TYPES:
        return isinstance(value, _TYPES[a]) and not (isinstance(value, bool) and a != "bool")
    if a in ("dict", "list", "tuple"):
        return isinstance(value, _CONTAINERS[a])
    head, _, inner = a.partition("[")
    if head in ("list", "tuple", "Sequence") and inner.endswith("]"):
        if not isinstance(value, (list, tuple)):
            return False
        element = _split(inner[:-1], ",")[0]
        verdicts = [_fits(v, element) for v in value]
        return False if False in verdicts else None if None in verdicts else True
    return None


_CONTAINERS: dict[str, tuple[type, ...]] = {"dict": (dict,), "list": (list,), "tuple": (list, tuple)}
_PLURAL = {"int": "integers", "float": "numbers", "str": "strings", "bool": "true/false values"}


def _describe(annotation: str, plural: bool = False) -> str:
    words = []
    for o in _split(annotation, "|"):
        head, _, inner = o.partition("[")
        if head in ("list", "tuple", "Sequence") and inner:
            words.append(f"{'lists' if plural else 'a list'} of {_describe(_split(inner[:-1], ',')[0], True)}")
        else:
            words.append(_PLURAL.get(o, o) if plural else _WORDS.get(o, o))
    return " or ".join(words)


def check_kwargs(where: str, cls: type, kwargs: Mapping[str, Any]) -> None:
    """Check constructor arguments against ``cls.__init__``'s signature: unknown names (unless it takes
    ``**kwargs``) with the nearest valid one, and simple-typed values with the expected type."""
    params = dict(inspect.signature(cls).parameters)  # the constructor's, without self
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        check_keys(where, kwargs, [n for n, p in params.items() if p.kind is not p.VAR_POSITIONAL])
    for key, value in kwargs.items():
        if key in params and isinstance(params[key].annotation, str) and params[key].annotation:
            check_type(f"{where}.{key}", value, params[key].annotation)
