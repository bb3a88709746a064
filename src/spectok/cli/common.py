"""Small helpers shared by the command modules."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from spectok.errors import SpectokError


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


def _reason(e: BaseException) -> str:
    """One line: the message of a spectok error (minus a leading file name), else type and message."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text if isinstance(e, SpectokError) else f"{type(e).__name__}: {text}"


def printable(text: Path | str) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\t``, ``\\x1b``): a file name holding a newline
    or a terminal escape stays one line of output, and one field of a TSV."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))


class Runner:
    """Runs a per-item job with a progress bar, reporting failures as ``spectok CMD: skipped FILE: reason``.

    The exit-code policy of every per-file command (``encode``, ``decode``, ``reconstruct``,
    ``eval``, ``plot usage``): the others go on when some inputs fail; the command then exits 1,
    after a summary line and ``failures.tsv`` (path, reason) in the output folder (when ``out`` is a
    file, the failures are only printed: nothing is written beside a file the user named); it exits 0
    only when every input succeeded.
    """

    def __init__(self, command: str, total: int, quiet: bool, out: Path | None = None, existing: int = 0) -> None:
        from tqdm import tqdm

        self.command, self.done, self.failed, self.out, self.existing = command, 0, 0, out, existing
        self.failures: list[tuple[str, str]] = []
        self.bar = tqdm(total=total, desc=command, unit="file", disable=quiet or None, file=sys.stderr,
                        dynamic_ncols=True)

    def fail(self, path: Path | str, e: BaseException) -> None:
        """Count ``path`` as failed with the exception's one-line reason."""
        self.record(path, _reason(e))

    def record(self, path: Path | str, reason: str) -> None:
        """Count ``path`` as failed for ``reason`` (a leading copy of the path is dropped)."""
        self.failed += 1
        if reason.startswith(str(path)):
            reason = reason[len(str(path)):].lstrip(": ")
        self.failures.append((printable(path), printable(reason)))
        self.bar.write(f"spectok {self.command}: skipped {printable(path)}: {printable(reason)}", file=sys.stderr)
        self.bar.update(1)

    def ok(self, n: int = 1) -> None:
        self.done += n
        self.bar.update(n)

    def finish(self) -> int:
        self.bar.close()
        total = self.done + self.failed
        report = ""
        if self.failures and self.out is not None and (self.out.suffix == "" or self.out.is_dir()):
            # a list file only inside an output folder the command owns, never beside a file the user named
            from spectok.fsutil import write_text_atomic

            report = self.out / "failures.tsv"
            write_text_atomic(report, "path\treason\n" + "".join(f"{p}\t{r}\n" for p, r in self.failures))
            report = f"; list in {report}"
        kept = (f"; {self.existing} output(s) already there were kept (--overwrite rewrites them)"
                if self.existing else "")
        print(f"spectok {self.command}: {self.done} of {total} file(s) done"
              + (f", {self.failed} failed (see above{report})" if self.failed else "") + kept, file=sys.stderr)
        return 1 if self.failed or not (self.done or self.existing) else 0


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
