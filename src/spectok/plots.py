"""Figures a person wants to look at: mel vs reconstruction, token maps, codebook usage, training curves.

Every function draws with matplotlib's non-interactive Agg backend, writes a PNG
atomically and returns its path. Axes are in seconds, Hz and code ids; log-mels are in
natural-log units (``ln`` of the mel magnitude), as the front end computes them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spectok.audio.mel import MelConfig
from spectok.errors import SpectokError
from spectok.fsutil import atomic_path, read_jsonl
from spectok.quantizers import CodebookStats


def _plt():
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - matplotlib is in the [train] extra
        raise SpectokError("plots need matplotlib: pip install 'spectok[train]'") from e
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    _plt().close(fig)
    return out


def _np(x) -> np.ndarray:
    return np.asarray(x.detach().cpu().float() if hasattr(x, "detach") else x, dtype=np.float32)


def _mel_axis(ax, config: MelConfig) -> None:
    """Label a mel image's y axis (band index) with round frequencies in Hz, x in seconds."""
    import librosa

    fmax = config.fmax or config.sample_rate / 2
    centres = librosa.mel_frequencies(config.n_mels + 2, fmin=config.fmin, fmax=fmax,
                                      htk=config.mel_scale == "htk")[1:-1]
    hz = [f for f in (100, 250, 500, 1000, 2000, 4000, 8000, 16000) if centres[0] <= f <= centres[-1]]
    ax.set_yticks(np.interp(hz, centres, np.arange(config.n_mels)))
    ax.set_yticklabels([f"{f / 1000:g}k" if f >= 1000 else str(f) for f in hz])
    ax.set_ylabel("frequency (Hz)")
    ax.set_xlabel("time (s)")


def _mel_image(ax, mel: np.ndarray, config: MelConfig, **kw):
    seconds = mel.shape[-1] / config.frame_rate
    im = ax.imshow(mel, origin="lower", aspect="auto", interpolation="nearest",
                   extent=(0.0, seconds, -0.5, mel.shape[0] - 0.5), **kw)
    _mel_axis(ax, config)
    return im


