"""numba kernels of the rANS coder: 64-bit state, 32-bit words, precision 12..24 bits.

Stream layout, in the order the decoder reads it (the encoder writes it back to front):

    lanes == 1:  [final state, 0..8 bytes LE, as few as needed][32-bit LE words ...]
    lanes  > 1:  [lane 0..K-1 final states, 8 bytes LE each][32-bit LE words ...]

With one lane the encoder starts from state 0, not from the usual lower bound 2^32, so no 32 bits are
wasted: the state stays below 2^32 until the first word is emitted and never drops below it afterwards,
which lets the decoder skip refills once the words are used up, and tells it the state's byte count from
the total length alone (<= 4 bytes: no words; else 5 + (len - 5) % 4). A single-symbol or empty stream
is 0 bytes. With several lanes every lane starts at 2^32 (a lane cannot tell its own start-up phase from
another lane's words), costing about 6 bytes per lane; lanes exist for throughput on long streams.

Kernels return a status: >= 0 success (encoders: start index of the words in `out`), < 0 an error code
from `ERRORS`. They never raise, never read out of bounds, and always terminate.
"""
from __future__ import annotations

import numpy as np
from numba import njit

ERR_OVERFLOW = -1  # output buffer too small (the caller retries with the worst-case size)
ERR_SYMBOL = -2  # symbol out of range or with zero frequency
ERR_TRUNCATED = -3  # the stream ended before the symbols did
ERR_CORRUPT = -4  # final state / length check failed, or a decoded escape is impossible
ERR_INDEX = -5  # table index out of range

ERRORS = {
    ERR_OVERFLOW: "output buffer overflow",
    ERR_SYMBOL: "symbol outside its table or with zero frequency",
    ERR_TRUNCATED: "bitstream is truncated: it ended before all symbols were decoded",
    ERR_CORRUPT: "bitstream is corrupted: the decoder's final state or length does not match",
    ERR_INDEX: "table index out of range",
}

_LOW = np.uint64(1 << 32)
_MASK32 = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_S32 = np.uint64(32)
_LUT_BITS = 8
_ESC_HDR = 6  # bits that carry an escape's bit length
_ESC_CHUNK = 16  # bypass bits pushed at a time (one renormalisation suffices for <= 32)
_MAX_ESC = np.int64(1) << 61  # escapes beyond +-2^61 are refused (the decoder's integers must not wrap)


# ---------------------------------------------------------------------------------------------- encoding
@njit(cache=True)
def _put(x, c, f, prec, out, pos):
    """Push symbol (start c, frequency f) onto state x; returns (x, pos)."""
    if (x >> (np.uint64(64) - prec)) >= f:
        pos -= 1
        out[pos] = np.uint32(x & _MASK32)
        x >>= _S32
    q = x // f
    x = (q << prec) + (x - q * f) + c
    return x, pos


@njit(cache=True)
def _put_bits(x, v, n, out, pos):
    """Push n <= 16 uniform bypass bits v onto x."""
    if (x >> (np.uint64(64) - n)) != _ZERO:
        pos -= 1
        out[pos] = np.uint32(x & _MASK32)
        x >>= _S32
    x = (x << n) | v
    return x, pos


@njit(cache=True)
def _put_escape(x, raw, out, pos):
    """Push raw >= 0 as Elias-gamma-like bypass bits: 6-bit length, then the bits below the leading one."""
    w = np.uint64(raw) + _ONE
    nb = 0
    t = w
    while t != _ZERO:
        nb += 1
        t >>= _ONE
    k = nb - 1
    nc = (k + _ESC_CHUNK - 1) // _ESC_CHUNK
    for j in range(nc - 1, -1, -1):  # reverse of the decoder's high-to-low reading order
        size = _ESC_CHUNK if j < nc - 1 else k - _ESC_CHUNK * (nc - 1)
        shift = k - _ESC_CHUNK * j - size
        chunk = (w >> np.uint64(shift)) & ((_ONE << np.uint64(size)) - _ONE)
        x, pos = _put_bits(x, chunk, np.uint64(size), out, pos)
    x, pos = _put_bits(x, np.uint64(k), np.uint64(_ESC_HDR), out, pos)
    return x, pos


