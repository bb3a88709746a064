"""The training engine end to end on a tiny task and 8 real LJSpeech clips (CPU).

The central test kills a run with SIGKILL at a known point, resumes it, and checks it ends
with bit-identical weights, and identical per-step losses, to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from test_engine_tinytask import cli_env, write_config

from spectok.artifacts import load_release, read_header
from spectok.cli.main import main
from spectok.fsutil import read_jsonl
from spectok.training.checkpoint import load_checkpoint
from spectok.training.schedules import lr_at
from spectok.training.task import OptimizerSpec


def _train(tmp_path: Path, prepared: Path, name: str = "run", **train) -> Path:
    out = tmp_path / name
    cfg = write_config(tmp_path / f"{name}.yaml", **train)
    assert main(["train", "tokenizer", "--config", str(cfg), "--data", str(prepared), "--out", str(out)]) == 0
    return out


def _events(run: Path, event: str) -> list[dict]:
    return [r for r in read_jsonl(run / "metrics.jsonl") if r["event"] == event]


def test_run_folder_layout_logs_and_best(tmp_path, tiny_prepared):
    run = _train(tmp_path, tiny_prepared, gan=True, steps=6, valid_every=2, checkpoint_every=3, keep_last=1)
    assert (run / "config.yaml").is_file() and (run / "train.log").is_file()
    assert any((run / "tb").iterdir()), "no TensorBoard event file"
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["best.pt", "step-00000006.pt"]  # keep_last=1 pruned step 3

    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert stored["train"]["prepared"] == str(tiny_prepared.resolve()) and stored["train"]["num_workers"] == 0

    train = _events(run, "train")
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
    # The discriminator phase is skipped (losses() returns None) before disc_start = 2.
    assert "train/discriminator/total" not in train[1] and "train/discriminator/total" in train[2]
    spec = OptimizerSpec("generator", ["model"], kind="adam", lr=3e-3, schedule="cosine", warmup_steps=2)
    assert [r["lr/generator"] for r in train] == pytest.approx([lr_at(spec, s, 6) for s in range(6)])
    assert all(r["grad_norm/generator"] >= 0 for r in train)

    valid = _events(run, "valid")
    assert [r["step"] for r in valid] == [2, 4, 6]
    best = min(valid, key=lambda r: r["valid/l1"])
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    assert state["best"] == {"metric": "l1", "value": best["valid/l1"], "step": best["step"]}
    assert state["step"] == best["step"]


def test_validation_pass_covers_the_whole_set_and_leaves_training_unchanged(tmp_path, tiny_prepared):
    a = _train(tmp_path, tiny_prepared, "a", steps=4, valid_every=1, checkpoint_every=0)
    b = _train(tmp_path, tiny_prepared, "b", steps=4, valid_every=0, checkpoint_every=0)
    wa = load_checkpoint(a / "checkpoints" / "step-00000004.pt")["models"]["model"]
    wb = load_checkpoint(b / "checkpoints" / "step-00000004.pt")["models"]["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "validation changed the training trajectory"
    assert len(_events(a, "valid")) == 4 and not _events(b, "valid")


def test_existing_run_needs_resume_and_resume_needs_a_run(tmp_path, tiny_prepared, capsys):
    run = _train(tmp_path, tiny_prepared, steps=2, valid_every=0, checkpoint_every=0)
    cfg = tmp_path / "run.yaml"
    assert main(["train", "tokenizer", "--config", str(cfg), "--data", str(tiny_prepared), "--out", str(run)]) == 1
    assert "already holds checkpoints" in capsys.readouterr().err
    assert main(["train", "tokenizer", "--out", str(tmp_path / "nothing"), "--resume"]) == 1
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["train", "vocoder", "--config", str(cfg), "--data", str(tiny_prepared),
                 "--out", str(tmp_path / "other")]) == 1
    assert "trains a tokenizer, not a vocoder" in capsys.readouterr().err


def test_resume_before_the_first_checkpoint_starts_again_from_step_0(tmp_path, tiny_prepared, capsys):
    """A process killed after writing its config but before its first checkpoint: --resume redoes it."""
    import shutil

    done = _train(tmp_path, tiny_prepared, "done", steps=2, valid_every=0, checkpoint_every=0)
    early = tmp_path / "early"
    early.mkdir()
    shutil.copy(done / "config.yaml", early / "config.yaml")
    (early / "metrics.jsonl").write_text('{"event": "train", "step": 1, "half a line')
    assert main(["train", "tokenizer", "--out", str(early), "--resume"]) == 0
    assert "starting again from step 0" in (early / "train.log").read_text()
    a = load_checkpoint(done / "checkpoints" / "step-00000002.pt")["models"]["model"]
    b = load_checkpoint(early / "checkpoints" / "step-00000002.pt")["models"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_extends_a_finished_run_with_overrides(tmp_path, tiny_prepared):
    run = _train(tmp_path, tiny_prepared, steps=2, valid_every=0, checkpoint_every=0)
    assert main(["train", "tokenizer", "--out", str(run), "--resume", "--steps", "4",
                 "--set", "train.log_every=2", "--set", "optim.generator.lr=1e-3"]) == 0
    train = _events(run, "train")
    assert [r["step"] for r in train] == [1, 2, 4]
    spec = OptimizerSpec("generator", ["model"], kind="adam", lr=1e-3, schedule="cosine", warmup_steps=2)
    assert train[-1]["lr/generator"] == pytest.approx(lr_at(spec, 3, 4))  # the override reached the optimizer
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 4
    assert "resumed from step-00000002.pt at step 2" in (run / "train.log").read_text()


def test_export_writes_the_best_model_as_a_release(tmp_path, tiny_prepared):
    run = _train(tmp_path, tiny_prepared, steps=4, valid_every=2, checkpoint_every=2)
    out = tmp_path / "tiny.safetensors"
    assert main(["export", str(run), "-o", str(out)]) == 0
    model = load_release(out, kind="tokenizer")
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert all(torch.equal(v, best["models"]["model"][k]) for k, v in model.state_dict().items())
    training = read_header(out)["training"]
    assert training["tiny"] is True and training["step"] == best["step"]
    assert training["config"]["task"] == "test_engine_tinytask:TinyTask"


def _weights(run: Path, step: int) -> dict[str, dict[str, torch.Tensor]]:
    return load_checkpoint(run / "checkpoints" / f"step-{step:08d}.pt")["models"]


def test_sigkill_and_resume_ends_with_the_same_weights(tmp_path, tiny_prepared):
    """Uninterrupted 8 steps vs. killed (SIGKILL) during step 6 after the step-4 checkpoint, then resumed."""
    keys = dict(gan=True, steps=8, checkpoint_every=2, valid_every=3, keep_last=10, num_workers=1)
    args = ["train", "tokenizer", "--data", str(tiny_prepared)]
    full, killed = tmp_path / "full", tmp_path / "killed"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the killed subprocess (OMP_NUM_THREADS=1): same float results
    try:
        assert main([*args, "--config", str(write_config(tmp_path / "c.yaml", **keys)), "--out", str(full)]) == 0
    finally:
        torch.set_num_threads(threads)

    env = cli_env(SPECTOK_TEST_HANG_AT_STEP="5")  # 0-based: the 6th step hangs, after step 5 is logged
    proc = subprocess.Popen([sys.executable, "-m", "spectok", *args, "--config", str(tmp_path / "c.yaml"),
                             "--out", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not any(r["step"] == 5 for r in read_jsonl(killed / "metrics.jsonl")):
            assert proc.poll() is None, f"run ended before the kill: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "run did not reach step 5"
            time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert sorted(p.name for p in (killed / "checkpoints").glob("step-*.pt")) == ["step-00000002.pt",
                                                                                  "step-00000004.pt"]
    torch.set_num_threads(1)
    try:
        assert main(["train", "tokenizer", "--out", str(killed), "--resume"]) == 0
    finally:
        torch.set_num_threads(threads)

    assert "resumed from step-00000004.pt at step 4" in (killed / "train.log").read_text()
    a, b = _weights(full, 8), _weights(killed, 8)
    for name in a:
        for k in a[name]:
            assert torch.equal(a[name][k], b[name][k]), f"{name}.{k} differs after resume"
    # Same losses at every step, each step logged once (the killed run's step 5 was dropped).
    for event in ("train", "valid"):
        ra, rb = _events(full, event), _events(killed, event)
        assert [r["step"] for r in rb] == [r["step"] for r in ra]
        for x, y in zip(ra, rb):
            assert {k: v for k, v in x.items() if "/" in k and not k.startswith("perf")} == \
                   {k: v for k, v in y.items() if "/" in k and not k.startswith("perf")}
    summary = json.loads((killed / "metrics.jsonl").read_text().splitlines()[-1])
    assert summary["step"] == 8


def test_bf16_autocast_and_the_media_hook_in_eval_context(tmp_path, tiny_prepared):
    from spectok.training.engine import Trainer

    config = yaml.safe_load(write_config(tmp_path / "c.yaml", steps=4, media_every=2, valid_every=2,
                                         valid_batch_size=1, precision="bf16").read_text())
    config["train"]["prepared"] = str(tiny_prepared)
    trainer = Trainer(config, tmp_path / "run")
    trainer.fit()
    task = trainer.task
    assert task.train_dtypes == {torch.bfloat16}
    assert task.validated_batches == 4  # 2 validations x the whole valid split (2 items, batches of 1)
    # Media: eval mode, no grad, plain models, on the first validation batch (whole utterance, 64-frame cap).
    assert [c[:4] for c in task.media_calls] == [(2, False, False, True), (4, False, False, True)]
    assert task.media_calls[0][4] == (1, 80, 64)
    assert task.model.training and task.wrapped["model"] is task.model


def test_sigterm_stops_after_the_step_with_a_checkpoint(tmp_path, tiny_prepared):
    run = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", steps=10_000, checkpoint_every=0, valid_every=0)
    proc = subprocess.Popen([sys.executable, "-m", "spectok", "train", "tokenizer", "--config", str(cfg),
                             "--data", str(tiny_prepared), "--out", str(run)],
                            env=cli_env(SPECTOK_TEST_STEP_SLEEP="0.05"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not any(r["step"] >= 2 for r in read_jsonl(run / "metrics.jsonl")):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "run did not reach step 2"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=300) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    steps = sorted(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("step-*.pt"))
    assert len(steps) == 1 and 2 <= steps[0] < 10_000
    assert f"stopped by SIGTERM at step {steps[0]}" in (run / "train.log").read_text()
    assert max(r["step"] for r in read_jsonl(run / "metrics.jsonl")) == steps[0]



def test_a_checkpoint_comes_by_the_clock_so_an_early_kill_can_resume(tmp_path, tiny_prepared, monkeypatch):
    """With steps far apart (checkpoint_every huge), the first checkpoint still comes one minute in."""
    import spectok.training.engine as engine

    clock = {"t": 1000.0}
    monkeypatch.setattr(engine.time, "monotonic", lambda: clock["t"])
    seen = []

    class Clocked(engine.Trainer):
        def _train_step(self, batch):
            super()._train_step(batch)
            clock["t"] += 25.0  # each step "takes" 25 s
            seen.append(self.step)

    cfg = yaml.safe_load(write_config(tmp_path / "c.yaml", steps=6, checkpoint_every=10**6, valid_every=0,
                                      keep_last=5).read_text())
    cfg["train"]["prepared"] = str(tiny_prepared)
    Clocked(cfg, tmp_path / "run").fit()
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step-*.pt"))
    assert names[0] == "step-00000003.pt"  # 75 s > 60 s: the first by the clock
    assert names[-1] == "step-00000006.pt"  # the final one


def test_default_preset_resumes_bit_identically(tmp_path, ljspeech_wavs):
    """The `default` preset itself (residual VQ with EMA codebooks, k-means init and restarts, the
    difference loss): 4 steps in one go equal 2 steps, a stop, and a resume to 4 — weights and codebook
    buffers bit-identical."""
    from spectok.data.corpora import CorpusItem
    from spectok.data.prepare import prepare

    items = [CorpusItem(id=w.stem, path=w, speaker="LJ", split="valid" if i >= 4 else "train")
             for i, w in enumerate(ljspeech_wavs[:5])]
    data = tmp_path / "prepared"
    assert prepare(items, data, mel="speech-16k", dtype="float32", progress=False).failed == 0
    flags = ["--set", "train.batch_size=2", "--set", "train.valid_every=2", "--set", "train.checkpoint_every=2",
             "--set", "train.media_every=0", "--set", "train.progress=false", "--set", "train.num_workers=0"]

    def train(out: Path, steps: int, *extra: str) -> None:
        assert main(["train", "tokenizer", "--threads", "1", "--out", str(out), "--steps", str(steps),
                     *extra, *flags]) == 0

    train(tmp_path / "whole", 4, "--config", "default", "--data", str(data))
    train(tmp_path / "split", 2, "--config", "default", "--data", str(data))
    train(tmp_path / "split", 4, "--resume")
    a = load_checkpoint(tmp_path / "whole" / "checkpoints" / "step-00000004.pt")["models"]["model"]
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "step-00000004.pt")["models"]["model"]
    assert set(a) == set(b) and any("ema" in k for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
