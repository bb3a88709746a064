"""CodebookStats: usage arithmetic over an epoch."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectok.quantizers import CodebookStats


@pytest.mark.parametrize("k", [1, 2, 7, 512])
def test_uniform_usage_gives_perplexity_k_and_log2_k_bits(k):
    s = CodebookStats(k)
    s.update(torch.arange(k).repeat(3).reshape(1, 1, -1))
    out = s.summary(frame_rate=50.0)
    assert out["perplexity"] == pytest.approx(k)
    assert out["entropy_bits"] == pytest.approx(math.log2(k), abs=1e-12)
    assert out["used_fraction"] == 1.0 and out["dead_codes"] == 0.0
    assert out["bits_per_second"] == pytest.approx(50.0 * math.log2(k), abs=1e-9)
    assert out["nominal_bits_per_second"] == pytest.approx(50.0 * math.log2(k))
    assert out["count"] == 3 * k


def test_one_code_used():
    s = CodebookStats(16)
    s.update(torch.full((2, 1, 4, 5), 3))
    out = s.summary()
    assert out["perplexity"] == 1.0 and out["entropy_bits"] == 0.0
    assert out["used_fraction"] == 1 / 16 and out["dead_codes"] == 15.0
    assert "bits_per_second" not in out


def test_known_distribution():
    # p = (1/2, 1/4, 1/4, 0): H = 1.5 bits
    s = CodebookStats(4)
    s.update(torch.tensor([[[0, 0, 1, 2]]]))
    out = s.summary(frame_rate=10.0)
    assert out["entropy_bits"] == pytest.approx(1.5)
    assert out["perplexity"] == pytest.approx(2**1.5)
    assert out["dead_codes"] == 1.0 and out["used_fraction"] == 0.75
    assert out["bits_per_second"] == pytest.approx(15.0)


def test_counts_accumulate_over_the_epoch_and_reset():
    codes = torch.randint(0, 32, (4, 1, 50), generator=torch.Generator().manual_seed(0))
    whole, parts = CodebookStats(32), CodebookStats(32)
    whole.update(codes)
    for chunk in codes.split(1):
        parts.update(chunk)
    assert parts.summary() == whole.summary()
    parts.reset()
    assert parts.summary()["count"] == 0.0 and parts.summary()["used_fraction"] == 0.0


def test_rows_and_mask():
    s = CodebookStats([4, 8])
    codes = torch.stack([torch.tensor([[0, 1, 2, 3, 3, 3]]), torch.tensor([[5, 5, 5, 5, 7, 7]])], dim=1)
    mask = torch.tensor([[True, True, True, True, False, False]])
    s.update(codes, mask=mask)
    out = s.summary(frame_rate=25.0)
    assert out["row0/perplexity"] == pytest.approx(4.0) and out["row1/perplexity"] == 1.0
    assert out["row0/used_fraction"] == 1.0 and out["row1/used_fraction"] == 1 / 8
    assert out["used_fraction"] == pytest.approx(5 / 12)  # of all 12 codes together, not a mean of fractions
    assert out["dead_codes"] == 7.0
    assert out["entropy_bits"] == pytest.approx(2.0)
    assert out["nominal_bits_per_second"] == pytest.approx(25.0 * (2 + 3))
    s.update(codes[:, :1])  # fewer rows than codebooks: counts toward row 0 only
    assert s.summary()["row0/count"] == 10.0 and s.summary()["row1/count"] == 4.0


def test_bad_input():
    s = CodebookStats(4)
    with pytest.raises(ValueError, match="outside"):
        s.update(torch.tensor([[[4]]]))
    with pytest.raises(ValueError, match="rows"):
        s.update(torch.zeros(1, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="mask"):
        s.update(torch.zeros(1, 1, 3, dtype=torch.long), mask=torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError):
        CodebookStats([0])


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 64), counts=st.lists(st.integers(0, 20), min_size=1, max_size=64))
def test_entropy_bounds(k, counts):
    counts = counts[:k]
    codes = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts)).reshape(1, 1, -1)
    s = CodebookStats(k)
    s.update(codes)
    out = s.summary()
    used = sum(c > 0 for c in counts)
    assert out["dead_codes"] == k - used
    if used:
        assert 0.0 <= out["entropy_bits"] <= math.log2(used) + 1e-9
        assert 1.0 - 1e-9 <= out["perplexity"] <= used + 1e-6