@njit(cache=True)
def _flush(states, lanes, out, pos):
    """Write the final lane states in front of the words; returns the byte offset where the stream starts."""
    if lanes == 1:
        x = states[0]
        nbytes = 0
        t = x
        while t != _ZERO:
            nbytes += 1
            t >>= np.uint64(8)
        if pos < 2:
            return ERR_OVERFLOW
        b = out[:pos].view(np.uint8)
        start = 4 * pos - nbytes
        for i in range(nbytes):
            b[start + i] = np.uint8((x >> np.uint64(8 * i)) & np.uint64(255))
        return start
    if pos < 2 * lanes:
        return ERR_OVERFLOW
    for k in range(lanes - 1, -1, -1):
        pos -= 1
        out[pos] = np.uint32(states[k] >> _S32)
        pos -= 1
        out[pos] = np.uint32(states[k] & _MASK32)
    return 4 * pos


@njit(cache=True)
def _init_states(lanes):
    states = np.empty(lanes, np.uint64)
    states[:] = _ZERO if lanes == 1 else _LOW
    return states


@njit(cache=True)
def encode_cf(starts, freqs, prec, lanes, out):
    """Encode symbols given directly as (start, frequency) pairs; freqs must be >= 1."""
    n = starts.shape[0]
    p = np.uint64(prec)
    states = _init_states(lanes)
    pos = out.shape[0]
    lane = (n - 1) % lanes
    for i in range(n - 1, -1, -1):
        if pos < 4:
            return ERR_OVERFLOW
        f = freqs[i]
        if f <= 0:
            return ERR_SYMBOL
        states[lane], pos = _put(states[lane], np.uint64(starts[i]), np.uint64(f), p, out, pos)
        lane = lane - 1 if lane > 0 else lanes - 1
    return _flush(states, lanes, out, pos)


@njit(cache=True)
def encode_cdf(symbols, cdf, prec, lanes, out):
    """Encode symbols[i] with its own CDF row cdf[i] (row length = alphabet size + 1)."""
    n = symbols.shape[0]
    nsym = cdf.shape[1] - 1
    p = np.uint64(prec)
    states = _init_states(lanes)
    pos = out.shape[0]
    lane = (n - 1) % lanes
    for i in range(n - 1, -1, -1):
        if pos < 4:
            return ERR_OVERFLOW
        s = symbols[i]
        if s < 0 or s >= nsym:
            return ERR_SYMBOL
        c = cdf[i, s]
        f = cdf[i, s + 1] - c
        if f <= 0:
            return ERR_SYMBOL
        states[lane], pos = _put(states[lane], np.uint64(c), np.uint64(f), p, out, pos)
        lane = lane - 1 if lane > 0 else lanes - 1
    return _flush(states, lanes, out, pos)


@njit(cache=True)
def encode_indexed(symbols, indexes, tables, lengths, offsets, prec, lanes, escape, out):
    """CompressAI semantics: symbol i uses table indexes[i]; value = symbol - offset; with `escape`, the
    table's last symbol (lengths[t] - 2) is the escape and out-of-range values follow as bypass bits."""
    n = symbols.shape[0]
    ntab = tables.shape[0]
    p = np.uint64(prec)
    states = _init_states(lanes)
    pos = out.shape[0]
    lane = (n - 1) % lanes
    for i in range(n - 1, -1, -1):
        if pos < 8:
            return ERR_OVERFLOW
        t = indexes[i]
        if t < 0 or t >= ntab:
            return ERR_INDEX
        nsym = lengths[t] - 1
        v = np.int64(symbols[i]) - np.int64(offsets[t])
        x = states[lane]
        if escape:
            top = nsym - 1  # the escape symbol
            if v < 0 or v >= top:
                if v < -_MAX_ESC or v > _MAX_ESC:
                    return ERR_SYMBOL
                raw = -2 * v - 1 if v < 0 else 2 * (v - top)
                if pos < 8:
                    return ERR_OVERFLOW
                x, pos = _put_escape(x, raw, out, pos)
                if pos < 4:
                    return ERR_OVERFLOW
                v = top
        elif v < 0 or v >= nsym:
            return ERR_SYMBOL
        c = tables[t, v]
        f = tables[t, v + 1] - c
        if f <= 0:
            return ERR_SYMBOL
        x, pos = _put(x, np.uint64(c), np.uint64(f), p, out, pos)
        states[lane] = x
        lane = lane - 1 if lane > 0 else lanes - 1
    return _flush(states, lanes, out, pos)


