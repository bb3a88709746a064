"""Codebook health on real speech: plain VQ as the seed systems do it against spectok's quantizers.

The same small frame-level conv encoder/decoder is trained for the same number of steps, with
the same data order and optimizer, on log-mel frames of LibriSpeech clips from ../shared/data
(``spectok.audio.load_audio`` + ``MelSpectrogram("speech-16k")``, 100 frames/s), once per quantizer:

- ``plain VQ (seeds)``: uniform init in [-1/K, 1/K], codebook trained by gradient, no EMA,
  no k-means, no restart (the VQ-VAE recipe the seed systems use),
- ``spectok VQ default``: ``VectorQuantizer(K, D)`` with its defaults,
- a few other spectok quantizers (cosine factorized VQ, FSQ, residual VQ) for reference.

After training, every quantizer is run in eval mode over all training frames and held-out
frames; usage is counted with :class:`CodebookStats` over the whole set (not per batch).
Printed side by side: fraction of codes used, perplexity (and as a fraction of K), entropy,
held-out reconstruction MSE of the standardised log-mel, and training wall time.

Run: ``.venv/bin/python benchmarks/bench_codebook.py [--files 40 --steps 600 --k 512]``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import torch
from torch import nn

from spectok.audio import MelSpectrogram, load_audio
from spectok.quantizers import CodebookStats, build_quantizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "LibriSpeech"


def load_frames(n_files: int, seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Log-mels ``[80, T]`` of ``n_files`` LibriSpeech clips, split 85 / 15 % by file (train, held-out)."""
    files = sorted(DATA.rglob("*.flac"))
    if not files:
        sys.exit(f"no LibriSpeech clips under {DATA}: this benchmark reads ../shared/data beside the repo")
    random.Random(seed).shuffle(files)
    files = files[:n_files]
    mel = MelSpectrogram("speech-16k")
    mels = [mel(torch.from_numpy(load_audio(f, 16000)[0]))[0] for f in files]
    n_val = max(1, round(0.15 * len(mels)))
    return mels[n_val:], mels[:n_val]


class FrameAutoencoder(nn.Module):
    """Small conv encoder/decoder at the mel frame rate: ``[B, 80, T] -> [B, D, T] -> [B, 80, T]``."""

    def __init__(self, n_mels: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv1d(n_mels, hidden, 3, padding=1), nn.GELU(),
                                     nn.Conv1d(hidden, hidden, 3, padding=1), nn.GELU(), nn.Conv1d(hidden, dim, 1))
        self.decoder = nn.Sequential(nn.Conv1d(dim, hidden, 3, padding=1), nn.GELU(),
                                     nn.Conv1d(hidden, hidden, 3, padding=1), nn.GELU(),
                                     nn.Conv1d(hidden, n_mels, 3, padding=1))


def crops(mels: list[torch.Tensor], batch: int, length: int, gen: random.Random) -> torch.Tensor:
    """``[batch, 80, length]`` random crops."""
    out = []
    for _ in range(batch):
        m = mels[gen.randrange(len(mels))]
        s = gen.randrange(max(1, m.shape[1] - length))
        out.append(m[:, s : s + length])
    return torch.stack(out)


