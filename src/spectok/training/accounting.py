"""CPU-time accounting of training runs and commands, for budgets stated in CPU-seconds.

- :func:`run_spectok`: run ``spectok ARGS`` in a child process with a given number of threads and
  return the child's CPU seconds (user + system), so a release or benchmark can state what a
  step cost on any machine, whatever else was running.
- :func:`training_cpu_s`: the CPU seconds of a run's training over all its processes, from the
  ``perf/process_cpu_s`` of its ``metrics.jsonl`` (each resume restarts that counter).
"""

from __future__ import annotations

import os
import resource
import shlex
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from spectok.errors import SpectokError


def run_spectok(args: list[str], threads: int, log: Path | None = None) -> float:
    """Run ``spectok ARGS`` with ``threads`` torch threads (stdout to ``log`` when given); the child's CPU-s.

    Raises:
        SpectokError: the command failed (its exit status).
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("$ spectok " + shlex.join(args), flush=True)
    with open(log, "a") if log else open(os.devnull, "w") as sink:
        code = subprocess.call([sys.executable, "-m", "spectok", *args], env=env, stdout=sink if log else None)
    if code:
        raise SpectokError(f"spectok {args[0]} failed with exit status {code}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def training_cpu_s(rows: Iterable[dict]) -> float:
    """CPU seconds of a run's training over all its processes, from its ``metrics.jsonl`` rows."""
    total = last = 0.0
    for r in rows:
        cpu = r.get("perf/process_cpu_s")
        if cpu is None:
            continue
        if cpu < last:  # a resumed process: bank the one before
            total += last
        last = cpu
    return total + last
