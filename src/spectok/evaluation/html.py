"""``report.html``: one offline page with the report's tables, plots and audio players; and
:func:`write_report`, which writes ``report.json``, ``report.md`` and ``report.html`` together.

The page makes no network request: CSS is inline, every figure is a PNG embedded as a
``data:`` URI (matplotlib, Agg backend), there is no script, and the audio players point at
the WAV files written beside the page (``audio/NAME.{original,copy,tokenized}.wav``), so
the folder as a whole is self-contained.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spectok.errors import SpectokError
from spectok.evaluation.report import DEFINITIONS, METRICS, Table, build, render_markdown, tables
from spectok.fsutil import write_json_atomic, write_text_atomic

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;color:#1d1d1f;
padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.88rem}th,td{border:1px solid #d0d0d5;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f2f2f5}tr:nth-child(even) td{background:#fafafc}
.note{color:#555;font-size:.85rem;margin:.2rem 0 1rem}figure{margin:1rem 0}figure img{max-width:100%;
border:1px solid #e5e5ea}figcaption{color:#555;font-size:.85rem}.players{display:grid;
grid-template-columns:repeat(3,minmax(12rem,1fr));gap:.5rem 1rem;align-items:center}.players span{font-size:.85rem}
audio{width:100%}details{margin:.5rem 0}.scroll{max-height:30rem;overflow:auto}
"""


def _plt():
    """matplotlib.pyplot on the non-interactive Agg backend (matplotlib is in the [train] extra)."""
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover
        raise SpectokError("report.html needs matplotlib: pip install 'spectok[train]'") from e
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _file_uri(path: Path) -> str | None:
    try:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return None


# ---- figures ---------------------------------------------------------------------------------
def fig_distributions(report: dict) -> str | None:
    """Per-utterance spread of the main metrics: tokenized vs copy synthesis, one panel each."""
    utts = report["utterances"]
    keys = [k for k in ("pesq", "stoi", "dnsmos_ovrl", "mfcc_dist_db", "lsd_db")
            if any(k in u["tokenized"] or k in u["copy"] for u in utts)]
    if not keys:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(3.0 * len(keys), 3.4), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, k in zip(axes[0], keys):
        groups = [[u[g][k] for u in utts if k in u[g]] for g in ("tokenized", "copy")]
        ax.boxplot([g if g else [np.nan] for g in groups], widths=0.5, showfliers=False)
        for i, g in enumerate(groups):
            ax.scatter(i + 1 + rng.uniform(-0.12, 0.12, len(g)), g, s=10, alpha=0.6, color=f"C{i}")
        ax.set_xticks([1, 2], ["tokenized", "copy"])
        label, unit, better = METRICS[k]
        ax.set_title(f"{label} ({unit}, {better} is better)", fontsize=9)
    fig.tight_layout()
    return _png_uri(fig)


def fig_pairs(report: dict, key: str = "pesq") -> str | None:
    """Each utterance's tokenized score against its copy-synthesis score: below the diagonal is
    what tokenization costs."""
    pts = [(u["copy"][key], u["tokenized"][key]) for u in report["utterances"]
           if key in u["copy"] and key in u["tokenized"]]
    if not pts:
        return None
    plt = _plt()
    x, y = np.array(pts).T
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.6", lw=1, ls="--", label="tokenized = copy")
    ax.scatter(x, y, s=14, alpha=0.7)
    label = METRICS[key][0]
    ax.set_xlabel(f"{label}, copy synthesis")
    ax.set_ylabel(f"{label}, tokenized")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _png_uri(fig)


