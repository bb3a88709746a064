"""ResidualVQ (stages, dropout, inference at n <= N stages) and FSQ (grid, index round trip)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectok.quantizers import FSQ, ResidualVQ, build_quantizer


def _z(batch: int, dim: int, spatial: tuple[int, ...], seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(batch, dim, *spatial, generator=torch.Generator().manual_seed(seed))


# ---- ResidualVQ -------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(n_stages=st.integers(1, 4), k=st.integers(1, 17), dim=st.integers(1, 7),
       spatial=st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple), data=st.data())
def test_rvq_contract_at_every_stage_count(n_stages, k, dim, spatial, data):
    torch.manual_seed(0)
    q = ResidualVQ(n_stages, k, dim)
    z = _z(2, dim, spatial)
    out = q(z)
    assert out.codes.shape == (2, n_stages, *spatial) and out.codes.dtype == torch.int64
    assert out.quantized.shape == z.shape and torch.isfinite(out.loss)
    assert q.codebook_sizes == [k] * n_stages
    q.eval()
    n = data.draw(st.integers(1, n_stages))
    out = q(z, n_quantizers=n)
    assert out.codes.shape[1] == n
    assert int(out.codes.min()) >= 0 and int(out.codes.max()) < k
    assert torch.equal(q.decode(out.codes), out.quantized)
    # the first n rows of the full code stack decode to the n-stage result
    full = q(z)
    assert torch.equal(q.decode(full.codes[:, :n]), out.quantized)


def test_rvq_error_falls_with_more_stages():
    torch.manual_seed(0)
    q = ResidualVQ(4, 16, 6, quantizer_dropout=0.0, dead_code_threshold=0.0)
    z = _z(4, 6, (50,))
    for _ in range(5):
        q(z)
    q.eval()
    errs = [float((q(z, n_quantizers=n).quantized - z).pow(2).mean()) for n in range(1, 5)]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs


def test_rvq_quantizer_dropout_only_in_training():
    torch.manual_seed(0)
    q = ResidualVQ(4, 8, 3, quantizer_dropout=1.0)
    z = _z(64, 3, (2,))
    means = [q(z).metrics["n_quantizers_mean"] for _ in range(3)]
    assert all(1.0 <= m < 4.0 for m in means)
    assert q(z, n_quantizers=2).metrics["n_quantizers_mean"] == 2.0
    q.eval()
    assert q(z).metrics["n_quantizers_mean"] == 4.0


def test_rvq_dropped_stages_add_nothing():
    """With dropout, each example's output is exactly the sum of its first c stages' code vectors."""
    torch.manual_seed(0)
    # gradient-trained codebooks without k-means or restarts: a training forward leaves them unchanged
    q = ResidualVQ(3, 8, 4, quantizer_dropout=1.0, ema=False, dead_code_threshold=0.0, kmeans_init=False)
    for stage in q.stages:
        stage.codebook.data.normal_()
    z = _z(32, 4, (5,))
    out = q(z)
    q.eval()
    partial = [q.decode(out.codes[:, :n]) for n in (1, 2, 3)]
    used = []
    for b in range(z.shape[0]):
        match = [n for n, p in zip((1, 2, 3), partial) if torch.equal(out.quantized[b], p[b])]
        assert match, f"example {b} matches no partial sum"
        used.append(match[0])
    assert len(set(used)) > 1
    assert sum(used) / len(used) == pytest.approx(out.metrics["n_quantizers_mean"])


def test_rvq_gradients_and_config():
    torch.manual_seed(0)
    q = ResidualVQ(3, 8, 5, codebook_dim=2, distance="cosine")
    z = _z(2, 5, (6,)).requires_grad_(True)
    out = q(z)
    (out.quantized.pow(2).sum() + out.loss).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    r = build_quantizer(json.loads(json.dumps(q.config)))
    assert r.config == q.config and isinstance(r, ResidualVQ)
    with pytest.raises(ValueError, match="n_quantizers"):
        q(z, n_quantizers=4)
    with pytest.raises(ValueError, match="rows"):
        q.decode(torch.zeros(2, 4, 6, dtype=torch.long))


@pytest.mark.parametrize("fill", [0.0, 1e10])
def test_rvq_no_nan_on_degenerate_input(fill):
    q = ResidualVQ(3, 4, 2)
    z = torch.full((2, 2, 5), fill, requires_grad=True)
    out = q(z)
    (out.quantized.sum() + out.loss).backward()
    assert torch.isfinite(out.quantized).all() and torch.isfinite(z.grad).all()


# ---- FSQ --------------------------------------------------------------------------------

levels_strategy = st.lists(st.integers(2, 9), min_size=1, max_size=4)


@settings(max_examples=30, deadline=None)
@given(levels=levels_strategy)
def test_fsq_index_round_trip_over_the_whole_codebook(levels):
    q = FSQ(levels)
    idx = torch.arange(q.codebook_size)
    digits = q.index_to_digits(idx)
    assert torch.equal(q.digits_to_index(digits), idx)
    assert torch.all(digits >= 0) and torch.all(digits < torch.tensor(levels))
    assert len({tuple(d) for d in digits.tolist()}) == math.prod(levels)


@settings(max_examples=20, deadline=None)
@given(levels=levels_strategy, extra_dim=st.integers(0, 3),
       spatial=st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple))
def test_fsq_contract(levels, extra_dim, spatial):
    dim = len(levels) + extra_dim
    q = FSQ(levels, dim=dim).eval()
    z = _z(2, dim, spatial, scale=3.0)
    out = q(z)
    assert out.codes.shape == (2, 1, *spatial) and out.codes.dtype == torch.int64
    assert int(out.codes.min()) >= 0 and int(out.codes.max()) < math.prod(levels)
    assert torch.equal(q.decode(out.codes), out.quantized)
    assert out.loss.item() == 0.0 and q.codebook_sizes == [math.prod(levels)]


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [2, 3], [7]])
def test_fsq_reaches_exactly_l_values_per_channel(levels):
    q = FSQ(levels)
    sweep = torch.linspace(-20, 20, 4001)
    z = sweep.repeat(len(levels), 1).unsqueeze(0)  # [1, d, 4001]
    out = q(z)
    digits = q.index_to_digits(out.codes.flatten())
    for i, level in enumerate(levels):
        assert sorted(set(digits[:, i].tolist())) == list(range(level))
    assert out.quantized.abs().max() <= 1.0


def test_fsq_gradients_and_extremes():
    q = FSQ([8, 5, 5, 5], dim=6)
    for fill in (0.0, 1e10, -1e10):
        z = torch.full((2, 6, 3), fill, requires_grad=True)
        out = q(z)
        out.quantized.pow(2).sum().backward()
        assert torch.isfinite(out.quantized).all() and torch.isfinite(z.grad).all()
    z = _z(2, 6, (3,)).requires_grad_(True)
    q(z).quantized.pow(2).sum().backward()
    assert z.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="levels"):
        FSQ([1, 4])
    r = build_quantizer(json.loads(json.dumps(q.config)))
    assert r.config == q.config


@pytest.mark.parametrize("make", [lambda: FSQ([8, 5, 5, 5]), lambda: ResidualVQ(2, 16, 4, kmeans_init=False)])
def test_bf16_autocast_gives_the_fp32_codes(make):
    torch.manual_seed(0)
    q = make().eval()
    z = _z(2, 4, (33,), scale=2.0)
    ref = q(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(z)
        decoded = q.decode(out.codes)
    assert torch.equal(out.codes, ref.codes)
    assert out.quantized.dtype == torch.float32 and torch.equal(decoded, out.quantized)
