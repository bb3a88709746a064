"""Quality per bit: rows of tokenizer designs at one CPU budget, scored on held-out speakers.

The protocol of the quality-per-bit search (benchmarks/RESULTS.md, "Quality per bit"):

- data: the released ``default`` model's data (``scripts/release_data.py speech16k``): all the
  real multi-speaker speech of ../shared/data at 16 kHz, split by whole speakers; the test
  speakers (LibriTTS test-clean, LibriSpeech dev-clean, 5 VCTK) are never trained or tuned on.
  ``ljspeech22k`` rows use the LJSpeech data (held-out whole clips) and the HiFi-GAN front end.
- budget: every row trains for the same process CPU time of a one-thread run
  (``OMP_NUM_THREADS=1``, ``time.process_time``), which stays fair when the machine is busy;
  the steps reached are recorded. Rows run ``--parallel`` at a time, one thread each.
- score: ``spectok eval`` on the test split with Griffin-Lim (32 iterations): tokenized
  (wav -> codes -> mel -> audio) against copy synthesis (wav -> mel -> audio), PESQ-WB, STOI,
  and the validation log-mel L1 of the run.

Each row is an override of the FSQ design (``configs/tokenizer/speech16k-fsq.yaml``, the ``default``
of the first three runs); the row ``rvq5x2048`` is the residual-VQ design that became ``default``.

Usage::

    python benchmarks/bench_quality.py --rows base dec-deep --budget 900 --parallel 2
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from harness import PRESETS, engine_config, merge, spawn, spectok

REPO = Path(__file__).resolve().parents[1]

#: the earlier default's layout: columns of 2 frames (the encoder halves time) with 4 tokens each
T2 = {"model": {"channels": [96, 192], "strides": [2], "num_res_blocks": [0, 2], "groups": 4}}
#: the earlier default's loss: L1 alone
L1_ONLY = {"loss": {"delta_weight": 0.0}}

#: residual VQ, 5 stages of 2,048 codes (11 bits) on one 64-dim vector per column: 1,375 bit/s (`default`)
RVQ = {"model": {"groups": 1, "quantizer": {"type": "rvq", "num_quantizers": 5, "codebook_size": 2048, "dim": 64,
                                           "quantizer_dropout": 0.0, "ema": True, "kmeans_init": True}}}

# name -> (data set, overrides of the default preset). The first table's rows (RESULTS.md) were
# overrides of the earlier default (T2 layout, L1 alone); they are kept here as exactly those.
ROWS: dict[str, tuple[str, dict]] = {
    "base": ("speech16k", {}),
    # -- the first table: levers on the earlier default (2-frame columns x 4 tokens, L1) --------------
    "t2-l1": ("speech16k", merge(T2, L1_ONLY)),
    # 1. decoder capacity and context: 6 dilated residual blocks at the column rate
    "dec-deep": ("speech16k", merge(merge(T2, L1_ONLY), {"model": {"decoder_res_blocks": [0, 6],
                                                                    "decoder_dilations": [1, 3, 9]}})),
    # 2. encoder context: dilations 1, 3, 9 (the decoder kept as in base)
    "enc-ctx": ("speech16k", merge(merge(T2, L1_ONLY), {"model": {
        "num_res_blocks": [0, 3], "dilations": [1, 3, 9], "decoder_res_blocks": [0, 2], "decoder_dilations": [1, 3]}})),
    # 3. losses: plus time and frequency difference L1 (against over-smoothing)
    "t2-delta": ("speech16k", T2),
    # 4. token layout at the same bitrate: columns of 4 frames with 8 tokens each (L1 alone)
    "t4-g8": ("speech16k", L1_ONLY),
    # 6. data: LibriSpeech train-clean-100 alone against all the real speech
    "libri-only": ("speech16k-libri", merge(T2, L1_ONLY)),
    # -- levers on the current default (4-frame columns x 8 tokens, L1 + difference loss) -------------
    # 3c. the adversarial mel discriminator (PatchGAN, hinge + adaptive weight) from step 6,000
    "gan": ("speech16k", {"task": "vqgan", "discriminator": {"channels": 32, "n_layers": 3, "norm": "batch"},
                          "loss": {"disc_start": 6000, "disc_weight": 1.0, "adaptive_weight_max": 10000.0,
                                   "feature_matching_weight": 0.0},
                          "optim": {"discriminator": {"kind": "adam", "lr": 2.0e-4, "betas": [0.5, 0.9]}}}),
    # 4b. FSQ 8x8x8 (512 codes, 9 bits) with 6 tokens per column: 1,350 bit/s
    "fsq888-g6": ("speech16k", {"model": {"groups": 6, "quantizer": {"type": "fsq", "levels": [8, 8, 8], "dim": 3}}}),
    # 4c. residual VQ: 5 stages of 2,048 codes (11 bits) on one 64-dim vector per column: 1,375 bit/s
    "rvq5x2048": ("speech16k", RVQ),
    # 4d. residual VQ with smaller codebooks at the same rate: 6 stages of 512 codes (9 bits), 1,350 bit/s,
    # a third of the nearest-code work per column (encode speed)
    "rvq6x512": ("speech16k", merge(RVQ, {"model": {"quantizer": {"num_quantizers": 6, "codebook_size": 512}}})),
    # the rate-quality ladder of the residual-VQ design (the `default` since the fourth run):
    # 3 stages of 1,024 codes (750 bit/s), 5 x 2,048 (= rvq5x2048, 1,375), 10 x 2,048 (2,750), 20 x 2,048 (5,500)
    "rvq-0.7k": ("speech16k", merge(RVQ, {"model": {"quantizer": {"num_quantizers": 3, "codebook_size": 1024}}})),
    "rvq-2.8k": ("speech16k", merge(RVQ, {"model": {"quantizer": {"num_quantizers": 10}}})),
    "rvq-5.6k": ("speech16k", merge(RVQ, {"model": {"quantizer": {"num_quantizers": 20}}})),
    # the rate-quality ladder of the FSQ design (third run): 4, 8 (= base), 16 and 32 FSQ tokens per column
    "ladder-0.7k": ("speech16k", {"model": {"groups": 4}}),
    "ladder-2.8k": ("speech16k", {"model": {"groups": 16}}),
    "ladder-5.6k": ("speech16k", {"model": {"groups": 32}}),
}

#: published codecs near these rates (LibriSpeech test-clean, PESQ-WB / STOI; the quality-per-bit issue)
PUBLISHED = {"BigCodec": (1040, 2.68, 0.93), "X-codec2": (800, 2.43, 0.92), "Mimi (8 cb)": (1100, 2.25, 0.91),
             "WavTokenizer": (900, 2.13, 0.90), "EnCodec (2 cb)": (1500, 1.56, 0.85)}


def plot_ladder(rows: list[dict], out: Path) -> Path:
    """PESQ-WB and STOI against kbps: the measured rows as a line, the published codecs as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["bitrate"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "pesq", "PESQ-WB"), (axes[1], "stoi", "STOI")):
        ax.plot([r["bitrate"] / 1000 for r in rows], [r[f"tokenized_{key}"] for r in rows], "o-",
                label="spectok (tokenized, Griffin-Lim)")
        ax.axhline(rows[0][f"copy_{key}"], ls="--", c="gray", label="copy synthesis (Griffin-Lim)")
        for name, (bps, pesq, stoi) in PUBLISHED.items():
            ax.plot(bps / 1000, pesq if key == "pesq" else stoi, "x", c="C3")
            ax.annotate(name, (bps / 1000, pesq if key == "pesq" else stoi), fontsize=7)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("kbit/s")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    return out


