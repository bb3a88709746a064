"""Small helpers shared by the command modules."""

from __future__ import annotations

import argparse


def add_command(sub, name: str, help: str, example: str, func) -> argparse.ArgumentParser:
    """Add a sub-command whose ``--help`` ends with an example."""
    p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    p.add_argument("--threads", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="CPU threads for torch (default: $SPECTOK_THREADS, else train.threads for training, else "
                   "$OMP_NUM_THREADS, else the CPUs this process may use)")
    return p


def default_threads() -> int:
    """``$SPECTOK_THREADS``, else ``$OMP_NUM_THREADS``, else the number of CPUs this process may run on
    (its affinity, which a container or ``taskset`` may limit below ``os.cpu_count()``)."""
    import os

    env = os.environ.get("SPECTOK_THREADS", "").strip()
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not env and omp.isdigit() and int(omp) >= 1:
        return int(omp)
    if env:
        try:
            n = int(env)
        except ValueError:
            raise SystemExit(f"spectok: error: SPECTOK_THREADS must be a positive integer, got {env!r}") from None
        if n >= 1:
            return n
        raise SystemExit(f"spectok: error: SPECTOK_THREADS must be a positive integer, got {env!r}")
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def apply_threads(n: int) -> None:
    """Use ``n`` torch (intra-op) threads: set before torch starts its pools, and on torch if loaded."""
    import os
    import sys

    os.environ["OMP_NUM_THREADS"] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


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
