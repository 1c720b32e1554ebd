"""An invertible, differentiable 3-D discrete wavelet transform in torch, and WaLa's wavelet-tree packing.

    x (B, n0, n1, n2) --per axis: y = W_n x (W_n the periodised one-level analysis matrix of length n)-->
        8 subbands per level (lll coarse + 7 details) --recurse on lll, `levels` times--> Coefficients
    pack_tree: coarse + details of the coarsest `keep` levels --space-to-depth to the coarse grid--> (B, C, s, s, s)

Each axis is transformed by multiplying with a small dense matrix (n x n: 64 x 64 at 64^3), which is exact,
differentiable and cheap at these sizes: periodised filtering with stride 2, built from any PyWavelets filter bank
(Haar is built in), inverted by the matrix inverse (the transpose for orthogonal wavelets). Odd lengths are
extended by repeating the last sample, and the inverse crops it again, so reconstruction is perfect for every size.

Packing follows Hui et al., "Make-A-Shape" / Sanghi et al., "WaLa" (2024): the coarse coefficients and the detail
coefficients of the coarsest levels carry most of a signed distance field's information; finer details are dropped
(zero at synthesis) unless `keep` includes them. With every level kept the packing is a lossless re-arrangement.
For learning the finer details are put into channels (space-to-depth), so one grid of 8^keep channels holds them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor

HAAR = ((1 / math.sqrt(2), 1 / math.sqrt(2)), (-1 / math.sqrt(2), 1 / math.sqrt(2)))


def filter_bank(wavelet: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(analysis lowpass, analysis highpass) of a wavelet: "haar" built in, others from PyWavelets."""
    if wavelet == "haar":
        return HAAR
    try:
        import pywt
    except ImportError as e:
        raise ImportError(f"wavelet {wavelet!r} needs PyWavelets (pip install PyWavelets); 'haar' does not") from e
    try:
        w = pywt.Wavelet(wavelet)
    except ValueError as e:
        raise ValueError(f"unknown wavelet {wavelet!r}; see pywt.wavelist(kind='discrete')") from e
    return tuple(w.dec_lo), tuple(w.dec_hi)