def row_config(name: str) -> tuple[str, dict]:
    data, over = ROWS[name] if name in ROWS else ("speech16k", json.loads(name.split("=", 1)[1]))
    cfg = merge(yaml.safe_load((PRESETS / "speech16k-fsq.yaml").read_text()), over)
    cfg["model"]["mel"] = "hifigan-22k" if data == "ljspeech22k" else "speech-16k"
    return data, cfg


def prepared(data: str, work: Path) -> Path:
    """The prepared folder ``work/data`` of scripts/release_data.py's items (``-libri``: LibriSpeech-only train)."""
    from release_data import MEL, items_for

    from spectok.data.prepare import prepare

    out = work / data  # resumed: a finished folder is only checked
    base = data.removesuffix("-libri")
    items = items_for(base)
    if data.endswith("-libri"):  # the same valid and test speakers; train on LibriSpeech alone
        items = [it for it in items if it.split != "train" or it.speaker.startswith("LibriSpeech:")]
    report = prepare(items, out, mel=MEL[base], jobs=2, dtype="float16", progress=False)
    if not report.ok or report.failed:
        raise SystemExit(report.summary())
    return out


def run_row(name: str, budget: float, work: Path) -> dict:
    data, cfg = row_config(name)
    folder = prepared(data, REPO / "runs" / "data" / "release")
    tag = name if name in ROWS else f"custom-{abs(hash(name)) % 10**6}"
    if (work / "rows" / f"{tag}.json").exists():  # a row finished by an earlier, interrupted invocation
        return json.loads((work / "rows" / f"{tag}.json").read_text())
    run_dir, artifact = work / "runs" / tag, work / "models" / f"{tag}.safetensors"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    train = spawn({"name": name, "config": engine_config(copy.deepcopy(cfg), folder, 10**9, True),
                   "cpu_budget": budget, "threads": 1, "run_dir": str(run_dir), "artifact": str(artifact)})
    report = work / "eval" / tag
    spectok(["eval", "-t", str(artifact), "-v", "griffin-lim", str(folder), "-o", str(report), "-q", "--no-dnsmos"],
            1, work / "spectok.log")
    agg = json.loads((report / "report.json").read_text())["aggregate"]
    row = {"name": name, "data": data, "bitrate": train["bitrate"], "params": train["params"],
           "steps": train["steps"], "cpu_s": train["cpu_s"], "valid_l1": train["valid"]["l1"],
           "used": train["valid"].get("codebook/used_fraction")}
    for group in ("tokenized", "copy"):
        for key in ("pesq", "stoi"):
            row[f"{group}_{key}"] = agg.get(group, {}).get(key, {}).get("mean")
    (work / "rows").mkdir(exist_ok=True)
    (work / "rows" / f"{tag}.json").write_text(json.dumps(row, indent=1))
    return row


