"""VectorQuantizer: the contract (shapes, dtypes, exact decode), gradients, beta placement,
codebook upkeep (EMA, k-means, dead-code restart), masks, fp32 lookup under autocast."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectok.quantizers import VectorQuantizer, build_quantizer
from spectok.quantizers.ops import rotation_trick

VARIANTS = [
    {},  # the defaults: EMA + k-means + restart, L2
    {"ema": False, "kmeans_init": False, "dead_code_threshold": 0.0},  # the seeds' plain VQ
    {"distance": "cosine", "codebook_dim": 3},  # ViT-VQGAN factorized codes
    {"ema": False, "rotation_trick": True},
    {"distance": "cosine", "rotation_trick": True},
    {"kmeans_init_rows": 1, "dead_code_threshold": 0.5},  # k-means and restarts from the first step
]


def _latents(batch: int, dim: int, spatial: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, *spatial, generator=g)


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 37),
    dim=st.integers(1, 9),
    batch=st.integers(1, 3),
    spatial=st.lists(st.integers(1, 5), min_size=0, max_size=2).map(tuple),
    variant=st.sampled_from(range(len(VARIANTS))),
)
def test_contract_shapes_dtypes_and_exact_decode(k, dim, batch, spatial, variant):
    torch.manual_seed(0)
    q = VectorQuantizer(k, dim, **VARIANTS[variant])
    z = _latents(batch, dim, spatial)
    out = q(z)  # training step (k-means init, EMA, restarts)
    assert out.quantized.shape == z.shape and out.quantized.dtype == torch.float32
    assert out.codes.shape == (batch, 1, *spatial) and out.codes.dtype == torch.int64
    assert int(out.codes.min()) >= 0 and int(out.codes.max()) < k
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert q.codebook_sizes == [k]
    q.eval()
    out = q(z)
    assert torch.equal(q.decode(out.codes), out.quantized)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_encoder_input(variant):
    torch.manual_seed(0)
    q = VectorQuantizer(16, 6, **variant)
    z = _latents(2, 6, (7,)).requires_grad_(True)
    out = q(z)
    (out.quantized.pow(2).sum() + out.loss).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_beta_weighs_only_the_encoder_side():
    """d loss / d codebook must not depend on beta; d loss / d z must scale with beta."""
    torch.manual_seed(0)
    base = VectorQuantizer(8, 4, ema=False, kmeans_init=False, dead_code_threshold=0.0)
    base.codebook.data.normal_()
    z0 = _latents(3, 4, (5,))
    grads = {}
    for beta in (0.1, 1.0):
        q = copy.deepcopy(base)
        q.beta = beta
        z = z0.clone().requires_grad_(True)
        q(z).loss.backward()
        grads[beta] = (q.codebook.grad.clone(), z.grad.clone())
    assert torch.allclose(grads[0.1][0], grads[1.0][0])
    assert grads[1.0][0].abs().sum() > 0
    assert torch.allclose(grads[1.0][1], 10.0 * grads[0.1][1], rtol=1e-5, atol=1e-8)
    assert grads[1.0][1].abs().sum() > 0


def test_ema_codebook_gets_no_gradient_and_loss_is_commitment_only():
    torch.manual_seed(0)
    q = VectorQuantizer(8, 4)
    assert not any(p is q.codebook for p in q.parameters())
    out = q(_latents(2, 4, (9,)))
    assert out.metrics["codebook"] == 0.0
    assert out.loss.item() == pytest.approx(0.25 * out.metrics["commitment"], rel=1e-6)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("fill", [0.0, 3.0, 1e10, -1e10])
def test_no_nan_on_constant_zero_or_huge_input(variant, fill):
    torch.manual_seed(0)
    q = VectorQuantizer(5, 3, **variant)
    z = torch.full((2, 3, 6), fill, requires_grad=True)
    for _ in range(3):
        out = q(z)
        (out.quantized.sum() + out.loss).backward()
        assert torch.isfinite(out.quantized).all() and torch.isfinite(out.loss)
        assert torch.isfinite(z.grad).all()
    assert torch.isfinite(q.codebook).all()


def test_codebook_of_size_one():
    q = VectorQuantizer(1, 4)
    out = q(_latents(2, 4, (3, 3)))
    assert torch.equal(out.codes, torch.zeros(2, 1, 3, 3, dtype=torch.long))
    q.eval()
    out = q(_latents(2, 4, (3, 3), seed=1))
    assert torch.equal(q.decode(out.codes), out.quantized)


def _clusters(n_clusters: int, dim: int, per: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``[n_clusters * per, dim]`` around well-separated centres, shaped ``[1, dim, N]``."""
    g = torch.Generator().manual_seed(seed)
    centres = 10.0 * torch.randn(n_clusters, dim, generator=g)
    rows = centres.repeat_interleave(per, 0) + 0.01 * torch.randn(n_clusters * per, dim, generator=g)
    return rows.t().unsqueeze(0), centres