@lru_cache(maxsize=64)
def _matrices(wavelet: str, n: int) -> tuple[Tensor, Tensor]:
    """(analysis, synthesis) float64 matrices (n, n) for an even length n: rows [lowpass at 0, 2, ..; highpass]."""
    assert n % 2 == 0, "lengths are made even before the matrix is built"
    lo, hi = filter_bank(wavelet)
    a = torch.zeros(n, n, dtype=torch.float64)
    for k in range(n // 2):
        for j, (l_, h_) in enumerate(zip(lo[::-1], hi[::-1])):  # correlation with the reversed filter = convolution
            a[k, (2 * k + j) % n] += l_
            a[n // 2 + k, (2 * k + j) % n] += h_
    s = torch.linalg.inv(a)
    if not torch.allclose(s @ a, torch.eye(n, dtype=torch.float64), atol=1e-9):
        raise ValueError(f"wavelet {wavelet!r} is not invertible when periodised on {n} samples")
    return a, s


def _apply(x: Tensor, m: Tensor, axis: int) -> Tensor:
    """Multiply axis `axis` of x by matrix m (out, in)."""
    y = torch.tensordot(x, m.to(x.dtype).to(x.device), dims=([axis], [1]))  # the new axis comes last
    return y.movedim(-1, axis)


@dataclass(frozen=True)
class Coefficients:
    """A multi-level 3-D DWT: coarse (B, *s) and, per level from coarsest to finest, 7 detail bands (B, 7, *s_l),
    with the size of the signal each level was computed from (to crop odd extensions on the way back)."""

    coarse: Tensor
    details: tuple[Tensor, ...]
    sizes: tuple[tuple[int, int, int], ...]


def dwt3(x: Tensor, wavelet: str = "haar", levels: int = 1) -> Coefficients:
    """x (B, n0, n1, n2) -> Coefficients; perfect reconstruction through idwt3 for any sizes."""
    if x.ndim != 4:
        raise ValueError(f"expected volumes (B, D, H, W), got {tuple(x.shape)}")
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    details, sizes = [], []
    for _ in range(levels):
        sizes.append(tuple(x.shape[1:]))
        for axis in (1, 2, 3):
            n = x.shape[axis]
            if n % 2:  # repeat the last sample: the inverse crops it off again
                x = torch.cat([x, x.narrow(axis, n - 1, 1)], dim=axis)
            x = _apply(x, _matrices(wavelet, x.shape[axis])[0], axis)
        h = [s // 2 for s in x.shape[1:]]
        bands = x.unflatten(1, (2, h[0])).unflatten(3, (2, h[1])).unflatten(5, (2, h[2]))  # (B, 2, h0, 2, h1, 2, h2)
        bands = bands.permute(0, 1, 3, 5, 2, 4, 6).reshape(x.shape[0], 8, *h)  # (B, 8 subbands lll..hhh, h0, h1, h2)
        details.append(bands[:, 1:])
        x = bands[:, 0]
    return Coefficients(x, tuple(details[::-1]), tuple(sizes[::-1]))


def idwt3(c: Coefficients, wavelet: str = "haar") -> Tensor:
    """Coefficients -> x (B, n0, n1, n2), the inverse of dwt3 (missing details may be zeros)."""
    x = c.coarse
    for detail, size in zip(c.details, c.sizes):
        b, h = x.shape[0], x.shape[1:]
        bands = torch.cat([x[:, None], detail], dim=1).reshape(b, 2, 2, 2, *h)  # (B, 2, 2, 2, h0, h1, h2)
        x = bands.permute(0, 1, 4, 2, 5, 3, 6).reshape(b, 2 * h[0], 2 * h[1], 2 * h[2])
        for axis in (1, 2, 3):
            x = _apply(x, _matrices(wavelet, x.shape[axis])[1], axis)
        x = x[:, : size[0], : size[1], : size[2]]
    return x


def tree_channels(keep: int) -> int:
    """Channels of a packed tree that keeps the details of the `keep` coarsest levels: 8^keep."""
    return 8**keep


def pack_tree(c: Coefficients, keep: int) -> Tensor:
    """Coefficients -> (B, 8^keep, *coarse): the coarse band, then the details of the `keep` coarsest levels,
    each level's bands brought to the coarse grid by space-to-depth (level l from the coarsest: factor 2^l)."""
    if not 0 <= keep <= len(c.details):
        raise ValueError(f"keep must be in [0, {len(c.details)}], got {keep}")
    b, s = c.coarse.shape[0], c.coarse.shape[1:]
    parts = [c.coarse[:, None]]
    for level, detail in enumerate(c.details[:keep]):
        f = 2**level
        if tuple(detail.shape[2:]) != tuple(f * n for n in s):
            raise ValueError(f"detail level {level} has size {tuple(detail.shape[2:])}, expected {f} x {tuple(s)}: "
                             "tree packing needs sizes that halve exactly (powers of two times the coarse size)")
        d = detail.reshape(b, 7, s[0], f, s[1], f, s[2], f)  # (B, 7, s0, f, s1, f, s2, f)
        parts.append(d.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(b, 7 * f**3, *s))  # (B, 7 f^3, s0, s1, s2)
    return torch.cat(parts, dim=1)


def unpack_tree(packed: Tensor, like: Coefficients, keep: int) -> Coefficients:
    """(B, 8^keep, *coarse) -> Coefficients shaped like `like` (dropped finer details are zeros)."""
    b, s = packed.shape[0], packed.shape[2:]
    if packed.shape[1] != tree_channels(keep):
        raise ValueError(f"expected {tree_channels(keep)} channels for keep={keep}, got {packed.shape[1]}")
    details, start = [], 1
    for level, detail in enumerate(like.details):
        f = 2**level
        if level < keep:
            n = 7 * f**3
            d = packed[:, start:start + n].reshape(b, 7, f, f, f, *s).permute(0, 1, 5, 2, 6, 3, 7, 4)
            details.append(d.reshape(b, 7, s[0] * f, s[1] * f, s[2] * f))  # (B, 7, s0 f, s1 f, s2 f)
            start += n
        else:
            details.append(torch.zeros(b, 7, *detail.shape[2:], dtype=packed.dtype, device=packed.device))
    return Coefficients(packed[:, 0], tuple(details), like.sizes)


def tree_layout(size: int, levels: int) -> Coefficients:
    """Zero coefficients of (1, size, size, size) at `levels`: the shape template unpack_tree needs."""
    return dwt3(torch.zeros(1, size, size, size, dtype=torch.float64), "haar", levels)
