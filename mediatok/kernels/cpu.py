"""CPU nearest-codeword search: 2-D tiled ``addmm`` into one preallocated buffer with a running min/argmin.

    for each row tile x_t (tn, D):                       # tn x tk floats, sized to stay in cache
        for each code tile c_t (tk, D):
            s = ||c_t||^2 - 2 x_t c_t^T        (addmm into the buffer, BLAS)
            m = amin(s, dim=1)                 (vectorised; torch.min with indices is ~15x slower)
            rows where m < best: best = m, arg = first j with s[j] == m      (numba scan, rare rows only)
        sq_dist = ||x_t - c[arg]||^2                    # direct, no cancellation

For D <= 16 a GEMM is bound by writing its output (a few flops per score), so finite row tiles take a fused
numba kernel instead: blocks of 512 codes whose scores are built in an L1-resident buffer, vectorised over
codes, with a count of scores below the row's best in the same loop; only blocks with a hit are scanned.
No score leaves the cache (4-5x faster than the GEMM path at D = 8).

Strict '<' across tiles and the first-match scan inside a tile give torch.argmin's lowest-index tie rule.
Row tiles are spread over one worker per torch thread. The fused kernel's workers run only numba and numpy
(no torch op, so no intra-op thread pool of their own) and the caller finishes their tiles with torch; the
GEMM path's workers run the torch loop as it is. Nothing changes process-wide state (torch.set_num_threads).
Peak extra memory is one score buffer per worker (<= ``max_bytes``, default 64 MB; 4 MB with the default
tiles) plus O(tn * D) temporaries, whatever N and K.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

__all__ = ["nearest_codeword_cpu"]

try:
    from numba import njit
except ImportError:  # numba is a core dependency; without it the slower torch.min update is used
    njit = None

# Score magnitudes below this cannot overflow float32 (max 3.4e38), rounding slack included.
_SAFE_SCORE = 1e37
_MAX_BYTES = 64 << 20
_ALIGN = 16
_PARALLEL_WORK = 1 << 26  # multiply-adds
# 1024 x 1024 floats = 4 MB: large enough for BLAS to run at speed, small enough to stay in L3 for the min.
# For D <= 16 each score costs only a few flops and a GEMM is bound by writing its output; tall tiles of 256
# codes write it about 40% faster with MKL on AVX2 (same 4 MB).
_TILE = (1024, 1024)
_TILE_SMALL_D = (4096, 256)
_SMALL_D = 16
_FUSED_BLOCK = 512  # codes per block of the fused small-D kernel (a multiple of 64): 2 KB of scores


def _tile_shape(n: int, k: int, d: int, max_bytes: int) -> tuple[int, int]:
    tn, tk = _TILE_SMALL_D if d <= _SMALL_D else _TILE
    tn, tk = min(n, tn), min(k, tk)
    while tn * tk * 4 > max_bytes and tn > 1:
        tn //= 2
    while tn * tk * 4 > max_bytes and tk > 1:
        tk //= 2
    return tn, tk


if njit is not None:

    @njit(nogil=True, cache=True)
    def _scan_improved(scores, tile_min, k0, best, arg):  # pragma: no cover - compiled
        # Only rows whose tile minimum beats their best are scanned; after the first few tiles that is a
        # small fraction (about ln(T)/T of row-tiles for T code tiles in random order).
        m, kk = scores.shape
        for r in range(m):
            v = tile_min[r]
            if v < best[r]:
                best[r] = v
                for j in range(kk):
                    if scores[r, j] == v:
                        arg[r] = k0 + j
                        break


    @njit(nogil=True, cache=True, fastmath={"reassoc"})
    def _count_below(buf, bound):  # pragma: no cover - compiled
        # 'reassoc' lets LLVM vectorise this float sum (a min reduction does not vectorise here); the count
        # is exact whatever the order, as long as it stays below 2**24
        one, zero = np.float32(1.0), np.float32(0.0)
        hits = zero
        for j in range(buf.shape[0]):
            hits += one if buf[j] < bound else zero
        return hits

    @njit(nogil=True, cache=True, fastmath={"contract"})
    def _fused_small_d(xs, ct, norms, best, arg, block):  # pragma: no cover - compiled
        # xs (n, Dp): rows times -2, zero-padded to Dp in {8, 16}; ct (Dp, Kp): codes transposed, zero-padded;
        # norms (Kp,): ||c||^2, +inf past K. Per block of codes and row: scores into an L1 buffer, a
        # vectorised count of those below the row's best, and only for blocks with a hit a scan for the
        # first minimum -- after the first blocks, a few in a hundred.
        # Every score of a block comes from the same vector loop (block % 64 == 0 leaves no scalar remainder
        # that could round differently, FMA contraction included), so equal codewords score equally.
        n, dp = xs.shape
        kp = ct.shape[1]
        # One workspace: the block's code rows, its norms, the scores, 4 * block bytes apart. A score store
        # then never 4K-aliases a later code load (offsets are 0 or 2 KB mod 4 KB); with ct's own rows
        # (4 * Kp apart) it did at random, and the loop ran 1.5x slower for some allocations.
        ws = np.empty((dp + 2, block), np.float32)
        nb, buf = ws[dp], ws[dp + 1]
        for k0 in range(0, kp, block):
            for d in range(dp):
                ws[d, :] = ct[d, k0 : k0 + block]
            nb[:] = norms[k0 : k0 + block]
            c0, c1, c2, c3, c4, c5, c6, c7 = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6], ws[7]
            # dims 8-15 (for Dp = 8 these alias dims 0-7 and go unused)
            d0, d1, d2, d3, d4, d5, d6, d7 = ws[8 % dp], ws[9 % dp], ws[10 % dp], ws[11 % dp], ws[12 % dp], ws[13 % dp], ws[14 % dp], ws[15 % dp]
            for i in range(n):
                # (the slices, not ct[d, k0 + j], keep numba from emitting negative-index checks)
                a0, a1, a2, a3, a4, a5, a6, a7 = xs[i, 0], xs[i, 1], xs[i, 2], xs[i, 3], xs[i, 4], xs[i, 5], xs[i, 6], xs[i, 7]
                for j in range(block):
                    buf[j] = nb[j] + (a0 * c0[j] + a1 * c1[j] + a2 * c2[j] + a3 * c3[j]) + (
                        a4 * c4[j] + a5 * c5[j] + a6 * c6[j] + a7 * c7[j]
                    )
                if dp == 16:
                    e0, e1, e2, e3 = xs[i, 8], xs[i, 9], xs[i, 10], xs[i, 11]
                    e4, e5, e6, e7 = xs[i, 12], xs[i, 13], xs[i, 14], xs[i, 15]
                    for j in range(block):
                        buf[j] += (e0 * d0[j] + e1 * d1[j] + e2 * d2[j] + e3 * d3[j]) + (
                            e4 * d4[j] + e5 * d5[j] + e6 * d6[j] + e7 * d7[j]
                        )
                bi = best[i]
                if _count_below(buf, bi) > 0:
                    m = bi
                    for j in range(block):
                        if buf[j] < m:  # strict: the first minimum in the block, and only if below best
                            m = buf[j]
                            arg[i] = k0 + j
                    best[i] = m


def _update_torch(scores: Tensor, k0: int, best: Tensor, arg: Tensor, tile_min: Tensor) -> None:
    # Without numba: torch.min with indices (first index on ties), about 15x slower than amin + scan.
    tile_idx = torch.empty_like(arg)
    torch.min(scores, dim=1, out=(tile_min, tile_idx))
    better = tile_min < best
    torch.where(better, tile_min, best, out=best)
    torch.where(better, tile_idx.add_(k0), arg, out=arg)


@torch.no_grad()
def nearest_codeword_cpu(
    x: Tensor,
    codebook: Tensor,
    *,
    sq_norms: Tensor | None = None,
    max_bytes: int = _MAX_BYTES,
    tile: tuple[int, int] | None = None,
) -> tuple[Tensor, Tensor]:
    """Exact nearest codeword on the CPU: x (N, D), codebook (K, D) -> (int64 (N,), float32 (N,)).

    Same contract as ``mediatok.kernels.nearest_codeword`` (inputs already validated there);
    ``tile`` = (rows, codes) overrides the tile shape chosen from ``max_bytes``.
    Without ``sq_norms``, a codebook whose mean lies far from the origin (relative to its spread) is searched
    centred at that mean, which leaves distances unchanged but removes the expansion's cancellation.
    """
    n, d = x.shape
    k = codebook.shape[0]
    cb = codebook.float().contiguous()  # (K, D); a view when already float32 and contiguous
    shift = None
    if sq_norms is None:
        norms = _sq_norms(cb, None)  # (K,)
        mean = cb.mean(0)  # (D,)
        if torch.isfinite(mean).all() and float(mean.pow(2).sum()) > 0.5 * float(norms.mean()):
            shift = mean  # ||mean||^2 above the spread: centre (the shifted tiles are made per tile below)
            norms = _sq_norms(cb, shift)
    else:
        norms = sq_norms.float().contiguous()  # (K,)
    # Scores ||c||^2 - 2 x.c are finite whenever the |x| and ||c|| bounds keep them below _SAFE_SCORE; other
    # tiles pay one extra pass that maps NaN/inf scores to +inf (the package's non-finite policy).
    cb_ok = bool(torch.isfinite(norms).all()) and (sq_norms is None or _all_finite(cb))
    max_norm = float(norms.max().clamp_min(0).sqrt()) if cb_ok else math.inf

    # Aligned, equal GEMM shapes: BLAS then runs one kernel with one summation order for every score, so exact
    # duplicate codewords score identically wherever they sit and the lowest-index tie rule holds. Tiles
    # overlap at the end rather than shrink; below one tile, rows and codes are padded (zero codes score +inf).
    # Workers pay a thread pool per call (~0.2 ms): only for searches worth more than a few milliseconds.
    threads = max(1, torch.get_num_threads()) if n * k * d >= _PARALLEL_WORK else 1
    fused = _fused_tables(cb, norms, shift, max_bytes) if njit is not None and d <= _SMALL_D and cb_ok else None
    tn, tk = tile if tile is not None else _tile_shape(n, k, d, max_bytes)
    if tile is None and threads > 1:
        tn = min(tn, _round_up(-(-n // threads), _ALIGN))  # at least one row tile per worker
    tn, tk = min(tn, n), min(_round_up(tk, _ALIGN), _round_up(k, _ALIGN))
    indices = torch.empty(n, dtype=torch.long)
    sq_dist = torch.empty(n, dtype=torch.float32)
    starts = _starts(n, tn)
    # Only the rows a tile owns are written back, so the overlapping last tile races with nobody.
    owned = [(r0, r0 + tn) for r0 in starts]
    if len(starts) > 1:
        owned[-1] = (starts[-2] + tn, n)

    k_starts = _starts(k, tk) if tk <= k else [0]
    # Views made once: with thousands of tiles, the Python work per tile is kept to addmm, amin and the scan.
    plain = shift is None and tk <= k
    code_tiles = [(k0, cb[k0 : k0 + tk].t(), norms[k0 : k0 + tk]) for k0 in k_starts] if plain else None

    def finish(t: int, rows: Tensor, best: Tensor, arg: Tensor) -> None:
        """Exact distances of row tile t's chosen codes, and its owned rows written back."""
        found = torch.isfinite(best)  # False only for rows with no finite distance: keep (0, +inf)
        # (tn, D) temporaries; the direct form avoids the expansion's cancellation.
        direct = (rows - cb.index_select(0, arg)).pow_(2).sum(1)
        torch.where(found, direct, best, out=best)
        r0, (lo, hi) = starts[t], owned[t]
        sq_dist[lo:hi] = best[lo - r0 : hi - r0]
        indices[lo:hi] = arg[lo - r0 : hi - r0]

    def run(tiles: Iterable[int]) -> None:
        tn_pad = _round_up(tn, _ALIGN)
        rows_pad = torch.zeros(tn_pad, d) if tn_pad != tn else None  # only when N is below one tile
        codes = torch.zeros(tk, d)  # shifted/padded code tile when needed
        tile_norms = torch.full((tk,), math.inf)
        scores = torch.empty(tn_pad, tk)
        tile_min = torch.empty(tn_pad)
        best = torch.empty(tn)
        arg = torch.empty(tn, dtype=torch.long)
        s_v, m_v = scores[:tn], tile_min[:tn]
        arrays = (s_v.numpy(), m_v.numpy()) if njit is not None else None
        for t in tiles:
            r0 = starts[t]
            rows = x[r0 : r0 + tn].float().contiguous()  # (tn, D); a view when x is already float32
            rows_s = rows if shift is None else rows - shift  # (tn, D)
            best.fill_(math.inf)
            arg.zero_()
            safe = cb_ok and _rows_safe(rows_s, max_norm)
            if rows_pad is not None:
                rows_pad[:tn] = rows_s
                rows_s = rows_pad  # (tn_pad, D)
            best_np, arg_np = (best.numpy(), arg.numpy()) if arrays is not None else (None, None)
            if fused is not None and safe:
                ct, tile_norms_np = fused
                xs = np.zeros((tn, ct.shape[0]), np.float32)  # (tn, Dp)
                np.multiply(rows_s[:tn].numpy(), -2.0, out=xs[:, :d])
                _fused_small_d(xs, ct, tile_norms_np, best_np, arg_np, _FUSED_BLOCK)
                k_loop = ()  # done
            else:
                k_loop = k_starts
            for i, k0 in enumerate(k_loop):
                if code_tiles is not None:
                    _, c_t, n_t = code_tiles[i]  # (D, tk), (tk,)
                else:
                    kk = min(tk, k - k0)
                    torch.sub(cb[k0 : k0 + kk], 0.0 if shift is None else shift, out=codes[:kk])
                    tile_norms[:kk] = norms[k0 : k0 + kk]
                    c_t, n_t = codes.t(), tile_norms  # zero codes past K score +inf
                torch.addmm(n_t, rows_s, c_t, alpha=-2.0, out=scores)
                if not safe:
                    torch.nan_to_num_(scores, nan=math.inf, posinf=math.inf, neginf=math.inf)
                if arrays is not None:
                    torch.amin(s_v, dim=1, out=m_v)
                    _scan_improved(arrays[0], arrays[1], k0, best_np, arg_np)
                else:
                    _update_torch(s_v, k0, best, arg, m_v)
            finish(t, rows, best, arg)

    tiles = list(range(len(starts)))
    if threads == 1 or len(tiles) == 1:
        run(tiles)
        return indices, sq_dist
    if fused is not None:
        _fused_in_workers(x, shift, fused, tn, starts, threads, max_norm, run, finish)
        return indices, sq_dist
    # GEMM path: one worker per thread on whole row tiles. The same loop on the caller's thread, with torch's
    # intra-op threads syncing twice per tile, measured 12x slower at D = 64 on two shared cores. The workers
    # take torch's settings as they are (each new thread inherits the process's count): same speed, measured,
    # as the former process-wide torch.set_num_threads(1) while they ran, which reached every other thread.
    # Workers pull row tiles from one shared iterator (next() on a list iterator is atomic under the GIL).
    shared = iter(tiles)
    # Inference mode is thread-local: workers take the caller's, or writing into the caller's (inference)
    # output tensors would raise.
    inference = torch.is_inference_mode_enabled()

    def run_as_caller(_: int) -> None:
        with torch.inference_mode(inference):
            run(shared)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run_as_caller, range(threads)))
    return indices, sq_dist