def test_kmeans_init_covers_every_cluster():
    torch.manual_seed(0)
    z, centres = _clusters(8, 5, 50)
    q = VectorQuantizer(8, 5, dead_code_threshold=0.0)
    out = q(z)
    assert out.metrics["used_fraction"] == 1.0
    d = torch.cdist(centres, q.codebook).min(dim=1).values
    assert d.max() < 0.1


def test_kmeans_waits_for_enough_rows_over_several_batches():
    """Each batch holds one cluster; k-means must see all four before it places the codes."""
    torch.manual_seed(0)
    z, centres = _clusters(4, 3, 10)
    q = VectorQuantizer(4, 3, kmeans_init_rows=40, dead_code_threshold=0.0)
    for i in range(4):
        assert not bool(q.initialized)
        q(z[..., 10 * i : 10 * (i + 1)])
    assert bool(q.initialized)
    assert torch.cdist(centres, q.codebook).min(dim=1).values.max() < 0.1


def test_dead_codes_are_restarted_onto_the_data():
    """Codes initialised far from the data would stay dead forever without restarts."""
    torch.manual_seed(0)
    z, _ = _clusters(16, 4, 20)
    z = z + 100.0
    runs = {}
    for thr in (0.0, 0.1):
        q = VectorQuantizer(16, 4, kmeans_init=False, dead_code_threshold=thr)
        for _ in range(20):
            q(z)
        q.eval()
        runs[thr] = q(z).metrics["used_fraction"]
    assert runs[0.0] <= 2 / 16
    assert runs[0.1] >= 0.75


def test_dead_code_threshold_does_not_depend_on_batch_size():
    """The same usage proportions at 1x and 10x the batch size restart the same codes.

    Codes 0-3 sit on the four data clusters; codes 4-7 are far away with EMA usage proportional to
    [1, 4, 8, 0]. With threshold 0.5 x mean usage, codes 4 and 7 are dead at any batch scale (an
    absolute threshold of, say, 2 rows would kill them at 1x and spare them at 10x).
    """
    z, centres = _clusters(4, 3, 10)
    restarted = []
    for reps in (1, 10):
        torch.manual_seed(0)
        q = VectorQuantizer(8, 3, kmeans_init=False, dead_code_threshold=0.5)
        q.codebook.copy_(torch.cat([centres, 50.0 + torch.randn(4, 3)]))
        q.cluster_size.copy_(reps * torch.tensor([10.0, 10, 10, 10, 1, 4, 8, 0]))
        q.ema_sum.copy_(q.codebook * q.cluster_size[:, None])
        rows = z.repeat(1, 1, reps)
        q(rows)
        is_data_row = (q.codebook[:, None, :] == rows[0].t()[None]).all(-1).any(-1)  # restarts copy rows
        restarted.append(torch.nonzero(is_data_row).flatten().tolist())
    assert restarted[0] == restarted[1] == [4, 7]


def test_ema_moves_codes_to_cluster_means():
    torch.manual_seed(0)
    z, centres = _clusters(4, 3, 25)
    q = VectorQuantizer(4, 3, kmeans_init=False, dead_code_threshold=0.2, decay=0.9)
    for _ in range(150):
        q(z)
    assert torch.cdist(centres, q.codebook).min(dim=1).values.max() < 0.05


def test_mask_excludes_padding_from_codebook_statistics():
    torch.manual_seed(0)
    z = _latents(2, 4, (10,))
    padded = torch.cat([z, 1e3 * torch.ones(2, 4, 6)], dim=2)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :10] = True
    a = VectorQuantizer(8, 4, dead_code_threshold=0.0)
    b = copy.deepcopy(a)
    torch.manual_seed(1)
    out_a = a(z)
    torch.manual_seed(1)
    out_b = b(padded, mask=mask)
    assert torch.allclose(a.codebook, b.codebook, atol=1e-6)
    assert torch.allclose(a.cluster_size, b.cluster_size)
    assert out_a.loss.item() == pytest.approx(out_b.loss.item(), rel=1e-5)
    assert torch.equal(out_a.codes, out_b.codes[..., :10])


