"""Float64 oracle shared by the CPU and Triton nearest-codeword tests."""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

# float32 rounding of ||x||^2 - 2 x.c + ||c||^2, with headroom for the length of the dot product
_EPS = 64 * torch.finfo(torch.float32).eps


def _check_exact(x: Tensor, codebook: Tensor, idx: Tensor, dist: Tensor) -> None:
    """Assert (idx, dist) is an exact nearest-codeword answer for the float32-rounded inputs.

    The chosen codeword's float64 distance must equal the float64 minimum up to float32 rounding of the
    expansion (relative to ||x||^2 + ||c||^2), and dist must be that distance up to direct-form rounding.
    """
    n = x.shape[0]
    assert idx.shape == (n,) and dist.shape == (n,), (idx.shape, dist.shape)
    assert idx.dtype == torch.int64 and dist.dtype == torch.float32, (idx.dtype, dist.dtype)
    xd = x.detach().cpu().float().double()
    cd = codebook.detach().cpu().float().double()
    idx, dist = idx.cpu(), dist.cpu().double()
    full = (xd[:, None, :] - cd[None, :, :]).pow(2).sum(-1)  # (N, K) small test sizes only
    true_min = full.min(1).values
    chosen = full[torch.arange(n), idx]
    scale = xd.pow(2).sum(1) + cd.pow(2).sum(1).max()
    gap = chosen - true_min
    bad = gap > _EPS * scale
    assert not bad.any(), f"rows {bad.nonzero()[:5, 0].tolist()} chose a farther codeword (gap {gap[bad][:5]})"
    err = (dist - chosen).abs()
    assert (err <= 1e-5 * chosen + 1e-30).all(), f"sq_dist off by up to {err.max():.3g}"


@pytest.fixture
def check_exact() -> Callable[[Tensor, Tensor, Tensor, Tensor], None]:
    return _check_exact
