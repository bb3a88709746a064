"""``spectok plot``: PNG figures of reconstructions, token maps, codebook usage and training curves."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spectok.cli.common import Runner, add_command, add_tokenizer_option
from spectok.errors import AudioError, SpectokError


def register(sub) -> None:
    p = add_command(sub, "plot", "Draw PNG figures: reconstruction, tokens, codebook usage, training curves.",
                    "spectok plot reconstruction clip.wav -t default -o clip.png", _no_kind)
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)

    q = add_command(kinds, "reconstruction", "Log-mel vs reconstruction vs difference for one audio file.",
                    "spectok plot reconstruction clip.wav -t default -o clip.png", _reconstruction)
    q.add_argument("audio", type=Path, metavar="AUDIO")
    add_tokenizer_option(q)
    q.add_argument("-o", "--out", required=True, type=Path, help="PNG file to write")

    q = add_command(kinds, "tokens", "The token map (codes as an image over time), above the log-mel if "
                    "the audio is given.",
                    "spectok plot tokens clip.sptk --audio clip.wav -t default -o clip.tokens.png",
                    _tokens)
    q.add_argument("codes", type=Path, metavar="CODES", help="a .sptk token file")
    q.add_argument("--audio", type=Path, help="the recording the tokens came from (draws its log-mel above)")
    q.add_argument("-t", "--tokenizer", metavar="NAME|FILE",
                   help="released model name or tokenizer artifact (needed with --audio)")
    q.add_argument("-o", "--out", required=True, type=Path, help="PNG file to write")

    q = add_command(kinds, "usage", "Codebook usage histogram over token files.",
                    "spectok plot usage tokens/ -o usage.png", _usage)
    q.add_argument("codes", type=Path, nargs="+", metavar="CODES", help=".sptk files or directories")
    q.add_argument("-o", "--out", required=True, type=Path, help="PNG file to write")

    q = add_command(kinds, "training", "Training curves from a run folder (RUN/metrics.jsonl).",
                    "spectok plot training runs/tok1 -o curves.png", _training)
    q.add_argument("run", type=Path, metavar="RUN", help="a training run folder")
    q.add_argument("-o", "--out", required=True, type=Path, help="PNG file to write")


def _no_kind(args: argparse.Namespace) -> int:  # pragma: no cover - argparse requires KIND
    raise SpectokError("choose what to plot: reconstruction, tokens, usage or training")


def _check_out(args: argparse.Namespace, *inputs: Path | None) -> None:
    """The PNG must not replace anything the command reads (checked before any work)."""
    from spectok.fsutil import check_output_file

    check_output_file(args.out, [i for i in inputs if i is not None], suffix=".png")


def _done(path: Path) -> int:
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _reconstruction(args: argparse.Namespace) -> int:
    from spectok.audio.io import load_audio
    from spectok.pipeline import Pipeline
    from spectok.plots import plot_reconstruction
    from spectok.tokenizers import load_tokenizer

    _check_out(args, args.audio, Path(args.tokenizer))
    pipe = Pipeline(load_tokenizer(args.tokenizer))
    wav, _ = load_audio(args.audio, pipe.sample_rate)
    try:
        mel = pipe.log_mel(wav)
        rec = pipe.decode_mel(pipe.encode(wav, pipe.sample_rate).codes)[:, :mel.shape[-1]]
    except AudioError as e:  # "waveform: too short" -> the file's name
        raise AudioError(args.audio, e.reason) from None
    return _done(plot_reconstruction(mel, rec, pipe.mel_config, args.out, title=args.audio.name))


def _tokens(args: argparse.Namespace) -> int:
    from spectok.plots import plot_token_map
    from spectok.tokens import read_tokens

    _check_out(args, args.codes, args.audio, Path(args.tokenizer) if args.tokenizer else None)
    tf = read_tokens(args.codes)
    mel = config = None
    if args.audio is not None:
        if args.tokenizer is None:
            raise SpectokError("--audio needs -t TOKENIZER (its mel front end draws the log-mel)")
        from spectok.audio.io import load_audio
        from spectok.pipeline import Pipeline
        from spectok.tokenizers import load_tokenizer

        pipe = Pipeline(load_tokenizer(args.tokenizer))
        mel, config = pipe.log_mel(load_audio(args.audio, pipe.sample_rate)[0]), pipe.mel_config
    return _done(plot_token_map(tf.codes, tf.frame_rate, tf.codebook_sizes, args.out, mel=mel,
                                mel_config=config, title=args.codes.name))


def _usage(args: argparse.Namespace) -> int:
    from spectok.cli.codec import collect_some
    from spectok.plots import plot_codebook_usage
    from spectok.tokens import read_tokens

    files = collect_some(args.codes, (".sptk",), ".sptk token files")
    _check_out(args, *(f for f, _ in files))
    runner = Runner("plot usage", len(files), quiet=True, out=args.out)
    tokens = []
    for f, _ in files:  # a bad file is reported and left out; the figure counts the others
        try:
            tokens.append(read_tokens(f))
            runner.ok()
        except SpectokError as e:
            runner.fail(f, e)
    if not tokens:
        return runner.finish()
    layouts = {(tuple(t.codebook_sizes), int(t.metadata.get("rows_per_codebook", 1))) for t in tokens}
    if len(layouts) > 1:
        raise SpectokError(f"token files come from tokenizers with different codebooks: {sorted(layouts)}")
    sizes, rows = layouts.pop()
    _done(plot_codebook_usage([t.codes for t in tokens], sizes, args.out, title=f"{len(tokens)} token file(s)",
                              rows_per_codebook=rows))
    return runner.finish()


def _training(args: argparse.Namespace) -> int:
    from spectok.plots import plot_training_curves

    _check_out(args, args.run / "metrics.jsonl")
    return _done(plot_training_curves(args.run, args.out))
