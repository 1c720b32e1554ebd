"""Codebook rebalancing after training: rarely used codewords are moved to split the most used ones.

A codebook trained on a few voices (or images, or shapes) holds codes whose cells only those training items
reach; on new data they go unused, and the busiest cells are left coarse. Counting usage on a wider sample of the
training distribution (e.g. augmented crops) and moving the least used codewords into the busiest cells flattens
usage there, which is what raises code use on data the codebook has not seen (the speech-tok-16k held-out set).

    x (N, d) --nearest code--> usage --m least used codes--> median halves of the m busiest cells --> codes (K, d)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from mediatok.kernels import nearest_codeword


@dataclass(frozen=True)
class RebalanceResult:
    """The moved codebook and what it does on the rows it was fitted to."""

    codes: Tensor  # (K, d) float32
    counts: Tensor  # (K,) int64, nearest-code counts of the rows under `codes`
    moved: Tensor  # (M,) int64, indices of codes that were moved, in the order they were moved (may repeat)


def _assign(x: Tensor, codes: Tensor, batch: int) -> Tensor:
    """Nearest code (N,) int64 for rows x (N, d), in batches so that large float16 arrays stay float16 at rest."""
    return torch.cat([nearest_codeword(x[i : i + batch].float(), codes)[0] for i in range(0, x.shape[0], batch)])


def _median_split(rows: Tensor) -> tuple[Tensor, Tensor]:
    """The means of the two halves of rows (n, d) either side of the median along their principal axis.

    The median, not 2-means: each half then holds half the cell's rows, so the busiest cell becomes two cells of
    equal usage, which is the point; the principal axis keeps both halves compact (small quantisation error).
    """
    centred = rows - rows.mean(0)
    # Power iteration from a deterministic start: a few steps find the top axis well enough to cut along it.
    axis = centred.abs().mean(0) + 1e-6
    for _ in range(8):
        axis = centred.T @ (centred @ axis)
        axis = axis / axis.norm().clamp_min(1e-12)
    proj = centred @ axis  # (n,)
    upper = proj > proj.median()
    if bool(upper.all()) or not bool(upper.any()):  # all rows on the axis' median (duplicates): nothing to split
        return rows.mean(0), rows.mean(0)
    return rows[~upper].mean(0), rows[upper].mean(0)


@torch.no_grad()
def rebalance_codebook(
    codes: Tensor,
    x: Tensor,
    *,
    rounds: int = 8,
    min_usage: float = 0.5,
    max_moves: float = 0.02,
    lloyd_iters: int = 0,
    batch: int = 65536,
) -> RebalanceResult:
    """Move rarely used codewords so that nearest-code usage over x is flatter. codes (K, d), x (N, d).

    Usage is relative to uniform (1.0 = N / K rows). Each round moves every code under `min_usage` (at most
    `max_moves * K`, least used first) into one of the busiest cells: that cell is cut at the median of its
    principal axis, the busy code takes one half's mean and the moved code the other's. `lloyd_iters` Lloyd steps
    per round then re-centre every code on its rows (empty cells keep their codeword); 0 leaves the other codes
    where they were, which keeps a trained decoder's inputs in place. Stops early once no code is under
    `min_usage`. Search is exact L2 (`mediatok.kernels.nearest_codeword`); x may be float16 to save memory.
    """
    if codes.ndim != 2 or x.ndim != 2 or codes.shape[1] != x.shape[1]:
        raise ValueError(f"expected codes (K, d) and x (N, d) of the same width, got {tuple(codes.shape)} and {tuple(x.shape)}")
    k, n = codes.shape[0], x.shape[0]
    if n < 2 * k:
        raise ValueError(f"{n} rows cannot rebalance {k} codes: pass at least 2 * K rows (many more for stable counts)")
    if rounds < 0 or lloyd_iters < 0 or min_usage < 0 or not 0 < max_moves <= 0.5:
        raise ValueError(f"need rounds, lloyd_iters, min_usage >= 0 and 0 < max_moves <= 0.5; got "
                         f"{rounds}, {lloyd_iters}, {min_usage}, {max_moves}")
    codes = codes.detach().float().clone()
    limit = max(1, math.floor(max_moves * k))
    moved: list[Tensor] = []
    idx = _assign(x, codes, batch)
    for _ in range(rounds):
        counts = torch.bincount(idx, minlength=k)
        usage = counts.double() * (k / n)
        low = torch.nonzero(usage < min_usage).squeeze(1)
        if low.numel() == 0:
            break
        low = low[torch.argsort(usage[low], stable=True)[:limit]]
        # Donors: the busiest cells, never a code that is itself being moved this round.
        order = torch.argsort(usage, descending=True, stable=True)
        is_low = torch.zeros(k, dtype=torch.bool)
        is_low[low] = True
        high = order[~is_low[order]][: low.numel()]
        rows_of = torch.argsort(idx, stable=True)  # rows grouped by code, to slice each donor's cell
        starts = torch.cumsum(counts, 0) - counts
        for lo, hi in zip(low.tolist(), high.tolist()):
            cell = x[rows_of[starts[hi] : starts[hi] + counts[hi]]].float()
            codes[hi], codes[lo] = _median_split(cell)
        moved.append(low)
        for step in range(lloyd_iters + 1):
            idx = _assign(x, codes, batch)
            if step == lloyd_iters:
                break
            counts = torch.bincount(idx, minlength=k)
            sums = torch.zeros_like(codes).index_add_(0, idx, x.float())
            filled = counts > 0
            codes[filled] = sums[filled] / counts[filled, None]
    counts = torch.bincount(idx, minlength=k)
    return RebalanceResult(codes, counts, torch.cat(moved) if moved else torch.zeros(0, dtype=torch.long))
