"""Corpus tokenization throughput: `spectok tokenize` end to end against `Pipeline.encode` alone.

On the same audio (LibriSpeech train-clean-100 in ../shared/data: FLAC at 16 kHz, or
``--corpus``/``--root``), in one run:

1. ``Pipeline.encode`` on waveforms already in memory (the model's own speed: the ceiling),
   with ``--threads`` torch threads;
2. ``tokenize_corpus`` (what ``spectok tokenize`` runs) end to end in this process: read and
   decode FLAC/WAV, resample, encode, write Parquet, the model loaded inside the timing;
3. the ``spectok tokenize`` command as a child process (Python start-up and imports included),
   with ``-j 1`` and ``--threads`` threads, and with ``-j N``: N workers of one thread each.

Each writes into a fresh folder.

Prints audio hours per hour of each and the ratio to (1); the target is >= 60 %. Then the token
file sizes of the released models on their held-out clips (``--file-rates`` for that table alone).

Usage::

    python benchmarks/bench_tokenize.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def encode_only(items: list, threads: int) -> tuple[float, float]:
    """``(audio seconds, wall seconds)`` of ``Pipeline.encode`` over waveforms loaded beforehand."""
    import torch

    import spectok

    torch.set_num_threads(threads)
    pipe = spectok.Pipeline(spectok.load_tokenizer("default"))
    wavs = [spectok.load_audio(it.path, pipe.sample_rate)[0] for it in items]
    pipe.encode(wavs[0], sample_rate=pipe.sample_rate)  # warm-up
    t0 = time.perf_counter()
    for w in wavs:
        pipe.encode(w, sample_rate=pipe.sample_rate)
    return sum(len(w) for w in wavs) / pipe.sample_rate, time.perf_counter() - t0


def tokenize_cli(corpus: str, root: Path, out: Path, jobs: int, threads: int) -> float:
    """Wall seconds of ``spectok tokenize`` (a fresh output folder)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "spectok", "tokenize", corpus, str(root), str(out), "-j", str(jobs),
                    "--threads", str(threads)], check=True, env=env, capture_output=True)
    return time.perf_counter() - t0