def plot_reconstruction(mel, reconstruction, config: MelConfig, path: str | os.PathLike,
                        title: str | None = None) -> Path:
    """Three panels: the log-mel ``[n_mels, T]``, its reconstruction, and their difference.

    The two mels share one colour scale; the difference uses a symmetric diverging scale
    and the title of its panel gives the mean absolute error in ln units.
    """
    plt = _plt()
    a, b = _np(mel), _np(reconstruction)
    t = min(a.shape[-1], b.shape[-1])
    a, b = a[:, :t], b[:, :t]
    diff = b - a
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    lim = float(np.abs(diff).max()) or 1.0
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True, constrained_layout=True)
    for ax, img, name in ((axes[0], a, "log-mel"), (axes[1], b, "reconstruction")):
        im = _mel_image(ax, img, config, vmin=lo, vmax=hi, cmap="magma")
        ax.set_title(name)
        fig.colorbar(im, ax=ax, label="ln magnitude")
    im = _mel_image(axes[2], diff, config, vmin=-lim, vmax=lim, cmap="RdBu_r")
    axes[2].set_title(f"reconstruction − log-mel (mean |error| {np.abs(diff).mean():.3f} ln)")
    fig.colorbar(im, ax=axes[2], label="difference (ln)")
    for ax in axes[:2]:
        ax.set_xlabel("")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_token_map(codes, frame_rate: float, codebook_sizes: Sequence[int], path: str | os.PathLike,
                   mel=None, mel_config: MelConfig | None = None, title: str | None = None) -> Path:
    """The codes ``[K, T']`` drawn as an image over time (rows = token rows, colour = code id).

    With ``mel`` (and ``mel_config``) the log-mel is drawn above on the same time axis, so
    one sees which sounds map to which codes (the DCTTS "spectrogram indices" figure).
    """
    plt = _plt()
    c = _np(codes).astype(np.int64)
    if c.ndim != 2:
        raise SpectokError(f"token map needs codes [K, T'], got shape {c.shape}")
    k, cols = c.shape
    seconds = cols / frame_rate
    rows = 2 if mel is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.2 + 1.6 * rows + 0.25 * k), sharex=True,
                             constrained_layout=True, squeeze=False)
    axes = axes[:, 0]
    if mel is not None:
        if mel_config is None:
            raise SpectokError("plot_token_map: a mel needs its mel_config for the axes")
        im = _mel_image(axes[0], _np(mel), mel_config, cmap="magma")
        axes[0].set_title("log-mel")
        axes[0].set_xlabel("")
        fig.colorbar(im, ax=axes[0], label="ln magnitude")
    ax = axes[-1]
    im = ax.imshow(c, origin="lower", aspect="auto", interpolation="nearest", cmap="nipy_spectral",
                   vmin=0, vmax=max(codebook_sizes) - 1, extent=(0.0, seconds, -0.5, k - 0.5))
    ax.set_yticks(range(k) if k <= 16 else np.linspace(0, k - 1, 8).round().astype(int))
    ax.set_ylabel("token row")
    ax.set_xlabel("time (s)")
    bits = sum(math.log2(s) for s in codebook_sizes) * frame_rate
    ax.set_title(f"tokens: {k} row(s) × {cols} columns, {frame_rate:.2f} columns/s, {bits:.0f} bit/s")
    fig.colorbar(im, ax=ax, label="code id")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def codebook_usage(codes: Sequence, codebook_sizes: int | Sequence[int], rows_per_codebook: int = 1):
    """The :class:`~spectok.quantizers.CodebookStats` of ``codes`` (a list of ``[K, T']`` arrays).

    ``codebook_sizes``: the size of each row's codebook (one int: the same for every row);
    ``rows_per_codebook`` rows in a row share one codebook (a 2-D grid). Usage is counted per
    codebook (per stage of a residual VQ, per group of an FSQ) and in total, as ``spectok eval``
    and the training logs count it.
    """
    codes = [_np(c).astype(np.int64) for c in codes]
    if not codes or sum(c.size for c in codes) == 0:
        raise SpectokError("codebook usage: no codes given")
    k = codes[0].shape[0]
    sizes = [int(codebook_sizes)] * k if isinstance(codebook_sizes, (int, np.integer)) else list(codebook_sizes)
    return CodebookStats.of_codes(codes, sizes, rows_per_codebook)


def plot_codebook_usage(codes: Sequence, codebook_sizes: int | Sequence[int], path: str | os.PathLike,
                        title: str | None = None, rows_per_codebook: int = 1) -> Path:
    """Codebook usage over ``codes`` (a list of ``[K, T']`` arrays; see :func:`codebook_usage`).

    Left: each codebook's code counts sorted from most to least used (log scale), which shows at a
    glance how many codes are dead. Right: the fraction of each codebook's codes used at least
    once. The title gives the total (all codebooks' codes together) and the perplexity per codebook.
    """
    plt = _plt()
    stats = codebook_usage(codes, codebook_sizes, rows_per_codebook)
    summary = stats.summary()
    n = len(stats.codebook_sizes)
    frac = [summary[f"row{i}/used_fraction"] for i in range(n)] if n > 1 else [summary["used_fraction"]]
    ppl = [summary[f"row{i}/perplexity"] for i in range(n)] if n > 1 else [summary["perplexity"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.8), constrained_layout=True,
                               gridspec_kw={"width_ratios": [2, 1]})
    for i, (c, k) in enumerate(zip(stats.counts, stats.codebook_sizes)):
        ranked = np.sort(c.numpy())[::-1]
        a.plot(np.arange(1, k + 1), np.maximum(ranked, 0.5), drawstyle="steps-mid",
               label=f"codebook {i}: {frac[i]:.0%} used" if n > 1 else None)
    a.set_yscale("log")
    a.set_xlabel("rank")
    a.set_ylabel("occurrences (log)")
    a.set_title("codes by rank, per codebook (unused drawn at 0.5)")
    if 1 < n <= 8:
        a.legend(fontsize=8)
    b.bar(np.arange(n), [100 * f for f in frac], color="tab:blue")
    b.axhline(100 * summary["used_fraction"], color="tab:orange", label="total")
    b.set_ylim(0, 100)
    b.set_xlabel("codebook (stage / group)")
    b.set_ylabel("codes used (%)")
    b.set_xticks(np.arange(n))
    b.legend(fontsize=8)
    total = sum(stats.codebook_sizes)
    used = total - int(summary["dead_codes"])
    fig.suptitle((title + ": " if title else "") + f"{used}/{total} codes used ({used / total:.0%}) in {n} "
                 f"codebook(s); perplexity per codebook {', '.join(f'{p:.0f}' for p in ppl)}")
    return _save(fig, path)


