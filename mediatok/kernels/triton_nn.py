"""Triton nearest-codeword kernel: a streaming argmin over codebook tiles, never materialising N x K.

    program (n-tile, split):  x_t = x[BLOCK_N rows]
        for k0 in its K range, step BLOCK_K:
            acc = sum over BLOCK_D chunks of tl.dot(x_t, c_t^T)      # fp32 accumulation; "ieee" for fp32 inputs
            s = ||c||^2 - 2 acc ; s = +inf where masked or not finite
            (m, j) = tl.min(s, axis=1, return_indices=True)          # lowest j on ties
            best, arg = where(m < best, (m, k0 + j), (best, arg))   # strict '<': earlier tiles win ties
        one split:   sq_dist = ||x - c[arg]||^2 (gathered, direct form), stored with arg
        many splits: (best, arg) per split, reduced on the host by the lowest index among the minima

Split-K is used when there are too few row tiles to fill the GPU (small N, huge K).
Set ``TRITON_INTERPRET=1`` before importing this module to run it on the CPU (tests do); bf16 ``tl.dot`` is
broken in the interpreter, so half inputs are upcast there (their products are exact in fp32 anyway).
"""
from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = ["INTERPRET", "nearest_codeword_triton"]

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"

_CONFIGS = [
    # BLOCK_D >= 16: the smallest tl.dot inner dimension on the GPU (the interpreter does not enforce it).
    triton.Config({"BLOCK_N": bn, "BLOCK_K": bk, "BLOCK_D": bd}, num_warps=w, num_stages=s)
    for bn, bk, bd, w, s in [
        (64, 64, 16, 4, 2),
        (64, 64, 32, 4, 3),
        (128, 64, 32, 4, 3),
        (64, 128, 32, 4, 3),
        (128, 128, 32, 8, 3),
        (128, 128, 64, 8, 3),
        (128, 64, 64, 4, 3),
    ]
]


