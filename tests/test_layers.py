"""The import graph flows one way (docs/architecture.md): cli -> evaluation, training -> pipeline,
inference, data -> models (tokenizers, vocoders, quantizers) -> contracts -> audio, errors. Every import counts, at
the top of a module or inside a function, so a lazy import cannot hide an arrow that runs back up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

MODELS = ("spectok.tokenizers", "spectok.vocoders", "spectok.quantizers")
#: what each layer must never import (the layers above it)
FORBIDDEN = {
    MODELS: ("spectok.training", "spectok.data", "spectok.pipeline", "spectok.inference", "spectok.evaluation",
             "spectok.cli"),
    ("spectok.pipeline", "spectok.inference", "spectok.data", "spectok.artifacts"):
        ("spectok.training", "spectok.evaluation", "spectok.cli"),
    ("spectok.training", "spectok.evaluation"): ("spectok.cli",),
    ("spectok.contracts",): ("spectok.tokenizers", "spectok.vocoders", "spectok.quantizers", "spectok.training",
                             "spectok.data", "spectok.pipeline", "spectok.inference", "spectok.evaluation",
                             "spectok.cli", "spectok.artifacts", "spectok.tokens"),
    ("spectok.audio", "spectok.errors"): ("spectok.contracts", "spectok.tokenizers", "spectok.vocoders",
                                         "spectok.quantizers",
                                         "spectok.training", "spectok.data", "spectok.pipeline", "spectok.inference",
                                         "spectok.evaluation", "spectok.cli"),
}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def spectok_imports(path: Path) -> set[str]:
    """Every spectok module ``path`` imports, anywhere in it (relative imports resolved)."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == "spectok" or m.startswith("spectok.")}


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


MODULES = sorted(SRC.rglob("*.py"))


def test_the_scan_sees_the_package() -> None:
    assert len(MODULES) > 80 and "spectok.pipeline" in {module_name(p) for p in MODULES}
    # the scanner finds an import inside a function (this module's own kind of check)
    assert "spectok.training.engine" in spectok_imports(SRC / "spectok" / "cli" / "train.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_import_runs_back_up(path: Path) -> None:
    mod = module_name(path)
    wrong = sorted(f"{mod} -> {imported}" for layer, above in FORBIDDEN.items() if within(mod, layer)
                   for imported in spectok_imports(path) if within(imported, above))
    assert not wrong, "imports against the layers: " + "; ".join(wrong)