def _fused_in_workers(x: Tensor, shift: Tensor | None, fused, tn: int, starts: list[int], threads: int,
                      max_norm: float, run, finish) -> None:
    """The fused small-D kernel on `threads` workers that run numba and numpy only; torch work stays on the caller.

    A torch op on a worker thread would start an intra-op thread pool there (oversubscribing the cores, and
    every sync then waits out a scheduler slice when they are shared -- measured 40x slower at D = 8); the
    old cure, torch.set_num_threads(1) while the workers ran, changed every other thread's setting too.
    """
    d = x.shape[1]
    xf = x.float().contiguous()  # (N, D): a view when already float32; else one copy of at most 64 bytes a row
    x_np = xf.numpy()
    shift_np = shift.numpy() if shift is not None else None
    # Non-finite or huge rows take the GEMM path and its non-finite policy, on the caller.
    safe = [_rows_safe(xf[r0 : r0 + tn] if shift is None else xf[r0 : r0 + tn] - shift, max_norm) for r0 in starts]
    best_tiles = np.empty((len(starts), tn), np.float32)  # whole tiles: finish() then sees what run() would
    arg_tiles = np.empty((len(starts), tn), np.int64)
    ct, norms_np = fused

    def work(shared: Iterator[int]) -> None:
        xs = np.zeros((tn, ct.shape[0]), np.float32)  # (tn, Dp): rows times -2, zero-padded
        for t in shared:
            rows = x_np[starts[t] : starts[t] + tn]  # (tn, D)
            if shift_np is None:
                np.multiply(rows, -2.0, out=xs[:, :d])
            else:
                np.multiply(np.subtract(rows, shift_np, out=xs[:, :d]), -2.0, out=xs[:, :d])
            best_tiles[t].fill(np.inf)
            arg_tiles[t].fill(0)
            _fused_small_d(xs, ct, norms_np, best_tiles[t], arg_tiles[t], _FUSED_BLOCK)

    # Workers pull row tiles from one shared iterator (next() on a list iterator is atomic under the GIL):
    # a worker slowed by the scheduler then takes fewer tiles instead of holding up the join.
    shared = iter([t for t, ok in enumerate(safe) if ok])
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, [shared] * threads))
    for t, ok in enumerate(safe):
        if ok:
            rows = x[starts[t] : starts[t] + tn].float().contiguous()  # (tn, D), as run() makes it
            finish(t, rows, torch.from_numpy(best_tiles[t]), torch.from_numpy(arg_tiles[t]))
    run([t for t, ok in enumerate(safe) if not ok])


