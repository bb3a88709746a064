"""Entry point of the ``spectok`` command.

Each command group lives in its own module exposing ``register(subparsers)``, which adds
its sub-command(s) with ``set_defaults(func=handler)``. Heavy imports (torch, models)
happen inside handlers so ``spectok --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from spectok._version import __version__

# Add a command group by appending its module here.
COMMAND_MODULES: list[str] = [
    "spectok.cli.prepare",
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from spectok.errors import SpectokError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpectokError as e:
        print(f"spectok {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"spectok {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
