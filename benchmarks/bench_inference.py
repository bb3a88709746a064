"""Inference speed and memory on CPU: wav -> codes, codes -> wav, and a one-hour file's peak RSS.

Prints one table measured in one run (no timed assertions anywhere):

- audio seconds per compute second for wav -> codes (log-mel + encoder + quantizer, through
  ``spectok.Pipeline``), for the mel front end alone and the tokenizer alone; with the
  inference front end (float32 STFT) and with the float64 STFT that prepares training
  features, and the fraction of codes the two agree on;
- codes -> mel (tokenizer decoder) and codes -> wav with Griffin-Lim and with the iSTFT
  vocoder (untrained weights: speed does not depend on training);
- peak resident memory (``VmHWM``) of a fresh subprocess encoding a one-hour file made
  by concatenating real LJSpeech clips: streamed from disk in chunks (``encode_file``), and,
  for comparison, loaded whole into memory first (``encode`` on the array).

The tokenizer is ``configs/tokenizer/default.yaml`` when it exists, else the DCTTS preset
(``--tokenizer`` picks another preset or a release artifact). Usage::

    .venv/bin/python benchmarks/bench_inference.py            # ~5-10 minutes on 2 cores
    .venv/bin/python benchmarks/bench_inference.py --hours 0  # skip the one-hour test
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "LJSpeech-1.1" / "wavs"


def build_tokenizer(spec: str):
    """A tokenizer from a release artifact path, a preset name under configs/tokenizer/, or a JSON
    ``model:`` section (e.g. ``'{"class": "conv1d-vqvae", "channels": [64, 64, 64], "norm": "none"}'``)."""
    if spec.lstrip().startswith("{"):
        from spectok.artifacts import build_section

        return build_section(json.loads(spec), "tokenizer").eval(), f"model {spec} (untrained weights)"
    if spec.endswith(".safetensors"):
        from spectok.tokenizers import load_tokenizer

        return load_tokenizer(spec), spec
    import yaml

    from spectok.artifacts import build_section

    if spec == "auto":
        spec = "default" if (REPO / "configs" / "tokenizer" / "default.yaml").exists() else "dctts-spectrogram-vq"
    cfg = yaml.safe_load((REPO / "configs" / "tokenizer" / f"{spec}.yaml").read_text())
    return build_section(cfg["model"], "tokenizer").eval(), f"preset {spec} (untrained weights)"


def build_istft(mel_config):
    import yaml

    from spectok import artifacts

    path = REPO / "configs" / "vocoder" / "istft.yaml"
    try:
        section = dict(yaml.safe_load(path.read_text())["model"])
        section.pop("class")
        section["mel"] = mel_config.to_dict()
        return artifacts.build("istft-vocoder", section).eval()
    except Exception as e:  # not there yet, or another interface
        print(f"(no iSTFT vocoder: {type(e).__name__}: {e})", file=sys.stderr)
        return None


def speech(seconds: float, sample_rate: int) -> np.ndarray:
    """``seconds`` of real LJSpeech audio at ``sample_rate`` (clips end to end, repeated as needed)."""
    from spectok.audio.io import load_audio

    clips = sorted(DATA.glob("*.wav"))
    if not clips:
        sys.exit(f"real data not available: {DATA} is absent")
    out, total, i = [], 0, 0
    while total < seconds * sample_rate:
        wav, _ = load_audio(clips[i % len(clips)], sample_rate)
        out.append(wav)
        total += len(wav)
        i += 1
    return np.concatenate(out)[: int(seconds * sample_rate)]


def rate(fn, audio_seconds: float, repeat: int = 2) -> tuple[float, float]:
    """Audio seconds per wall second and per CPU second of this process (all threads), best of
    ``repeat`` runs after one warm-up call. On a shared machine the CPU figure is the steadier one."""
    fn()
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return audio_seconds / wall, audio_seconds / cpu


def chunk_agreement(tok, mel: torch.Tensor, seconds: float) -> float:
    """Fraction of codes equal between a chunked encode (chunks of ``seconds``) and a whole encode."""
    from spectok.inference.chunking import ChunkedEncoder

    whole = tok.encode(mel[None])[0]
    enc = ChunkedEncoder(tok, int(seconds * tok.mel_config.frame_rate))
    chunked = enc.encode(lambda a, b: mel[:, a:b], mel.shape[-1])
    return float((chunked == whole).float().mean())


# ---- the one-hour child process ----------------------------------------------------------------
def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB: ``VmHWM`` (Linux), else ``ru_maxrss``.

    ``ru_maxrss`` survives ``fork``/``exec``, so a child started by a big parent would report the
    parent's size; ``VmHWM`` belongs to the process's own address space.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    """Encode the one-hour file and print JSON with peak RSS (MiB) and timings."""
    torch.set_num_threads(args.threads)
    from spectok.pipeline import Pipeline

    tok, _ = build_tokenizer(args.tokenizer)
    pipe = Pipeline(tok, chunk_seconds=args.chunk_seconds)
    base = peak_rss_mib()
    t0 = time.perf_counter()
    if args.child == "stream":
        tf = pipe.encode_file(args.hour_file)
    else:
        from spectok.audio.io import load_audio

        wav, _ = load_audio(args.hour_file, pipe.sample_rate)
        tf = pipe.encode(wav, pipe.sample_rate)
    elapsed = time.perf_counter() - t0
    peak = peak_rss_mib()
    print(json.dumps({"peak_mib": peak, "before_mib": base, "seconds": elapsed, "audio_s": tf.duration,
                      "columns": int(tf.codes.shape[1])}))


def write_hour(path: Path, hours: float, sample_rate: int) -> None:
    import soundfile as sf

    block = speech(600.0, sample_rate)  # ten minutes of real clips, repeated
    total = int(hours * 3600 * sample_rate)
    with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as f:
        written = 0
        while written < total:
            piece = block[: total - written]
            f.write(piece)
            written += len(piece)


def run_child(args: argparse.Namespace, mode: str, hour_file: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--hour-file", str(hour_file), "--tokenizer", args.tokenizer,
           "--threads", str(args.threads), "--chunk-seconds", str(args.chunk_seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- main ------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default="auto",
                    help="preset name, .safetensors, or a JSON model section (default: default, else dctts)")
    ap.add_argument("--seconds", type=float, default=60.0, help="audio for the encode throughput (default 60)")
    ap.add_argument("--decode-seconds", type=float, default=20.0, help="audio for the decode throughput")
    ap.add_argument("--hours", type=float, default=1.0, help="length of the long-file memory test (0 skips it)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk-seconds", type=float, default=30.0)
    ap.add_argument("--gl-iters", type=int, nargs="+", default=[32],
                    help="Griffin-Lim iteration counts to time (default 32, the evaluation setting)")
    ap.add_argument("--child", choices=("stream", "memory"), help=argparse.SUPPRESS)
    ap.add_argument("--hour-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    torch.set_num_threads(args.threads)
    from spectok.inference.chunking import is_time_local
    from spectok.pipeline import Pipeline
    from spectok.vocoders import GriffinLim

    tok, what = build_tokenizer(args.tokenizer)
    mel_cfg = tok.mel_config
    pipe = Pipeline(tok, chunk_seconds=args.chunk_seconds)
    warnings.filterwarnings("ignore", message=".*normalises over time.*")  # reported below instead
    wav = speech(args.seconds, mel_cfg.sample_rate)
    print(f"tokenizer: {what}: {type(tok).__name__}, {tok.frame_rate:.2f} columns/s, {tok.bitrate:.0f} bit/s, "
          f"{sum(p.numel() for p in tok.parameters()) / 1e6:.2f} M parameters")
    print(f"machine: {os.cpu_count()} CPU(s), torch {torch.__version__}, {args.threads} threads\n")

    rows = []
    with torch.inference_mode():
        mel = pipe.log_mel(wav)
        rows.append(("wav -> log-mel (front end)", rate(lambda: pipe.log_mel(wav), args.seconds)))
        rows.append(("log-mel -> codes (tokenizer)", rate(lambda: tok.encode(mel[None]), args.seconds)))
        rows.append(("wav -> codes (Pipeline.encode)", rate(lambda: pipe.encode(wav, pipe.sample_rate), args.seconds)))
        exact = Pipeline(tok, chunk_seconds=args.chunk_seconds, stft_dtype=torch.float64)
        rows.append(("wav -> log-mel, float64 STFT", rate(lambda: exact.log_mel(wav), args.seconds)))
        rows.append(("wav -> codes, float64 STFT", rate(lambda: exact.encode(wav, exact.sample_rate), args.seconds)))
        same = float((exact.encode(wav, exact.sample_rate).codes == pipe.encode(wav, pipe.sample_rate).codes).mean())
        short = wav[: int(args.decode_seconds * mel_cfg.sample_rate)]
        tf = pipe.encode(short, pipe.sample_rate)
        rows.append(("codes -> log-mel (decoder)", rate(lambda: pipe.decode_mel(tf.codes), args.decode_seconds)))
        rec = pipe.decode_mel(tf.codes)[None]
        vocoders = [(f"Griffin-Lim {n} it.", GriffinLim(mel_cfg, n_iter=n)) for n in args.gl_iters]
        vocoders.append(("iSTFT vocoder", build_istft(mel_cfg)))
        for name, voc in vocoders:
            if voc is None:
                continue
            pipe.vocoder = voc
            rows.append((f"log-mel -> wav, {name} alone", rate(lambda v=voc: v(rec), args.decode_seconds, 1)))
            rows.append((f"codes -> wav, {name}", rate(lambda: pipe.decode(tf), args.decode_seconds, 1)))
    width = max(len(r[0]) for r in rows)
    print(f"{'path':<{width}}  audio s / wall s   audio s / CPU s")
    for name, (wall, cpu) in rows:
        print(f"{name:<{width}}  {wall:14.1f}x  {cpu:14.1f}x")
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agree = {s: chunk_agreement(tok, mel, s) for s in (2.0, 7.0)}
    print(f"\ncodes from the float32 (inference) vs float64 (prepared features) STFT: {same:.4%} equal")
    print(f"chunked vs whole-file codes on {args.seconds:g} s: "
          + ", ".join(f"{s:g} s chunks {a:.2%} equal" for s, a in agree.items())
          + ("" if is_time_local(getattr(tok, "encoder", tok)) else
             "  (this encoder normalises over time, so chunking is approximate)"))

    if args.hours > 0:
        with tempfile.TemporaryDirectory() as tmp:
            hour = Path(tmp) / "hour.wav"
            write_hour(hour, args.hours, mel_cfg.sample_rate)
            print(f"\n{args.hours:g} h file ({hour.stat().st_size / 2**20:.0f} MiB PCM16), fresh process each:")
            for mode, label in (("stream", "encode_file (streamed, chunked)"),
                                ("memory", "load whole + encode (chunked)")):
                r = run_child(args, mode, hour)
                if "error" in r:
                    print(f"  {label}: failed: {r['error']}")
                    continue
                print(f"  {label}: peak RSS {r['peak_mib']:.0f} MiB (after imports and model "
                      f"{r['before_mib']:.0f} MiB), {r['audio_s'] / r['seconds']:.0f}x real time, "
                      f"{r['columns']} token columns")


if __name__ == "__main__":
    main()
