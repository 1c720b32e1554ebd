"""Invertible CDF 9/7 wavelet transforms in torch: 1-D and 2-D, single level and full wavelet packets.

    x (..., N) --split even/odd--> s, d --4 lifting steps--> s, d --scale (K, 1/K)--> low (..., N/2), high (..., N/2)

CDF 9/7 (pywt's "bior4.4", JPEG 2000's irreversible filter) factored into lifting steps (Daubechies & Sweldens,
"Factoring wavelet transforms into lifting steps", 1998). Lifting is inverted by running the same steps backwards
with the opposite sign, so reconstruction is exact up to float rounding whatever the coefficients; boundaries are
periodic ("periodization": N samples give N coefficients, no growth at any level). The low band of a constant
signal is sqrt(2) times it, as for an orthonormal filter bank, so coefficient energies stay comparable across levels.

An odd length is made even by repeating the last sample once, and the inverse drops it again: `dwt` returns the
coefficients of N + 1 samples, and `idwt(low, high, length=N)` gives back the N. Packet transforms record the
length at every level (`PacketShape`), so any size round-trips.

A full packet splits every band again at each level: `packet2d(x, levels=3)` turns (B, C, H, W) into
(B, C * 64, H / 8, W / 8), the channel axis ordered (C, level-1 band, level-2 band, level-3 band) with bands
(LL, LH, HL, HH) as (width band, height band) at each level. `packet1d` is the same over time:
(B, C, T) -> (B, C * 2^levels, T / 2^levels). The forward packets run as strided grouped convolutions with the
taps that lifting implies (fast); the inverses run the lifting steps backwards.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# Lifting coefficients of CDF 9/7 (predict, update, predict, update) and the final scaling.
ALPHA = -1.586134342059924
BETA = -0.052980118572961
GAMMA = 0.882911075530934
DELTA = 0.443506852043971
KAPPA = 1.149604398860241


def _next(v: Tensor) -> Tensor:
    """v[n + 1] with periodic wrap along the last axis."""
    return torch.roll(v, -1, dims=-1)


def _prev(v: Tensor) -> Tensor:
    """v[n - 1] with periodic wrap along the last axis."""
    return torch.roll(v, 1, dims=-1)


def dwt(x: Tensor, dim: int = -1) -> tuple[Tensor, Tensor]:
    """One level of CDF 9/7 along `dim`: (low, high), each ceil(N / 2) long (an odd N repeats its last sample)."""
    if not x.is_floating_point():
        raise TypeError(f"dwt needs a float tensor, got {x.dtype}")
    x = x.movedim(dim, -1)
    n = x.shape[-1]
    if n < 1:
        raise ValueError("dwt needs at least one sample along the transformed axis")
    if n % 2:
        x = torch.cat([x, x[..., -1:]], dim=-1)
    s, d = x[..., 0::2], x[..., 1::2]
    d = d + ALPHA * (s + _next(s))
    s = s + BETA * (d + _prev(d))
    d = d + GAMMA * (s + _next(s))
    s = s + DELTA * (d + _prev(d))
    return (s * KAPPA).movedim(-1, dim), (d / -KAPPA).movedim(-1, dim)  # pywt's sign for the high band


def idwt(low: Tensor, high: Tensor, dim: int = -1, length: int | None = None) -> Tensor:
    """Inverse of `dwt`: 2 * len(low) samples along `dim`, or the first `length` of them (the original odd length)."""
    if low.shape != high.shape:
        raise ValueError(f"low and high bands must have one shape, got {tuple(low.shape)} and {tuple(high.shape)}")
    s, d = low.movedim(dim, -1) / KAPPA, high.movedim(dim, -1) * -KAPPA
    s = s - DELTA * (d + _prev(d))
    d = d - GAMMA * (s + _next(s))
    s = s - BETA * (d + _prev(d))
    d = d - ALPHA * (s + _next(s))
    x = torch.stack([s, d], dim=-1).flatten(-2)  # interleave: s0 d0 s1 d1 ...
    if length is not None:
        if not 2 * s.shape[-1] - 1 <= length <= 2 * s.shape[-1]:
            raise ValueError(f"length {length} does not fit bands of {s.shape[-1]} coefficients")
        x = x[..., :length]
    return x.movedim(-1, dim)


@dataclass(frozen=True)
class PacketShape:
    """The lengths along each transformed axis before every level, outermost level first (what the inverse crops to)."""

    sizes: tuple[tuple[int, ...], ...]


def analysis_filters(dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
    """(2, 9) taps of one analysis level, low then high, over offsets -4..4 around sample 2k: the linear map `dwt`
    applies, read off its responses to unit impulses (so the two can never disagree)."""
    key = (dtype, str(device))
    if key not in _FILTERS:
        n = 16
        low, high = dwt(torch.eye(n, dtype=torch.float64))  # row p: the bands' response to an impulse at p
        k = n // 4
        taps = torch.stack([low[2 * k - 4 : 2 * k + 5, k], high[2 * k - 4 : 2 * k + 5, k]])
        _FILTERS[key] = taps.to(dtype=dtype, device=device)
    return _FILTERS[key]


_FILTERS: dict[tuple[torch.dtype, str], Tensor] = {}


def _analysis(x: Tensor, axis: int) -> Tensor:
    """One level along `axis` (-1 or -2) of (B, C, ..., N) as a strided grouped convolution with circular padding:
    (B, 2C, ..., ceil(N / 2)), each channel's low then high band. Equal to `dwt` up to float rounding and about
    five times faster on the CPU, which is what lets the encoder run at megapixels per second."""
    n = x.shape[axis]
    if n < 4:  # circular padding by 4 cannot wrap a signal this short: the lifting steps can
        low, high = dwt(x, axis)
        return torch.stack([low, high], dim=2).flatten(1, 2)
    if n % 2:
        x = torch.cat([x, x.narrow(axis, n - 1, 1)], dim=axis)
    taps = analysis_filters(x.dtype, x.device)
    c = x.shape[1]
    if x.ndim == 3:
        return F.conv1d(F.pad(x, (4, 4), mode="circular"), taps[:, None, :].repeat(c, 1, 1), stride=2, groups=c)
    if axis == -1:
        w = taps[:, None, None, :].repeat(c, 1, 1, 1)
        return F.conv2d(F.pad(x, (4, 4, 0, 0), mode="circular"), w, stride=(1, 2), groups=c)
    w = taps[:, None, :, None].repeat(c, 1, 1, 1)
    return F.conv2d(F.pad(x, (0, 0, 4, 4), mode="circular"), w, stride=(2, 1), groups=c)


def packet1d(x: Tensor, levels: int) -> tuple[Tensor, PacketShape]:
    """Full wavelet packet over time: (B, C, T) -> (B, C * 2^levels, T') with T halved (ceil) per level, and the
    shape record for `ipacket1d`. Channel order: each channel's bands stay together, low before high."""
    _check(x, 3, levels, "packet1d", "(B, C, T)")
    sizes = []
    for _ in range(levels):
        sizes.append((x.shape[-1],))
        x = _analysis(x, -1)
    return x, PacketShape(tuple(sizes))


def ipacket1d(z: Tensor, shape: PacketShape | None = None, levels: int | None = None) -> Tensor:
    """Inverse of `packet1d` (without `shape`, every level is assumed to have had an even length)."""
    levels, sizes = _levels(shape, levels, z, 1)
    for lvl in reversed(range(levels)):
        b, c2, t = z.shape
        bands = z.reshape(b, c2 // 2, 2, t)
        z = idwt(bands[:, :, 0], bands[:, :, 1], -1, length=sizes[lvl][0] if sizes else None)
    return z


def packet2d(x: Tensor, levels: int) -> tuple[Tensor, PacketShape]:
    """Full 2-D wavelet packet: (B, C, H, W) -> (B, C * 4^levels, H', W') with H', W' halved (ceil) per level.
    Each channel's four bands stay together, ordered (width band, height band): LL, LH, HL, HH."""
    _check(x, 4, levels, "packet2d", "(B, C, H, W)")
    sizes = []
    for _ in range(levels):
        sizes.append((x.shape[-2], x.shape[-1]))
        x = _analysis(_analysis(x, -1), -2)
    return x, PacketShape(tuple(sizes))


def ipacket2d(z: Tensor, shape: PacketShape | None = None, levels: int | None = None) -> Tensor:
    """Inverse of `packet2d` (without `shape`, every level is assumed to have had even sides)."""
    levels, sizes = _levels(shape, levels, z, 2)
    for lvl in reversed(range(levels)):
        b, c4, h, w = z.shape
        bands = z.reshape(b, c4 // 4, 4, h, w)  # per channel: (low width: low, high height), (high width: ...)
        hgt, wid = sizes[lvl] if sizes else (None, None)
        lo = idwt(bands[:, :, 0], bands[:, :, 1], -2, length=hgt)
        hi = idwt(bands[:, :, 2], bands[:, :, 3], -2, length=hgt)
        z = idwt(lo, hi, -1, length=wid)
    return z


def _check(x: Tensor, ndim: int, levels: int, name: str, layout: str) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{name} expects {layout}, got shape {tuple(x.shape)}")
    if not isinstance(levels, int) or levels < 0:
        raise ValueError(f"{name}: levels must be a non-negative int, got {levels!r}")


def _levels(shape: PacketShape | None, levels: int | None, z: Tensor, axes: int) -> tuple[int, tuple]:
    if shape is not None:
        if levels is not None and levels != len(shape.sizes):
            raise ValueError(f"levels={levels} disagrees with the packet shape's {len(shape.sizes)} levels")
        levels, sizes = len(shape.sizes), shape.sizes
    elif levels is None:
        raise ValueError("give the PacketShape from the forward transform, or levels for even sizes")
    else:
        sizes = ()
    per = (2 ** axes) ** levels
    if z.ndim != 2 + axes or z.shape[1] % per:
        raise ValueError(f"expected (B, C * {per}, ...) coefficients for {levels} levels, got {tuple(z.shape)}")
    return levels, sizes




# ---- the encoder's fast path: fused lifting in numba ---------------------------------------------------------------
# The convolution path above is what training differentiates through; inference on the CPU needs no gradient and is
# memory-bound in torch (a dozen full passes over the image per level), so here each level runs the lifting steps
# on rows that stay in cache, both axes in one kernel.
try:
    import numba as _numba
    import numpy as _np
except ImportError:  # numba is a core dependency; without it the convolution path serves
    _numba = None


if _numba is not None:

    @_numba.njit(cache=True, inline="always")
    def _lift_columns(s, d, a, b, g, dl, k):  # pragma: no cover - compiled
        """The four lifting steps and the scaling on row-vectors s[i, :], d[i, :] (periodic along axis 0)."""
        n, w = s.shape
        for i in range(n):
            ip = i + 1 if i + 1 < n else 0
            for j in range(w):
                d[i, j] += a * (s[i, j] + s[ip, j])
        for i in range(n):
            im = i - 1 if i > 0 else n - 1
            for j in range(w):
                s[i, j] += b * (d[i, j] + d[im, j])
        for i in range(n):
            ip = i + 1 if i + 1 < n else 0
            for j in range(w):
                d[i, j] += g * (s[i, j] + s[ip, j])
        for i in range(n):
            im = i - 1 if i > 0 else n - 1
            for j in range(w):
                s[i, j] += dl * (d[i, j] + d[im, j])
        for i in range(n):
            for j in range(w):
                s[i, j] *= k
                d[i, j] *= -1.0 / k

    @_numba.njit(cache=True)
    def _packet_level(x, out, a, b, g, dl, k):  # pragma: no cover - compiled
        """One 2-D level of every plane: x (N, H, W) -> out (4N, H/2, W/2) as LL, LH, HL, HH per plane."""
        n, h, w = x.shape
        h2, w2 = h // 2, w // 2
        for c in range(n):  # serial: a parallel region leaves numba threads spinning beside torch's
            lo = _np.empty((h, w2), _np.float32)
            hi = _np.empty((h, w2), _np.float32)
            for r in range(h):  # width: transposed lifting on columns of (w2, 1) is slow, so rows one by one
                for i in range(w2):
                    lo[r, i] = x[c, r, 2 * i]
                    hi[r, i] = x[c, r, 2 * i + 1]
                for i in range(w2):
                    hi[r, i] += a * (lo[r, i] + lo[r, i + 1 if i + 1 < w2 else 0])
                for i in range(w2):
                    lo[r, i] += b * (hi[r, i] + hi[r, i - 1 if i > 0 else w2 - 1])
                for i in range(w2):
                    hi[r, i] += g * (lo[r, i] + lo[r, i + 1 if i + 1 < w2 else 0])
                for i in range(w2):
                    lo[r, i] += dl * (hi[r, i] + hi[r, i - 1 if i > 0 else w2 - 1])
                for i in range(w2):
                    lo[r, i] *= k
                    hi[r, i] *= -1.0 / k
            for band, src in ((0, lo), (2, hi)):  # height: lifting on whole rows (contiguous, vectorised)
                s = out[4 * c + band]
                d = out[4 * c + band + 1]
                for i in range(h2):
                    for j in range(w2):
                        s[i, j] = src[2 * i, j]
                        d[i, j] = src[2 * i + 1, j]
                _lift_columns(s, d, a, b, g, dl, k)


def packet2d_numpy(x: "_np.ndarray", levels: int) -> "_np.ndarray":
    """`packet2d` of one float32 (C, H, W) array whose sides are multiples of 2^levels, without autograd: the CPU
    encoder's path (equal to `packet2d` up to float rounding). Returns (C * 4^levels, H / 2^levels, W / 2^levels)."""
    if _numba is None:
        return packet2d(torch.from_numpy(x)[None], levels)[0][0].numpy()
    if x.ndim != 3 or any(s % 2**levels for s in x.shape[1:]):
        raise ValueError(f"packet2d_numpy needs (C, H, W) with sides divisible by {2**levels}, got {x.shape}")
    x = _np.ascontiguousarray(x, dtype=_np.float32)
    for _ in range(levels):
        n, h, w = x.shape
        out = _np.empty((4 * n, h // 2, w // 2), _np.float32)
        _packet_level(x, out, _np.float32(ALPHA), _np.float32(BETA), _np.float32(GAMMA), _np.float32(DELTA),
                      _np.float32(KAPPA))
        x = out
    return x


__all__ = ["PacketShape", "analysis_filters", "dwt", "idwt", "ipacket1d", "ipacket2d", "packet1d", "packet2d",
           "packet2d_numpy"]
