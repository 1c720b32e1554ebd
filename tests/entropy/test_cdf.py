"""quantize_pmf: exact totals, frequencies >= 1, near-ideal rates, and the determinism rule."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mediatok.entropy import counts_to_cdf, gaussian_tables, quantize_pmf


def _valid(cdf: torch.Tensor, precision: int) -> bool:
    c = cdf.reshape(-1, cdf.shape[-1]).long()
    return bool((c[:, 0] == 0).all() and (c[:, -1] == 1 << precision).all() and (c.diff(dim=-1) >= 1).all())


@pytest.mark.parametrize("precision", [12, 16, 24])
@pytest.mark.parametrize("k", [1, 2, 255, 4096])
def test_quantize_pmf_is_a_valid_cdf(precision: int, k: int) -> None:
    g = torch.Generator().manual_seed(k)
    pmf = torch.rand(7, k, generator=g) ** 8  # many tiny probabilities
    pmf[0] = 0
    pmf[0, 0] = 1  # a row with one certain symbol: the others still get frequency 1
    if k > (1 << precision):
        pytest.skip("alphabet larger than 2^precision")
    cdf = quantize_pmf(pmf, precision)
    assert cdf.dtype == torch.int32 and cdf.shape == (7, k + 1)
    assert _valid(cdf, precision)


def test_alphabet_filling_the_precision_falls_back_to_one_slot_each() -> None:
    cdf = quantize_pmf(torch.rand(3, 1 << 12) + 0.5, 12)
    assert torch.equal(cdf[0], torch.arange((1 << 12) + 1, dtype=torch.int32))


def test_rate_is_close_to_the_float_model() -> None:
    g = torch.Generator().manual_seed(0)
    pmf = torch.softmax(torch.randn(64, 1024, generator=g) * 3, -1).double()  # (64, 1024)
    cdf = quantize_pmf(pmf, 16)
    q = (cdf.diff(dim=-1).double() / 65536)
    cross = -(pmf * q.log2()).sum(-1)  # expected code length under the integer model
    entropy = -(pmf * pmf.log2()).sum(-1)
    assert float((cross - entropy).max()) < 0.02  # bits/symbol, at 2.8 to 6.2 bits of entropy
    assert float((cross - entropy).sum() / entropy.sum()) < 0.005


def test_determinism_row_result_does_not_depend_on_batch_or_threads() -> None:
    """The rule: a row's CDF is a function of that row alone (CPU, fixed-order float64 cumsum), so the
    decoder reproduces it from the same PMF whatever batch it computes it in."""
    g = torch.Generator().manual_seed(1)
    pmf = torch.softmax(torch.randn(257, 513, generator=g) * 4, -1)
    full = quantize_pmf(pmf, 16)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        rows = torch.stack([quantize_pmf(pmf[i], 16) for i in range(0, 257, 16)])
        chunked = torch.cat([quantize_pmf(c, 16) for c in pmf.split(50)])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(full[::16], rows) and torch.equal(full, chunked)
    assert torch.equal(quantize_pmf(pmf.reshape(257, 1, 513), 16)[:, 0], full)


def test_bad_pmf_raises() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        quantize_pmf(torch.tensor([0.5, -0.1]))
    with pytest.raises(ValueError, match="finite"):
        quantize_pmf(torch.tensor([0.5, float("nan")]))
    with pytest.raises(ValueError, match="positive total"):
        quantize_pmf(torch.zeros(3))
    with pytest.raises(ValueError, match="precision"):
        quantize_pmf(torch.ones(3), 25)
    with pytest.raises(ValueError, match="float"):
        quantize_pmf(torch.ones(3, dtype=torch.long))


def test_ragged_lengths_and_counts() -> None:
    cdf = quantize_pmf(torch.rand(4, 10), 16, lengths=torch.tensor([1, 3, 10, 7]))
    assert cdf[0, 1] == 65536 and (cdf[1, 3:] == 65536).all() and (cdf[1, 1:4].diff() >= 1).all()
    c = counts_to_cdf(torch.tensor([[0, 5, 0, 100], [0, 0, 0, 0]]), 16)
    assert _valid(c, 16)
    assert torch.equal(c[1], torch.tensor([0, 16384, 32768, 49152, 65536], dtype=torch.int32))


def test_gaussian_tables_layout() -> None:
    tables, lengths, offsets = gaussian_tables(torch.tensor([0.2, 1.0, 10.0]))
    assert tables.shape[0] == 3 and (lengths[1:] >= lengths[:-1]).all() and (offsets == -(lengths - 3) // 2).all()
    for t in range(3):
        row = tables[t, : int(lengths[t])].long()
        assert row[0] == 0 and row[-1] == 65536 and (row.diff() >= 1).all()
    assert np.isclose(float(tables[2].diff()[: int(lengths[2]) - 2].double().max()) / 65536, 0.0399, atol=2e-3)


def _reference_quantize_pmf(pmf: torch.Tensor, precision: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """quantize_pmf's rule in plain torch (the implementation it had before the numba kernel), for comparison."""
    m, k = 1 << precision, pmf.shape[-1]
    p = pmf.reshape(-1, k)  # (R, K)
    valid = None if lengths is None else torch.arange(k) < lengths[:, None]  # (R, K)
    if valid is not None:
        p = p * valid
    nb = -(-k // 8)
    blocks = torch.nn.functional.pad(p, (0, nb * 8 - k)).view(-1, nb, 8)  # (R, nb, 8)
    within = torch.cumsum(blocks, -1, dtype=torch.float64)  # sequential inside a block
    before = torch.nn.functional.pad(torch.cumsum(within[..., -1], -1)[:, :-1], (1, 0))  # (R, nb)
    csum = (before[..., None] + within).view(-1, nb * 8)[:, :k]  # (R, K)
    total = csum[:, -1:]
    ones = torch.ones_like(p, dtype=torch.bool) if valid is None else valid
    tiny = (p < total * (2.0 / m)) & ones
    ntiny = tiny.sum(-1, keepdim=True)
    leaky = ntiny > m // 4  # (R, 1)
    nsym = ones.sum(-1, keepdim=True)
    scale = torch.where(leaky, (m - nsym) / total, (m - ntiny) / total)
    reserved = torch.where(leaky, ones, tiny)
    body = (csum * scale).round().to(torch.int32) + torch.cumsum(reserved, -1, dtype=torch.int32)
    return torch.nn.functional.pad(body, (1, 0)).reshape(*pmf.shape[:-1], k + 1)


@pytest.mark.parametrize("seed", range(6))
def test_quantize_pmf_matches_the_torch_reference(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    k = int(torch.randint(1, 700, (1,), generator=g))
    precision = [12, 14, 16, 24][seed % 4]
    pmf = torch.rand(64, k, generator=g) ** float(torch.randint(1, 30, (1,), generator=g))  # (64, K)
    pmf[0] = 0.0
    pmf[0, 0] = 3.0  # one certain symbol, unnormalised
    for p in (pmf, pmf.double()):
        assert torch.equal(quantize_pmf(p, precision), _reference_quantize_pmf(p, precision))
    lengths = torch.randint(1, k + 1, (64,), generator=g)
    assert torch.equal(quantize_pmf(pmf, precision, lengths=lengths),
                       _reference_quantize_pmf(pmf, precision, lengths))
    leaky = torch.rand(8, 3000, generator=g) ** 8  # (8, 3000) at 12 bits: more than M/4 tiny symbols
    assert torch.equal(quantize_pmf(leaky, 12), _reference_quantize_pmf(leaky, 12))
