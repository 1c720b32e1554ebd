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


_BLOCK = 8  # running sums go block by block (see cdf.quantize_pmf): short dependency chains


@njit(cache=True)
def _block_sums(p, boff):
    """boff[b] = sum of the blocks before block b, in quantize_pmf's order (boff[0] = 0, boff[nb] =
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


_SUPER = 64  # tiny-symbol counts are kept per 64 entries: a plain compare loop that vectorises


@njit(cache=True)
def _count_tiny(row, thr, scnt):
    """scnt[b] = entries below thr before superblock b of 64 entries. Returns (count, any entry < 0)."""
    k = row.shape[0]
    full = k // _SUPER
    nt = np.int64(0)
    bad = np.int32(0)
    for b in range(full):
        scnt[b] = nt
        c = np.int32(0)
        for j in range(b * _SUPER, b * _SUPER + _SUPER):
            c += np.int32(row[j] < thr)
            bad |= np.int32(row[j] < 0)
        nt += c
    scnt[full] = nt
    for j in range(full * _SUPER, k):
        nt += row[j] < thr
        bad |= np.int32(row[j] < 0)
    return nt, bad != 0


@njit(cache=True)
def _block_count(row, j0, thr):
    """Entries of the block of 8 starting at j0 that lie below thr (the block is whole)."""
    c = np.int32(0)
    for j in range(j0, j0 + _BLOCK):
        c += np.int32(row[j] < thr)
    return c


@njit(cache=True)
def decode_categorical(data, pmf, prec, lanes, out):
    """Inverse of encode_categorical: per row, one pass of block sums and one of tiny counts, then a
    search over superblocks of 64, blocks of 8 and symbols, each CDF value computed as quantize_pmf does."""
    n = out.shape[0]
    k = pmf.shape[1]
    nb = (k + _BLOCK - 1) // _BLOCK
    nsb = (k + _SUPER - 1) // _SUPER
    per = _SUPER // _BLOCK
    m = np.int64(1) << prec
    p = np.uint64(prec)
    mask = (_ONE << p) - _ONE
    boff = np.empty(nb + 1, np.float64)
    scnt = np.empty(nsb + 1, np.int64)
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
        nt, bad = _count_tiny(row, thr, scnt)
        if bad:
            return ERR_PMF
        leaky = nt > m // 4
        scale = (m - k) / total if leaky else (m - nt) / total
        x = states[lane]
        slot = np.int64(x & mask)
        lo = 0  # largest superblock whose first cdf value is <= slot
        hi = nsb
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if _rnd(boff[mid * per] * scale) + (mid * _SUPER if leaky else scnt[mid]) <= slot:
                lo = mid
            else:
                hi = mid
        b = lo * per  # then the largest block of that superblock whose first cdf value is <= slot
        cnt = scnt[lo]
        last_block = min(b + per, nb) - 1
        while b < last_block:
            nxt = cnt + _block_count(row, b * _BLOCK, thr)  # block b is whole: a later block exists
            if _rnd(boff[b + 1] * scale) + ((b + 1) * _BLOCK if leaky else nxt) > slot:
                break
            b += 1
            cnt = nxt
        j = b * _BLOCK
        c = _rnd(boff[b] * scale) + (j if leaky else cnt)
        acc = 0.0
        last = min(j + _BLOCK, k) - 1
        while True:  # then the symbol inside the block
            acc += np.float64(row[j])
            cnt += row[j] < thr
            e = _rnd((boff[b] + acc) * scale) + (j + 1 if leaky else cnt)
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


# ---------------------------------------------------------------------------------------------- quantize_pmf
QERR_VALUE = -1  # a negative, NaN or infinite entry
QERR_TOTAL = -2  # a row whose float64 total is zero or overflows
QERR_INTERNAL = -3  # the rule produced an invalid CDF (a bug, never the caller's input)


@njit(cache=True)
def quantize_rows(pmf, lengths, prec, out):
    """out[r] = cdf.quantize_pmf's CDF of row r (K+1 entries), with row r holding lengths[r] symbols
    (lengths empty: all K). Same blocked float64 sums, threshold and rounding as the coding kernels.
    Returns 0 or a QERR_* status."""
    rows, k = pmf.shape
    m = np.int64(1) << prec
    nb = (k + _BLOCK - 1) // _BLOCK
    buf = np.empty(k, np.float64)  # the row in float64, zero past its length (as p * valid in torch)
    csum = np.empty(k, np.float64)
    boff = np.empty(nb + 1, np.float64)
    for r in range(rows):
        row = pmf[r]
        n = lengths[r] if lengths.shape[0] > 0 else k
        bad = np.int32(0)
        for j in range(k):
            v = np.float64(row[j])
            bad |= np.int32(not (v >= 0.0 and v < np.inf))
            buf[j] = v
        if bad:
            return QERR_VALUE
        buf[n:] = 0.0
        total = _block_sums(buf, boff)
        if not (total > 0.0 and total < np.inf):
            return QERR_TOTAL
        thr = total * (2.0 / m)
        nt = np.int64(0)
        for j in range(n):
            nt += np.int64(buf[j] < thr)
        leaky = nt > m // 4
        scale = (m - n) / total if leaky else (m - nt) / total
        full = k // _BLOCK
        for b in range(full):  # running sums in the blocked order; whole blocks unroll
            off = boff[b]
            acc = 0.0
            for j in range(b * _BLOCK, b * _BLOCK + _BLOCK):
                acc += buf[j]
                csum[j] = off + acc
        acc = 0.0
        for j in range(full * _BLOCK, k):
            acc += buf[j]
            csum[j] = boff[full] + acc
        dst = out[r]
        dst[0] = 0
        cum = np.int64(0)  # symbols holding a reserved slot so far
        for j in range(n):
            cum += np.int64(1) if leaky else np.int64(buf[j] < thr)
            dst[j + 1] = cum
        for j in range(n, k):
            dst[j + 1] = cum
        least = m
        for j in range(k):
            dst[j + 1] += _rnd(csum[j] * scale)
        for j in range(n):
            least = min(least, dst[j + 1] - dst[j])
        tail = np.int64(0)
        for j in range(n, k):
            tail |= dst[j + 1] - dst[j]
        if least < 1 or tail != 0 or dst[k] != m:
            return QERR_INTERNAL
    return 0