def print_row(r: dict) -> None:
    print(f"{r['name']:12s} {r['data']:16s} {r['bitrate']:7.0f} {r['params'] / 1e6:6.2f}M {r['steps']:6d} "
          f"{r['cpu_s']:6.0f} {r['valid_l1']:7.4f} {r['tokenized_pesq']:6.3f} {r['tokenized_stoi']:6.3f} "
          f"{r['copy_pesq']:6.3f} {r['copy_stoi']:6.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", nargs="+", default=list(ROWS),
                    help="row names (default: all) or 'NAME={json overrides of default}'")
    ap.add_argument("--budget", type=float, default=900.0, help="CPU seconds of one-thread training per row")
    ap.add_argument("--parallel", type=int, default=2, help="rows trained at once, one thread each")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "bench-quality")
    ap.add_argument("--plot", type=Path, help="also draw PESQ/STOI against kbps of the rows run into this PNG")
    args = ap.parse_args()
    for name in args.rows:
        row_config(name)  # fail early on a bad row
    for data in {row_config(n)[0] for n in args.rows}:
        prepared(data, REPO / "runs" / "data" / "release")
    t0 = time.time()
    print(f"## Quality per bit: {args.budget:.0f} CPU-s of one-thread training per row; Griffin-Lim; "
          "held-out speakers' test split")
    print(f"{'row':12s} {'data':16s} {'bit/s':>7s} {'params':>7s} {'steps':>6s} {'CPU s':>6s} {'val L1':>7s} "
          f"{'PESQ':>6s} {'STOI':>6s} {'copyP':>6s} {'copyS':>6s}")
    done = []
    with ThreadPoolExecutor(args.parallel) as pool:
        for row in pool.map(lambda n: run_row(n, args.budget, args.work), args.rows):
            print_row(row)
            done.append(row)
    if args.plot:
        print(f"plot: {plot_ladder(done, args.plot)}")
    print(f"(wall {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
