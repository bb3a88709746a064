"""Two CPU processes (gloo): codebook upkeep leaves bit-identical codebooks on every rank.

Each rank feeds different data (different values, batch sizes and local RNG streams) for a
few training steps; k-means initialisation, EMA statistics and dead-code restarts must
still produce the same buffers and parameters everywhere, without DDP's buffer broadcast.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from spectok.quantizers import CodebookStats, build_quantizer, ops

CASES = {
    # a high restart threshold forces restarts at every step
    "vq_default": {"type": "vq", "codebook_size": 32, "dim": 6, "dead_code_threshold": 0.9},
    "vq_cosine_lowdim": {"type": "vq", "codebook_size": 16, "dim": 6, "codebook_dim": 3, "distance": "cosine",
                         "dead_code_threshold": 0.9},
    "vq_gradient_codebook": {"type": "vq", "codebook_size": 16, "dim": 6, "ema": False,
                             "dead_code_threshold": 0.9},
    "rvq_dropout": {"type": "rvq", "num_quantizers": 3, "codebook_size": 16, "dim": 6, "quantizer_dropout": 0.5,
                    "dead_code_threshold": 0.5},
}
STEPS = 4


def _no_sync(t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    return t


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        _run_cases(rank, out_dir, CASES)
        # negative control: without the collectives the same run must leave different codebooks
        ops.all_reduce_sum_, ops.broadcast_ = _no_sync, _no_sync
        _run_cases(rank, out_dir, {"unsynced": {**CASES["vq_default"], "kmeans_init_rows": 16}})
    finally:
        dist.destroy_process_group()


def _run_cases(rank: int, out_dir: str, cases: dict) -> None:
    for name, cfg in cases.items():
        torch.manual_seed(0)  # identical construction on every rank, as DDP would ensure
        q = build_quantizer(cfg)
        stats = CodebookStats(q.codebook_sizes)
        data = torch.Generator().manual_seed(100 + rank)
        torch.manual_seed(1000 + rank)  # local RNG streams differ between ranks
        restarts = 0.0
        for _ in range(STEPS):
            centres = 5.0 * torch.randn(1, 6, 1, generator=data) * (1 + rank)
            z = centres + torch.randn(2 + rank, 6, 9, generator=data)
            out = q(z)
            restarts += sum(v for k, v in out.metrics.items() if k.endswith("restarted_codes"))
            stats.update(out.codes)
        torch.save({"state": q.state_dict(), "restarts": restarts, "summary": stats.summary(),
                    "local": [c.clone() for c in stats.counts]}, Path(out_dir) / f"{name}_rank{rank}.pt")


def test_codebooks_identical_on_two_ranks(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for name in CASES:
        r0, r1 = (torch.load(tmp_path / f"{name}_rank{r}.pt") for r in (0, 1))
        assert r0["restarts"] > 0, f"{name}: the test should exercise dead-code restarts"
        assert r0["restarts"] == r1["restarts"]
        assert r0["state"].keys() == r1["state"].keys()
        for key, value in r0["state"].items():
            assert torch.equal(value, r1["state"][key]), f"{name}: {key} differs between ranks"
        # usage statistics are summed over ranks: same summary everywhere, counting both ranks' codes
        assert r0["summary"] == r1["summary"]
        local_total = sum(float(c.sum()) for c in (r0["local"][0], r1["local"][0]))
        assert r0["summary"]["count"] == local_total
        assert not torch.equal(r0["local"][0], r1["local"][0])
    u0, u1 = (torch.load(tmp_path / f"unsynced_rank{r}.pt") for r in (0, 1))
    assert not torch.equal(u0["state"]["codebook"], u1["state"]["codebook"]), "the check cannot fail"