def file_rates() -> None:
    """Token file bit rates (bytes x 8 / seconds) of the released models on their held-out clips: range-coded
    against the released code model (version 3), bit-packed (2) and byte-aligned (1), beside the nominal rate,
    the code model's ideal payload and the held-out codes' own entropy bound."""
    import json
    import struct

    import numpy as np

    import spectok
    from spectok.data.prepared import open_prepared
    from spectok.entropy import CodeModel, code_model_for
    from spectok.tokens import from_bytes, smallest_dtype, to_bytes

    print("\n## Token file sizes on held-out clips (bit/s = file bytes x 8 / audio seconds)")
    print("| model | clips | nominal | .sptk v3 (--entropy) | .sptk v2 (bit-packed) | .sptk v1 (uint16) | "
          "v3 payload alone | ideal under the code model | entropy bound of these clips | shortest clip, v3 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, data in (("default", "speech16k"), ("ljspeech22k", "ljspeech22k")):
        prepared = REPO / "runs" / "data" / "release" / data
        if not prepared.is_dir():
            print(f"| {name} | - | - | (run scripts/release_data.py {data} {prepared}) | - | - | - | - | - | - |")
            continue
        pipe = spectok.Pipeline(spectok.load_tokenizer(name))
        model = code_model_for(pipe.tokenizer.fingerprint())
        ps = open_prepared(prepared)
        v3, v2, v1, payload, ideal, seconds, codes = [], [], [], [], [], [], []
        for r in ps.split("test"):
            wav = spectok.load_audio(r["path"], pipe.sample_rate)[0][r["trim_start"]:r["trim_end"]]
            tf = pipe.encode(wav, sample_rate=pipe.sample_rate)
            tf.metadata = {"source": Path(r["path"]).name}
            data_v3, data_v2 = to_bytes(tf, model), to_bytes(tf)
            assert np.array_equal(from_bytes(data_v3, code_model=model).codes, tf.codes)
            header = {**tf.header(), "dtype": smallest_dtype(tf.codebook_sizes).name}
            del header["packing"]
            v1_bytes = 14 + len(json.dumps(header, sort_keys=True, separators=(",", ":"))) + \
                tf.codes.size * smallest_dtype(tf.codebook_sizes).itemsize
            assert struct.unpack_from("<HI", data_v3, 4)[0] == 3
            hlen = struct.unpack_from("<I", data_v3, 6)[0]
            v3.append(len(data_v3) * 8)
            payload.append((len(data_v3) - 14 - hlen) * 8)
            v2.append(len(data_v2) * 8)
            v1.append(v1_bytes * 8)
            ideal.append(model.bits_per_column(tf.codes) * tf.codes.shape[1])
            seconds.append(tf.duration)
            codes.append(tf.codes)
        sec = np.asarray(seconds)
        total = sec.sum()
        bound = CodeModel.fit(codes, pipe.tokenizer.codebook_sizes).info["entropy_bits_per_column"] * \
            pipe.tokenizer.frame_rate
        i = int(np.argmin(sec))
        print(f"| {name} | {len(sec)} | {pipe.tokenizer.bitrate:.0f} | {sum(v3) / total:.0f} | {sum(v2) / total:.0f} | "
              f"{sum(v1) / total:.0f} | {sum(payload) / total:.0f} | {sum(ideal) / total:.0f} | {bound:.0f} | "
              f"{v3[i] / sec[i]:.0f} ({sec[i]:.1f} s) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default="librispeech", help="corpus layout (default: %(default)s)")
    ap.add_argument("--root", type=Path, default=DATA / "LibriSpeech", help="corpus folder")
    ap.add_argument("--threads", type=int, default=2, help="cores to use (default 2)")
    ap.add_argument("--limit", type=int, help="only the first N utterances (by id) for the encode-only row")
    ap.add_argument("--file-rates", action="store_true", help="only the token file sizes of the released models")
    args = ap.parse_args()
    if args.file_rates:
        file_rates()
        return
    if not args.root.is_dir():
        raise SystemExit(f"{args.root}: not found (the benchmark reads ../shared/data)")
    from spectok.data.corpora import open_corpus

    items = sorted(open_corpus(args.corpus, args.root), key=lambda it: it.id)[: args.limit]
    root = args.root
    work = Path(tempfile.mkdtemp(prefix="bench-tokenize-"))
    try:
        if args.limit:  # the same utterances for every row: a folder of links to them
            root = work / "subset"
            root.mkdir()
            for it in items:
                (root / f"{it.id}{Path(it.path).suffix}").symlink_to(Path(it.path).resolve())
            corpus = "folder"
        else:
            corpus = args.corpus
        audio_s, encode_s = encode_only(items, args.threads)
        rows = [("Pipeline.encode (audio in memory)", encode_s)]
        from spectok.data.token_shards import tokenize_corpus

        t0 = time.perf_counter()
        tokenize_corpus(items, work / "inproc", "default", progress=False)
        rows.append((f"tokenize_corpus in this process ({args.threads} threads)", time.perf_counter() - t0))
        rows.append((f"spectok tokenize -j 1 ({args.threads} threads)",
                     tokenize_cli(corpus, root, work / "j1", 1, args.threads)))
        if args.threads > 1:
            rows.append((f"spectok tokenize -j {args.threads} (1 thread each)",
                         tokenize_cli(corpus, root, work / "jn", args.threads, 1)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"## Tokenizing a corpus: {len(items)} utterances, {audio_s / 3600:.2f} h of {args.corpus} audio, "
          f"{args.threads} cores; load average {os.getloadavg()[0]:.1f} after the run")
    print("| path | wall s | audio hours per hour | vs Pipeline.encode |")
    print("|---|---|---|---|")
    for name, wall in rows:
        print(f"| {name} | {wall:.1f} | {audio_s / wall:.0f} | {encode_s / wall:.2f} |")
    file_rates()


if __name__ == "__main__":
    main()
