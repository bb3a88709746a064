"""The decode half of `default`: codes -> audio with every vocoder, quality, speed and latency in one run.

For each row (Griffin-Lim from random phases at 8/16/32 iterations, Griffin-Lim from the
phase-gradient start at 0/10/16/32, and every ``--vocoder NAME=ARTIFACT``), on the held-out
speakers of `default`'s release data (its test split: whole speakers never trained on):

- quality (the baseline, the phase-gradient start at 0, 10 and 32 iterations, and every trained
  vocoder): PESQ-WB, STOI and DNSMOS OVRL (mean and 95 % interval over clips) of tokenized speech
  (audio -> codes -> decoded log-mel -> vocoder) and of copy synthesis (audio -> log-mel ->
  vocoder), beside the recordings' own DNSMOS;
- speed: codes -> audio (the tokenizer's decoder and the vocoder) on ~10 s of the held-out
  speech, ``--threads`` threads, best of ``--repeats``, as x real time and against Griffin-Lim
  (32 iterations, random phases: the paired vocoder before this bench existed);
- streaming: the algorithmic latency of ``Pipeline.stream_decode`` (decoder and vocoder) and its
  real-time factor when fed one token column (40 ms) at a time, checked equal to the
  whole-file decode.

Every figure comes from this one process, so the ratios are side by side.

Usage::

    python benchmarks/bench_decode.py --limit 60 --vocoder istft=runs/curves/istft/step-10800.safetensors
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "runs" / "data" / "release" / "speech16k"
#: Griffin-Lim rows: name -> constructor options
GRIFFIN_LIM = {
    "Griffin-Lim 8, random phases": dict(n_iter=8, init="random"),
    "Griffin-Lim 16, random phases": dict(n_iter=16, init="random"),
    "Griffin-Lim 32, random phases": dict(n_iter=32, init="random"),
    "Griffin-Lim 0, phase-gradient start": dict(n_iter=0, init="pghi"),
    "Griffin-Lim 10, phase-gradient start": dict(n_iter=10, init="pghi"),
    "Griffin-Lim 16, phase-gradient start": dict(n_iter=16, init="pghi"),
    "Griffin-Lim 32, phase-gradient start": dict(n_iter=32, init="pghi"),
}
BASELINE = "Griffin-Lim 32, random phases"
#: the rows scored for quality (every row is timed): the baseline, the phase-gradient start at the
#: settings the docs quote, and every trained vocoder
QUALITY_GL = ("Griffin-Lim 32, random phases", "Griffin-Lim 0, phase-gradient start",
              "Griffin-Lim 10, phase-gradient start", "Griffin-Lim 32, phase-gradient start")


def held_out(limit: int | None, stride: int = 1) -> list[np.ndarray]:
    """The test split's waveforms at 16 kHz, trimmed as prepared (sorted by id; every ``stride``-th)."""
    from spectok.audio.io import load_audio
    from spectok.data.prepared import open_prepared

    ps = open_prepared(DATA)
    rows = ps.split("test")[::stride][:limit]
    return [load_audio(r["path"], ps.mel_config.sample_rate)[0][r["trim_start"]:r["trim_end"]] for r in rows]


def vocoders(extra: list[str], mel_config) -> dict[str, torch.nn.Module]:
    from spectok.vocoders import GriffinLim, load_vocoder

    out = {name: GriffinLim(mel_config, **kw).eval() for name, kw in GRIFFIN_LIM.items()}
    for spec in extra:
        name, _, path = spec.partition("=")
        out[name] = load_vocoder(path, mel_config=mel_config)
    return out


def quality(pipe, vocs: dict, wavs: list[np.ndarray]) -> tuple[dict, list[float]]:
    """``{row: {group_metric: [values]}}`` and the recordings' DNSMOS OVRL per clip."""
    from spectok.evaluation.metrics import dnsmos_scores, waveform_metrics

    sr, fmax = pipe.sample_rate, pipe.mel_config.fmax
    scores: dict[str, dict[str, list[float]]] = {name: {} for name in vocs}
    recordings = []
    for i, wav in enumerate(wavs):
        recordings.append(dnsmos_scores(wav, sr)["ovrl"].value)
        tokens = pipe.encode(wav, pipe.sample_rate)
        mels = {"tokenized": pipe.decode_mel(tokens.codes)[None], "copy": pipe.log_mel(wav)[None]}
        for name, voc in vocs.items():
            for group, mel in mels.items():
                with torch.inference_mode():
                    y = voc(mel[..., : mels["copy"].shape[-1]])[0].numpy()[: len(wav)]
                y = np.pad(y, (0, len(wav) - len(y)))
                for k, m in waveform_metrics(wav, y, sr, False, fmax, dnsmos=True).items():
                    if k in ("pesq", "stoi", "dnsmos_ovrl") and m.value is not None:
                        scores[name].setdefault(f"{group}_{k}", []).append(m.value)
        print(f"  clip {i + 1}/{len(wavs)}", flush=True)
    return scores, recordings


