"""The evaluation report: what ``report.json`` holds (:func:`build`), its tables and ``report.md``.

The JSON is the source of truth; the Markdown and HTML tables are built from it by
:func:`tables`, so the three never disagree. :func:`spectok.evaluation.html.write_report`
writes the three files (atomically); this module knows nothing of the HTML page.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from spectok._version import __version__

#: key -> (label, unit, which direction is better)
METRICS: dict[str, tuple[str, str, str]] = {
    "pesq": ("PESQ", "MOS-LQO", "higher"),
    "stoi": ("STOI", "0-1", "higher"),
    "dnsmos_ovrl": ("DNSMOS OVRL", "MOS", "higher"),
    "dnsmos_sig": ("DNSMOS SIG", "MOS", "higher"),
    "dnsmos_bak": ("DNSMOS BAK", "MOS", "higher"),
    "dnsmos_p808": ("DNSMOS P.808", "MOS", "higher"),
    "mfcc_dist_db": ("MFCC distance", "dB", "lower"),
    "lsd_db": ("LSD (mel bands)", "dB", "lower"),
    "lsd_stft": ("LSD (STFT)", "log10 power", "lower"),
    "mel_l1": ("log-mel L1", "ln", "lower"),
    "mel_mse": ("log-mel MSE", "ln²", "lower"),
}

DEFINITIONS = {
    "interval": "95 % Student-t interval of the mean over utterances: mean ± t(0.975, n−1)·s/√n",
    "tokenizer": "decoded log-mel vs the reference log-mel (the tokenizer alone, no vocoder)",
    "tokenized": "audio → mel → encode → decode → vocoder, measured against the reference audio "
                 "(mel metrics on the re-analysed output)",
    "copy": "copy synthesis: the vocoder on the reference mel, measured the same way",
    "gap": "tokenized − copy per utterance (paired): what the tokens cost beyond the vocoder",
    "original": "non-intrusive scores of the reference audio itself",
    "reference": "the source audio, mono, resampled to the tokenizer's rate and trimmed as prepared",
    "pesq": "P.862.2 wideband at 16 kHz; narrowband P.862 at 8 kHz when the source audio is below 16 kHz",
    "lsd (STFT)": "per frame √mean_f (log10 S − log10 Ŝ)² over the bins up to the mel's fmax, S = |STFT|² "
                  "(Hann 2048, hop 512, +1e-10), mean over frames",
    "mfcc_dist": "orthonormal DCT-II cepstra c1..c24 of ln mel amplitude, 10·√2/ln10·‖Δc‖ per frame, mean over frames",
    "speed": ("audio seconds per compute second (×real time), batch 1, after one untimed warm-up; encode uses the "
              "exact float64 front end the metrics need (`spectok encode` uses the faster float32 one: "
              "benchmarks/bench_inference.py)"),
}


@dataclass
class Table:
    """A titled table: ``header`` and ``rows`` of display strings."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}f}"


def fmt_summary(s: dict | None, digits: int = 3) -> str:
    """``mean [low, high] (n)`` of a summary dict, with the failures when there are any."""
    if not s or s.get("mean") is None:
        return "–"
    ci = f" [{fmt(s['ci_low'], digits)}, {fmt(s['ci_high'], digits)}]" if s.get("ci_low") is not None else ""
    failed = f", {s['failed']} failed" if s.get("failed") else ""
    return f"{fmt(s['mean'], digits)}{ci} (n={s['n']}{failed})"


def build(result, options: dict | None = None) -> dict:
    """The report as a JSON-friendly dict, from a :class:`~spectok.evaluation.runner.EvalResult`."""
    seconds = sum(r["seconds"] for r in result.utterances)
    return {
        "spectok_version": __version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "options": options,
        "tokenizer": result.tokenizer,
        "vocoder": result.vocoder,
        "data": {"sources": result.sources, "utterances": len(result.utterances), "audio_seconds": seconds,
                 "skipped": result.skipped},
        "definitions": dict(DEFINITIONS, metrics={k: {"label": a, "unit": u, "better": b}
                                                  for k, (a, u, b) in METRICS.items()}),
        "dnsmos": result.dnsmos,
        "aggregate": result.aggregate,
        "tokens": result.tokens,
        "speed": result.speed,
        "ranking": result.ranking,
        "examples": result.examples,
        "utterances": result.utterances,
    }


