"""The released models: weights and model cards shipped inside the package, loaded by name.

``index.json`` beside this file lists them::

    {"default": {"aliases": ["speech16k"], "tokenizer": "default.safetensors",
                 "vocoder": "griffin-lim", "card": "default.md", "headline": {...}}, ...}

- ``tokenizer``: the release artifact (one ``.safetensors``, as ``spectok export`` writes it).
- ``vocoder``: the paired vocoder, a file here, or ``"griffin-lim"`` where no trained vocoder
  beat Griffin-Lim on this model's tokenized held-out speech (its card says so).
- ``headline``: figures measured by ``spectok eval`` on the shipped file, for ``spectok models``.
- ``trained_vocoder``: ``{"file", "card", "paired"}``, the vocoder trained on this model's decoded
  mels where one ships (``paired``: it met the pairing targets, so ``vocoder`` names it); its
  training budget so far is ``vocoder_budget``.
- ``code_model``: the code frequencies its ``--entropy`` token files are range-coded against
  (:class:`spectok.entropy.CodeModel`, JSON), fitted on its release data's training split.

Every function here reads the index only; nothing imports torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from spectok.artifacts import read_header
from spectok.audio.mel import MelConfig
from spectok.errors import ArtifactError

GRIFFIN_LIM = "griffin-lim"


@dataclass(frozen=True)
class Release:
    """One released model. Paths are inside the installed package."""

    name: str
    tokenizer: Path
    vocoder: str  # a file path here, or "griffin-lim"
    card: Path
    aliases: tuple[str, ...] = ()
    headline: dict[str, Any] = field(default_factory=dict)
    trained_vocoder: Path | None = None  # the vocoder trained on its decoded mels, paired or not
    vocoder_card: Path | None = None
    code_model: Path | None = None  # code frequencies for range-coded token files (spectok.entropy)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def tokenizer_mel(self) -> dict[str, Any]:
        """The mel config (fields) of the released tokenizer, read from its header."""
        return read_header(self.tokenizer)["mel"]


def folder() -> Path:
    """The folder of the released weights and cards (inside the installed package)."""
    return Path(str(files("spectok") / "models"))


def releases() -> dict[str, Release]:
    """Every released model by its name (aliases not included)."""
    index = folder() / "index.json"
    if not index.is_file():
        return {}
    out = {}
    for name, entry in json.loads(index.read_text(encoding="utf-8")).items():
        voc = entry.get("vocoder", GRIFFIN_LIM)
        trained = entry.get("trained_vocoder") or {}
        out[name] = Release(name=name, tokenizer=folder() / entry["tokenizer"],
                            vocoder=voc if voc == GRIFFIN_LIM else str(folder() / voc),
                            card=folder() / entry["card"], aliases=tuple(entry.get("aliases", ())),
                            headline=dict(entry.get("headline", {})),
                            trained_vocoder=folder() / trained["file"] if trained else None,
                            vocoder_card=folder() / trained["card"] if trained else None,
                            code_model=folder() / entry["code_model"] if entry.get("code_model") else None)
    return out


def find(name: str) -> Release | None:
    """The release called ``name`` (or one of its aliases), else None."""
    for release in releases().values():
        if name in release.names:
            return release
    return None


def code_model_files() -> list[Path]:
    """The released code models (one JSON file per release that has one)."""
    return [r.code_model for r in releases().values() if r.code_model is not None]


def all_names() -> list[str]:
    return [n for r in releases().values() for n in r.names]


def _is_path_like(value: str) -> bool:
    return os.sep in value or value.endswith((".safetensors", ".pt")) or (os.altsep or os.sep) in value


def resolve_tokenizer(path_or_name: str | os.PathLike) -> Path:
    """A tokenizer artifact file from a path or a released name.

    Raises:
        ArtifactError: neither an existing file nor a released name (one line listing the names).
    """
    text = str(path_or_name)
    if Path(text).is_file() or _is_path_like(text):
        if not Path(text).is_file():
            raise ArtifactError(f"{text}: file not found")
        return Path(text)
    release = find(text)
    if release is None:
        raise ArtifactError(f"{text}: neither a file nor a released model (released: "
                            f"{', '.join(all_names()) or 'none'}; see 'spectok models')")
    return release.tokenizer


def resolve_vocoder_file(path_or_name: str | os.PathLike) -> Path:
    """A trained vocoder artifact from a path or a released name: the vocoder trained on that model's
    decoded mels, paired or still in training (what ``spectok train vocoder --init NAME`` continues)."""
    text = str(path_or_name)
    if Path(text).is_file():
        return Path(text)
    release = find(text)
    if release is None or (release.vocoder == GRIFFIN_LIM and release.trained_vocoder is None):
        raise ArtifactError(f"{text}: neither a vocoder file nor a released model with a trained vocoder "
                            f"(released: {', '.join(all_names()) or 'none'})")
    return Path(release.vocoder) if release.vocoder != GRIFFIN_LIM else release.trained_vocoder


def paired_vocoder(name: str = "default", tokenizer_fingerprint: str | None = None) -> str:
    """The vocoder paired with a release: a file path, or ``"griffin-lim"``.

    With ``tokenizer_fingerprint`` the release is the one whose tokenizer has that
    fingerprint (a fine-tuned copy keeps its architecture, so it keeps the pairing); a
    tokenizer no release matches gets Griffin-Lim.
    """
    if tokenizer_fingerprint is not None:
        for release in releases().values():
            if read_header(release.tokenizer).get("fingerprint") == tokenizer_fingerprint:
                return release.vocoder
        return GRIFFIN_LIM
    release = find(name)
    if release is None:
        raise ArtifactError(f"{name}: not a released model (released: {', '.join(all_names()) or 'none'})")
    return release.vocoder


def describe(release: Release) -> dict[str, Any]:
    """What ``spectok models`` prints: front end, bitrate, size, headline figures."""
    header = read_header(release.tokenizer)
    training = header.get("training") or {}
    size = release.tokenizer.stat().st_size
    if release.vocoder != GRIFFIN_LIM:
        size += Path(release.vocoder).stat().st_size
    vocoder = release.vocoder if release.vocoder == GRIFFIN_LIM else Path(release.vocoder).name
    if release.vocoder == GRIFFIN_LIM and release.trained_vocoder is not None:
        vocoder += f" ({release.trained_vocoder.name} in training)"
    return {"name": release.name, "aliases": list(release.aliases), "mel": _mel_name(header),
            "sample_rate": (header.get("mel") or {}).get("sample_rate"), "bitrate": training.get("bitrate"),
            "vocoder": vocoder,
            "size_mb": size / 1e6, "card": str(release.card), **release.headline}


def _mel_name(header: dict[str, Any]) -> str:
    """The mel preset whose fingerprint the artifact carries, else ``"custom"``."""
    return MelConfig.from_dict(header["mel"]).preset_name() or "custom"
