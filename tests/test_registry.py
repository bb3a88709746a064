"""The one registry of names -> classes (spectok.registry): every kind, lazy entries, clear errors."""

from __future__ import annotations

import pytest

from spectok import registry
from spectok.errors import ConfigError


def test_every_kind_lists_its_built_in_names() -> None:
    assert {"conv1d-vqvae", "conv2d-vqvae", "image-vqvae"} <= set(registry.names("tokenizer"))
    assert {"istft-vocoder", "hifigan", "cnn-vocoder"} <= set(registry.names("vocoder"))
    assert registry.names("named-vocoder") == ["griffin-lim"]
    assert registry.names("task") == ["image-tokenizer", "tokenizer", "vocoder", "vocoder-gan", "vqgan"]
    assert registry.names("quantizer") == ["fsq", "rvq", "vq"]


def test_lazy_entries_import_on_lookup_and_resolve_to_classes() -> None:
    from spectok.quantizers.residual import ResidualVQ
    from spectok.training.vocoder_task import VocoderTask

    assert registry.get("task", "vocoder") is VocoderTask and registry.get("quantizer", "rvq") is ResidualVQ
    assert registry.get("task", "spectok.training.vocoder_task:GANVocoderTask").__name__ == "GANVocoderTask"
    assert registry.model_kind("istft-vocoder") == "vocoder" and registry.model_kind("nosuch") is None


def test_unknown_names_are_refused_with_the_nearest_one() -> None:
    with pytest.raises(ConfigError, match="unknown task 'tokenzer'; did you mean 'tokenizer'"):
        registry.get("task", "tokenzer")
    with pytest.raises(ConfigError, match="cannot import nosuch.module:Thing"):
        registry.get("task", "nosuch.module:Thing")


def test_a_second_class_under_a_taken_name_is_refused() -> None:
    from spectok.artifacts import register

    with pytest.raises(ConfigError, match="registered twice"):
        @register("istft-vocoder", "vocoder")
        class Impostor:  # noqa: F841
            def __init__(self) -> None: ...
