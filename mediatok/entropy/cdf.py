"""Float PMFs -> integer CDFs that encoder and decoder compute bit-identically.

Determinism rule: the coder only ever sees integer CDFs, and the decoder must derive them through exactly
the encoder's code path. Two ways are safe:

1. Integer tables computed once and shipped with the model (FrequencyPrior, CompressAI's `_quantized_cdf`,
   the output of `gaussian_tables` saved in a checkpoint): identical everywhere by construction.
   (Recomputing gaussian_tables elsewhere trusts that machine's erf to match, which is likely, not certain.)
2. `quantize_pmf` on a PMF that the decoder recomputes with the same code, weights, dtype and *batch
   shapes* (a network's float output may change with batch size, thread count or device; that is the
   caller's to keep fixed). quantize_pmf itself runs on the CPU, row by row, in fixed-order float64
   arithmetic (blocked running sums, IEEE multiply, round-half-even), so a row's CDF depends on that row
   only: not on the batch it came in, the thread count or the machine.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mediatok.entropy import _models as M


def _check(precision: int, k: int) -> int:
    if not isinstance(precision, int) or not 12 <= precision <= 24:
        raise ValueError(f"precision must be an int in [12, 24] bits, got {precision!r}")
    if not 1 <= k <= (1 << precision):
        raise ValueError(f"a {precision}-bit CDF holds 1..{1 << precision} symbols, got {k}")
    return 1 << precision


def quantize_pmf(pmf: Tensor, precision: int = 16, lengths: Tensor | None = None) -> Tensor:
    """Integer CDFs (..., K+1) int32 from PMFs (..., K): every frequency >= 1, last entry exactly 2^precision.

    Rule (M = 2^precision, C_i = running sum of the row up to i, "tiny" = below two slots, p < 2 C_K / M):
        cdf_{i+1} = round(C_i * (M - n_tiny) / C_K) + (tiny symbols up to i)
    so every symbol gets >= 1 slot and each is within about one slot of its share; rows with more than
    M/4 tiny symbols (K close to M) use cdf_{i+1} = round(C_i * (M - K) / C_K) + i + 1 instead.
    Unnormalised weights are fine. Arithmetic: float64 running sums in a fixed blocked order (C_i = the
    sum of the whole blocks of 8 before i, added block by block, plus the sequential sum inside i's
    block), one IEEE multiply and round-half-even per entry. One numba kernel (`_models.quantize_rows`)
    computes it, sharing its helpers with the fused encode/decode_categorical kernels, so all three agree
    bit for bit. With `lengths` (R,), row r only has lengths[r] symbols (ragged tables, CompressAI
    layout: cdf[r, lengths[r]:] = M). Validated before returning.
    """
    if not isinstance(pmf, Tensor):
        pmf = torch.as_tensor(pmf)
    if pmf.ndim == 0 or not pmf.is_floating_point():
        raise ValueError(f"pmf must be a float tensor (..., K), got {pmf.dtype} of shape {tuple(pmf.shape)}")
    k = pmf.shape[-1]
    m = _check(precision, k)
    lead = pmf.shape[:-1]
    p = pmf.detach().to("cpu").reshape(-1, k)  # (R, K)
    if p.dtype not in (torch.float32, torch.float64):
        p = p.float()
    lens = np.empty(0, np.int64)
    if lengths is not None:
        lens = torch.as_tensor(lengths).reshape(-1)
        if lens.shape[0] != p.shape[0] or (lens < 1).any() or (lens > k).any():
            raise ValueError(f"lengths must hold one value in [1, {k}] per row ({p.shape[0]} rows)")
        lens = lens.to(torch.int64).numpy()
    cdf = torch.empty(p.shape[0], k + 1, dtype=torch.int32)
    status = M.quantize_rows(p.contiguous().numpy(), lens, precision, cdf.numpy())  # (R, K+1), row by row
    if status == M.QERR_INTERNAL:
        raise AssertionError("quantize_pmf produced an invalid CDF (internal error)")
    if status < 0:
        if not torch.isfinite(p).all() or (p < 0).any():
            raise ValueError("pmf must be finite and non-negative")
        raise ValueError("every pmf row needs a positive total (and a finite one in float64)")
    return cdf.reshape(*lead, k + 1)


def counts_to_cdf(counts: Tensor, precision: int = 16) -> Tensor:
    """Integer-only CDF (..., K+1) int32 from non-negative integer counts (..., K): same on every machine."""
    k = counts.shape[-1]
    m = _check(precision, k)
    c = torch.cumsum(counts.to(torch.int64).clamp_min(0), -1)  # (..., K)
    total = c[..., -1:].clamp_min(1)
    body = (c * (m - k)) // total + torch.arange(1, k + 1)
    body = torch.where(c[..., -1:] > 0, body, (torch.arange(1, k + 1) * m) // k)  # all-zero rows: uniform
    return torch.cat([torch.zeros_like(body[..., :1]), body], -1).to(torch.int32)


def gaussian_tables(scales: Tensor, precision: int = 16, tail: float = 1e-9,
                    max_half_width: int = 2048) -> tuple[Tensor, Tensor, Tensor]:
    """Indexed tables (T, Lmax) int32, lengths (T,), offsets (T,) for N(0, scale) quantised to integers,
    with an escape symbol last (CompressAI's layout for GaussianConditional)."""
    scales = torch.as_tensor(scales, dtype=torch.float64).reshape(-1)
    normal = torch.distributions.Normal(0.0, 1.0)
    half = (-normal.icdf(torch.tensor(tail / 2, dtype=torch.float64)) * scales).ceil().clamp(1, max_half_width)
    half = half.long()  # (T,)
    width = int(2 * half.max() + 1)
    grid = torch.arange(width, dtype=torch.float64) - (width // 2)  # (W,) shared value grid
    upper = normal.cdf((grid + 0.5) / scales[:, None])  # (T, W)
    lower = normal.cdf((grid - 0.5) / scales[:, None])
    pmf = (upper - lower).clamp_min(0)
    inside = grid.abs()[None] <= half[:, None]  # (T, W)
    pmf = pmf * inside
    n = 2 * half + 1  # (T,) values per table; the escape symbol follows them
    col = torch.arange(width + 1)  # (W+1,)
    start = width // 2 - half  # (T,) first grid column of each table
    src = (start[:, None] + col[None]).clamp(max=width - 1)  # (T, W+1) row t's values, left-aligned
    table_pmf = torch.gather(pmf, 1, src) * (col[None] < n[:, None])  # (T, W+1)
    tail_mass = (1 - table_pmf.sum(-1)).clamp_min(0)  # (T,)
    table_pmf.scatter_(1, n[:, None], tail_mass[:, None])
    cdf = quantize_pmf(table_pmf, precision, lengths=n + 1)  # (T, W+2)
    lengths = (n + 2).to(torch.int32)  # values + escape + the CDF's end
    offsets = (-half).to(torch.int32)
    return cdf, lengths, offsets


__all__ = ["quantize_pmf", "counts_to_cdf", "gaussian_tables"]