def _curve_groups(records: list[dict]) -> dict[str, dict[str, tuple[list, list]]]:
    """``{panel: {series: (steps, values)}}``: train and valid metrics of one name share a panel."""
    groups: dict[str, dict[str, tuple[list, list]]] = {}
    for r in records:
        step = r.get("step")
        if step is None:
            continue
        for key, value in r.items():
            if key in ("step", "time", "event") or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if not math.isfinite(value):
                continue
            parts = key.split("/")
            panel = parts[-1] if parts[0] in ("train", "valid", "val") and len(parts) > 1 else parts[0]
            xs, ys = groups.setdefault(panel, {}).setdefault(key, ([], []))
            xs.append(step)
            ys.append(value)
    return groups


def plot_training_curves(run_dir: str | os.PathLike, path: str | os.PathLike, max_panels: int = 12) -> Path:
    """Curves from ``RUN/metrics.jsonl`` (one JSON object per event with ``step`` and named values).

    One panel per metric name; training and validation values of the same name (e.g.
    ``train/generator/l1`` and ``valid/l1``) share a panel; learning rates, gradient norms
    and speed get their own. Positive series spanning over two decades use a log scale.
    """
    plt = _plt()
    metrics = Path(run_dir) / "metrics.jsonl"
    if not metrics.exists():
        raise SpectokError(f"{metrics}: not found (is {run_dir} a training run folder?)")
    groups = _curve_groups(read_jsonl(metrics))
    if not groups:
        raise SpectokError(f"{metrics}: no numeric values with a step to plot")
    names = list(groups)[:max_panels]
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.2 * nrows), constrained_layout=True,
                             squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        values = []
        for key, (xs, ys) in groups[name].items():
            valid = key.startswith(("valid/", "val/"))
            ax.plot(xs, ys, marker="o" if valid else None, markersize=3, linewidth=1.2 if valid else 0.9,
                    label=key)
            values += ys
        pos = [v for v in values if v > 0]
        if pos and len(pos) == len(values) and max(pos) / min(pos) > 100:
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.suptitle(f"training curves: {Path(run_dir).name}")
    return _save(fig, path)


def plot_image_grid(originals: np.ndarray, reconstructions: np.ndarray, path: Path, columns: int = 16,
              rows: int = 2) -> Path:
    """PNG of ``rows`` rows of originals above the same images reconstructed (uint8 ``[N, H, W, 3]``)."""
    n = columns * rows
    plt = _plt()
    fig, axes = plt.subplots(2 * rows, columns, figsize=(columns * 0.8, 2 * rows * 0.85))
    for i in range(n):
        r, c = divmod(i, columns)
        for offset, source in ((0, originals), (rows, reconstructions)):
            ax = axes[r + offset, c]
            ax.imshow(source[i], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        if c == 0:
            axes[r, 0].set_ylabel("original", fontsize=7)
            axes[r + rows, 0].set_ylabel("tokens", fontsize=7)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return _save(fig, path)