def _metric_label(key: str) -> str:
    label, unit, better = METRICS.get(key, (key, "", ""))
    arrow = {"higher": "↑", "lower": "↓"}.get(better, "")
    return f"{label} ({unit}) {arrow}".strip()


def tables(report: dict) -> list[Table]:
    """Every table of the report, in reading order."""
    agg = report["aggregate"]
    tok, voc, data = report["tokenizer"], report["vocoder"], report["data"]
    out = [Table("Setup", ["", "value"], [
        ["tokenizer", f"{tok.get('class')} {tok.get('fingerprint')} ({tok.get('source')})"],
        ["vocoder", f"{voc.get('class')} {voc.get('fingerprint')} ({voc.get('source')})"],
        ["mel front end", str(tok.get("mel_fingerprint"))],
        ["data", "; ".join(f"{s['path']} ({s['kind']}" + (f", split {s['split']}" if s.get("split") else "")
                           + f", {s['items']} items)" for s in data["sources"])],
        ["utterances", f"{data['utterances']} evaluated, {len(data['skipped'])} skipped, "
                       f"{data['audio_seconds']:.1f} s of audio"],
        ["spectok", f"{report['spectok_version']}, {report['created_utc']}"]])]
    keys = [k for k in METRICS if k in agg.get("tokenized", {}) or k in agg.get("copy", {})]
    rows = [[_metric_label(k), fmt_summary(agg["tokenized"].get(k)), fmt_summary(agg["copy"].get(k)),
             fmt_summary(agg["gap"].get(k)), fmt_summary(agg.get("original", {}).get(k))] for k in keys]
    out.append(Table("Quality: tokenized vs copy synthesis", ["metric", "tokenized", "copy synthesis",
                                                              "gap (tokenized − copy)", "original"], rows,
                     f"mean [95 % t interval] (n). {DEFINITIONS['gap']}. Mel metrics re-analyse the output audio."))
    keys = [k for k in METRICS if k in agg.get("tokenizer", {})]
    out.append(Table("Tokenizer alone (decoded mel vs reference mel)", ["metric", "mean [95 % interval] (n)"],
                     [[_metric_label(k), fmt_summary(agg["tokenizer"][k])] for k in keys]))
    t = report["tokens"]
    out.append(Table("Tokens", ["", "value"], [
        ["frame rate", f"{t['frame_rate']:.3f} columns/s × {t['rows']} rows, codebooks {_sizes(t['codebook_sizes'])}"],
        ["nominal bitrate", f"{t['nominal_bits_per_second']:.1f} bit/s (frame rate × Σ log2 K)"],
        ["entropy bound", f"{t['entropy_bits_per_second']:.1f} bit/s (frame rate × Σ row entropies, "
                          f"{_pct(t['entropy_bits_per_second'], t['nominal_bits_per_second'])} of nominal)"],
        ["codebook usage", f"{100 * t['used_fraction']:.1f} % used, {t['dead_codes']} of {t['total_codes']} "
                           f"codes never used{_sharing(t)}"],
        ["codebook perplexity", ", ".join(f"{p:.1f} of {k}" for p, k in zip(t["codebook_perplexity"][:8],
                                                                         t["codebook_entries"][:8]))
         + (" …" if t["codebooks"] > 8 else "")],
        ["entropy per column", f"{t['entropy_bits_per_column']:.2f} bits (Σ over the {t['rows']} rows)"],
        ["columns counted", str(t["columns_counted"])]],
        "counted over the whole set (CodebookStats): usage per codebook, entropies per token row"))
    if t["rows"] > 1:
        out.append(Table("Tokens per row", ["row", "size", "used %", "perplexity", "entropy (bits)"],
                         [[str(i), str(t["codebook_sizes"][i]), f"{100 * t['row_used_fraction'][i]:.1f}",
                           f"{t['row_perplexity'][i]:.1f}", f"{t['row_entropy_bits'][i]:.2f}"]
                          for i in range(t["rows"])]))
    sp = report["speed"]
    if sp:
        out.append(Table("Speed (audio seconds per compute second)", ["stage", "× real time"], [
            ["encode (audio → mel → codes)", fmt(sp["encode_x_realtime"], 1)],
            ["decode (codes → mel → vocoder → audio)", fmt(sp["decode_x_realtime"], 1)],
            ["tokenizer decode alone (codes → mel)", fmt(sp["tokenizer_decode_x_realtime"], 1)],
            ["vocoder alone (mel → audio)", fmt(sp["vocoder_x_realtime"], 1)]],
            f"{sp['audio_seconds']:.1f} s of audio on {sp['device']} with {sp['torch_threads']} threads, "
            f"batch {sp['batch_size']}, after one untimed warm-up"))
    rk = report["ranking"]
    if rk.get("metric"):
        by_id = {r["id"]: r for r in report["utterances"]}
        out.append(Table(f"Best, median and worst utterance (by {rk['metric']})",
                         ["rank", "id", "seconds", "PESQ tok / copy", "STOI tok / copy", "MFCC dist. tokenizer (dB)"],
                         [[w, rk[w], fmt(by_id[rk[w]]["seconds"], 2), _pair(by_id[rk[w]], "pesq"),
                           _pair(by_id[rk[w]], "stoi"), fmt(by_id[rk[w]]["tokenizer"]["mfcc_dist_db"], 2)]
                          for w in ("best", "median", "worst")]))
    out.append(Table("Skipped files", ["id", "path", "reason"],
                     [[s.get("id", ""), s.get("path", ""), s.get("reason", "")] for s in data["skipped"]],
                     "unreadable or failed files; they are not in any figure above"))
    out.append(Table("Per utterance", ["id", "seconds", "PESQ tok / copy", "STOI tok / copy",
                                       "MFCC dist. tokenizer (dB)", "LSD tokenizer (dB)", "flags", "failures"],
                     [[r["id"], fmt(r["seconds"], 2), _pair(r, "pesq"), _pair(r, "stoi"),
                       fmt(r["tokenizer"]["mfcc_dist_db"], 2), fmt(r["tokenizer"]["lsd_db"], 2), ", ".join(r["flags"]),
                       "; ".join(f"{k}: {v}" for k, v in r["failures"].items())] for r in report["utterances"]]))
    return out


