"""Entry point of the ``spectok`` command.

Each command group lives in its own module exposing ``register(subparsers)``, which adds
its sub-command(s) with ``set_defaults(func=handler)``. Heavy imports (torch, models)
happen inside handlers so ``spectok --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from spectok._version import __version__

# Add a command group by appending its module here.
COMMAND_MODULES: list[str] = [
    "spectok.cli.prepare",
    "spectok.cli.tokenize",
    "spectok.cli.code_model",
    "spectok.cli.train",
    "spectok.cli.export",
    "spectok.cli.codec",
    "spectok.cli.plot",
    "spectok.cli.eval",
    "spectok.cli.vocode",
    "spectok.cli.catalog",
    "spectok.cli.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spectok",
        description="Speech into discrete tokens and back.",
        epilog="Run 'spectok COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"spectok {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also SPECTOK_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user error is one line, ``spectok CMD: error: ...`` (exit 1); a
    traceback only with ``--debug`` or ``SPECTOK_DEBUG=1``. Usage errors exit 2 (argparse)."""
    from spectok.cli.common import apply_threads, default_threads

    parser = build_parser()
    args = parser.parse_args(argv)
    _one_line_warnings(args.command)
    debug = args.debug or os.environ.get("SPECTOK_DEBUG", "") not in ("", "0")
    if getattr(args, "threads", None) is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    explicit = getattr(args, "threads", None) or (os.environ.get("SPECTOK_THREADS") and default_threads())
    args.threads = explicit or None  # training reads it: explicit beats the config's train.threads
    if explicit:
        apply_threads(explicit)
    elif "torch" not in sys.modules:  # a fresh process: torch will start its pools with this
        os.environ.setdefault("OMP_NUM_THREADS", str(default_threads()))
    # else: a caller that already runs torch (a notebook, a test) keeps the threads it chose
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"spectok {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `spectok models | head -1`: the reader is gone; end quietly, as coreutils do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return 0
    except Exception as e:
        if debug:
            raise
        print(f"spectok {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 1


def _one_line_warnings(command: str) -> None:
    """Python warnings (e.g. "chunked codes are approximate") as one line each, ``spectok CMD: warning: ...``,
    without the file:line and source line, and each message once."""
    import warnings

    warnings.simplefilter("once")
    warnings.showwarning = lambda message, category, *args, **kwargs: print(
        f"spectok {command}: warning: {str(message).strip().splitlines()[0] if str(message).strip() else ''}",
        file=sys.stderr)


def _one_line(e: BaseException) -> str:
    """The first line of a spectok error; other exceptions with their type (an unexpected failure)."""
    from spectok.errors import SpectokError

    if isinstance(e, OSError) and e.filename is not None and e.strerror:  # "PATH: No space left on device"
        target = f" -> {e.filename2}" if e.filename2 is not None else ""
        return f"{os.fsdecode(e.filename)!s}{target}: {e.strerror}".replace("\n", "\\n")
    lines = str(e).strip().splitlines() or [""]
    text = lines[0] if isinstance(e, SpectokError) else f"{type(e).__name__}: {lines[0]}".rstrip(": ")
    return text + (" (--debug shows the rest)" if len(lines) > 1 else "")


if __name__ == "__main__":
    sys.exit(main())
