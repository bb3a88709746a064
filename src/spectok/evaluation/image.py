"""Evaluation of an image tokenizer on CIFAR-10: ``spectok eval -t IMAGE_TOKENIZER cifar10 ROOT -o DIR``.

Measured on a split of the official batches (``test`` by default, 10,000 images):

- reconstruction MSE in the model's [-1, 1] range, and PSNR in dB on [0, 1] pixels
  (``10 log10(1 / mse01)`` per image, then averaged; ``mse01 = mse / 4``), with 95 % intervals;
- codebook use: fraction of codes used, dead codes, perplexity and entropy
  (:class:`~spectok.quantizers.stats.CodebookStats`), and the nominal bits per image;
- a PNG grid of originals (top rows) over their reconstructions (bottom rows);
- the loss curves of the run that trained the model (``--run``: its ``metrics.jsonl``).

Written to ``out_dir`` as ``report.json``, ``report.md`` and ``report.html``, beside the PNGs.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import torch

from spectok.contracts import Tokenizer
from spectok.data.corpora import Cifar10
from spectok.fsutil import atomic_path
from spectok.plots import plot_image_grid, plot_training_curves
from spectok.quantizers.stats import CodebookStats
from spectok.tokenizers.image import to_model_range


def _interval(values: np.ndarray) -> dict[str, float]:
    """Mean and normal 95 % interval of per-image values."""
    mean = float(values.mean())
    half = 1.96 * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"n": int(len(values)), "mean": mean, "ci_low": mean - half, "ci_high": mean + half}


@torch.no_grad()
def measure_images(tokenizer: Tokenizer, images: np.ndarray, batch_size: int = 250) -> tuple[dict, np.ndarray]:
    """Scores of ``images`` (uint8 ``[N, H, W, 3]``) and their reconstructions (uint8, same shape)."""
    stats = CodebookStats(tokenizer.codebooks)  # rows sharing a codebook are counted together
    mse, recs = [], []
    for start in range(0, len(images), batch_size):
        x = to_model_range(images[start:start + batch_size])
        codes = tokenizer.encode(x)
        stats.update(codes.reshape(codes.shape[0], len(tokenizer.codebooks), -1))
        rec = tokenizer.decode(codes).clamp(-1.0, 1.0)
        mse.append((rec - x).square().mean(dim=(1, 2, 3)).numpy())
        recs.append(((rec + 1.0) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy())
    per_image = np.concatenate(mse).astype(np.float64)
    psnr = 10.0 * np.log10(1.0 / np.maximum(per_image / 4.0, 1e-12))
    summary = stats.summary()
    scores = {"images": int(len(images)), "mse": _interval(per_image), "psnr_db": _interval(psnr),
              "bits_per_image": float(tokenizer.bits_per_image),
              "codebook": {k: summary[k] for k in ("used_fraction", "dead_codes", "perplexity", "entropy_bits")
                           if k in summary},
              "codebook_size": int(sum(tokenizer.codebooks))}
    return scores, np.concatenate(recs)


def _markdown(report: dict) -> str:
    s = report["scores"]
    cb = s["codebook"]
    lines = [f"# Image tokenizer on CIFAR-10 ({report['split']}, {s['images']} images)", "",
             f"Tokenizer: `{report['tokenizer']['source']}` ({report['tokenizer'].get('class', '?')}), "
             f"{s['bits_per_image']:.0f} bits per image, {s['codebook_size']} codes.", "",
             "| metric | mean | 95 % interval |", "|---|---|---|"]
    for key, label in (("mse", "MSE ([-1, 1] range)"), ("psnr_db", "PSNR (dB)")):
        m = s[key]
        lines.append(f"| {label} | {m['mean']:.4f} | {m['ci_low']:.4f} – {m['ci_high']:.4f} |")
    nan = float("nan")
    lines += ["", f"Codebook: {cb.get('used_fraction', nan) * 100:.1f} % used, {cb.get('dead_codes', nan):.0f} dead, "
                  f"perplexity {cb.get('perplexity', nan):.1f}, "
                  f"entropy {cb.get('entropy_bits', nan):.2f} bits per code.",
              "",
              "![originals over reconstructions](grid.png)"]
    if report.get("curves"):
        lines += ["", "![training curves](curves.png)"]
    return "\n".join(lines) + "\n"


def _html(markdown: str) -> str:
    """The Markdown report as a small self-contained HTML page (tables and images kept)."""
    body = []
    for line in markdown.splitlines():
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("!["):
            alt, src = line[2:].split("](")
            body.append(f'<p><img src="{html.escape(src[:-1])}" alt="{html.escape(alt)}"></p>')
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        elif line:
            body.append(f"<p>{html.escape(line)}</p>")
    text = "\n".join(body).replace("</p>\n<tr>", "</p>\n<table><tr>").replace("</tr>\n<p>", "</tr></table>\n<p>")
    return f"<!doctype html><meta charset='utf-8'><title>spectok image evaluation</title>\n{text}\n"


def evaluate_images(tokenizer: Tokenizer, root: str | Path, out_dir: str | Path, tokenizer_info: dict,
                    split: str = "test", limit: int | None = None, run_dir: str | Path | None = None) -> dict:
    """Evaluate ``tokenizer`` on CIFAR-10 at ``root``; writes the report files; returns the report dict."""
    images, _ = Cifar10(root).load(split)
    if limit:
        images = images[:limit]
    scores, recs = measure_images(tokenizer.eval(), images)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_image_grid(images, recs, out / "grid.png")
    curves = None
    if run_dir is not None:
        curves = str(plot_training_curves(run_dir, out / "curves.png"))
    report = {"kind": "image", "split": split, "root": str(Path(root)), "tokenizer": tokenizer_info,
              "scores": scores, "grid": "grid.png", "curves": curves and "curves.png"}
    md = _markdown(report)
    for name, text in (("report.json", json.dumps(report, indent=1)), ("report.md", md),
                       ("report.html", _html(md))):
        with atomic_path(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return report