def fig_codebook_usage(counts: Sequence[np.ndarray], max_rows: int = 8) -> str | None:
    """Code counts of each codebook sorted from most to least used (log scale); dead codes are the tail at 0."""
    if not counts or not any(int(c.sum()) for c in counts):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for i, c in enumerate(counts[:max_rows]):
        c = np.sort(np.asarray(c))[::-1]
        dead = int((c == 0).sum())
        ax.step(np.arange(1, len(c) + 1), np.maximum(c, 0.8), where="mid", lw=1.2,
                label=f"codebook {i}: {len(c) - dead}/{len(c)} used")
    ax.set_yscale("log")
    ax.set_xlabel("code rank (most used first)")
    ax.set_ylabel("occurrences (0 drawn at 0.8)")
    more = f" (first {max_rows} of {len(counts)} codebooks)" if len(counts) > max_rows else ""
    ax.set_title(f"codebook usage over the set{more}", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _png_uri(fig)


# ---- page ------------------------------------------------------------------------------------
def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def _table(t: Table, collapsed: bool = False) -> str:
    if not t.rows:
        return f"<h2>{_esc(t.title)}</h2><p class='note'>none</p>"
    head = "".join(f"<th>{_esc(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if collapsed:
        table = f"<details><summary>{len(t.rows)} rows</summary><div class='scroll'>{table}</div></details>"
    note = f"<p class='note'>{_esc(t.note)}</p>" if t.note else ""
    return f"<h2>{_esc(t.title)}</h2>{table}{note}"


def _safe(fig, *args) -> str | None:
    """A figure's data URI, or None (the page goes without it) when drawing fails: a plot never
    costs the report."""
    try:
        return fig(*args)
    except Exception as e:
        import warnings

        warnings.warn(f"report.html: {fig.__name__} failed ({type(e).__name__}: {e}); figure left out", stacklevel=2)
        return None


def _figure(uri: str | None, caption: str) -> str:
    if uri is None:
        return ""
    return f"<figure><img src='{uri}' alt='{_esc(caption)}'><figcaption>{_esc(caption)}</figcaption></figure>"


def _examples(report: dict, out_dir: Path) -> str:
    parts = []
    for ex in report["examples"]:
        parts.append(f"<h3>{_esc(ex['rank'])}: {_esc(ex['id'])}</h3>")
        if ex.get("failure"):
            parts.append(f"<p class='note'>could not be re-synthesised: {_esc(ex['failure'])}</p>")
            continue
        players = "".join(f"<span>{_esc(kind)}</span>" for kind in ("original", "copy synthesis", "tokenized"))
        players += "".join(f"<audio controls preload='none' src='{_esc(ex['audio'][kind])}'></audio>"
                           for kind in ("original", "copy", "tokenized") if kind in ex["audio"])
        parts.append(f"<div class='players'>{players}</div>")
        if ex.get("mel_plot"):
            parts.append(_figure(_file_uri(out_dir / ex["mel_plot"]), "reference log-mel, tokenizer output and "
                                                                        "their difference"))
    return "".join(parts)


def render_html(report: dict, code_counts: Sequence[np.ndarray], out_dir: str | Path) -> str:
    """The page as a string; ``out_dir`` is where the example figures were written."""
    out = Path(out_dir)
    ts = tables(report)
    by_title = {t.title.split(" (")[0].split(":")[0]: t for t in ts}
    tok = report["tokens"]
    title = (f"spectok eval: {report['tokenizer'].get('class')} {report['tokenizer'].get('fingerprint')} "
             f"at {tok['nominal_bits_per_second']:.0f} bit/s")
    body = [f"<h1>{_esc(title)}</h1>", _table(by_title["Setup"]), _table(by_title["Quality"]),
            _figure(_safe(fig_distributions, report),
                    "per-utterance scores: boxes span the quartiles, dots are utterances"),
            _figure(_safe(fig_pairs, report),
                    "PESQ per utterance: points below the diagonal lost quality to the tokens"),
            _table(by_title["Tokenizer alone"]), _table(by_title["Tokens"])]
    if "Tokens per row" in by_title:
        body.append(_table(by_title["Tokens per row"], collapsed=len(by_title["Tokens per row"].rows) > 16))
    body.append(_figure(_safe(fig_codebook_usage, code_counts), "codes sorted by use, per codebook"))
    for t in ts:
        if t.title.startswith(("Speed", "Best")):
            body.append(_table(t))
    if report["examples"]:
        body += ["<h2>Listen: best, median and worst</h2>", _examples(report, out)]
    body += [_table(by_title["Skipped files"]), _table(by_title["Per utterance"], collapsed=True),
             "<h2>Definitions</h2><ul>" + "".join(f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>"
                                                  for k, v in DEFINITIONS.items()) + "</ul>"]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
            "media-src 'self' file:; style-src 'unsafe-inline'\">"
            f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>" + "".join(body) + "</body></html>")


def _finite(obj):
    """``obj`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_report(result, out_dir: str | Path, options: dict | None = None) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out_dir`` (atomically); their paths."""
    out = Path(out_dir)
    report = _finite(build(result, options))
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    write_json_atomic(paths["json"], report)
    write_text_atomic(paths["md"], render_markdown(report))
    write_text_atomic(paths["html"], render_html(report, result.code_counts, out))
    return paths
