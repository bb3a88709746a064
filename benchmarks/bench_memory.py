"""Peak resident memory of every command on long files (1 hour, 3 hours), against the file's size.

A long file is made by joining real LJSpeech clips (22,050 Hz mono, 16-bit WAV) until it lasts
``--hours``; each command then runs in its own process on it, and the process's peak RSS
(``ru_maxrss`` of the child) is printed beside the raw float32 size of the audio, so the ratio
shows whether memory follows the length:

- ``prepare folder`` (default ``speech-16k`` front end);
- ``encode`` and ``decode`` with the released ``default`` model;
- ``reconstruct`` with ``default`` and ``-v`` a vocoder (``--vocoder``; Griffin-Lim by default,
  which takes minutes per hour of audio on a CPU);
- ``eval`` (``--eval``, off by default: it vocodes twice and scores PESQ and STOI on the hour).

Usage::

    .venv/bin/python benchmarks/bench_memory.py --hours 1
    .venv/bin/python benchmarks/bench_memory.py --hours 1 3 --eval
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "LJSpeech-1.1" / "wavs"


def long_file(path: Path, hours: float) -> Path:
    """A mono 16-bit WAV of ``hours`` of real speech, written block by block (never whole in memory)."""
    if not DATA.is_dir():
        raise SystemExit(f"real data not available: {DATA} is absent (benchmarks read ../shared/data)")
    clips = [sf.read(p, dtype="int16")[0] for p in sorted(DATA.glob("*.wav"))]
    rate = sf.info(sorted(DATA.glob("*.wav"))[0]).samplerate
    total, written = int(hours * 3600 * rate), 0
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        while written < total:
            for clip in clips:
                part = clip[: total - written]
                f.write(part)
                written += len(part)
                if written >= total:
                    break
    return path


def untrained_istft(path: Path) -> Path:
    """An iSTFT vocoder artifact (``configs/vocoder/istft.yaml``, untrained weights) on the speech-16k
    front end: its memory path is every vocoder's (chunked vocoding with context), and it vocodes an
    hour in seconds where Griffin-Lim takes many minutes on a CPU."""
    import yaml

    from spectok import artifacts

    section = dict(yaml.safe_load((REPO / "configs" / "vocoder" / "istft.yaml").read_text())["model"])
    section.pop("class")
    section["mel"] = "speech-16k"
    artifacts.save_release(artifacts.build("istft-vocoder", section).eval(), path)
    return path


def run(args: list[str]) -> tuple[float, float, float, int]:
    """``(peak RSS MiB, the largest child process's peak RSS MiB, wall s, exit code)`` of ``spectok ARGS``
    in a fresh process (eval's metric process is a child)."""
    code = ("import resource, sys, runpy; sys.argv = ['spectok'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('spectok', run_name='__main__')\nexcept SystemExit as e:\n"
            "    rc = e.code or 0\nelse:\n    rc = 0\n"
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    peak = next((line.split()[1:] for line in proc.stderr.splitlines() if line.startswith("PEAK")), ["0", "0"])
    if proc.returncode:
        print(proc.stderr[-1500:], file=sys.stderr)
    return int(peak[0]) / 1024, int(peak[1]) / 1024, time.time() - t0, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, nargs="+", default=[1.0])
    ap.add_argument("--vocoder", default="griffin-lim",
                    help="-v of decode, reconstruct and eval: a name, an artifact, or 'istft-untrained'")
    ap.add_argument("--eval", action="store_true", help="also run spectok eval on the long file")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--commands", nargs="+", default=["prepare", "encode", "decode", "reconstruct", "eval"],
                    help="which commands to measure (eval also needs --eval)")
    args = ap.parse_args()
    print(f"## Peak memory on long files ({args.threads} threads, load average {os.getloadavg()[0]:.1f})")
    print("| hours | audio float32 at 16 kHz | command | peak RSS | its child process | wall | exit |")
    print("|---|---|---|---|---|---|---|")
    for hours in args.hours:
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            if args.vocoder == "istft-untrained":
                args.vocoder = str(untrained_istft(t.parent / "spectok-bench-istft16k.safetensors"))
            (t / "in").mkdir()
            wav = long_file(t / "in" / "long.wav", hours)
            size = hours * 3600 * 16000 * 4 / 2 ** 20
            threads = ["--threads", str(args.threads)]
            steps = [("prepare folder", ["prepare", "folder", str(t / "in"), str(t / "prep"), "-j", "1", *threads]),
                     ("encode", ["encode", str(wav), "-t", "default", "-o", str(t / "tok"), "-q", *threads]),
                     ("decode", ["decode", str(t / "tok" / "long.sptk"), "-t", "default", "-v", args.vocoder,
                                 "-o", str(t / "dec"), "-q", *threads]),
                     ("reconstruct", ["reconstruct", str(wav), "-t", "default", "-v", args.vocoder, "-o",
                                      str(t / "rec"), "-q", *threads])]
            if args.eval:
                steps.append(("eval", ["eval", str(wav), "-t", "default", "-v", args.vocoder, "-o", str(t / "ev"),
                                       "-q", "--no-dnsmos", *threads]))
            for label, argv in steps:
                if argv[0] not in args.commands:
                    continue
                peak, child, wall, rc = run(argv)
                print(f"| {hours:g} | {size:,.0f} MiB | `{label}` | {peak:,.0f} MiB | "
                      f"{f'{child:,.0f} MiB' if child else '-'} | {wall:,.0f} s | {rc} |", flush=True)
    print(f"(load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
