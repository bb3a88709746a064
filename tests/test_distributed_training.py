"""DDP through torchrun on 2 CPU processes (gloo), with the real VQGAN tokenizer task (EMA
codebook, BatchNorm discriminator, two phases): ranks agree, validation covers the whole set
across ranks, and the checkpoint resumes on 1 process."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import yaml
from test_engine_tinytask import cli_env

from spectok.cli.main import main
from spectok.training.checkpoint import load_checkpoint, load_task
from spectok.training.distributed import ShardedSampler, weights_digest

TINY_VQGAN = {
    "task": "vqgan",
    "model": {"class": "conv2d-vqvae", "channels": [8, 8, 16], "num_res_blocks": 1,
              "quantizer": {"type": "vq", "dim": 8, "codebook_size": 32, "ema": True}},
    "discriminator": {"channels": 4, "n_layers": 2, "norm": "batch"},
    "loss": {"disc_start": 2},
    "data": {"crop_frames": 16, "valid_frames": 64},
    "train": {"steps": 4, "batch_size": 2, "valid_every": 2, "checkpoint_every": 2, "log_every": 1,
              "media_every": 0, "device": "cpu", "progress": False},
}


def test_sharded_sampler_splits_each_epoch_into_disjoint_equal_shards():
    shards = [ShardedSampler(11, seed=5, rank=r, world_size=3) for r in range(3)]
    for epoch in (0, 1):
        parts = [s.shard(epoch) for s in shards]
        assert all(len(p) == 3 for p in parts)  # 11 -> 9 usable
        assert len(set().union(*parts)) == 9
    assert list(shards[0].shard(0)) != list(shards[0].shard(1))  # reshuffled per epoch
    with pytest.raises(Exception, match="cannot be sharded"):
        ShardedSampler(1, world_size=2)


def test_torchrun_two_cpu_processes_agree_and_resume_on_one(tmp_path, tiny_prepared):
    run, cfg = tmp_path / "ddp", tmp_path / "vqgan.yaml"
    cfg.write_text(yaml.safe_dump(TINY_VQGAN))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "spectok", "train", "tokenizer", "--config", str(cfg), "--data", str(tiny_prepared), "--out", str(run)]
    proc = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    for step in (2, 4):  # before and after the discriminator starts
        state = load_checkpoint(run / "checkpoints" / f"step-{step:08d}.pt")
        assert state["world_size"] == 2 and len(state["rng"]) == 2
        d0, d1 = state["rank_digests"]
        assert d0 == d1, f"ranks hold different weights, codebooks or buffers at step {step}"
    assert "ema_sum" in "".join(state["models"]["model"])  # the digest covered the EMA codebook
    task, _ = load_task(run / "checkpoints" / "step-00000004.pt")
    assert weights_digest(task.models()) == d0  # the checkpoint holds what the ranks held
    # Each rank validated one of the 2 items; the codebook counts were summed over ranks:
    # 2 items x 64 frames / 2 (time stride) x 4 frequency rows.
    assert state["valid"]["codebook/count"] == 2 * 32 * 4
    # ... and so were the log-mel errors: the validation L1 is the whole set's, not rank 0's share.
    from torch.utils.data import DataLoader

    spec = task.data(str(tiny_prepared))
    task.model.eval()
    task.start_validation()
    for batch in DataLoader(spec.valid, batch_size=2, collate_fn=spec.collate):
        task.validate_batch(batch)
    whole = task.end_validation()
    assert abs(whole["l1"] - state["valid"]["l1"]) < 1e-5 * max(1.0, whole["l1"])
    # Each rank drew its own crops: their RNG streams differ.
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])

    assert main(["train", "tokenizer", "--out", str(run), "--resume", "--steps", "6"]) == 0
    log = (run / "train.log").read_text()
    assert "resumed from step-00000004.pt at step 4 (was 2 process(es) x batch 2" in log
    assert load_checkpoint(run / "checkpoints" / "step-00000006.pt")["world_size"] == 1


@pytest.mark.slow
def test_torchrun_resume_on_two_processes_is_exact(tmp_path, tiny_prepared):
    """Two ranks stopped at step 2 and resumed to step 4 end where an uninterrupted 2-rank run ends."""
    cfg = tmp_path / "vqgan.yaml"
    cfg.write_text(yaml.safe_dump(TINY_VQGAN))  # constant learning rate: the schedule does not see train.steps

    def torchrun(out, *extra):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "spectok",
               "train", "tokenizer", "--data", str(tiny_prepared), "--out", str(out), *extra]
        proc = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]

    torchrun(tmp_path / "full", "--config", str(cfg))
    torchrun(tmp_path / "split", "--config", str(cfg), "--steps", "2")
    torchrun(tmp_path / "split", "--resume", "--steps", "4")
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "step-00000004.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "step-00000004.pt")
    assert a["rank_digests"] == b["rank_digests"]
    for name in a["models"]:
        assert all(torch.equal(v, b["models"][name][k]) for k, v in a["models"][name].items())
