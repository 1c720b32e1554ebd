"""Codebook core behaviour: dead-code restart, bad input, k-means seeding."""
from __future__ import annotations

import math

import pytest
import torch

from mediatok.quantizers import FSQ, GroupedResidualVQ, LCQuantizer, ResidualVQ, SimVQ, VectorQuantizer
from mediatok.quantizers.kmeans import kmeans_plus_plus


def _clustered(n: int, k: int, dim: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, dim, generator=g) * 4
    return centers[torch.randint(k, (n,), generator=g)] + 0.1 * torch.randn(n, dim, generator=g)


@pytest.mark.parametrize("ema_decay", [0.9, None], ids=["ema", "gradient"])
def test_dead_code_restart_revives_a_collapsed_codebook(ema_decay):
    torch.manual_seed(0)
    k, dim = 64, 8
    vq = VectorQuantizer(dim, k, kmeans_init=False, ema_decay=ema_decay, dead_code_threshold=0.2, dead_code_window=2.0)
    # Collapse: every codeword far away from the data but one, so one code takes every token.
    with torch.no_grad():
        vq.codebook.embed.copy_(torch.full((k, dim), 100.0))
        vq.codebook.embed[0].zero_()
    data = _clustered(4096, k, dim)
    vq.train()
    first = vq(data.T[None])
    assert first.stats["utilization"] <= 2 / k
    opt = torch.optim.SGD(vq.parameters(), lr=0.5) if ema_decay is None else None
    for _ in range(30):
        out = vq(data[torch.randperm(len(data))[:1024]].T[None])
        if opt is not None:
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    vq.eval()
    final = vq(data.T[None])
    assert final.stats["utilization"] > 0.9
    assert (final.quantized - data.T[None]).pow(2).mean() < 0.1 * (first.quantized - data.T[None]).pow(2).mean()


def test_dead_code_rule_does_not_depend_on_batch_size():
    """The same token stream cut into batches of 128 or 2048 gives the same usage estimate per code."""
    data = _clustered(16384, 16, 4)
    usages = []
    for batch in (128, 2048):
        vq = VectorQuantizer(4, 32, ema_decay=None, kmeans_init=False, dead_code_threshold=0.0, dead_code_window=8.0)
        with torch.no_grad():
            vq.codebook.embed.copy_(torch.randn(32, 4, generator=torch.Generator().manual_seed(3)) * 4)
            vq.codebook.embed[16:] = 1e3  # half the codes can never win: their usage must decay to ~0
        vq.train()
        for start in range(0, len(data), batch):
            vq.codebook(data[start : start + batch])
        usages.append(vq.codebook.usage.clone())
    assert float(usages[0][16:].max()) < 0.05 and float(usages[1][16:].max()) < 0.05
    assert torch.allclose(usages[0], usages[1], rtol=0.25, atol=0.05), (usages[0] - usages[1]).abs().max()


def test_kmeans_plus_plus_returns_distinct_points_from_the_data():
    x = _clustered(2000, 10, 3)
    seeds = kmeans_plus_plus(x, 50, rounds=5, generator=torch.Generator().manual_seed(0))
    assert seeds.shape == (50, 3)
    assert torch.unique(seeds, dim=0).shape[0] == 50
    assert all(bool((x == s).all(1).any()) for s in seeds)


def test_kmeans_plus_plus_with_fewer_points_than_codes():
    x = torch.randn(5, 3)
    seeds = kmeans_plus_plus(x, 12)
    assert seeds.shape == (12, 3) and torch.isfinite(seeds).all()


@pytest.mark.parametrize(
    "make",
    [
        lambda: VectorQuantizer(8, 0),
        lambda: VectorQuantizer(0, 16),
        lambda: ResidualVQ(8, 16, num_quantizers=0),
        lambda: GroupedResidualVQ(9, 16, num_groups=2, num_quantizers=2),
        lambda: SimVQ(8, -1),
        lambda: FSQ([1, 5]),
        lambda: FSQ([]),
        lambda: VectorQuantizer(8, 16, metric="dot"),
        lambda: VectorQuantizer(8, 16, ema_decay=1.5),
        lambda: VectorQuantizer(8, 16, gradient="gumbel"),
    ],
)
def test_bad_construction_arguments_raise(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(
    "z, message",
    [
        (torch.randn(8, 10), "shape"),
        (torch.randn(2, 8, 2, 2, 2, 2), "shape"),
        (torch.randn(2, 7, 10), "channels"),
        (torch.tensor([[[float("nan")] * 4] * 8]), "NaN"),
        (torch.tensor([[[float("inf")] * 4] * 8]), "NaN or infinite"),
    ],
    ids=["rank2", "rank6", "channels", "nan", "inf"],
)
def test_bad_input_raises_with_a_clear_message(z, message):
    for q in (VectorQuantizer(8, 16), ResidualVQ(8, 16, 2), SimVQ(8, 16), FSQ([5, 5], dim=8)):
        with pytest.raises(ValueError, match=message):
            q(z)


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="floating"):
        VectorQuantizer(8, 16)(torch.ones(1, 8, 4, dtype=torch.long))


@pytest.mark.parametrize(
    "q, indices, message",
    [
        (VectorQuantizer(8, 16), torch.full((1, 1, 5), 16), r"\[0, 16\)"),
        (VectorQuantizer(8, 16), torch.full((1, 1, 5), -1), r"\[0, 16\)"),
        (VectorQuantizer(8, 16), torch.zeros(1, 2, 5, dtype=torch.long), "codebooks"),
        (VectorQuantizer(8, 16), torch.zeros(1, 1, 5), "integer"),
        (ResidualVQ(8, 16, 2), torch.zeros(1, 3, 5, dtype=torch.long), "codebooks"),
        (GroupedResidualVQ(8, 16, 2, 2), torch.zeros(1, 3, 5, dtype=torch.long), "multiple of num_groups"),
        (FSQ([4, 4]), torch.full((1, 1, 3), 16), r"\[0, 16\)"),
        (SimVQ(8, 16), torch.zeros(5, dtype=torch.long), "shape"),
    ],
)
def test_bad_indices_raise(q, indices, message):
    with pytest.raises((ValueError, TypeError), match=message):
        q.decode_indices(indices)


def test_lc_init_from_features_places_entries_on_feature_clusters():
    torch.manual_seed(0)
    feats = _clustered(5000, 20, 12)
    lc = LCQuantizer(4, 20, codebook_dim=12)
    lc.init_from_features(feats, iters=20)
    nearest = torch.cdist(lc.codebook.base, feats).min(1).values
    assert float(nearest.max()) < 1.0
    with pytest.raises(ValueError, match="features"):
        lc.init_from_features(torch.randn(10, 5))


def test_lc_handles_a_100k_codebook():
    lc = LCQuantizer(8, 100_000, codebook_dim=16).eval()
    out = lc(torch.randn(2, 8, 64))
    assert out.indices.max() < 100_000
    assert torch.equal(lc.decode_indices(out.indices), out.quantized)
    assert math.isclose(lc.bits_per_token, math.log2(100_000))
