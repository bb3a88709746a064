"""Tokenizer presets on 2 CPU cores: training speed, and quality at a fixed CPU budget.

Two tables, every run through the one training engine (``spectok.training.engine.Trainer``),
each model in its own subprocess (so peak memory is per model and runs do not share state):

1. ``speed``: per preset, ``--speed-steps`` training steps at the preset's own batch size
   and crop on real data; reports steps/s (wall), CPU seconds per step, mel frames (or
   images) per second and the subprocess's peak resident memory. The VQGAN runs with its
   discriminator on (``disc_start`` set to 0) so the full two-phase step is timed.
2. ``budget``: each speech model trains for the same CPU time (process CPU seconds,
   ``time.process_time``, all threads; robust to other load on a shared machine), then is
   validated once over the whole held-out set: log-mel L1 and MSE (natural-log units, real
   frames only), codebook usage over the set, nominal bitrate. LJSpeech (22,050 Hz,
   HiFi-GAN front end) for the 22 kHz models; LibriSpeech (16 kHz) for the 16 kHz presets.

Candidates for ``default`` (all at the DCTTS preset's 1,205.9 bit/s) are defined below as
overrides of the DCTTS preset; ``default.yaml`` is the one chosen from this table.

Usage::

    python benchmarks/bench_tokenizers.py --budget 120 --speed-steps 4
    python benchmarks/bench_tokenizers.py --only budget --models dctts-spectrogram-vq default
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml
from harness import DATA, PRESETS, engine_config, merge, spawn

SPEECH_22K = ["dctts-spectrogram-vq", "grid-fsq", "default"]
SPEECH_16K = ["vqvae-l2arctic", "vqvae-speech-commands"]

def _grouped_1d(channels: list[int], **decoder) -> dict:
    """A 1-D candidate with 4 FSQ 5x5x5 tokens per column of 2 frames, Adam 5e-4 (overrides of the DCTTS preset)."""
    return {"task": "tokenizer",
            "model": {"class": "conv1d-vqvae", "channels": channels, "strides": [2], "num_res_blocks": [0, 2],
                      "dilations": [1, 3], "norm": "none", "groups": 4, **decoder,
                      "quantizer": {"type": "fsq", "levels": [5, 5, 5], "dim": 3}},
            "optim": {"generator": {"kind": "adam", "lr": 5.0e-4, "betas": [0.9, 0.99], "grad_clip": 1.0}}}


# Candidates for `default`, as overrides of the DCTTS preset (same front end and bitrate).
CANDIDATES: dict[str, dict] = {
    # The DCTTS architecture with a 10x larger learning rate: separates optimiser from architecture.
    "cand-dctts-lr2e-4": {"optim": {"generator": {"lr": 2.0e-4}, "discriminator": {"lr": 2.0e-4}}},
    # The same 4 x T/2 grid with a healthy codebook (EMA, k-means init, dead-code restart), no GAN.
    "cand-grid-ema": {
        "task": "tokenizer",
        "model": {"channels": [64, 128, 256], "num_res_blocks": [0, 1, 3], "norm": "none",
                  "quantizer": {"type": "vq", "codebook_size": 128, "dim": 64, "ema": True, "kmeans_init": True,
                                "dead_code_threshold": 0.1}},
        "optim": {"generator": {"kind": "adam", "lr": 5.0e-4, "betas": [0.9, 0.99], "grad_clip": 1.0}}},
    # The same grid with FSQ (levels 8 x 4 x 4 = 128 implicit codes per token): no codebook to collapse.
    "cand-grid-fsq": {
        "task": "tokenizer",
        "model": {"channels": [64, 128, 256], "num_res_blocks": [0, 1, 3], "norm": "none",
                  "quantizer": {"type": "fsq", "levels": [8, 4, 4], "dim": 3}},
        "optim": {"generator": {"kind": "adam", "lr": 5.0e-4, "betas": [0.9, 0.99], "grad_clip": 1.0}}},
    # FSQ with 5 x 5 x 5 = 125 codes per token (6.97 bits, 1,200.8 bit/s): evenly spread levels.
    "cand-grid-fsq555": {
        "task": "tokenizer",
        "model": {"channels": [64, 128, 256], "num_res_blocks": [0, 1, 3], "norm": "none",
                  "quantizer": {"type": "fsq", "levels": [5, 5, 5], "dim": 3}},
        "optim": {"generator": {"kind": "adam", "lr": 5.0e-4, "betas": [0.9, 0.99], "grad_clip": 1.0}}},
    # 1-D: mel bins as channels, time /2, residual VQ with 4 stages of 128 codes (4 x 7 bits).
    "cand-1d-rvq4": {
        "task": "tokenizer",
        "model": {"class": "conv1d-vqvae", "channels": [256, 256], "strides": [2], "num_res_blocks": [2, 3],
                  "dilations": [1, 3, 9], "norm": "none",
                  "quantizer": {"type": "rvq", "num_quantizers": 4, "codebook_size": 128, "dim": 64,
                                "quantizer_dropout": 0.0, "ema": True, "kmeans_init": True,
                                "dead_code_threshold": 0.1}},
        "optim": {"generator": {"kind": "adam", "lr": 5.0e-4, "betas": [0.9, 0.99], "grad_clip": 1.0}}},
    # 1-D, time /4, 8 stages of 128 codes (8 x 7 bits at half the column rate).
    "cand-1d-rvq8": {
        "task": "tokenizer",
        "model": {"class": "conv1d-vqvae", "channels": [256, 256, 256], "strides": [2, 2],
                  "num_res_blocks": [1, 1, 3], "dilations": [1, 3, 9], "norm": "none",
                  "quantizer": {"type": "rvq", "num_quantizers": 8, "codebook_size": 128, "dim": 64,
                                "quantizer_dropout": 0.0, "ema": True, "kmeans_init": True,
                                "dead_code_threshold": 0.1}},
        "optim": {"generator": {"kind": "adam", "lr": 5.0e-4, "betas": [0.9, 0.99], "grad_clip": 1.0}}},
    # 1-D with the 2-D grid's token layout: each column of 2 frames carries 4 FSQ 5x5x5 codes
    # (groups=4, 1,200 bit/s) and a light encoder (encoding runs it alone; see bench_inference.py).
    # The symmetric 96/192-channel one is `default`.
    "cand-1d-g4-96-192": _grouped_1d([96, 192]),
    "cand-1d-g4-e128-d256": _grouped_1d([128, 128], decoder_channels=[256, 256], decoder_res_blocks=[1, 3]),
    "cand-1d-g4-e128-d384": _grouped_1d([128, 128], decoder_channels=[384, 384], decoder_res_blocks=[1, 3]),
}


def model_config(name: str) -> dict:
    if name in CANDIDATES:
        base = yaml.safe_load((PRESETS / "dctts-spectrogram-vq.yaml").read_text())
        cfg = merge(base, CANDIDATES[name])
        if cfg["task"] != "vqgan":
            for key in ("discriminator",):
                cfg.pop(key, None)
            cfg["loss"] = {k: v for k, v in cfg["loss"].items() if not k.startswith(("disc", "adaptive", "feature"))}
            cfg["optim"].pop("discriminator", None)
        return cfg
    path = PRESETS / f"{name}.yaml"
    if not path.exists():
        raise SystemExit(f"no preset {path} and no candidate named {name!r}")
    return yaml.safe_load(path.read_text())


# ---- data ----------------------------------------------------------------------------------
def prepared(work: Path, mel: str) -> Path:
    """A prepared folder for ``mel``: LJSpeech (22 kHz front ends) or LibriSpeech (16 kHz), cached in ``work``."""
    from spectok.audio.mel import MelConfig
    from spectok.data.corpora import CorpusItem
    from spectok.data.prepare import prepare

    config = MelConfig.coerce(mel)
    out = work / f"prepared-{config.fingerprint()}"
    if (out / "done").exists():
        return out
    if config.sample_rate == 22050:
        files = sorted((DATA / "LJSpeech-1.1" / "wavs").glob("*.wav"))
        valid = set(files[-5:])  # LJ001-0023, LJ001-0024, LJ002-0020, LJ002-0035, LJ050-0131
    else:
        files = sorted((DATA / "LibriSpeech").rglob("*.flac"))[:120]
        valid = set(files[::8])
    if not files:
        raise SystemExit(f"no audio under {DATA}: the benchmark needs ../shared/data")
    items = [CorpusItem(id=f.stem, path=f, speaker=f.stem.split("-")[0], split="valid" if f in valid else "train")
             for f in files]
    report = prepare(items, out, mel=config, dtype="float32", progress=False, jobs=1)
    if report.failed:
        raise SystemExit(report.summary())
    (out / "done").write_text(json.dumps({"train": len(files) - len(valid), "valid": len(valid)}))
    return out


def data_for(cfg: dict, work: Path) -> Path:
    if cfg["task"] == "image-tokenizer":
        return DATA / "cifar-10-batches-py"
    return prepared(work, cfg["model"]["mel"])


def speed(names: list[str], steps: int, work: Path) -> None:
    print(f"\n## Training speed: {steps} steps timed after 1 warm-up step, preset batch and crop, 2 threads")
    print(f"{'preset':26s} {'batch x frames':>15s} {'params':>8s} {'steps/s':>8s} {'CPU s/step':>10s} "
          f"{'frames/s':>9s} {'peak RSS MiB':>12s}")
    for name in names:
        cfg = model_config(name)
        if cfg["task"] == "vqgan":
            cfg["loss"]["disc_start"] = 0
        data = data_for(cfg, work)
        res = spawn({"name": name, "config": engine_config(cfg, data, 1 + steps, False),
                     "run_dir": str(work / f"s-{name}-{int(time.time())}")})
        (cpu0, wall0), (cpu1, wall1) = res["marks"][0], res["marks"][-1]
        wall, cpu = max(wall1 - wall0, 1e-9), cpu1 - cpu0
        b = cfg["train"]["batch_size"]
        frames = 1 if cfg["task"] == "image-tokenizer" else cfg.get("data", {}).get("crop_frames", 64)
        unit = f"{b} images" if frames == 1 else f"{b} x {frames}"
        print(f"{name:26s} {unit:>15s} {res['params'] / 1e6:7.2f}M {steps / wall:8.3f} {cpu / steps:10.2f} "
              f"{b * frames * steps / wall:9.0f} {res['peak_rss_mib']:12.0f}", flush=True)


def budget_table(names: list[str], budget: float, work: Path, mel: str | None = None) -> None:
    print(f"\n## Fixed budget: {budget:.0f} CPU seconds of training each, then one validation over the held-out set")
    print(f"{'model':24s} {'data':11s} {'bit/s':>7s} {'steps':>6s} {'CPU s':>6s} {'wall s':>7s} {'val L1':>7s} "
          f"{'val MSE':>8s} {'codes used':>10s} {'dead':>5s} {'entropy b/s':>11s}")
    for name in names:
        cfg = model_config(name)
        if mel:  # same architecture over another front end (and so another corpus)
            cfg["model"]["mel"] = mel
        data = data_for(cfg, work)
        res = spawn({"name": name, "config": engine_config(cfg, data, 10**9, True), "cpu_budget": budget,
                     "run_dir": str(work / f"b-{name}-{int(time.time())}")})
        v = res["valid"]
        corpus = "LJSpeech" if "22k" in str(cfg["model"]["mel"]) else "LibriSpeech"
        print(f"{name:24s} {corpus:11s} {res['bitrate']:7.1f} {res['steps']:6d} {res['cpu_s']:6.0f} "
              f"{res['wall_s']:7.0f} {v['l1']:7.4f} {v['mse']:8.4f} {v['codebook/used_fraction']:10.3f} "
              f"{v['codebook/dead_codes']:5.0f} {v.get('codebook/bits_per_second', float('nan')):11.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["speed", "budget"], help="run one table only")
    ap.add_argument("--models", nargs="*", help="presets or candidate names (default: all of the table)")
    ap.add_argument("--budget", type=float, default=120.0, help="CPU seconds of training per model")
    ap.add_argument("--mel", help="budget table: run every model over this mel preset instead of its own "
                    "(speech-16k trains on the LibriSpeech subset: ~25 min of speech instead of LJSpeech's 3)")
    ap.add_argument("--speed-steps", type=int, default=4)
    ap.add_argument("--work", default="/tmp/spectok-bench-tokenizers", help="scratch folder (prepared data, runs)")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"torch threads 2; CPU: {os.cpu_count()} visible cores; data: {DATA}")
    if args.only in (None, "speed"):
        speed(args.models or sorted(p.stem for p in PRESETS.glob("*.yaml")), args.speed_steps, work)
    if args.only in (None, "budget"):
        names = args.models or [*SPEECH_22K, *CANDIDATES, *SPEECH_16K]
        budget_table([n for n in names if n != "default" or (PRESETS / "default.yaml").exists()], args.budget, work,
                     args.mel)


if __name__ == "__main__":
    main()
