"""Exact nearest-codeword search that never materialises the full N x K distance matrix.

    x (N, D), codebook (K, D) --> dispatch --+--> CUDA tensor and Triton present: triton_nn (streaming argmin)
                                             +--> otherwise:  cpu (tiled addmm + running min; other devices
                                                              are searched on the CPU and copied back)

Policy shared by every path, so that results never depend on the device:

* **Ties** go to the lowest index (torch.argmin's rule): duplicate codewords always yield the first copy.
* **Non-finite values** (NaN, +-inf) never raise and never poison other rows. A distance that is not a finite
  number counts as +inf: a codeword containing NaN/inf is never chosen, and a row of x containing NaN/inf
  (or a row whose every distance overflows float32) gets index 0 and sq_dist +inf. Callers that want to fail
  loudly check ``torch.isfinite(sq_dist).all()``.
* **Exact** means: the chosen codeword's distance equals the true minimum up to float32 rounding of the
  search (exact duplicates and exactly equal distances always resolve to the lowest index). Without caller
  norms, a codebook far from the origin is searched centred at its mean, against the expansion's cancellation.
* **sq_dist** is recomputed directly as ||x - c||^2 for the chosen codeword, so it carries no cancellation
  error from the ||x||^2 - 2 x.c + ||c||^2 expansion used for the search.
* The op is not differentiable (it runs under no_grad); quantizers keep the straight-through estimator.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from mediatok.kernels.cpu import nearest_codeword_cpu

__all__ = ["codebook_sq_norms", "nearest_codeword", "triton_available"]

Metric = Literal["l2", "cosine"]


def triton_available() -> bool:
    """True when Triton imports and a CUDA device is visible (the condition for the Triton path)."""
    if not torch.cuda.is_available():
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@torch.no_grad()
def codebook_sq_norms(codebook: Tensor, *, metric: Metric = "l2") -> Tensor:
    """float32 ||c||^2 of each codeword, (K, D) -> (K,); compute once and pass while the codebook is frozen."""
    if codebook.ndim != 2:
        raise ValueError(f"expected codebook of shape (K, D), got {tuple(codebook.shape)}")
    if metric == "cosine":
        codebook = torch.nn.functional.normalize(codebook.float(), dim=1)
    return codebook.float().pow(2).sum(1)


def _check(x: Tensor, codebook: Tensor, metric: str, sq_norms: Tensor | None) -> None:
    if x.ndim != 2 or codebook.ndim != 2:
        raise ValueError(f"expected x (N, D) and codebook (K, D), got {tuple(x.shape)} and {tuple(codebook.shape)}")
    if x.shape[1] != codebook.shape[1]:
        raise ValueError(f"x has dimension {x.shape[1]} but the codebook has dimension {codebook.shape[1]}")
    if codebook.shape[0] < 1:
        raise ValueError("codebook is empty (K = 0); expected at least one codeword")
    if x.shape[1] < 1:
        raise ValueError("x and codebook have dimension D = 0; expected D >= 1")
    if not x.is_floating_point() or not codebook.is_floating_point():
        raise ValueError(f"expected floating-point x and codebook, got {x.dtype} and {codebook.dtype}")
    if x.device != codebook.device:
        raise ValueError(f"x is on {x.device} but the codebook is on {codebook.device}; move one of them")
    if metric not in ("l2", "cosine"):
        raise ValueError(f"metric must be 'l2' or 'cosine', got {metric!r}")
    if sq_norms is not None:
        if sq_norms.shape != (codebook.shape[0],):
            raise ValueError(
                f"codebook_sq_norms must have shape ({codebook.shape[0]},), got {tuple(sq_norms.shape)}; "
                "use mediatok.kernels.codebook_sq_norms(codebook)"
            )
        if sq_norms.device != codebook.device:
            raise ValueError(f"codebook_sq_norms is on {sq_norms.device} but the codebook is on {codebook.device}")


@torch.no_grad()
def nearest_codeword(
    x: Tensor,
    codebook: Tensor,
    *,
    metric: Metric = "l2",
    codebook_sq_norms: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Index of the nearest codeword for every row of x: x (N, D), codebook (K, D) -> (int64 (N,), float32 (N,)).

    The second output is the squared L2 distance (for "cosine", between the L2-normalised vectors).
    ``codebook_sq_norms`` (K,) may be passed to skip recomputing ||c||^2 (ignored for "cosine").
    Ties go to the lowest index; non-finite values follow the module's policy (never chosen / index 0, +inf).
    """
    _check(x, codebook, metric, codebook_sq_norms)
    x = x.detach()
    codebook = codebook.detach()
    n = x.shape[0]
    if n == 0:
        return (
            torch.empty(0, dtype=torch.long, device=x.device),
            torch.empty(0, dtype=torch.float32, device=x.device),
        )
    if metric == "cosine":
        x = torch.nn.functional.normalize(x.float(), dim=1)
        codebook = torch.nn.functional.normalize(codebook.float(), dim=1)
        codebook_sq_norms = None
    if x.is_cuda and triton_available():
        from mediatok.kernels.triton_nn import nearest_codeword_triton

        return nearest_codeword_triton(x, codebook, codebook_sq_norms=codebook_sq_norms)
    if x.device.type != "cpu":
        # No Triton for this device: compute on the CPU and hand the result back where the inputs live.
        idx, dist = nearest_codeword_cpu(x.cpu(), codebook.cpu(), sq_norms=_cpu_or_none(codebook_sq_norms))
        return idx.to(x.device), dist.to(x.device)
    return nearest_codeword_cpu(x, codebook, sq_norms=codebook_sq_norms)


def _cpu_or_none(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.cpu()
