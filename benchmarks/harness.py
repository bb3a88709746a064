"""What the benchmarks repeat, in one module they import as it is (``python benchmarks/bench_x.py`` puts
``benchmarks/`` first on the import path; nothing edits ``sys.path``).

- ``REPO``, ``DATA`` (``../shared/data``), ``PRESETS`` (the shipped tokenizer presets);
- :func:`spectok`: run ``spectok ARGS`` in a child with N threads, returning its CPU seconds
  (:func:`spectok.training.accounting.run_spectok`), and :func:`training_cpu_s`;
- :func:`release_sets`: ``scripts/release_data.py``, the released models' data;
- :func:`merge`: a preset with overrides; :func:`engine_config`: a config for a budgeted benchmark run;
- :func:`spawn`: one training run in a child process (:func:`run_one`), stopped once its CPU
  budget is spent, returning steps, CPU and wall seconds, validation metrics and peak memory.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from spectok.training.accounting import run_spectok as spectok
from spectok.training.accounting import training_cpu_s

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PRESETS = REPO / "configs" / "tokenizer"

__all__ = ["DATA", "PRESETS", "REPO", "engine_config", "merge", "release_sets", "run_one", "spawn", "spectok",
           "training_cpu_s"]


def release_sets() -> ModuleType:
    """``scripts/release_data.py`` (the released models' data: ``items_for(name)``, ``main(argv)``), loaded
    from its file."""
    spec = importlib.util.spec_from_file_location("release_data", REPO / "scripts" / "release_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def merge(base: dict, over: dict) -> dict:
    """Recursive dict update; a change of model ``class`` or quantizer ``type`` replaces that section."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k == "model" and "class" in v and v["class"] != out["model"].get("class"):
            out["model"] = {"mel": out["model"]["mel"], "norm_mean": out["model"].get("norm_mean", -5.0),
                            "norm_std": out["model"].get("norm_std", 2.0), **copy.deepcopy(v)}
        elif k == "quantizer" and "type" in v and v["type"] != out.get(k, {}).get("type"):
            out[k] = copy.deepcopy(v)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# ---- one run (in a subprocess) ---------------------------------------------------------------
def run_one(job: dict) -> dict:
    import torch

    from spectok.training.engine import Trainer

    torch.set_num_threads(int(job.get("threads", 2)))
    cfg = job["config"]
    budget = job.get("cpu_budget")

    class BudgetTrainer(Trainer):
        """The engine, told to finish (final validation, checkpoint) once the CPU budget is spent."""

        def _train_step(self, batch):
            super()._train_step(batch)
            marks.append((time.process_time(), time.time()))
            if budget is not None and time.process_time() - start_cpu >= budget:
                self.cfg.steps = self.step

    marks: list[tuple[float, float]] = []  # (CPU s, wall s) after each step
    trainer = BudgetTrainer(cfg, job["run_dir"])
    start_cpu, start_wall = time.process_time(), time.time()
    result = trainer.fit()
    cpu, wall = time.process_time() - start_cpu, time.time() - start_wall
    model = trainer.task.model
    if job.get("artifact"):  # the trained model as a release artifact, for `spectok eval`
        from spectok.artifacts import save_release

        save_release(model, job["artifact"], training={"step": result["step"], "valid": result["valid"],
                                                       "config": cfg, **trainer.task.training_summary()})
    return {"steps": result["step"], "cpu_s": cpu, "wall_s": wall, "valid": result["valid"],
            "params": sum(p.numel() for p in model.parameters()),
            "bitrate": getattr(model, "bitrate", None) if getattr(model, "mel_config", None) else None,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "marks": marks}


def spawn(job: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(job.get("threads", 2)), PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, __file__, "--job", json.dumps(job)], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise SystemExit(f"run {job['name']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def engine_config(cfg: dict, data: Path, steps: int, budget: bool) -> dict:
    cfg = copy.deepcopy(cfg)
    train = cfg.setdefault("train", {})
    train.update(steps=steps, prepared=str(data), device="cpu", progress=False, num_workers=0,
                 valid_every=10**9 if budget else 0, checkpoint_every=0, media_every=0, log_every=10**9, seed=0)
    if cfg["task"] == "image-tokenizer":
        cfg.setdefault("data", {}).update(train_limit=2048, valid_limit=500)
    return cfg




if __name__ == "__main__":  # the child of spawn()
    ap = argparse.ArgumentParser()
    ap.add_argument("--job", required=True)
    print(json.dumps(run_one(json.loads(ap.parse_args().job))))
