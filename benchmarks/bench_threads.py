"""Training speed against threads, alone and beside a competing CPU job (docs/training.md, "Threads").

Trains the ``default`` preset on the released model's data (``scripts/release_data.py speech16k``)
for ``--steps`` steps in a fresh process, four ways: ``--threads 1`` and ``--threads 2``, each with
the machine otherwise idle and with one competing single-thread CPU job (a second ``default``
training, the usual neighbour on a shared machine). Speed is steps per wall second between the
first and the last logged step (start-up excluded). Prints one table and the ratios, measured in
one run. Run it on an otherwise idle machine; it says the load average it started from.

Usage::

    .venv/bin/python benchmarks/bench_threads.py            # ~6 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "runs" / "data" / "release" / "speech16k"


def train_argv(out: Path, steps: int, threads: int) -> list[str]:
    return [sys.executable, "-m", "spectok", "train", "tokenizer", "--config", "default", "--data", str(DATA),
            "--out", str(out), "--steps", str(steps), "--threads", str(threads),
            "--set", "train.log_every=25", "--set", "train.valid_every=0", "--set", "train.checkpoint_every=0",
            "--set", "train.media_every=0", "--set", "train.progress=false", "--set", "train.checkpoint_minutes=0"]


def steps_per_second(run: Path) -> float:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r.get("event") == "train"]
    first, last = train[0], train[-1]
    return (last["step"] - first["step"]) / (last["time"] - first["time"])


def measure(work: Path, steps: int, threads: int, busy: bool) -> float:
    name = f"t{threads}-{'busy' if busy else 'idle'}"
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("SPECTOK_THREADS", None)
    neighbour = None
    if busy:  # one single-thread training that outlasts the measured one
        neighbour = subprocess.Popen(train_argv(work / f"{name}-neighbour", 10**6, 1), env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(8)  # past its start-up
    try:
        subprocess.run(train_argv(work / name, steps, threads), env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    return steps_per_second(work / name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400, help="training steps per measurement (default 400)")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent: run python scripts/release_data.py speech16k {DATA} -j 2")
    print(f"## Training steps/s of the default preset ({os.cpu_count()} CPUs; load average at start "
          f"{os.getloadavg()[0]:.2f})")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rates = {(t, b): measure(work, args.steps, t, b) for t in (1, 2) for b in (False, True)}
    print("| threads | machine idle | one competing CPU job | slowdown |")
    print("|---|---|---|---|")
    for t in (1, 2):
        idle, busy = rates[(t, False)], rates[(t, True)]
        print(f"| {t} | {idle:.2f} | {busy:.2f} | {idle / busy:.2f}x |")
    print(f"2 threads against 1: {rates[(2, False)] / rates[(1, False)]:.2f}x idle, "
          f"{rates[(2, True)] / rates[(1, True)]:.2f}x beside the competing job")


if __name__ == "__main__":
    main()
