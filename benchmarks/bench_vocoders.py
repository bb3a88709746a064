"""Vocoder benchmark: speed (audio seconds per compute second), Griffin-Lim against librosa, and
copy-synthesis quality (PESQ-WB, STOI) of trained vocoders against Griffin-Lim.

Everything below is measured in one run of this script, side by side:

1. **Speed** on ~10 s of real LJSpeech (the first clips of ../shared/data/LJSpeech-1.1
   concatenated): every vocoder, fp32 and bf16 autocast, at each ``--threads`` setting.
   Untrained vocoders are timed with random weights (speed does not depend on the values);
   HiFi-GAN with weight norm folded in, as for inference.
2. **Griffin-Lim vs librosa** (``librosa.feature.inverse.mel_to_audio``: NNLS + fast GL, momentum
   0.99 as ours, random initial phase) at the same iterations: time, speed ratio, and the log-mel L1 of each
   output re-analysed by our front end against the input mel (librosa's centred frames are
   shifted by hop/2 to line up with ours first).
3. **Quality** with ``--vocoder NAME=ARTIFACT`` (trained vocoders) and ``--data PREPARED`` (a
   prepared LJSpeech folder): copy synthesis of its held-out clips (splits valid + test) from
   the stored mels, PESQ-WB (resampled to 16 kHz) and STOI against the trimmed source audio.

Usage::

    python benchmarks/bench_vocoders.py --threads 1 2 \
        --data runs/lj --vocoder istft=runs/istft.safetensors --vocoder cnn=runs/cnn.safetensors
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
LJSPEECH = REPO.parent / "shared" / "data" / "LJSpeech-1.1"


def speech_10s(mel_config, seconds: float = 10.0) -> np.ndarray:
    """The first LJSpeech clips concatenated and cut to ``seconds`` (a whole number of hops)."""
    from spectok.audio import load_audio

    wavs = sorted((LJSPEECH / "wavs").glob("*.wav"))
    if not wavs:
        sys.exit(f"bench_vocoders: no LJSpeech clips under {LJSPEECH}")
    parts, total = [], 0
    for w in wavs:
        x, _ = load_audio(w, mel_config.sample_rate)
        parts.append(x)
        total += len(x)
        if total >= seconds * mel_config.sample_rate:
            break
    n = int(seconds * mel_config.sample_rate) // mel_config.hop_length * mel_config.hop_length
    return np.concatenate(parts)[:n]


def timed(fn, repeats: int) -> float:
    """Best (minimum) wall seconds of ``repeats`` calls after one warm-up call.

    The minimum, not the mean: on a shared machine other processes only ever add time.
    """
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def speed_table(mel: torch.Tensor, seconds: float, threads: list[int], repeats: int, trained: dict,
                only: list[str] | None = None) -> list[str]:
    from spectok.vocoders import CNNVocoder, GriffinLim, HiFiGANGenerator, ISTFTVocoder

    models = {"griffin-lim (32 it)": GriffinLim("hifigan-22k", n_iter=32),
              "istft (dim 256, 8 layers)": ISTFTVocoder("hifigan-22k"),
              "cnn (seed design)": CNNVocoder("hifigan-22k"),
              "hifigan-v1": HiFiGANGenerator("hifigan-22k", preset="v1").remove_weight_norm(),
              "hifigan-v2": HiFiGANGenerator("hifigan-22k", preset="v2").remove_weight_norm(),
              "hifigan-v3": HiFiGANGenerator("hifigan-22k", preset="v3").remove_weight_norm()}
    models.update({f"{k} (trained)": v for k, v in trained.items() if k not in models})
    if only:
        models = {k: v for k, v in models.items() if any(o in k for o in only)}
    lines = ["| vocoder | threads | fp32 x real time | bf16 autocast x real time |", "|---|---|---|---|"]
    for name, model in models.items():
        model.eval()
        for n in threads:
            torch.set_num_threads(n)
            row = []
            for bf16 in (False, True):
                def run(m=model, b=bf16):
                    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=b):
                        return m(mel)
                row.append(seconds / timed(run, repeats))
            lines.append(f"| {name} | {n} | {row[0]:.1f} | {row[1]:.1f} |")
            print(lines[-1], flush=True)
    return lines


def griffin_lim_vs_librosa(wav: np.ndarray, mel: torch.Tensor, n_iter: int, threads: int, repeats: int) -> list[str]:
    import librosa

    from spectok.audio.mel import MelSpectrogram
    from spectok.vocoders import GriffinLim

    torch.set_num_threads(threads)
    front = MelSpectrogram("hifigan-22k")
    c = front.config
    t = mel.shape[-1]

    def ours():
        return GriffinLim(c, n_iter=n_iter)(mel)[0]

    def theirs():
        np.random.seed(0)  # librosa's random initial phase
        y = librosa.feature.inverse.mel_to_audio(
            np.exp(mel[0].numpy()).astype(np.float32), sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length,
            win_length=c.win_length, power=c.power, n_iter=n_iter, fmin=c.fmin, fmax=c.fmax,
            htk=c.mel_scale == "htk", norm=c.mel_norm)  # its griffinlim: momentum 0.99, random init
        # librosa centres frame t on sample t*hop, ours on t*hop + hop/2: shift, then cut to T*hop
        y = np.concatenate([np.zeros(c.hop_length // 2, dtype=y.dtype), y])[: t * c.hop_length]
        return torch.from_numpy(np.pad(y, (0, t * c.hop_length - len(y))).astype(np.float32))

    lines = [f"| Griffin-Lim, {n_iter} iterations, {threads} thread(s) | seconds | x real time | log-mel L1 "
             "(re-analysed vs input) |", "|---|---|---|---|"]
    seconds = len(wav) / c.sample_rate
    results = {}
    best = {"spectok (torch)": float("inf"), "librosa mel_to_audio": float("inf")}
    for _ in range(repeats):  # interleaved, so both see the same background load
        for name, fn in (("spectok (torch)", ours), ("librosa mel_to_audio", theirs)):
            best[name] = min(best[name], timed(fn, 1))
    for name, fn in (("spectok (torch)", ours), ("librosa mel_to_audio", theirs)):
        dt = best[name]
        y = fn()
        l1 = float((front(y) - mel[0]).abs().mean())
        results[name] = dt
        lines.append(f"| {name} | {dt:.2f} | {seconds / dt:.1f} | {l1:.3f} |")
        print(lines[-1], flush=True)
    ratio = results["librosa mel_to_audio"] / results["spectok (torch)"]
    lines.append(f"| speed ratio spectok / librosa | | {ratio:.1f}x | |")
    print(lines[-1])
    return lines


def quality_table(prepared_dir: str, vocoders: dict, gl_iters: int) -> list[str]:
    from spectok.audio import load_audio
    from spectok.data.prepare import open_prepared
    from spectok.evaluation.metrics import pesq_score, stoi_score
    from spectok.vocoders import GriffinLim

    prepared = open_prepared(prepared_dir)
    rows = prepared.split("valid") + prepared.split("test")
    all_vocoders = {f"griffin-lim ({gl_iters} it)": GriffinLim(prepared.mel_config, n_iter=gl_iters), **vocoders}
    sr = prepared.mel_config.sample_rate
    lines = [f"| vocoder | PESQ-WB (mean over {len(rows)} held-out clips) | STOI | clips |", "|---|---|---|---|"]
    for name, voc in all_vocoders.items():
        voc.check_mel(prepared.mel_config, what="prepared set")
        pesq, stoi = [], []
        for r in rows:
            ref = load_audio(r["path"], sr)[0][r["trim_start"]: r["trim_end"]]
            mel = torch.from_numpy(prepared.load_mel(r["id"]))[None]
            with torch.inference_mode():
                est = voc.eval()(mel)[0].numpy()
            p, s = pesq_score(ref, est, sr), stoi_score(ref, est, sr)
            if p.ok:
                pesq.append(p.value)
            if s.ok:
                stoi.append(s.value)
        lines.append(f"| {name} | {np.mean(pesq):.3f} | {np.mean(stoi):.3f} | {', '.join(r['id'] for r in rows)} |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[2], help="torch thread counts to time (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (the best is kept)")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of speech for the speed tables")
    ap.add_argument("--gl-iters", type=int, default=32, help="Griffin-Lim iterations (ours and librosa's)")
    ap.add_argument("--data", help="prepared LJSpeech folder for the quality table (held-out: valid + test)")
    ap.add_argument("--vocoder", action="append", default=[], metavar="NAME=ARTIFACT",
                    help="a trained vocoder artifact to time and score (repeatable)")
    ap.add_argument("--models", nargs="+", help="time only vocoders whose names contain one of these")
    ap.add_argument("--skip-speed", action="store_true", help="only the quality table")
    ap.add_argument("--skip-librosa", action="store_true", help="no Griffin-Lim vs librosa table")
    args = ap.parse_args()

    from spectok.audio.mel import MelSpectrogram
    from spectok.vocoders import load_vocoder

    trained = {}
    for spec in args.vocoder:
        name, _, path = spec.partition("=")
        trained[name] = load_vocoder(path, mel_config="hifigan-22k")
    front = MelSpectrogram("hifigan-22k")
    wav = speech_10s(front.config, args.seconds)
    mel = front(torch.from_numpy(wav))
    seconds = len(wav) / front.config.sample_rate
    load = os.getloadavg()
    print(f"# {seconds:.2f} s of LJSpeech, mel {tuple(mel.shape)}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, load average at start {load[0]:.1f}")
    if not args.skip_speed:
        speed_table(mel, seconds, args.threads, args.repeats, trained, args.models)
    if not args.skip_librosa:
        for n in args.threads:
            griffin_lim_vs_librosa(wav, mel, args.gl_iters, n, args.repeats)
    if args.data:
        quality_table(args.data, trained, args.gl_iters)
    print(f"# load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
