"""Benchmark: the mel front end against librosa, and `spectok prepare` throughput.

    .venv/bin/python benchmarks/bench_prepare.py [--root ../shared/data/LibriSpeech] [--clips N]

1. The same LibriSpeech audio (loaded and resampled to the preset's rate once, outside
   the timing) through ``librosa.feature.melspectrogram`` (same STFT, filter bank and log)
   and through spectok's ``MelSpectrogram``, one torch thread (librosa's FFT is single
   threaded), in the same run; the ratio is librosa's time over ours.
2. ``prepare`` on the whole corpus into a temporary folder: audio seconds per wall second,
   with 1 and 2 worker processes, start-up (worker fork, imports) included.

Targets (issue 2): the front end at least as fast as librosa; prepare >= 300x real time
on 2 cores. Prints the machine and its load average, since other processes share it.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from spectok.audio import MelConfig, MelSpectrogram, load_audio  # noqa: E402
from spectok.data.corpora import open_corpus  # noqa: E402
from spectok.data.prepare import prepare  # noqa: E402


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def librosa_plain(wav: np.ndarray, c: MelConfig) -> np.ndarray:
    """The usual one-call librosa log-mel (``|X|`` without HiFi-GAN's eps: differs near silence)."""
    import librosa

    y = np.pad(wav, (c.padding, c.padding), mode=c.pad_mode)
    mel = librosa.feature.melspectrogram(y=y, sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length,
                                         win_length=c.win_length, window="hann", center=False, power=c.power,
                                         n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax,
                                         htk=c.mel_scale == "htk", norm=c.mel_norm)
    return np.log(np.maximum(mel, c.log_floor))


def librosa_logmel(wav: np.ndarray, c: MelConfig) -> np.ndarray:
    """The same log-mel through librosa: manual padding, ``librosa.stft``, the magnitude with
    HiFi-GAN's ``sqrt(|X|^2 + eps)``, ``librosa.feature.melspectrogram(S=...)``, log clamp."""
    import librosa

    y = np.pad(wav, (c.padding, c.padding), mode=c.pad_mode)
    spec = librosa.stft(y, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length, window="hann",
                        center=False)
    power = spec.real**2 + spec.imag**2
    mag = np.sqrt(power + c.magnitude_eps) if c.power == 1.0 else power
    mel = librosa.feature.melspectrogram(S=mag, sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin,
                                         fmax=c.fmax, htk=c.mel_scale == "htk", norm=c.mel_norm)
    return np.log(np.maximum(mel, c.log_floor))


def time_front_ends(wavs: list[np.ndarray], config: MelConfig) -> list[tuple[str, float, float]]:
    """(name, seconds, max |log-mel - float64 librosa's|) per implementation, one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ours64, ours32 = MelSpectrogram(config), MelSpectrogram(config, stft_dtype=torch.float32)
    runs = [("librosa.feature.melspectrogram(y=...)", lambda w: librosa_plain(w, config)),
            ("librosa stft + eps + melspectrogram(S=...)", lambda w: librosa_logmel(w, config)),
            ("  the same, float64 input (error reference)", lambda w: librosa_logmel(w.astype(np.float64), config)),
            ("spectok MelSpectrogram (float64 STFT, default)", lambda w: ours64(torch.from_numpy(w))[0].numpy()),
            ("spectok MelSpectrogram (float32 STFT)", lambda w: ours32(torch.from_numpy(w))[0].numpy())]
    seconds = [0.0] * len(runs)
    errors = [0.0] * len(runs)
    with torch.inference_mode():
        for _, fn in runs:
            fn(wavs[0])  # warm-up (numba, plans)
        for w in wavs:  # interleaved, so a change in the machine's load hits every implementation alike
            outs = []
            for k, (_, fn) in enumerate(runs):
                t0 = time.perf_counter()
                outs.append(fn(w))
                seconds[k] += time.perf_counter() - t0
            errors = [max(e, float(np.abs(o - outs[2]).max())) for e, o in zip(errors, outs)]
    torch.set_num_threads(threads)
    return [(name, sec, err) for (name, _), sec, err in zip(runs, seconds, errors)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "LibriSpeech"))
    ap.add_argument("--clips", type=int, default=60, help="clips for the front-end comparison")
    ap.add_argument("--preset", default="hifigan-22k")
    args = ap.parse_args()
    if not Path(args.root).is_dir():
        print(f"bench_prepare: {args.root} is absent; nothing to measure", file=sys.stderr)
        return 1
    corpus = open_corpus("librispeech", args.root)
    config = MelConfig.preset(args.preset)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs ({platform.processor() or 'unknown'}), "
          f"torch {torch.__version__}, python {platform.python_version()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")

    wavs = [load_audio(it.path, config.sample_rate)[0] for it in corpus.items()[: args.clips]]
    audio = sum(len(w) for w in wavs) / config.sample_rate
    print(f"\nfront end: {len(wavs)} LibriSpeech clips, {audio:.0f} s of audio at {config.sample_rate} Hz "
          f"({args.preset}), 1 thread")
    print(f"  {'implementation':48s} {'seconds':>8s} {'x real time':>12s} {'speed vs (a)':>13s} "
          f"{'speed vs (b)':>13s} {'max |diff| vs (c)':>18s}")
    results = time_front_ends(wavs, config)
    for k, (name, sec, err) in enumerate(results):
        tag = f"({'abc'[k]}) " if k < 3 else "    "
        print(f"  {tag + name:48s} {sec:8.3f} {audio / sec:12.0f} {results[0][1] / sec:12.2f}x "
              f"{results[1][1] / sec:12.2f}x {err:18.1e}")

    print(f"\nprepare: all {len(corpus)} clips of {args.root}, start-up included")
    print("  (CPU s: this process and its workers; audio s per CPU s depends far less than wall time on\n"
          "   what else runs on the machine)")
    print(f"  {'preset':18s} {'jobs':>4s} {'wall s':>8s} {'audio s':>8s} {'x real time':>12s} {'CPU s':>7s} "
          f"{'audio s / CPU s':>16s}")
    for preset, jobs in ((args.preset, 1), (args.preset, 2), ("speech-16k", 2)):
        with tempfile.TemporaryDirectory() as tmp:
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            report = prepare(corpus, Path(tmp) / "out", mel=preset, jobs=jobs, progress=False)
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        if report.failed:
            print(f"  {report.failed} files failed: {report.failures[0]['error']}", file=sys.stderr)
        sec = report.seconds
        print(f"  {preset:18s} {jobs:4d} {wall:8.2f} {sec:8.0f} {sec / wall:12.0f} {cpu:7.1f} {sec / cpu:16.0f}")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f} (above {os.cpu_count()} means other processes "
          "competed for the CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
