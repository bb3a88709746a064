"""A vocoder that knows the tokens: the iSTFT vocoder trained on a tokenizer's *decoded* log-mels.

Lever 5 of the quality-per-bit search (benchmarks/RESULTS.md, "Quality per bit"):

1. ``spectok prepare-decoded -t TOKENIZER``: the released ``default`` model's training data with
   every log-mel replaced by ``decode(encode(mel))`` (the real waveform stays the target);
2. the ``istft`` vocoder preset on the tokenizer's front end, trained on that copy for the same
   budget as every quality row (``--budget`` process CPU-seconds of one thread);
3. ``spectok eval`` of the tokenizer on the held-out speakers with that vocoder and with
   Griffin-Lim: tokenized (codes -> mel -> vocoder) and copy synthesis (true mel -> vocoder).

Usage::

    python benchmarks/bench_token_vocoder.py --budget 900
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml
from harness import PRESETS, engine_config, spawn, spectok  # spectok(ARGS, THREADS, LOG) -> child CPU-s

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "runs" / "data" / "release" / "speech16k"


def scores(report: Path) -> dict:
    agg = json.loads((report / "report.json").read_text())["aggregate"]
    return {f"{g}_{k}": agg.get(g, {}).get(k, {}).get("mean") for g in ("tokenized", "copy") for k in ("pesq", "stoi")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-t", "--tokenizer", default="default")
    ap.add_argument("--budget", type=float, default=900.0, help="CPU seconds of one-thread vocoder training")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "bench-token-vocoder")
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: run `python scripts/release_data.py speech16k {DATA}` first")
    t0 = time.time()
    decoded, log = args.work / "decoded", args.work / "spectok.log"  # the children's output
    spectok(["prepare-decoded", str(DATA), str(decoded), "-t", args.tokenizer], 2, log)
    cfg = yaml.safe_load((PRESETS.parent / "vocoder" / "istft.yaml").read_text())
    cfg["model"]["mel"] = "speech-16k"
    cfg["data"].update(segment_samples=8000, valid_segment_samples=32000)  # multiples of the 160-sample hop
    artifact = args.work / "istft-decoded.safetensors"
    train = spawn({"name": "istft-decoded", "config": engine_config(cfg, decoded, 10**9, True),
                   "cpu_budget": args.budget, "threads": 1, "run_dir": str(args.work / "run"),
                   "artifact": str(artifact)})
    rows = {}
    for name, voc in (("Griffin-Lim (32 iterations)", "griffin-lim"), ("iSTFT on decoded mels", str(artifact))):
        out = args.work / "eval" / ("gl" if voc == "griffin-lim" else "istft")
        spectok(["eval", "-t", args.tokenizer, "-v", voc, str(DATA), "-o", str(out), "-q", "--no-dnsmos"], 2, log)
        rows[name] = scores(out)
    print(f"## Vocoder on decoded mels: {args.tokenizer}, iSTFT trained {train['steps']} steps in "
          f"{train['cpu_s']:.0f} CPU-s (one thread); held-out speakers' test split; load average "
          f"{os.getloadavg()[0]:.1f}")
    print("| vocoder | tokenized PESQ-WB | tokenized STOI | copy PESQ-WB | copy STOI |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['tokenized_pesq']:.3f} | {r['tokenized_stoi']:.3f} | {r['copy_pesq']:.3f} | "
              f"{r['copy_stoi']:.3f} |")
    from spectok.tokenizers import load_tokenizer

    (args.work / "result.json").write_text(json.dumps({"train": {k: train[k] for k in ("steps", "cpu_s")},
                                                       "tokenizer": load_tokenizer(args.tokenizer).fingerprint(),
                                                       "rows": rows}, indent=1))
    print(f"(wall {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