def test_lookup_runs_in_float32_under_bf16_autocast():
    """Codes 1e-3 apart are indistinguishable in bf16; the fp32 lookup still finds the nearest."""
    k = 16
    q = VectorQuantizer(k, 2, kmeans_init=False, dead_code_threshold=0.0).eval()
    q.codebook.copy_(torch.stack([1.0 + 1e-3 * torch.arange(k), torch.ones(k)], dim=1))
    target = torch.randint(0, k, (64,))
    z = q.codebook[target].t().unsqueeze(0) + 1e-5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(z)
    assert torch.equal(out.codes.flatten(), target)


def test_rotation_trick_value_and_gradient_map():
    """Forward value is exactly q; the backward map J satisfies J e = q and J^T J = (|q|/|e|)^2 I."""
    g = torch.Generator().manual_seed(0)
    e, q = torch.randn(1, 5, generator=g), torch.randn(1, 5, generator=g)
    assert torch.equal(rotation_trick(e, q), q)
    jac = torch.autograd.functional.jacobian(lambda x: rotation_trick(x, q), e)[0, :, 0, :]
    assert torch.allclose(jac @ e[0], q[0], atol=1e-5)
    s2 = (q.norm() / e.norm()) ** 2
    assert torch.allclose(jac.t() @ jac, s2 * torch.eye(5), atol=1e-5)
    assert not torch.allclose(jac, torch.eye(5), atol=1e-2)


def test_config_round_trip_and_state_dict():
    q = VectorQuantizer(32, 6, codebook_dim=4, distance="cosine", rotation_trick=True)
    cfg = json.loads(json.dumps(q.config))
    q(_latents(2, 6, (8,)))
    r = build_quantizer(cfg)
    assert r.config == q.config
    r.load_state_dict(q.state_dict())
    q.eval()
    r.eval()
    z = _latents(2, 6, (8,), seed=3)
    assert torch.equal(q(z).codes, r(z).codes)


def test_factory_and_input_errors():
    with pytest.raises(ValueError, match="unknown quantizer type"):
        build_quantizer({"type": "pq", "codebook_size": 4})
    with pytest.raises(ValueError, match="bad arguments"):
        build_quantizer({"type": "vq", "codebook_size": 4, "dim": 2, "colour": "red"})
    with pytest.raises(ValueError, match="'type'"):
        build_quantizer({"codebook_size": 4})
    q = VectorQuantizer(4, 3)
    with pytest.raises(ValueError, match="3 channels"):
        q(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match="outside"):
        q.decode(torch.tensor([[[0, 4]]]))
    with pytest.raises(ValueError, match="integer codes"):
        q.decode(torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="distance"):
        VectorQuantizer(4, 3, distance="manhattan")


@pytest.mark.parametrize("spec", [
    {"type": "vq", "dim": 8, "codebook_size": 16, "ema": True, "kmeans_init": True, "dead_code_threshold": 0.5},
    {"type": "vq", "dim": 8, "codebook_size": 16, "distance": "cosine"},
    {"type": "rvq", "num_quantizers": 3, "codebook_size": 16, "dim": 8, "ema": True, "kmeans_init": True,
     "quantizer_dropout": 0.5},
    {"type": "fsq", "levels": [5, 5, 5], "dim": 8},
])
def test_encode_is_pure_and_equals_the_eval_forward_codes(spec) -> None:
    """encode() gives forward()'s eval codes and leaves every parameter and buffer bit-identical, even in
    training mode (no EMA update, no k-means, no restart)."""
    from spectok.quantizers import build_quantizer

    torch.manual_seed(0)
    q = build_quantizer(dict(spec))
    z = torch.randn(4, 8, 3, 11)
    q.eval()
    q(z)  # an eval forward, so an un-initialised codebook stays as it is in both paths
    q.train()
    before = {k: v.clone() for k, v in q.state_dict().items()}
    codes = q.encode(z)
    after = q.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "encode changed the quantizer's state"
    q.eval()
    assert torch.equal(codes, q(z).codes)
    q.train()
    q(z)  # the training forward does update (the control: the check above can fail)
    changed = any(not torch.equal(before[k], v) for k, v in q.state_dict().items())
    assert changed or spec["type"] == "fsq" or spec.get("distance") == "cosine"