# ---------------------------------------------------------------------------------------------- decoding
@njit(cache=True)
def _open(data, lanes, states):
    """Read the lane states; returns the byte position of the first word or an error code."""
    size = data.shape[0]
    if lanes == 1:
        nbytes = size if size <= 4 else 5 + (size - 5) % 4
        x = _ZERO
        for i in range(nbytes):
            x |= np.uint64(data[i]) << np.uint64(8 * i)
        if nbytes > 4 and x < _LOW:  # a non-minimal state could not have come from the encoder
            return ERR_CORRUPT
        states[0] = x
        return nbytes
    if size < 8 * lanes or (size - 8 * lanes) % 4 != 0:
        return ERR_TRUNCATED
    for k in range(lanes):
        x = _ZERO
        for i in range(8):
            x |= np.uint64(data[8 * k + i]) << np.uint64(8 * i)
        if x < _LOW:
            return ERR_CORRUPT
        states[k] = x
    return 8 * lanes


@njit(cache=True)
def _refill(x, data, pos, lanes):
    """Returns (x, pos, ok)."""
    if x < _LOW:
        if pos + 4 <= data.shape[0]:
            w = (np.uint64(data[pos]) | (np.uint64(data[pos + 1]) << np.uint64(8))
                 | (np.uint64(data[pos + 2]) << np.uint64(16)) | (np.uint64(data[pos + 3]) << np.uint64(24)))
            return (x << _S32) | w, pos + 4, True
        if lanes > 1:
            return x, pos, False
    return x, pos, True


@njit(cache=True)
def _close(states, lanes, data, pos):
    if pos != data.shape[0]:
        return ERR_CORRUPT
    want = _ZERO if lanes == 1 else _LOW
    for k in range(lanes):
        if states[k] != want:
            return ERR_CORRUPT
    return 0


@njit(cache=True)
def _search(row, nsym, slot):
    """Largest s < nsym with row[s] <= slot (row is a validated CDF: row[0] = 0 <= slot < row[nsym])."""
    lo = 0
    hi = nsym
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if row[mid] <= slot:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True)
def _get_bits(x, n, data, pos, lanes):
    v = x & ((_ONE << n) - _ONE)
    x >>= n
    x, pos, ok = _refill(x, data, pos, lanes)
    return v, x, pos, ok


@njit(cache=True)
def decode_cdf(data, cdf, prec, lanes, out):
    n = out.shape[0]
    nsym = cdf.shape[1] - 1
    p = np.uint64(prec)
    mask = (_ONE << p) - _ONE
    states = np.empty(lanes, np.uint64)
    pos = _open(data, lanes, states)
    if pos < 0:
        return pos
    lane = 0
    for i in range(n):
        x = states[lane]
        slot = np.int64(x & mask)
        row = cdf[i]
        s = _search(row, nsym, slot)
        c = row[s]
        x = np.uint64(row[s + 1] - c) * (x >> p) + np.uint64(slot - c)
        x, pos, ok = _refill(x, data, pos, lanes)
        if not ok:
            return ERR_TRUNCATED
        states[lane] = x
        out[i] = s
        lane = lane + 1 if lane < lanes - 1 else 0
    return _close(states, lanes, data, pos)


