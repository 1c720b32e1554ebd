"""numba kernels whose CDFs are derived on the fly, in encoder and decoder alike: adaptive counts, and
float PMFs quantised exactly like cdf.quantize_pmf (the stream format is _kernels.py's)."""
from __future__ import annotations

import numpy as np
from numba import njit

from mediatok.entropy._kernels import (_ONE, ERR_OVERFLOW, ERR_PMF, ERR_SYMBOL, ERR_TRUNCATED, _close, _flush,
                                       _init_states, _open, _put, _refill, _search)

# ---------------------------------------------------------------------------------------------- adaptive
@njit(cache=True)
def _counts_to_cdf(counts, prec, cdf):
    """Integer-only CDF from counts (every symbol >= 1, total exactly 2^prec): cdf[i] = C_i*(M-K)//C + i."""
    k = counts.shape[0]
    spare = (np.int64(1) << prec) - k
    total = np.int64(0)
    for i in range(k):
        total += counts[i]
    acc = np.int64(0)
    cdf[0] = 0
    for i in range(k):
        acc += counts[i]
        cdf[i + 1] = (acc * spare) // total + i + 1


@njit(cache=True)
def adaptive_model(symbols, k, prec, period, inc, limit, starts, freqs):
    """Forward pass of the adaptive-count model: fills each symbol's (start, freq). Returns status."""
    counts = np.ones(k, np.int64)
    cdf = np.empty(k + 1, np.int64)
    _counts_to_cdf(counts, prec, cdf)
    total = np.int64(k)
    for i in range(symbols.shape[0]):
        s = symbols[i]
        if s < 0 or s >= k:
            return ERR_SYMBOL
        starts[i] = cdf[s]
        freqs[i] = cdf[s + 1] - cdf[s]
        counts[s] += inc
        total += inc
        if total > limit:
            total = 0
            for j in range(k):
                counts[j] = (counts[j] + 1) >> 1
                total += counts[j]
        if (i + 1) % period == 0:
            _counts_to_cdf(counts, prec, cdf)
    return 0


@njit(cache=True)
def adaptive_decode(data, k, prec, period, inc, limit, out):
    counts = np.ones(k, np.int64)
    cdf = np.empty(k + 1, np.int64)
    _counts_to_cdf(counts, prec, cdf)
    total = np.int64(k)
    p = np.uint64(prec)
    mask = (_ONE << p) - _ONE
    states = np.empty(1, np.uint64)
    pos = _open(data, 1, states)
    if pos < 0:
        return pos
    x = states[0]
    for i in range(out.shape[0]):
        slot = np.int64(x & mask)
        s = _search(cdf, k, slot)
        c = cdf[s]
        x = np.uint64(cdf[s + 1] - c) * (x >> p) + np.uint64(slot - c)
        x, pos, ok = _refill(x, data, pos, 1)
        out[i] = s
        counts[s] += inc
        total += inc
        if total > limit:
            total = 0
            for j in range(k):
                counts[j] = (counts[j] + 1) >> 1
                total += counts[j]
        if (i + 1) % period == 0:
            _counts_to_cdf(counts, prec, cdf)
    states[0] = x
    return _close(states, 1, data, pos)


# ---------------------------------------------------------------------------------------------- categorical
_TWO52 = 4503599627370496.0  # (x + 2^52) - 2^52 rounds 0 <= x < 2^52 half-to-even, like torch.round


@njit(cache=True)
def _rnd(x):
    return np.int64((x + _TWO52) - _TWO52)  # 0 <= x <= 2^24 here


_BLOCK = 8  # running sums go block by block (see cdf._running_sums): short dependency chains


