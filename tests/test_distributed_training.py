"""DDP through torchrun on 2 CPU processes (gloo): ranks agree, the checkpoint resumes on 1 process."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from test_engine_tinytask import cli_env, write_config

from spectok.cli.main import main
from spectok.training.checkpoint import load_checkpoint, load_task
from spectok.training.distributed import ShardedSampler, weights_digest


def test_sharded_sampler_splits_each_epoch_into_disjoint_equal_shards():
    shards = [ShardedSampler(11, seed=5, rank=r, world_size=3) for r in range(3)]
    for epoch in (0, 1):
        for s in shards:
            s.set_epoch(epoch)
        parts = [list(s) for s in shards]
        assert all(len(p) == 3 for p in parts)  # 11 -> 9 usable
        assert len(set().union(*parts)) == 9
    assert list(shards[0].shard(0)) != list(shards[0].shard(1))  # reshuffled per epoch
    shards[1].set_epoch(1, start=2)
    assert list(shards[1]) == shards[1].shard(1)[2:] and len(shards[1]) == 1
    with pytest.raises(Exception, match="cannot be sharded"):
        ShardedSampler(1, world_size=2)


def test_torchrun_two_cpu_processes_agree_and_resume_on_one(tmp_path, tiny_prepared):
    run = tmp_path / "ddp"
    cfg = write_config(tmp_path / "c.yaml", gan=True, steps=4, checkpoint_every=2, valid_every=2, batch_size=1)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "spectok", "train", "tokenizer", "--config", str(cfg), "--data", str(tiny_prepared), "--out", str(run)]
    proc = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    state = load_checkpoint(run / "checkpoints" / "step-00000004.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    d0, d1 = state["rank_digests"]
    assert d0 == d1, "ranks hold different weights"
    task, _ = load_task(run / "checkpoints" / "step-00000004.pt")
    assert weights_digest(task.models()) == d0  # the checkpoint holds what the ranks held
    # Each rank drew its own crops and dropout masks: their RNG streams differ.
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])

    assert main(["train", "tokenizer", "--out", str(run), "--resume", "--steps", "6"]) == 0
    log = (run / "train.log").read_text()
    assert "resumed from step-00000004.pt at step 4 (was 2 process(es) x batch 1" in log
    assert load_checkpoint(run / "checkpoints" / "step-00000006.pt")["world_size"] == 1
