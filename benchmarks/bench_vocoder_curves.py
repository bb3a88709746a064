"""Which vocoder to pair with `default`: held-out quality against one-thread CPU time, per design.

Every design trains on the `default` tokenizer's *decoded* log-mels of its own training clips
(``spectok prepare-decoded``; the real waveforms are the targets) with one thread, and is scored
at a few points of its run by ``spectok eval`` on the release data's test split (whole speakers
never trained on): tokenized (codes -> decoded mel -> vocoder) and copy synthesis (true mel ->
vocoder), PESQ-WB, STOI and DNSMOS OVRL, beside Griffin-Lim (32 iterations) on the same mels and
the recordings' own DNSMOS.

The designs (``RUNS``; a run that branches from another at a step counts that run's CPU time
up to the step in its own):

- ``istft``: the ``istft-16k`` preset, multi-resolution STFT + mel losses;
- ``istft-phase``: the same plus the phase-aware compressed complex STFT loss;
- ``istft-gan``: the same plus an adversarial phase: MPD (width 1/8) and the multi-resolution
  spectrogram discriminator (width 1/4), LSGAN + feature matching, as Vocos trains;
- ``hifigan-v3``: HiFi-GAN V3's generator (the seed's design) with the spectral losses.

Runs resume when re-run (the engine's exact resume); each point's eval is kept in
``WORK/NAME/eval-STEP`` and not repeated. Prints the table and draws ``--plot``.

Usage::

    python benchmarks/bench_vocoder_curves.py --runs istft --points 900 3600 10800
    python benchmarks/bench_vocoder_curves.py --table --plot benchmarks/vocoder-curves.png
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml
from harness import spectok, training_cpu_s  # spectok(ARGS, THREADS, LOG) -> child CPU-s

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "runs" / "data" / "release" / "speech16k"
DECODED = REPO / "runs" / "data" / "release" / "speech16k-decoded"

PRESETS = REPO / "configs" / "vocoder"
SPECTRAL = {"stft_weight": 1.0, "mel_weight": 1.0,
            "resolutions": [[512, 50, 240], [1024, 120, 600], [2048, 240, 1200]]}
#: name -> (base preset, overrides merged into it, (parent run, step) to branch from or None, steps)
RUNS: dict[str, tuple[str, dict, tuple[str, int] | None, int]] = {
    "istft": ("istft-16k", {}, None, 10800),
    "istft-phase": ("istft-16k", {"loss": {"phase_weight": 1.0}}, ("istft", 3600), 4500),
    "istft-gan": ("istft-16k", {"task": "vocoder-gan",
                                "loss": {**SPECTRAL, "mel_weight": 45.0, "stft_weight": 1.0, "adv_weight": 1.0,
                                         "feature_matching_weight": 2.0, "disc_start": 0},
                                "discriminator": {"periods": [2, 3, 5, 7, 11], "scales": 0, "width": 0.125,
                                                  "resolutions": [[512, 128, 512], [1024, 256, 1024],
                                                                  [2048, 512, 2048]]},
                                "optim": {"discriminator": {"kind": "adamw", "lr": 2.0e-4, "betas": [0.8, 0.99],
                                                            "schedule": "cosine", "warmup_steps": 0}}},
                  ("istft", 3600), 1080),
    "hifigan-v3": ("hifigan-v3", {"task": "vocoder", "model": {"mel": "speech-16k", "upsample_rates": [8, 5, 4],
                                                                        "upsample_kernels": [16, 10, 8]},
                                  "loss": SPECTRAL,
                                  "data": {"segment_samples": 8000, "valid_segment_samples": 32000}}, None, 1800),
}


def merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run_config(name: str) -> dict:
    preset, over, _, steps = RUNS[name]
    cfg = merged(yaml.safe_load((PRESETS / f"{preset}.yaml").read_text()), over)
    if cfg["task"] == "vocoder":  # a GAN preset trained with the spectral losses alone
        cfg.pop("discriminator", None)
        cfg["optim"].pop("discriminator", None)
    every = 900 if cfg["task"] == "vocoder" else 270  # a GAN step costs ~6 plain ones
    cfg["train"].update(steps=steps, keep_last=1000, checkpoint_every=every, valid_every=every, media_every=0,
                        progress=False)
    return cfg


def records(run: Path) -> list[dict]:
    with open(run / "metrics.jsonl", encoding="utf-8") as f:
        return [r for r in map(json.loads, f) if r.get("event") == "train"]


def cpu_at(name: str, work: Path, step: int) -> float:
    """One-thread training CPU seconds of run ``name`` up to ``step``, its parent's prefix included."""
    parent = RUNS[name][2]
    own = training_cpu_s([r for r in records(work / name) if r["step"] <= step])
    return own + (cpu_at(parent[0], work, parent[1]) if parent else 0.0)


def artifact(name: str, work: Path, step: int) -> Path:
    """The run's checkpoint at ``step`` as a release artifact (exported once)."""
    out = work / name / f"step-{step}.safetensors"
    if not out.is_file():
        ckpt = work / name / "checkpoints" / f"step-{step:08d}.pt"
        spectok(["export", str(ckpt), "-o", str(out)], 1, work / "spectok.log")
    return out