def train_and_measure(name: str, qcfg: dict, train: list[torch.Tensor], val: list[torch.Tensor], args) -> dict:
    torch.manual_seed(args.seed)
    model = FrameAutoencoder(train[0].shape[0], qcfg["dim"], args.hidden)
    quant = build_quantizer(qcfg)
    opt = torch.optim.Adam(list(model.parameters()) + list(quant.parameters()), lr=args.lr)
    gen = random.Random(args.seed)
    t0 = time.perf_counter()
    model.train()
    quant.train()
    for _ in range(args.steps):
        x = crops(train, args.batch, args.length, gen)
        out = quant(model.encoder(x))
        loss = nn.functional.mse_loss(model.decoder(out.quantized), x) + out.loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    model.eval()
    quant.eval()
    stats = CodebookStats(quant.codebook_sizes)
    row = {"name": name, "K": quant.codebook_sizes, "seconds": seconds}
    with torch.no_grad():
        for m in train:
            stats.update(quant(model.encoder(m[None])).codes)
        err, n = 0.0, 0
        for m in val:
            out = quant(model.encoder(m[None]))
            err += float(nn.functional.mse_loss(model.decoder(out.quantized), m[None], reduction="sum"))
            n += m.numel()
    row.update(stats.summary(frame_rate=100.0))
    row["val_mse"] = err / n
    if len(quant.codebook_sizes) > 1:
        row["row0_used"] = row["row0/used_fraction"]
        row["row0_ppl"] = row["row0/perplexity"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--hidden", type=int, default=64, help="channels of the conv encoder/decoder")
    ap.add_argument("--k", type=int, default=512)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=32, help="frames per crop")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated row names to run (default all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # the seeds' tiny uniform init otherwise hits slow denormal arithmetic
    k, d = args.k, args.dim
    train, val = load_frames(args.files, args.seed)
    # Standardise each mel band with training statistics (the same input for every row).
    cat = torch.cat(train, dim=1)
    mean, std = cat.mean(dim=1, keepdim=True), cat.std(dim=1, keepdim=True)
    train = [(m - mean) / std for m in train]
    val = [(m - mean) / std for m in val]
    n_train = sum(m.shape[1] for m in train)
    n_val = sum(m.shape[1] for m in val)
    print(f"LibriSpeech subset: {len(train)} train clips ({n_train} frames, {n_train / 6000:.1f} min), "
          f"{len(val)} held-out clips ({n_val} frames); {args.steps} steps of {args.batch}x{args.length} frames; "
          f"K={k}, D={d}, torch threads {args.threads}")
    fsq_levels = {512: [8, 8, 8], 1024: [8, 5, 5, 5], 256: [8, 6, 5]}.get(k)
    rows = {
        "plain VQ (seeds)": {"type": "vq", "codebook_size": k, "dim": d, "ema": False, "kmeans_init": False,
                             "dead_code_threshold": 0.0},
        "spectok VQ default": {"type": "vq", "codebook_size": k, "dim": d},
        "VQ cosine, 8-d codes": {"type": "vq", "codebook_size": k, "dim": d, "codebook_dim": 8,
                                 "distance": "cosine"},
        "VQ default + rotation": {"type": "vq", "codebook_size": k, "dim": d, "rotation_trick": True},
        "RVQ 2 x K default": {"type": "rvq", "num_quantizers": 2, "codebook_size": k, "dim": d,
                              "quantizer_dropout": 0.5},
    }
    if fsq_levels:
        rows[f"FSQ {fsq_levels}"] = {"type": "fsq", "levels": fsq_levels, "dim": d}
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    results = []
    for name, cfg in rows.items():
        if only and name not in only:
            continue
        r = train_and_measure(name, cfg, train, val, args)
        results.append(r)
        print(f"  done {name}: {r['seconds']:.0f} s", flush=True)
    head = (f"| {'quantizer':<24} | {'codes':>9} | {'used':>7} | {'perplexity':>10} | {'ppl/K':>6} | "
            f"{'H bits':>6} | {'held-out MSE':>12} | {'train s':>7} |")
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in results:
        ks = r["K"]
        kdesc = f"{ks[0]}" if len(ks) == 1 else f"{len(ks)}x{ks[0]}"
        used, ppl = r["used_fraction"], r["perplexity"]
        if len(ks) > 1:  # per-stage figures for RVQ: the first stage
            used, ppl = r["row0_used"], r["row0_ppl"]
        print(f"| {r['name']:<24} | {kdesc:>9} | {100 * used:6.1f}% | {ppl:10.1f} | {ppl / ks[0]:6.2f} | "
              f"{r['entropy_bits']:6.2f} | {r['val_mse']:12.4f} | {r['seconds']:7.0f} |")
    base = next((r for r in results if r["name"] == "plain VQ (seeds)"), None)
    ours = next((r for r in results if r["name"] == "spectok VQ default"), None)
    if base and ours:
        k0 = ours["K"][0]
        print(f"targets for the default: used {100 * ours['used_fraction']:.1f}% (>= 95%: "
              f"{'met' if ours['used_fraction'] >= 0.95 else 'MISSED'}), perplexity {ours['perplexity']:.0f} "
              f"(>= {0.6 * k0:.0f}: {'met' if ours['perplexity'] >= 0.6 * k0 else 'MISSED'}), held-out MSE "
              f"{ours['val_mse']:.4f} vs plain {base['val_mse']:.4f} "
              f"({'met' if ours['val_mse'] <= base['val_mse'] else 'MISSED'}); "
              f"ratio plain/default MSE {base['val_mse'] / ours['val_mse']:.2f}, perplexity "
              f"{ours['perplexity'] / max(base['perplexity'], 1e-9):.1f}x")
    if any(math.isnan(r["val_mse"]) for r in results):
        sys.exit("a run produced NaN")


if __name__ == "__main__":
    main()