_CHUNK_FLOATS = 1 << 20  # 4 MB temporaries while preparing the codebook


def _sq_norms(cb: Tensor, shift: Tensor | None) -> Tensor:
    # chunked so that no (K, D) temporary exists
    out = torch.empty(cb.shape[0], dtype=torch.float32)
    step = max(1, _CHUNK_FLOATS // cb.shape[1])
    for i in range(0, cb.shape[0], step):
        c = cb[i : i + step]
        c = c - shift if shift is not None else c.clone()
        torch.sum(c.mul_(c), dim=1, out=out[i : i + step])
    return out


def _fused_tables(cb: Tensor, norms: Tensor, shift: Tensor | None, max_bytes: int):
    """Codes transposed and zero-padded to (Dp, Kp) plus norms padded with +inf, or None above max_bytes."""
    k, d = cb.shape
    dp, kp = (8 if d <= 8 else 16), _round_up(k, _FUSED_BLOCK)
    if (dp + 1) * kp * 4 > max_bytes:
        return None  # a codebook of millions of small codes: the tiled GEMM path keeps memory bounded
    ct = np.zeros((dp, kp), np.float32)
    ct[:d, :k] = (cb if shift is None else cb - shift).t().numpy()
    padded = np.full(kp, np.inf, np.float32)
    padded[:k] = norms.numpy()
    return ct, padded


def _all_finite(cb: Tensor) -> bool:
    step = max(1, _CHUNK_FLOATS // cb.shape[1])
    return all(bool(torch.isfinite(cb[i : i + step]).all()) for i in range(0, cb.shape[0], step))


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def _starts(total: int, size: int) -> list[int]:
    # The last tile overlaps its neighbour instead of being narrower, so every GEMM has the same shape.
    starts = list(range(0, total - size + 1, size))
    if total % size:
        starts.append(total - size)
    return starts


def _rows_safe(rows: Tensor, max_norm: float) -> bool:
    lo, hi = torch.aminmax(rows)
    bound = max(abs(float(lo)), abs(float(hi)))  # NaN/inf rows make this non-finite
    if not math.isfinite(bound):
        return False
    x_norm = bound * math.sqrt(rows.shape[1])
    return max_norm * max_norm + 2.0 * x_norm * max_norm < _SAFE_SCORE
