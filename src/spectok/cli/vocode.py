"""``spectok gen-spec`` and ``spectok synthesize``: one file's spectrogram <-> audio, by hand.

``gen-spec`` writes the front end's log-mel ``[n_mels, T]`` (or, with ``--linear``, the log
linear magnitude ``[n_fft / 2 + 1, T]``) of one audio file as a float32 ``.npy``;
``synthesize`` turns such an array back into a ``.wav`` with Griffin-Lim or a trained vocoder.
A bare ``.npy`` carries no mel config: a trained vocoder uses its own, Griffin-Lim the one
named by ``--mel`` (default hifigan-22k), so pass the same ``--mel`` to both commands.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spectok.cli.common import add_command
from spectok.errors import SpectokError


def register(sub) -> None:
    p = add_command(sub, "gen-spec", "Compute the log-mel (or log linear) spectrogram of an audio file as .npy.",
                    "spectok gen-spec clip.wav -o clip.npy --mel hifigan-22k   (add --linear for [513, T])",
                    _gen_spec)
    p.add_argument("input", type=Path, metavar="IN", help="audio file (resampled to the mel sample rate)")
    p.add_argument("-o", "--out", required=True, type=Path, help="output .npy (float32 [rows, frames])")
    p.add_argument("--linear", action="store_true",
                   help="write log(|STFT|) [n_fft/2+1, T] instead of the log-mel [n_mels, T]")
    p.add_argument("--mel", default="hifigan-22k", metavar="PRESET|FILE",
                   help="mel preset name or YAML file (default: hifigan-22k)")

    p = add_command(sub, "synthesize", "Turn a spectrogram .npy back into audio with a vocoder.",
                    "spectok synthesize clip.npy -v griffin-lim -o clip.wav   "
                    "(or -v runs/voc/vocoder.safetensors)", _synthesize)
    p.add_argument("input", type=Path, metavar="SPEC", help=".npy log-mel [n_mels, T] (or [1, n_mels, T]) "
                   "or log linear spectrogram [n_fft/2+1, T] from gen-spec")
    p.add_argument("-v", "--vocoder", default="griffin-lim",
                   help="'griffin-lim' (default, no training) or a vocoder artifact (.safetensors)")
    p.add_argument("-o", "--out", required=True, type=Path, help="output .wav")
    p.add_argument("--mel", default=None, metavar="PRESET|FILE",
                   help="the spectrogram's mel config: used by griffin-lim (default: hifigan-22k), "
                        "checked against a trained vocoder's own when given")
    p.add_argument("--gl-iters", type=int, default=32, help="Griffin-Lim iterations (default 32)")


def _gen_spec(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from spectok.audio import load_audio
    from spectok.audio.mel import MelSpectrogram
    from spectok.fsutil import atomic_path

    front = MelSpectrogram(args.mel)
    wav, _ = load_audio(args.input, front.config.sample_rate)
    with torch.inference_mode():
        x = torch.from_numpy(wav)
        spec = (torch.log(front.magnitude(x).clamp_min(front.config.log_floor)) if args.linear else front(x))[0]
    if args.out.suffix != ".npy":
        raise SpectokError(f"{args.out}: the output must be a .npy file")
    with atomic_path(args.out) as tmp, open(tmp, "wb") as f:
        np.save(f, spec.numpy().astype(np.float32), allow_pickle=False)
    print(f"{args.out}: {'log linear' if args.linear else 'log-mel'} {tuple(spec.shape)} "
          f"({len(wav) / front.config.sample_rate:.2f} s at {front.config.sample_rate} Hz)")
    return 0


def _read_spec(path: Path):
    import numpy as np

    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise SpectokError(f"{path}: cannot read a .npy array ({e})") from e
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise SpectokError(f"{path}: expected a float [rows, frames] spectrogram, got {arr.dtype} {arr.shape}")
    if not np.isfinite(arr).all():
        raise SpectokError(f"{path}: spectrogram holds NaN or infinite values")
    return arr.astype(np.float32)


def _synthesize(args: argparse.Namespace) -> int:
    import torch

    from spectok.audio import save_audio
    from spectok.audio.mel import MelConfig
    from spectok.vocoders import GriffinLim, load_vocoder

    spec = torch.from_numpy(_read_spec(args.input))[None]
    if args.vocoder == "griffin-lim":
        voc = load_vocoder("griffin-lim", mel_config=args.mel or "hifigan-22k", n_iter=args.gl_iters)
    else:
        voc = load_vocoder(args.vocoder, mel_config=args.mel)
    cfg: MelConfig = voc.mel_config
    rows = spec.shape[1]
    linear_rows = cfg.n_fft // 2 + 1
    with torch.inference_mode():
        if isinstance(voc, GriffinLim) and rows == linear_rows and rows != cfg.n_mels:
            wav = voc.from_linear(spec)
        elif rows == voc.input_rows:
            wav = voc(spec)
        else:
            raise SpectokError(f"{args.input}: {rows} rows fit neither the vocoder's input "
                               f"({voc.input_rows} rows) nor, for griffin-lim, a linear "
                               f"spectrogram ({linear_rows} rows); was it made with another --mel?")
    if args.out.suffix.lower() not in (".wav", ".flac"):
        raise SpectokError(f"{args.out}: the output must be a .wav or .flac file")
    save_audio(args.out, wav[0], cfg.sample_rate)
    print(f"{args.out}: {wav.shape[-1] / cfg.sample_rate:.2f} s at {cfg.sample_rate} Hz")
    return 0
