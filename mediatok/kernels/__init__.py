"""Exact nearest-codeword search that never materialises the full N x K distance matrix."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = ["nearest_codeword"]

# Rows of the distance tile; bounds the extra memory to _CHUNK_ROWS * K floats.
_CHUNK_ROWS = 4096


@torch.no_grad()
def nearest_codeword(
    x: Tensor,
    codebook: Tensor,
    *,
    metric: Literal["l2", "cosine"] = "l2",
    codebook_sq_norms: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Index of the nearest codeword for every row of x: x (N, D), codebook (K, D) -> (int64 (N,), float32 (N,)).

    Ties go to the lowest index (torch.argmin's rule). The second output is the squared L2 distance
    (for "cosine", between the L2-normalised vectors).
    """
    if x.ndim != 2 or codebook.ndim != 2:
        raise ValueError(f"expected x (N, D) and codebook (K, D), got {tuple(x.shape)} and {tuple(codebook.shape)}")
    if x.shape[1] != codebook.shape[1]:
        raise ValueError(f"x has dimension {x.shape[1]} but the codebook has dimension {codebook.shape[1]}")
    if codebook.shape[0] < 1:
        raise ValueError("codebook is empty (K = 0)")
    if metric not in ("l2", "cosine"):
        raise ValueError(f"metric must be 'l2' or 'cosine', got {metric!r}")
    x = x.float()
    codebook = codebook.float()
    if metric == "cosine":
        x = torch.nn.functional.normalize(x, dim=1)
        codebook = torch.nn.functional.normalize(codebook, dim=1)
        codebook_sq_norms = None
    if codebook_sq_norms is None:
        codebook_sq_norms = codebook.pow(2).sum(1)
    n = x.shape[0]
    indices = torch.empty(n, dtype=torch.long, device=x.device)
    sq_dist = torch.empty(n, dtype=torch.float32, device=x.device)
    for start in range(0, n, _CHUNK_ROWS):
        rows = x[start : start + _CHUNK_ROWS]
        # ||x||^2 is constant per row, so the argmin only needs ||c||^2 - 2 x.c
        scores = torch.addmm(codebook_sq_norms, rows, codebook.t(), alpha=-2.0)
        best, idx = scores.min(dim=1)
        indices[start : start + rows.shape[0]] = idx
        sq_dist[start : start + rows.shape[0]] = (best + rows.pow(2).sum(1)).clamp_min_(0.0)
    return indices, sq_dist