def timed(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def speed_and_streaming(pipe, vocs: dict, speech: np.ndarray, repeats: int) -> dict[str, dict]:
    """Codes -> audio x real time, and the stream's latency, x real time in 40 ms steps, max |stream - whole|."""
    from spectok import Pipeline

    seconds = len(speech) / pipe.sample_rate
    tokens = pipe.encode(speech, pipe.sample_rate)
    out = {}
    for name, voc in vocs.items():
        p = Pipeline(pipe.tokenizer, voc)
        row = {"x_realtime": seconds / timed(lambda p=p: p.decode(tokens), repeats)}
        if voc.receptive_field is not None:
            whole = p.decode(tokens)
            cols = (tokens.codes[:, j:j + 1] for j in range(tokens.codes.shape[1]))
            dec = p.stream_decoder(step_frames=int(p.tokenizer.time_downsample))  # one column's frames
            t0 = time.perf_counter()
            parts = [dec.push(c) for c in cols]
            parts.append(dec.finish(tokens.num_samples))
            row["stream_x_realtime"] = seconds / (time.perf_counter() - t0)
            row["stream_latency_ms"] = 1000 * dec.latency_seconds
            row["stream_max_diff"] = float(np.abs(np.concatenate(parts) - whole).max())
        out[name] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocoder", action="append", default=[], metavar="NAME=ARTIFACT", help="a trained vocoder row")
    ap.add_argument("--limit", type=int, help="score only the first N held-out clips (default: all 60)")
    ap.add_argument("--stride", type=int, default=1, help="score every N-th held-out clip (default 1: all)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the speed columns (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed decodes per row (the best is kept)")
    ap.add_argument("--skip-quality", action="store_true", help="speed and streaming only")
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: run `python scripts/release_data.py speech16k {DATA}` first")
    import spectok
    from spectok import Pipeline
    from spectok.evaluation.metrics import summarize

    torch.set_num_threads(args.threads)
    tok = spectok.load_tokenizer("default")
    pipe = Pipeline(tok)
    vocs = vocoders(args.vocoder, tok.mel_config)
    wavs = held_out(args.limit, args.stride)
    speech = np.concatenate(wavs)[: 10 * pipe.sample_rate]
    t0 = time.time()
    speed = speed_and_streaming(pipe, vocs, speech, args.repeats)
    base = speed[BASELINE]["x_realtime"]
    print(f"## Codes -> audio with `default` ({len(speech) / pipe.sample_rate:.1f} s of held-out speech, "
          f"{args.threads} threads, best of {args.repeats}; load average {os.getloadavg()[0]:.1f})")
    print("| vocoder | x real time | vs GL 32 random | stream latency | stream x real time (40 ms steps) | "
          "max abs stream - whole |")
    print("|---|---|---|---|---|---|")
    for name, r in speed.items():
        stream = (f"{r['stream_latency_ms']:.0f} ms | {r['stream_x_realtime']:.1f} | {r['stream_max_diff']:.1e}"
                  if "stream_latency_ms" in r else "- | - | -")
        print(f"| {name} | {r['x_realtime']:.0f} | {r['x_realtime'] / base:.2f} | {stream} |")
    if args.skip_quality:
        return
    torch.set_num_threads(1)
    scored = {k: v for k, v in vocs.items() if k in QUALITY_GL or k not in GRIFFIN_LIM}
    scores, recordings = quality(pipe, scored, wavs)

    def cell(values: list[float]) -> str:
        s = summarize(values)
        return f"{s.mean:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]" if s.n > 1 else "-"

    print(f"\n## Held-out quality ({len(wavs)} clips of unseen speakers; the recordings' DNSMOS OVRL "
          f"{cell(recordings)}); load average {os.getloadavg()[0]:.1f}")
    print("| vocoder | tokenized PESQ-WB | tokenized STOI | tokenized DNSMOS | copy PESQ-WB | copy STOI | "
          "copy DNSMOS |")
    print("|---|---|---|---|---|---|---|")
    for name, s in scores.items():
        cells = [cell(s.get(f"{g}_{k}", [])) for g in ("tokenized", "copy") for k in ("pesq", "stoi", "dnsmos_ovrl")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"(wall {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
