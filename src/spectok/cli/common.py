"""Small helpers shared by the command modules."""

from __future__ import annotations

import argparse


def add_command(sub, name: str, help: str, example: str, func) -> argparse.ArgumentParser:
    """Add a sub-command whose ``--help`` ends with an example."""
    p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def add_tokenizer_option(p: argparse.ArgumentParser, required: bool = False) -> None:
    """``-t/--tokenizer``: a release artifact or a released model's name (default: ``default``)."""
    p.add_argument("-t", "--tokenizer", required=required, default=None if required else "default",
                   metavar="NAME|FILE",
                   help="a released model ('default', 'ljspeech22k'; see 'spectok models') or a tokenizer "
                   "artifact (.safetensors, from 'spectok export')" + ("" if required else " (default: default)"))


def add_vocoder_option(p: argparse.ArgumentParser) -> None:
    """``-v/--vocoder`` and ``--gl-iters``."""
    p.add_argument("-v", "--vocoder", default="default", metavar="NAME|FILE",
                   help="'default' (the tokenizer's paired vocoder: a released model's trained vocoder where "
                   "one beat Griffin-Lim, else Griffin-Lim), 'griffin-lim', a released model's name, or a "
                   "vocoder artifact (.safetensors)")
    p.add_argument("--gl-iters", type=int, default=32, help="Griffin-Lim iterations (default 32)")


def load_models(args: argparse.Namespace, with_vocoder: bool = True):
    """``(tokenizer, vocoder or None)`` from ``args.tokenizer`` / ``args.vocoder`` / ``args.gl_iters``."""
    from spectok.tokenizers import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    if not with_vocoder:
        return tok, None
    from spectok.vocoders import load_vocoder
    from spectok.vocoders.loading import resolve_vocoder

    name = resolve_vocoder(args.vocoder, tokenizer=tok)
    options = {"n_iter": args.gl_iters} if name == "griffin-lim" else {}
    return tok, load_vocoder(name, tokenizer=tok, **options)
