"""One source for every figure: each measured figure the README quotes is on the results page.

A figure is a number the README's prose states as measured: a decimal (``2.257``, ``0.904``), a
speed (``372×``), a size (``829 MiB``) or a percentage. Code blocks, inline code and links are
not prose. Each must appear in benchmarks/RESULTS.md (× and x alike; thousands separators
ignored), where the section gives the command, date and load average behind it.
"""

from __future__ import annotations

import re

from conftest import REPO

UNIT = r"×(?!\s?\d)|x\b|%|MiB|GiB|MB|GB"  # × before a digit is a shape (512 × 256), not a speed
FIGURE = re.compile(rf"(?<![\w.,-])(\d[\d,]*\.\d+|\d[\d,]*(?=\s?(?:{UNIT})))(\s?(?:{UNIT}))?")


def prose(text: str) -> str:
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # code blocks
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)  # inline code (versions, presets, commands)
    return re.sub(r"\]\([^)]*\)", "]", text)  # link targets


def normal(figure: str) -> str:
    return figure.replace(",", "").replace("×", "x").replace(" ", "")


def figures(text: str) -> list[str]:
    return [normal(number + (unit or "")) for number, unit in FIGURE.findall(prose(text))]


def test_figure_pattern() -> None:
    text = ("runs at 65× real time, 372x with `torch==2.13.0`, in 829 MiB; PESQ-WB 2.257 [2.2, 2.3] "
            "(e.g. `-o 1.5`), 1,375 bit/s, 87 % used, 512 × 256 codes")
    assert figures(text) == ["65x", "372x", "829MiB", "2.257", "2.2", "2.3", "87%"]


def test_readme_figures_are_on_the_results_page() -> None:
    results = normal((REPO / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8"))
    quoted = figures((REPO / "README.md").read_text(encoding="utf-8"))
    assert quoted, "the README quotes no figure: the pattern is broken"
    missing = sorted({f for f in quoted if not re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", results)})
    assert not missing, f"README figures not in benchmarks/RESULTS.md: {missing}"