def _pair(r: dict, key: str) -> str:
    return f"{fmt(r['tokenized'].get(key))} / {fmt(r['copy'].get(key))}"


def _sharing(t: dict) -> str:
    n, r = t["codebooks"], t["rows_per_codebook"]
    if r == 1:
        return ""
    return f" (1 codebook shared by {r} rows)" if n == 1 else f" ({n} codebooks, each shared by {r} rows)"


def _pct(a: float, b: float) -> str:
    return f"{100 * a / b:.0f} %" if b else "–"


def _sizes(sizes: list[int]) -> str:
    return f"{sizes[0]} each" if len(set(sizes)) == 1 else ", ".join(map(str, sizes))


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict) -> str:
    """The report's tables as Markdown."""
    lines = ["# spectok evaluation report", ""]
    for t in tables(report):
        lines += [f"## {t.title}", ""]
        if not t.rows:
            lines += ["none", ""]
            continue
        lines.append("| " + " | ".join(map(_md_cell, t.header)) + " |")
        lines.append("|" + "---|" * len(t.header))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
        lines += ["", f"_{t.note}_", ""] if t.note else [""]
    lines += ["## Definitions", ""] + [f"- **{k}**: {v}" for k, v in DEFINITIONS.items()] + [""]
    return "\n".join(lines)