@njit(cache=True)
def _block_sums(p, boff):
    """boff[b] = sum of the blocks before block b, in cdf._running_sums' order (boff[0] = 0, boff[nb] =
    total; C_{8b-1} == boff[b] exactly). Eight blocks at a time so their chains overlap. Returns the total."""
    k = p.shape[0]
    step = 8 * _BLOCK
    full = k // step * step
    off = 0.0
    boff[0] = 0.0
    for b0 in range(0, full, step):
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        for j in range(b0, b0 + _BLOCK):
            a0 += np.float64(p[j])
            a1 += np.float64(p[j + _BLOCK])
            a2 += np.float64(p[j + 2 * _BLOCK])
            a3 += np.float64(p[j + 3 * _BLOCK])
            a4 += np.float64(p[j + 4 * _BLOCK])
            a5 += np.float64(p[j + 5 * _BLOCK])
            a6 += np.float64(p[j + 6 * _BLOCK])
            a7 += np.float64(p[j + 7 * _BLOCK])
        i = b0 // _BLOCK
        off += a0
        boff[i + 1] = off
        off += a1
        boff[i + 2] = off
        off += a2
        boff[i + 3] = off
        off += a3
        boff[i + 4] = off
        off += a4
        boff[i + 5] = off
        off += a5
        boff[i + 6] = off
        off += a6
        boff[i + 7] = off
        off += a7
        boff[i + 8] = off
    for b0 in range(full, k, _BLOCK):
        acc = 0.0
        for i in range(b0, min(b0 + _BLOCK, k)):
            acc += np.float64(p[i])
        off += acc
        boff[b0 // _BLOCK + 1] = off
    return off


@njit(cache=True)
def _native_threshold(thr, scratch):
    """The smallest value of the PMF's dtype >= thr (scratch: 1 entry of that dtype), so that `v < t`
    in the PMF's own precision (8 float32 lanes per AVX2 compare) equals float64(v) < thr exactly."""
    scratch[0] = thr
    if np.float64(scratch[0]) < thr:  # float32 rounded down: step to the next float32 (thr > 0)
        scratch.view(np.uint32)[0] += np.uint32(1)
    return scratch[0]


@njit(cache=True)
def _symbol_range(p, s, m, boff, scratch):
    """(start, freq) of symbol s under quantize_pmf(p) without building the row: see cdf.py for the rule.
    freq = -1 flags a bad row (negative, NaN or infinite entries, or a zero total)."""
    k = p.shape[0]
    total = _block_sums(p, boff)
    if not (total > 0.0 and total < np.inf):
        return np.int64(0), np.int64(-1)
    end = (s // _BLOCK) * _BLOCK
    off = boff[s // _BLOCK]
    acc = 0.0
    for j in range(end, s):
        acc += np.float64(p[j])
    a0 = off + acc if s > end else off  # C_{s-1}; at a block start it is exactly the block offset
    a1 = off + (acc + np.float64(p[s]))  # C_s
    thr = total * (2.0 / m)
    t = _native_threshold(thr, scratch)
    bad = False
    before = 0
    for i in range(s):
        before += p[i] < t
        bad |= p[i] < 0
    nt = before
    for i in range(s, k):
        nt += p[i] < t
        bad |= p[i] < 0
    if bad:
        return np.int64(0), np.int64(-1)
    if nt > m // 4:  # fallback: one reserved slot per symbol
        scale = (m - k) / total
        c = _rnd(a0 * scale) + s
        return c, _rnd(a1 * scale) + s + 1 - c
    scale = (m - nt) / total
    c = _rnd(a0 * scale) + before
    return c, _rnd(a1 * scale) + before + (p[s] < t) - c


@njit(cache=True)
def encode_categorical(symbols, pmf, prec, lanes, out):
    """encode_cdf(symbols, quantize_pmf(pmf)) without materialising the CDFs: one row at a time."""
    n = symbols.shape[0]
    k = pmf.shape[1]
    m = np.int64(1) << prec
    p = np.uint64(prec)
    boff = np.empty((k + _BLOCK - 1) // _BLOCK + 1, np.float64)
    scratch = np.empty(1, pmf.dtype)
    states = _init_states(lanes)
    pos = out.shape[0]
    lane = (n - 1) % lanes
    for i in range(n - 1, -1, -1):
        if pos < 4:
            return ERR_OVERFLOW
        s = symbols[i]
        if s < 0 or s >= k:
            return ERR_SYMBOL
        c, f = _symbol_range(pmf[i], s, m, boff, scratch)
        if f < 0:
            return ERR_PMF
        states[lane], pos = _put(states[lane], np.uint64(c), np.uint64(f), p, out, pos)
        lane = lane - 1 if lane > 0 else lanes - 1
    return _flush(states, lanes, out, pos)


@njit(cache=True)
def decode_categorical(data, pmf, prec, lanes, out):
    n = out.shape[0]
    k = pmf.shape[1]
    nb = (k + _BLOCK - 1) // _BLOCK
    m = np.int64(1) << prec
    p = np.uint64(prec)
    mask = (_ONE << p) - _ONE
    boff = np.empty(nb + 1, np.float64)
    bcnt = np.empty(nb + 1, np.int64)
    scratch = np.empty(1, pmf.dtype)
    states = np.empty(lanes, np.uint64)
    pos = _open(data, lanes, states)
    if pos < 0:
        return pos
    lane = 0
    for i in range(n):
        row = pmf[i]
        total = _block_sums(row, boff)
        if not (total > 0.0 and total < np.inf):
            return ERR_PMF
        thr = _native_threshold(total * (2.0 / m), scratch)
        nt = 0
        bad = False
        full = k // _BLOCK
        for b in range(full):  # fixed 8-wide blocks: one vector compare each
            bcnt[b] = nt
            c8 = 0
            for j in range(b * _BLOCK, b * _BLOCK + _BLOCK):
                c8 += row[j] < thr
                bad |= row[j] < 0
            nt += c8
        if full < nb:
            bcnt[full] = nt
            for j in range(full * _BLOCK, k):
                nt += row[j] < thr
                bad |= row[j] < 0
        if bad:
            return ERR_PMF
        leaky = nt > m // 4
        scale = (m - k) / total if leaky else (m - nt) / total
        x = states[lane]
        slot = np.int64(x & mask)
        lo = 0  # largest block whose first cdf value is <= slot
        hi = nb
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if _rnd(boff[mid] * scale) + (mid * _BLOCK if leaky else bcnt[mid]) <= slot:
                lo = mid
            else:
                hi = mid
        j = lo * _BLOCK
        c = _rnd(boff[lo] * scale) + (j if leaky else bcnt[lo])
        cnt = bcnt[lo]
        acc = 0.0
        last = min(j + _BLOCK, k) - 1
        while True:
            acc += np.float64(row[j])
            cnt += row[j] < thr
            e = _rnd((boff[lo] + acc) * scale) + (j + 1 if leaky else cnt)
            if e > slot or j == last:
                break
            c = e
            j += 1
        x = np.uint64(e - c) * (x >> p) + np.uint64(slot - c)
        x, pos, ok = _refill(x, data, pos, lanes)
        if not ok:
            return ERR_TRUNCATED
        states[lane] = x
        out[i] = j
        lane = lane + 1 if lane < lanes - 1 else 0
    return _close(states, lanes, data, pos)
