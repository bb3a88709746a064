"""Streaming: algorithmic latency and real-time factor at small blocks, beside whole-file speed.

For each model (a released name, a preset or an artifact; untrained preset weights run at the
same speed as trained ones) it prints, measured in one run:

- the algorithmic latency of :class:`~spectok.inference.streaming.StreamEncoder` (audio that must
  follow a column before it is final) and of :class:`StreamDecoder` with the paired Griffin-Lim
  (32 iterations), in ms: fixed by the receptive fields, not by the machine;
- audio seconds per compute second for ``stream_encode`` at blocks of 10, 20, 100 and 1000 ms and
  for a whole-file ``encode`` of the same audio (the side-by-side ratio), and for
  ``stream_decode`` at 1, 5 and 25 columns per push (vocoding every frame, and in the default
  steps of half the vocoder's context) against a whole-file ``decode``;
- that the streamed codes equal the whole-file codes (a check, not a timing).

Usage::

    .venv/bin/python benchmarks/bench_streaming.py                    # default and ljspeech22k
    .venv/bin/python benchmarks/bench_streaming.py --models default --seconds 20
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

import spectok
from spectok.audio.io import load_audio
from spectok.vocoders import GriffinLim

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "LJSpeech-1.1" / "wavs"


def speech(rate: int, seconds: float) -> np.ndarray:
    """Real LJSpeech clips joined to ``seconds`` at ``rate``."""
    if not DATA.is_dir():
        raise SystemExit(f"real data not available: {DATA} is absent (benchmarks read ../shared/data)")
    parts, total = [], 0
    for p in sorted(DATA.glob("*.wav")):
        wav, _ = load_audio(p, rate)
        parts.append(wav)
        total += len(wav)
        if total >= seconds * rate:
            break
    return np.concatenate(parts)[: int(seconds * rate)]


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench(name: str, seconds: float) -> None:
    tok = spectok.load_tokenizer(name)
    pipe = spectok.Pipeline(tok, GriffinLim(tok.mel_config))
    rate = pipe.sample_rate
    wav = speech(rate, seconds)
    dur = len(wav) / rate
    enc, dec = pipe.stream_encoder(), pipe.stream_decoder()
    print(f"\n### {name}: {tok.mel_config.preset_name() or 'custom mel'}, {tok.bitrate:,.0f} bit/s, "
          f"{tok.frame_rate:g} columns/s")
    print(f"algorithmic latency: encode {enc.latency_seconds * 1000:.0f} ms, decode with Griffin-Lim "
          f"{dec.latency_seconds * 1000:.0f} ms (total {1000 * (enc.latency_seconds + dec.latency_seconds):.0f} ms)")
    pipe.encode(wav[:rate], rate)  # warm-up
    t_whole, whole = timed(lambda: pipe.encode(wav, pipe.sample_rate))
    print("| step | block | x real time | streamed / whole |")
    print("|---|---|---|---|")
    print(f"| encode | whole file ({dur:.0f} s) | {dur / t_whole:,.0f} | 1.00 |")
    for ms in (10, 20, 100, 1000):
        n = rate * ms // 1000
        t, cols = timed(lambda n=n: torch.cat(list(pipe.stream_encode(
            (wav[i:i + n] for i in range(0, len(wav), n)), rate)), -1))
        if not np.array_equal(cols.numpy(), whole.codes):
            raise SystemExit(f"{name}: streamed codes differ from whole-file codes at {ms} ms blocks")
        print(f"| stream_encode | {ms} ms | {dur / t:,.0f} | {t_whole / t:.2f} |")
    t_dec, _ = timed(lambda: pipe.decode(whole))
    print(f"| decode (Griffin-Lim) | whole file | {dur / t_dec:,.1f} | 1.00 |")
    codes = whole.codes
    for m, step in ((1, 1), (1, None), (5, None), (25, None)):
        t, _ = timed(lambda m=m, step=step: list(pipe.stream_decode(
            (codes[:, j:j + m] for j in range(0, codes.shape[1], m)), whole.num_samples, step_frames=step)))
        lat = pipe.stream_decoder(step).latency_seconds * 1000
        print(f"| stream_decode | {m} column{'s' if m > 1 else ''} ({1000 * m / tok.frame_rate:.0f} ms), "
              f"step {pipe.stream_decoder(step).step} frames (latency {lat:.0f} ms) | {dur / t:,.1f} | "
              f"{t_dec / t:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["default", "ljspeech22k"],
                    help="released names, presets or artifacts")
    ap.add_argument("--seconds", type=float, default=30.0, help="audio per measurement")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"## Streaming ({args.threads} thread{'s' if args.threads > 1 else ''}, {args.seconds:g} s of "
          f"LJSpeech; load average {os.getloadavg()[0]:.1f} at start)")
    for name in args.models:
        bench(name, args.seconds)
    print(f"\n(load average {os.getloadavg()[0]:.1f} at end)")


if __name__ == "__main__":
    main()
