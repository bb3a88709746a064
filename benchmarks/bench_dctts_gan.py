"""The DCTTS Spectrogram VQ's adversarial phase on real LJSpeech, against the same run without it.

Two runs of the ``dctts-spectrogram-vq`` preset on the LJSpeech release data
(``scripts/release_data.py ljspeech22k``: the 27 clips of ../shared/data and ``extra/LJSpeech-1.1``,
whole clips held out), identical but for the discriminator:

- ``gan``: the PatchGAN mel discriminator (hinge loss, adaptive weight) starts at ``--disc-start``
  (the preset's 10,000 is moved early, as the seed's short runs need) and trains for ``--steps``;
- ``no-gan``: ``loss.disc_start`` beyond the last step, so only L1 + the quantizer loss train;
- with ``--ema``, also ``no-gan-ema``: ``no-gan`` with the project's codebook tools in place of the
  seed's plain, gradient-trained codebook (EMA updates, k-means init, dead-code restart at 0.1).

The runs train with one thread each (resumable: re-running the script continues them), then the last
checkpoint of each (the same step; the best-by-L1 checkpoint of a GAN run would pick the step
before the discriminator starts) is exported and scored by ``spectok eval`` with Griffin-Lim on the
held-out clips. Prints a table and what the adversarial losses did (the discriminator's hinge loss:
2 = chance, 0 = it wins outright; the adaptive weight's range), and draws the curves to ``--plot``.

Usage::

    python benchmarks/bench_dctts_gan.py --disc-start 250 --steps 2250 --plot benchmarks/dctts-gan.png
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import release_sets, spectok, training_cpu_s  # one thread each: spectok(ARGS, 1, log)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "runs" / "data" / "release" / "ljspeech22k"

EMA_CODEBOOK = ["--set", "model.quantizer.ema=true", "--set", "model.quantizer.kmeans_init=true",
                "--set", "model.quantizer.dead_code_threshold=0.1"]


def train(run: Path, steps: int, disc_start: int, overrides: list[str]) -> None:
    """Train (or resume) one run to ``steps``; a no-op when it is there."""
    common = ["--steps", str(steps), "--threads", "1", "--set", "train.progress=false"]
    log = run.parent / f"{run.name}.log"
    if (run / "checkpoints").is_dir() and any((run / "checkpoints").glob("step-*.pt")):
        spectok(["train", "tokenizer", "--out", str(run), "--resume", *common], 1, log)
        return
    spectok(["train", "tokenizer", "--config", "dctts-spectrogram-vq", "--data", str(DATA), "--out", str(run),
             *common, "--set", f"loss.disc_start={disc_start}", "--set", "train.log_every=25",
             "--set", "train.valid_every=250", "--set", "train.checkpoint_every=250",
             "--set", "train.media_every=1000", *overrides], 1, log)


def records(run: Path, event: str) -> list[dict]:
    with open(run / "metrics.jsonl", encoding="utf-8") as f:
        return [r for r in map(json.loads, f) if r.get("event") == event]


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if key in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def adversarial_summary(run: Path, disc_start: int) -> dict:
    """How the adversarial terms behaved after the discriminator started."""
    train_rows = [r for r in records(run, "train") if r["step"] > disc_start]
    _, d = series(train_rows, "train/discriminator/total")
    _, lam = series(train_rows, "train/generator/lambda")
    _, real = series(train_rows, "train/discriminator/d_real")
    _, fake = series(train_rows, "train/discriminator/d_fake")
    tail = d[-len(d) // 4:] if d else []
    return {"logged_steps": len(d), "d_hinge_mean_last_quarter": sum(tail) / len(tail) if tail else None,
            "d_hinge_min": min(d) if d else None,
            "d_real_minus_fake_mean": (sum(real) - sum(fake)) / len(real) if real else None,
            "lambda_min": min(lam) if lam else None, "lambda_max": max(lam) if lam else None,
            "lambda_finite": all(math.isfinite(x) for x in lam)}


def plot(runs: dict[str, Path], disc_start: int, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(20, 7.5))
    panels = [("train/generator/rec", "train L1 (log-mel)", "train"), ("l1", "validation L1", "valid"),
              ("train/generator/q_perplexity", "codebook perplexity of 128 (train batch)", "train"),
              ("train/generator/q_commitment", "commitment: mean squared latent-code distance", "train"),
              ("codebook/used_fraction", "codes used (validation)", "valid"),
              ("train/discriminator/total", "discriminator hinge loss (2 = chance)", "train"),
              ("train/generator/gan_g", "generator adversarial loss", "train"),
              ("train/generator/lambda", "adaptive weight", "train")]
    colors = {name: f"C{i}" for i, name in enumerate(runs)}  # one colour per run in every panel
    for ax, (key, title, event) in zip(axes.flat, panels):
        for name, run in runs.items():
            rows = records(run, event)
            xs, ys = series(rows, f"valid/{key}" if event == "valid" else key)
            if key.startswith("train/discriminator") and name == "gan":
                for extra, style in (("train/discriminator/d_real", ":"), ("train/discriminator/d_fake", "--")):
                    ex, ey = series(rows, extra)
                    ax.plot(ex, ey, style, c="gray", lw=0.8, label=f"{name} {extra.rsplit('/', 1)[1]}")
            if xs:
                ax.plot(xs, ys, lw=1, c=colors[name], label=name)
        ax.axvline(disc_start, c="gray", ls="--", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        if key.endswith(("lambda", "commitment")):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"dctts-spectrogram-vq on LJSpeech: discriminator from step {disc_start} (dashed line) "
                 "against the same run without it (no-gan-ema: no GAN, EMA codebook tools)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--disc-start", type=int, default=250, help="step the discriminator starts in the GAN run")
    ap.add_argument("--steps", type=int, default=2250, help="training steps of every run")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "dctts-gan",
                    help="folder of the runs, their artifacts and reports (an interrupted benchmark resumes in it)")
    ap.add_argument("--plot", type=Path, help="draw the curves of the runs into this PNG")
    ap.add_argument("--ema", action="store_true",
                    help="also train no-gan-ema: no GAN, EMA codebook with k-means init and dead-code restart")
    args = ap.parse_args()
    if args.steps - args.disc_start < 1:
        ap.error("--steps must exceed --disc-start")
    release_sets().main(["ljspeech22k", str(DATA), "-j", "2"])
    args.work.mkdir(parents=True, exist_ok=True)
    never = 10 ** 9  # a discriminator start beyond the last step
    variants = {"gan": (args.disc_start, []), "no-gan": (never, [])}  # name -> (disc_start, overrides)
    if args.ema:
        variants["no-gan-ema"] = (never, EMA_CODEBOOK)
    runs = {n: args.work / n for n in variants}
    t0 = time.time()
    with ThreadPoolExecutor(2) as pool:  # one thread each, two side by side
        list(pool.map(lambda n: train(runs[n], args.steps, *variants[n]), runs))
    table = []
    for name, run in runs.items():
        artifact = args.work / f"{name}.safetensors"
        spectok(["export", str(run), "-o", str(artifact), "--checkpoint", "last"], 1, args.work / "export.log")
        report = args.work / f"eval-{name}"
        if not (report / "report.json").is_file():
            spectok(["eval", "-t", str(artifact), "-v", "griffin-lim", str(DATA), "-o", str(report), "-q",
                     "--no-dnsmos"], 1, args.work / "eval.log")
        agg = json.loads((report / "report.json").read_text())["aggregate"]
        valid = records(run, "valid")[-1]
        cpu = training_cpu_s(records(run, "train"))
        table.append((name, valid["step"], valid.get("valid/l1"), agg["tokenized"]["pesq"]["mean"],
                      agg["tokenized"]["stoi"]["mean"], agg["tokenized"].get("mfcc_dist_db", {}).get("mean"), cpu))
    print(f"## dctts-spectrogram-vq, discriminator from step {args.disc_start}, {args.steps} steps, Griffin-Lim")
    print(f"{'run':10s} {'step':>6s} {'val L1':>7s} {'PESQ-WB':>8s} {'STOI':>6s} {'MFCC dist. dB':>7s} {'CPU s':>7s}")
    for name, step, l1, pesq, stoi, mcd, cpu in table:
        print(f"{name:10s} {step:6d} {l1:7.4f} {pesq:8.3f} {stoi:6.3f} {(mcd or float('nan')):7.2f} {cpu:7.0f}")
    print("adversarial terms after the start:", json.dumps(adversarial_summary(runs["gan"], args.disc_start)))
    if args.plot:
        print(f"plot: {plot(runs, args.disc_start, args.plot)}")
    print(f"(wall {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
