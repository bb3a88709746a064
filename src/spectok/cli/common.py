"""Small helpers shared by the command modules."""

from __future__ import annotations

import argparse


def add_command(sub, name: str, help: str, example: str, func) -> argparse.ArgumentParser:
    """Add a sub-command whose ``--help`` ends with an example."""
    p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p
