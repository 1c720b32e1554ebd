"""rebalance_codebook: moving rarely used codewords into the busiest cells flattens usage on the fitted rows."""
from __future__ import annotations

import pytest
import torch

from mediatok.kernels import nearest_codeword
from mediatok.quantizers import LCQuantizer
from mediatok.quantizers.rebalance import rebalance_codebook


def _skewed(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows from 8 blobs, one of them 30x more frequent, and 32 codes of which 24 sit where no row is."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(8, 6, generator=g) * 5
    weights = torch.tensor([30.0] + [1.0] * 7)
    x = centres[torch.multinomial(weights, 20000, replacement=True, generator=g)] + torch.randn(20000, 6, generator=g)
    codes = torch.cat([centres, 40 + torch.randn(24, 6, generator=g)])  # 24 codes far from every row
    return x, codes


def _usage(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    return torch.bincount(nearest_codeword(x, codes)[0], minlength=codes.shape[0]).double() * codes.shape[0] / x.shape[0]


def test_rebalance_flattens_usage_and_lowers_error():
    x, codes = _skewed()
    before = _usage(x, codes)
    assert int((before == 0).sum()) == 24 and float(before.max()) > 10  # the skewed start
    res = rebalance_codebook(codes, x, rounds=12, min_usage=0.3, max_moves=0.25)
    after = _usage(x, res.codes)
    assert torch.equal(after, res.counts.double() * 32 / 20000)  # the returned counts are those of the new codes
    assert int((after < 0.3).sum()) == 0  # every code now serves its share within the threshold
    assert float(after.max()) < 0.5 * float(before.max())
    entropy = lambda u: float(-(u / 32 * (u / 32).clamp_min(1e-12).log()).sum())  # noqa: E731
    assert entropy(after) > entropy(before) + 0.5
    err = lambda c: float(nearest_codeword(x, c)[1].mean())  # noqa: E731
    assert err(res.codes) < err(codes)  # the busy blob is served by more codes
    assert set(range(8, 32)) <= set(res.moved.tolist())  # every code that served no row was moved


def test_rebalance_leaves_a_balanced_codebook_alone():
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(16, 4, generator=g) * 10
    x = centres.repeat(500, 1) + 0.1 * torch.randn(8000, 4, generator=g)
    res = rebalance_codebook(centres, x, rounds=4, min_usage=0.5)
    assert res.moved.numel() == 0 and torch.equal(res.codes, centres)


def test_rebalance_refuses_too_few_rows():
    with pytest.raises(ValueError, match="at least 2 \\* K rows"):
        rebalance_codebook(torch.randn(64, 3), torch.randn(100, 3))


def test_move_codes_writes_through_the_lc_projector():
    torch.manual_seed(0)
    lc = LCQuantizer(8, 32, 8)
    feats = torch.randn(2000, 8)
    lc.init_from_features(feats, latents=feats @ torch.randn(8, 8))
    target = torch.randn(5, 8)
    lc.codebook.move_codes(torch.tensor([3, 7, 11, 12, 30]), target)
    torch.testing.assert_close(lc.codebook.codes()[[3, 7, 11, 12, 30]], target, atol=1e-4, rtol=1e-4)
    assert torch.equal(lc.codebook.usage[[3, 7, 11, 12, 30]], torch.ones(5))
    lc.eval()
    z = target.T[None]  # (1, 8, 5): each column sits on a moved codeword
    assert lc(z).indices.flatten().tolist() == [3, 7, 11, 12, 30]
