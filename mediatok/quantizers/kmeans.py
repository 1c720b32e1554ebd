"""k-means for codebook initialisation: batched k-means++ seeding and Lloyd refinement, process-group aware."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from mediatok.kernels import nearest_codeword
from mediatok.quantizers import distributed


@torch.no_grad()
def kmeans_plus_plus(x: Tensor, k: int, *, rounds: int = 32, generator: torch.Generator | None = None) -> Tensor:
    """Choose k seeds from the rows of x (N, D) with probability proportional to squared distance.

    Exact k-means++ (Arthur & Vassilvitskii, 2007) picks one seed per pass; taking ceil(k / rounds) per pass
    keeps the cost at `rounds` distance sweeps, which matters for 100k-entry codebooks.
    """
    n = x.shape[0]
    if n == 0:
        raise ValueError("k-means needs at least one vector")
    if n <= k:
        # Too few vectors to pick k distinct ones: take all, then jittered repeats (dead-code restart fixes them).
        extra = x[torch.randint(n, (k - n,), generator=generator, device=x.device)] if k > n else x[:0]
        noise = torch.randn(extra.shape, generator=generator, device=x.device) * (x.std() * 1e-2 + 1e-6)
        return torch.cat([x, extra + noise])
    first = torch.randint(n, (1,), generator=generator, device=x.device)
    centers = [x[first]]
    _, d2 = nearest_codeword(x, centers[0])
    chosen = 1
    per_round = max(1, math.ceil((k - 1) / max(rounds, 1)))
    while chosen < k:
        m = min(per_round, k - chosen)
        weights = d2.double()
        if not weights.sum() > 0:
            weights = torch.ones_like(weights)
        pick = torch.multinomial(weights, m, replacement=False, generator=generator)
        new = x[pick]
        centers.append(new)
        chosen += m
        if chosen < k:
            _, d_new = nearest_codeword(x, new)
            d2 = torch.minimum(d2, d_new)
    return torch.cat(centers)


@torch.no_grad()
def lloyd(x: Tensor, centers: Tensor, iters: int) -> tuple[Tensor, Tensor]:
    """Refine centers (K, D) on x (N, D); sums and counts are summed over processes. Returns (centers, counts)."""
    k = centers.shape[0]
    centers = centers.clone()
    counts = torch.zeros(k, device=x.device)
    for _ in range(iters):
        idx, _ = nearest_codeword(x, centers)
        counts = distributed.all_reduce_sum_(torch.bincount(idx, minlength=k).float())
        sums = distributed.all_reduce_sum_(torch.zeros_like(centers).index_add_(0, idx, x.float()))
        filled = counts > 0
        # Empty clusters keep their previous center rather than collapsing to zero.
        centers[filled] = sums[filled] / counts[filled, None]
    return centers, counts


@torch.no_grad()
def kmeans(x: Tensor, k: int, *, iters: int = 10, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """k-means++ seeds on rank 0 broadcast to every process, then Lloyd steps over all processes' data."""
    x = x.float()
    d = x.shape[1]
    seeds = kmeans_plus_plus(x, k, generator=generator) if distributed.rank() == 0 else x.new_empty(k, d)
    distributed.broadcast_(seeds)
    return lloyd(x, seeds, iters)