@triton.jit
def _nn_kernel(
    x_ptr, c_ptr, cn_ptr, out_val_ptr, out_idx_ptr,
    N, K, D, k_per_split, n_splits,
    stride_xn, stride_xd, stride_ck, stride_cd,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
    IEEE: tl.constexpr, UPCAST: tl.constexpr, EPILOGUE: tl.constexpr,
):  # fmt: skip
    pid_n = tl.program_id(0)
    pid_s = tl.program_id(1)
    k_start = pid_s * k_per_split
    k_end = tl.minimum(k_start + k_per_split, K)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    best = tl.full([BLOCK_N], float("inf"), tl.float32)
    arg = tl.zeros([BLOCK_N], tl.int64) + k_start
    for k0 in range(k_start, k_end, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        col_ok = cols < k_end
        acc = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
        for d0 in range(0, D, BLOCK_D):
            dd = d0 + tl.arange(0, BLOCK_D)
            d_ok = dd < D
            xt = tl.load(
                x_ptr + rows[:, None] * stride_xn + dd[None, :] * stride_xd,
                mask=row_ok[:, None] & d_ok[None, :], other=0.0,
            )  # (BLOCK_N, BLOCK_D)
            ct = tl.load(
                c_ptr + cols[None, :] * stride_ck + dd[:, None] * stride_cd,
                mask=col_ok[None, :] & d_ok[:, None], other=0.0,
            )  # (BLOCK_D, BLOCK_K)
            if UPCAST:
                xt = xt.to(tl.float32)
                ct = ct.to(tl.float32)
            if IEEE:
                # TF32 keeps 10 mantissa bits and flips argmins between close codewords
                acc = tl.dot(xt, ct, acc, input_precision="ieee")
            else:
                acc = tl.dot(xt, ct, acc)
        cn = tl.load(cn_ptr + cols, mask=col_ok, other=0.0)
        s = cn[None, :] - 2.0 * acc  # (BLOCK_N, BLOCK_K): ||c||^2 - 2 x.c, the row constant ||x||^2 dropped
        s = tl.where(col_ok[None, :] & (tl.abs(s) < float("inf")), s, float("inf"))
        m, j = tl.min(s, axis=1, return_indices=True, return_indices_tie_break_left=True)
        better = m < best
        best = tl.where(better, m, best)
        arg = tl.where(better, j.to(tl.int64) + k0, arg)
    if EPILOGUE:
        found = best < float("inf")
        arg = tl.where(found, arg, 0)
        dist = tl.zeros([BLOCK_N], tl.float32)
        for d0 in range(0, D, BLOCK_D):
            dd = d0 + tl.arange(0, BLOCK_D)
            msk = row_ok[:, None] & (dd < D)[None, :]
            xt = tl.load(x_ptr + rows[:, None] * stride_xn + dd[None, :] * stride_xd, mask=msk, other=0.0)
            ct = tl.load(c_ptr + arg[:, None] * stride_ck + dd[None, :] * stride_cd, mask=msk, other=0.0)
            diff = xt.to(tl.float32) - ct.to(tl.float32)
            dist += tl.sum(diff * diff, axis=1)
        dist = tl.where(found, dist, float("inf"))
        tl.store(out_val_ptr + rows, dist, mask=row_ok)
        tl.store(out_idx_ptr + rows, arg, mask=row_ok)
    else:
        tl.store(out_val_ptr + rows * n_splits + pid_s, best, mask=row_ok)
        tl.store(out_idx_ptr + rows * n_splits + pid_s, arg, mask=row_ok)


_nn_kernel_tuned = None if INTERPRET else triton.autotune(configs=_CONFIGS, key=["K", "D", "n_splits"])(_nn_kernel)
# Fixed blocks in the interpreter: autotuning would time every config on the CPU for nothing.
_INTERPRET_BLOCKS = {"BLOCK_N": 16, "BLOCK_K": 16, "BLOCK_D": 16}


def _num_splits(n: int, k: int, device: torch.device) -> int:
    """Split K when the row tiles alone leave most of the GPU idle (small N, huge K)."""
    if INTERPRET or device.type != "cuda":
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    row_tiles = math.ceil(n / 64)
    if row_tiles >= 2 * sms or k < 8192:
        return 1
    return max(1, min(math.ceil(2 * sms / row_tiles), k // 4096))


@torch.no_grad()
def nearest_codeword_triton(
    x: Tensor,
    codebook: Tensor,
    *,
    codebook_sq_norms: Tensor | None = None,
    splits: int | None = None,
    blocks: dict[str, int] | None = None,
) -> tuple[Tensor, Tensor]:
    """Exact nearest codeword with the Triton kernel: x (N, D), codebook (K, D) -> (int64 (N,), float32 (N,)).

    Inputs are validated by ``mediatok.kernels.nearest_codeword``. fp16/bf16 stay in their dtype for
    ``tl.dot`` (fp32 accumulation); other dtypes are computed in fp32. ``splits`` forces the split-K count,
    ``blocks`` fixes BLOCK_N/BLOCK_K/BLOCK_D instead of autotuning (both for tests).
    """
    half = (torch.float16, torch.bfloat16)
    if x.dtype in half and codebook.dtype == x.dtype:
        dtype = x.dtype
    else:
        dtype = torch.float32
    x = x.to(dtype)
    codebook = codebook.to(dtype)
    n, d = x.shape
    k = codebook.shape[0]
    if codebook_sq_norms is None:
        if dtype == torch.float32:
            # as on the CPU: centre at the codebook mean against the expansion's cancellation far from 0
            shift = codebook.mean(0)
            shift = torch.where(torch.isfinite(shift), shift, 0.0)
            x, codebook = x - shift, codebook - shift
        cn = codebook.float().pow(2).sum(1)
    else:
        cn = codebook_sq_norms.float().contiguous()
    s = splits if splits is not None else _num_splits(n, k, x.device)
    s = max(1, min(s, k))
    k_per_split = math.ceil(k / s)
    s = math.ceil(k / k_per_split)  # no empty splits
    epilogue = s == 1
    out_val = torch.empty((n, s) if not epilogue else (n,), dtype=torch.float32, device=x.device)
    out_idx = torch.empty((n, s) if not epilogue else (n,), dtype=torch.long, device=x.device)
    flags = {"IEEE": dtype == torch.float32, "UPCAST": INTERPRET and dtype in half, "EPILOGUE": epilogue}
    args = (
        x, codebook, cn, out_val, out_idx, n, k, d, k_per_split, s,
        x.stride(0), x.stride(1), codebook.stride(0), codebook.stride(1),
    )  # fmt: skip
    if blocks is not None or _nn_kernel_tuned is None:
        meta = dict(blocks or _INTERPRET_BLOCKS)
        grid = (triton.cdiv(n, meta["BLOCK_N"]), s)
        _nn_kernel[grid](*args, **meta, **flags)
    else:
        _nn_kernel_tuned[lambda m: (triton.cdiv(n, m["BLOCK_N"]), s)](*args, **flags)
    if epilogue:
        return out_idx, out_val
    return _reduce_splits(x, codebook, out_val, out_idx)


def _reduce_splits(x: Tensor, codebook: Tensor, vals: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    # vals, idx: (N, S). Splits cover increasing index ranges, so the lowest index among the minima is
    # torch.argmin's tie rule; taking it as an integer min avoids relying on a backend's argmin tie order.
    best = vals.amin(1, keepdim=True)  # (N, 1)
    arg = torch.where(vals == best, idx, torch.iinfo(torch.long).max).amin(1)  # (N,)
    found = torch.isfinite(best[:, 0])
    arg = torch.where(found, arg, 0)
    dist = (x.float() - codebook.index_select(0, arg).float()).pow(2).sum(1)  # N is small on this path
    return arg, torch.where(found, dist, math.inf)