def train(name: str, work: Path) -> None:
    run = work / name
    log = work / f"{name}.log"
    if (run / "checkpoints").is_dir() and any((run / "checkpoints").glob("step-*.pt")):
        spectok(["train", "vocoder", "--out", str(run), "--resume", "--threads", "1"], 1, log)
        return
    cfg_file = work / f"{name}.yaml"
    cfg_file.parent.mkdir(parents=True, exist_ok=True)
    cfg_file.write_text(yaml.safe_dump(run_config(name), sort_keys=False))
    init = []
    if RUNS[name][2]:
        init = ["--init", str(artifact(*RUNS[name][2][:1], work, RUNS[name][2][1]))]
    spectok(["train", "vocoder", "--config", str(cfg_file), "--data", str(DECODED), "--out", str(run),
             "--threads", "1", *init], 1, log)


def scores(report: Path) -> dict:
    agg = json.loads((report / "report.json").read_text())["aggregate"]
    out = {}
    for group in ("tokenized", "copy", "original"):
        for k in ("pesq", "stoi", "dnsmos_ovrl"):
            m = agg.get(group, {}).get(k)
            if m:
                out[f"{group}_{k}"] = m.get("mean")
                out[f"{group}_{k}_ci"] = (m.get("ci_low"), m.get("ci_high"))
    return out


def evaluate(vocoder: str, out: Path, limit: int | None) -> dict:
    if not (out / "report.json").is_file():
        spectok(["eval", "-t", "default", "-v", vocoder, str(DATA), "-o", str(out), "-q", "--threads", "1",
                 *(["--limit", str(limit)] if limit else [])], 1, out.parent / "spectok.log")
    return scores(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="*", default=[], choices=sorted(RUNS), help="train (or resume) these runs")
    ap.add_argument("--points", nargs="*", type=int, default=[], help="steps at which to score every run listed "
                    "in --score (checkpoints every 900 steps, 270 for a GAN run)")
    ap.add_argument("--score", nargs="*", default=[], choices=sorted(RUNS), help="score these runs at --points")
    ap.add_argument("--limit", type=int, help="score only the first N test clips")
    ap.add_argument("--table", action="store_true", help="print every scored point and Griffin-Lim's row")
    ap.add_argument("--plot", type=Path, help="draw quality against CPU time to this PNG")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "curves", help="runs, exports and reports")
    args = ap.parse_args()
    for path in (DATA, DECODED):
        if not path.is_dir():
            raise SystemExit(f"{path} is missing: run `python scripts/release_data.py speech16k {DATA}` and "
                             f"`spectok prepare-decoded {DATA} {DECODED} -t default` first")
    for name in args.runs:
        train(name, args.work)
    for name in args.score:
        for step in args.points:
            if (args.work / name / "checkpoints" / f"step-{step:08d}.pt").is_file():
                evaluate(str(artifact(name, args.work, step)), args.work / name / f"eval-{step}", args.limit)
    if args.table or args.plot:
        table(args.work, args.plot)


def points(work: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for name in RUNS:
        for report in sorted((work / name).glob("eval-*/report.json"), key=lambda p: int(p.parent.name[5:])):
            step = int(report.parent.name[5:])
            out.setdefault(name, []).append({"step": step, "cpu_s": cpu_at(name, work, step), **scores(report.parent)})
    return out


def table(work: Path, plot: Path | None) -> None:
    gl = evaluate("griffin-lim", work / "gl32", None)
    pts = points(work)
    print(f"## Vocoders for `default` on its decoded mels (held-out speakers, 60 clips); load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"recordings' DNSMOS OVRL {gl.get('original_dnsmos_ovrl', float('nan')):.3f}")
    print("| vocoder | step | 1-thread CPU-min | tokenized PESQ-WB | STOI | DNSMOS | copy PESQ-WB | STOI | DNSMOS |")
    print("|---|---|---|---|---|---|---|---|---|")

    def row(name: str, step: str, cpu: str, r: dict) -> None:
        cells = [f"{r.get(f'{g}_{k}', float('nan')):.3f}" for g in ("tokenized", "copy")
                 for k in ("pesq", "stoi", "dnsmos_ovrl")]
        print(f"| {name} | {step} | {cpu} | " + " | ".join(cells) + " |")

    row("Griffin-Lim (32 iterations)", "-", "-", gl)
    for name, rows in pts.items():
        for r in rows:
            row(name, str(r["step"]), f"{r['cpu_s'] / 60:.0f}", r)
    if plot:
        draw(pts, gl, plot)


def draw(pts: dict[str, list[dict]], gl: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key, label in zip(axes, ("tokenized_pesq", "tokenized_stoi", "tokenized_dnsmos_ovrl"),
                              ("PESQ-WB", "STOI", "DNSMOS OVRL")):
        for name, rows in pts.items():
            ax.plot([r["cpu_s"] / 60 for r in rows], [r.get(key) for r in rows], marker="o", label=name)
        ax.axhline(gl.get(key, float("nan")), color="grey", ls="--", label="Griffin-Lim 32")
        if key.endswith("dnsmos_ovrl") and gl.get("original_dnsmos_ovrl"):
            ax.axhline(gl["original_dnsmos_ovrl"], color="black", ls=":", label="recordings")
        ax.set(xlabel="one-thread training CPU-minutes", ylabel=label, title=f"tokenized speech: {label}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Vocoders trained on `default`'s decoded mels, held-out speakers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"curves: {path}")


if __name__ == "__main__":
    main()