@njit(cache=True)
def decode_indexed(data, indexes, tables, lengths, offsets, prec, lanes, escape, out):
    n = out.shape[0]
    ntab = tables.shape[0]
    p = np.uint64(prec)
    mask = (_ONE << p) - _ONE
    states = np.empty(lanes, np.uint64)
    pos = _open(data, lanes, states)
    if pos < 0:
        return pos
    # coarse slot -> symbol-range lookup (256 buckets per table) so the search takes a step or two
    bshift = prec - _LUT_BITS
    lut = np.empty((ntab, (1 << _LUT_BITS) + 1), np.int32)
    for t in range(ntab):
        nsym = lengths[t] - 1
        for j in range(1 << _LUT_BITS):
            lut[t, j] = _search(tables[t], nsym, np.int64(j) << bshift)
        lut[t, 1 << _LUT_BITS] = nsym - 1
    lane = 0
    for i in range(n):
        t = indexes[i]
        if t < 0 or t >= ntab:
            return ERR_INDEX
        nsym = lengths[t] - 1
        x = states[lane]
        slot = np.int64(x & mask)
        row = tables[t]
        b = slot >> bshift
        lo = np.int64(lut[t, b])
        hi = np.int64(lut[t, b + 1]) + 1
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if row[mid] <= slot:
                lo = mid
            else:
                hi = mid
        s = lo
        c = row[s]
        x = np.uint64(row[s + 1] - c) * (x >> p) + np.uint64(slot - c)
        x, pos, ok = _refill(x, data, pos, lanes)
        if not ok:
            return ERR_TRUNCATED
        v = np.int64(s)
        if escape and s == nsym - 1:
            k, x, pos, ok = _get_bits(x, np.uint64(_ESC_HDR), data, pos, lanes)
            if not ok:
                return ERR_TRUNCATED
            if k > np.uint64(62):
                return ERR_CORRUPT
            w = _ONE
            rem = np.int64(k)
            while rem > 0:
                m = min(_ESC_CHUNK, rem)
                b, x, pos, ok = _get_bits(x, np.uint64(m), data, pos, lanes)
                if not ok:
                    return ERR_TRUNCATED
                w = (w << np.uint64(m)) | b
                rem -= m
            raw = np.int64(w - _ONE)
            v = -((raw + 1) // 2) if raw & 1 else raw // 2 + (nsym - 1)
        states[lane] = x
        out[i] = v + offsets[t]
        lane = lane + 1 if lane < lanes - 1 else 0
    return _close(states, lanes, data, pos)


@njit(cache=True)
def decode_step(data, state, row, nsym, prec):
    """Decode one symbol with CDF row; state = [x, pos, lanes(=1)] as uint64 (mutated). Returns the symbol
    or an error code."""
    p = np.uint64(prec)
    x = state[0]
    pos = np.int64(state[1])
    slot = np.int64(x & ((_ONE << p) - _ONE))
    s = _search(row, nsym, slot)
    c = row[s]
    x = np.uint64(row[s + 1] - c) * (x >> p) + np.uint64(slot - c)
    x, pos, ok = _refill(x, data, pos, 1)
    state[0] = x
    state[1] = np.uint64(pos)
    return s


@njit(cache=True)
def open_step(data, state):
    states = np.empty(1, np.uint64)
    pos = _open(data, 1, states)
    if pos < 0:
        return pos
    state[0] = states[0]
    state[1] = np.uint64(pos)
    return 0


# ---------------------------------------------------------------------------------------------- checks
@njit(cache=True)
def check_tables(tables, lengths, prec, min_len):
    """Returns the first invalid row or -1: each row must hold 0 = cdf[0] <= ... <= cdf[len-1] = 2^prec."""
    top = np.int64(1) << prec
    width = tables.shape[1]
    for t in range(tables.shape[0]):
        m = lengths[t] if lengths.shape[0] > 0 else width
        if m < min_len or m > width:
            return t
        row = tables[t]
        if row[0] != 0 or row[m - 1] != top:
            return t
        for j in range(1, m):
            if row[j] < row[j - 1]:
                return t
    return -1


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
ERR_PMF = -6  # a PMF row is negative, not finite or sums to zero
ERRORS[ERR_PMF] = "pmf rows must be finite, non-negative and have a positive total"


_TWO52 = 4503599627370496.0  # (x + 2^52) - 2^52 rounds 0 <= x < 2^52 half-to-even, like torch.round


@njit(cache=True)
def _rnd(x):
    return np.int64((x + _TWO52) - _TWO52)  # 0 <= x <= 2^24 here


_BLOCK = 8  # running sums go block by block (see cdf._running_sums): short dependency chains


@njit(cache=True)
def _block_sums(p, boff):
    """boff[b] = sum of the blocks before block b, in cdf._running_sums' order (boff[0] = 0, boff[nb] =
    total; C_{8b-1} == boff[b] exactly). Four blocks at a time so their chains overlap. Returns the total."""
    k = p.shape[0]
    full = k // (4 * _BLOCK) * (4 * _BLOCK)
    off = 0.0
    boff[0] = 0.0
    for b0 in range(0, full, 4 * _BLOCK):
        a = 0.0
        b = 0.0
        c = 0.0
        d = 0.0
        for j in range(_BLOCK):
            a += np.float64(p[b0 + j])
            b += np.float64(p[b0 + _BLOCK + j])
            c += np.float64(p[b0 + 2 * _BLOCK + j])
            d += np.float64(p[b0 + 3 * _BLOCK + j])
        i = b0 // _BLOCK
        off += a
        boff[i + 1] = off
        off += b
        boff[i + 2] = off
        off += c
        boff[i + 3] = off
        off += d
        boff[i + 4] = off
    for b0 in range(full, k, _BLOCK):
        acc = 0.0
        for i in range(b0, min(b0 + _BLOCK, k)):
            acc += np.float64(p[i])
        off += acc
        boff[b0 // _BLOCK + 1] = off
    return off


@njit(cache=True)
def _symbol_range(p, s, m, boff):
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
    bad = False
    before = 0
    for i in range(s):
        v = np.float64(p[i])
        before += v < thr
        bad |= v < 0.0
    nt = before
    for i in range(s, k):
        v = np.float64(p[i])
        nt += v < thr
        bad |= v < 0.0
    if bad:
        return np.int64(0), np.int64(-1)
    if nt > m // 4:  # fallback: one reserved slot per symbol
        scale = (m - k) / total
        c = _rnd(a0 * scale) + s
        return c, _rnd(a1 * scale) + s + 1 - c
    scale = (m - nt) / total
    c = _rnd(a0 * scale) + before
    return c, _rnd(a1 * scale) + before + (np.float64(p[s]) < thr) - c


@njit(cache=True)
def encode_categorical(symbols, pmf, prec, lanes, out):
    """encode_cdf(symbols, quantize_pmf(pmf)) without materialising the CDFs: one row at a time."""
    n = symbols.shape[0]
    k = pmf.shape[1]
    m = np.int64(1) << prec
    p = np.uint64(prec)
    boff = np.empty((k + _BLOCK - 1) // _BLOCK + 1, np.float64)
    states = _init_states(lanes)
    pos = out.shape[0]
    lane = (n - 1) % lanes
    for i in range(n - 1, -1, -1):
        if pos < 4:
            return ERR_OVERFLOW
        s = symbols[i]
        if s < 0 or s >= k:
            return ERR_SYMBOL
        c, f = _symbol_range(pmf[i], s, m, boff)
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
        thr = total * (2.0 / m)
        nt = 0
        bad = False
        for b in range(nb):
            bcnt[b] = nt
            for j in range(b * _BLOCK, min(b * _BLOCK + _BLOCK, k)):
                v = np.float64(row[j])
                nt += v < thr
                bad |= v < 0.0
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
            v = np.float64(row[j])
            acc += v
            cnt += v < thr
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
