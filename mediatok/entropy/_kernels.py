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
ERR_PMF = -6  # a PMF row is negative, not finite or sums to zero

ERRORS = {
    ERR_OVERFLOW: "output buffer overflow",
    ERR_SYMBOL: "symbol outside its table or with zero frequency",
    ERR_TRUNCATED: "bitstream is truncated: it ended before all symbols were decoded",
    ERR_CORRUPT: "bitstream is corrupted: the decoder's final state or length does not match",
    ERR_INDEX: "table index out of range",
    ERR_PMF: "pmf rows must be finite, non-negative and have a positive total",
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
def _bisect(row, lo, hi, slot):
    """Largest s in [lo, hi) with row[s] <= slot, given row[lo] <= slot < row[hi]."""
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if row[mid] <= slot:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True)
def _search(row, nsym, slot):
    """Largest s < nsym with row[s] <= slot (row is a validated CDF: row[0] = 0 <= slot < row[nsym])."""
    return _bisect(row, np.int64(0), np.int64(nsym), slot)


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
def slot_lut(tables, lengths, prec):
    """Coarse slot -> symbol-range lookup, 256 buckets per table, so a decode search takes a step or two."""
    ntab = tables.shape[0]
    bshift = prec - _LUT_BITS
    lut = np.empty((ntab, (1 << _LUT_BITS) + 1), np.int32)
    for t in range(ntab):
        nsym = lengths[t] - 1
        for j in range(1 << _LUT_BITS):
            lut[t, j] = _search(tables[t], nsym, np.int64(j) << bshift)
        lut[t, 1 << _LUT_BITS] = nsym - 1
    return lut


@njit(cache=True)
def _lut_search(row, lut_row, slot, bshift):
    """The symbol whose slot range holds slot: the lookup narrows the search to a step or two."""
    b = slot >> bshift
    return _bisect(row, np.int64(lut_row[b]), np.int64(lut_row[b + 1]) + 1, slot)


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
    bshift = prec - _LUT_BITS
    lut = slot_lut(tables, lengths, prec)
    lane = 0
    for i in range(n):
        t = indexes[i]
        if t < 0 or t >= ntab:
            return ERR_INDEX
        nsym = lengths[t] - 1
        x = states[lane]
        slot = np.int64(x & mask)
        row = tables[t]
        s = _lut_search(row, lut[t], slot, bshift)
        c = row[s]
        x = np.uint64(row[s + 1] - c) * (x >> p) + np.uint64(slot - c)
        x, pos, ok = _refill(x, data, pos, lanes)
        if not ok:
            return ERR_TRUNCATED
        v = np.int64(s)
        if escape and s == nsym - 1:
            v, x, pos, status = _read_escape(x, data, pos, lanes, nsym)
            if status < 0:
                return status
        states[lane] = x
        out[i] = v + offsets[t]
        lane = lane + 1 if lane < lanes - 1 else 0
    return _close(states, lanes, data, pos)


@njit(cache=True)
def _pop_one_lane(x, row, lut_row, p, mask, bshift, data, pos):
    """Decode one symbol of CDF row (with its slot lookup) from one-lane state x; returns (symbol, x, pos, ok)."""
    slot = np.int64(x & mask)
    s = _lut_search(row, lut_row, slot, bshift)
    c = row[s]
    x = np.uint64(row[s + 1] - c) * (x >> p) + np.uint64(slot - c)
    x, pos, ok = _refill(x, data, pos, 1)
    return s, x, pos, ok


@njit(cache=True)
def decode_markov(data, rows, tables, lengths, lut, prec, out):
    """Frame-by-frame decode of out (T, Q): symbol (t, q) uses table rows[q, out[t-1, q]], and at t = 0
    rows[q, sizes[q]] (the start context), where sizes[q] = lengths[rows[q, 0]] - 1. One lane. The caller
    has validated rows (every entry a valid table of codebook q's size) and built lut = slot_lut(...)
    once (it costs more than decoding a short clip)."""
    nframes, q = out.shape
    p = np.uint64(prec)
    mask = (_ONE << p) - _ONE
    states = np.empty(1, np.uint64)
    pos = _open(data, 1, states)
    if pos < 0:
        return pos
    bshift = prec - _LUT_BITS
    prev = np.empty(q, np.int64)
    for j in range(q):
        prev[j] = lengths[rows[j, 0]] - 1  # the start context
    x = states[0]
    for i in range(nframes):
        for j in range(q):
            t = rows[j, prev[j]]
            lo, x, pos, ok = _pop_one_lane(x, tables[t], lut[t], p, mask, bshift, data, pos)
            if not ok:
                return ERR_TRUNCATED
            out[i, j] = lo
            prev[j] = lo
    states[0] = x
    return _close(states, 1, data, pos)


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


# ------------------------------------------------------------------------------------ neighbour contexts
_MAG_CAP = 1 << 20  # neighbour magnitudes are capped before summing, so hostile escapes cannot overflow


@njit(cache=True)
def _mag(v):
    a = -v if v < 0 else v
    return a if a < _MAG_CAP else _MAG_CAP


@njit(cache=True)
def _activity_class(act, nctx):
    """Half-octave class of an activity, capped at nctx - 1: 0 -> 0, 1 -> 1, then 2b - 2 + (the bit below the top
    one) for a b-bit activity (2 -> 2, 3 -> 3, 4-5 -> 4, 6-7 -> 5, 8-11 -> 6, ...). Half octaves gave 1-2 % fewer
    bits than whole ones on image-wavelet latents; the extra neighbours of the activity, 4-5 % more."""
    if act < 2:
        return act if act < nctx else nctx - 1
    b = 0
    a = act
    while a > 0:
        a >>= 1
        b += 1
    cls = 2 * b - 2 + ((act >> (b - 2)) & 1)
    return cls if cls < nctx - 1 else nctx - 1


@njit(cache=True)
def neighbour_context(s, c, i, j, nctx):
    """Context class in [0, nctx) of symbol (c, i, j) of s (C, H, W), from symbols coded before it (channel by
    channel, raster order inside a channel): the activity 2 (|left| + |top| + |same place, previous channel|) +
    |top-left| + |top-right| + |two to the left| + |two above| + |same place, the two channels before that|,
    in half-octave classes (`_activity_class`), the last class open-ended."""
    act = np.int64(0)
    if j > 0:
        act += 2 * _mag(s[c, i, j - 1])
        if j > 1:
            act += _mag(s[c, i, j - 2])
    if i > 0:
        act += 2 * _mag(s[c, i - 1, j])
        if j > 0:
            act += _mag(s[c, i - 1, j - 1])
        if j + 1 < s.shape[2]:
            act += _mag(s[c, i - 1, j + 1])
        if i > 1:
            act += _mag(s[c, i - 2, j])
    if c > 0:
        act += 2 * _mag(s[c - 1, i, j])
        if c > 1:
            act += _mag(s[c - 2, i, j])
            if c > 2:
                act += _mag(s[c - 3, i, j])
    return _activity_class(act, nctx)


@njit(cache=True)
def context_indexes(s, nctx, out):
    """Table index c * nctx + neighbour_context(s, c, i, j, nctx) of every symbol of s (C, H, W), in coding order,
    into out (C * H * W,): the encoder's pass, over flat offsets into the capped magnitudes (about 1.5x faster
    than calling neighbour_context per symbol; tests check that the two agree)."""
    h, w = s.shape[1], s.shape[2]
    flat = s.reshape(-1)
    mag = np.empty(flat.shape[0], np.int64)
    for k in range(flat.shape[0]):
        mag[k] = _mag(flat[k])
    plane = h * w
    for c in range(s.shape[0]):
        for i in range(h):
            for j in range(w):
                k = c * plane + i * w + j
                act = np.int64(0)
                if j > 0:
                    act += 2 * mag[k - 1]
                    if j > 1:
                        act += mag[k - 2]
                if i > 0:
                    act += 2 * mag[k - w]
                    if j > 0:
                        act += mag[k - w - 1]
                    if j + 1 < w:
                        act += mag[k - w + 1]
                    if i > 1:
                        act += mag[k - 2 * w]
                if c > 0:
                    act += 2 * mag[k - plane]
                    if c > 1:
                        act += mag[k - 2 * plane]
                        if c > 2:
                            act += mag[k - 3 * plane]
                out[k] = c * nctx + _activity_class(act, nctx)


# Spatial prediction of smooth channels. A channel of low frequencies is a thumbnail of the image: its values
# follow their neighbours, and coding them raw cost 4-5 bits a value where the residual costs about 2.
_PRED_CAP = np.int64(1) << np.int64(50)  # a restored value saturates here: hostile escapes cannot wrap int64


@njit(cache=True)
def _med(s, c, i, j):
    """JPEG-LS's median edge detector: s[c, i, j] predicted from its left (a), top (b) and top-left (d) values,
    the left one on the first row, the top one in the first column, 0 at the corner. The prediction always lies
    between a and b, so restoring cannot grow values faster than the residuals add up."""
    if i == 0:
        return s[c, 0, j - 1] if j > 0 else np.int64(0)
    if j == 0:
        return s[c, i - 1, 0]
    a, b, d = s[c, i, j - 1], s[c, i - 1, j], s[c, i - 1, j - 1]
    lo, hi = min(a, b), max(a, b)
    if d >= hi:
        return lo
    if d <= lo:
        return hi
    return a + b - d


@njit(cache=True)
def predict_residuals(s, predicted, out):
    """out (C, H, W) = s minus its _med prediction in the channels where predicted[c], s itself elsewhere."""
    for c in range(s.shape[0]):
        for i in range(s.shape[1]):
            for j in range(s.shape[2]):
                out[c, i, j] = s[c, i, j] - _med(s, c, i, j) if predicted[c] else s[c, i, j]


@njit(cache=True)
def restore_predicted(t, predicted):
    """Inverse of predict_residuals, in place, in raster order (each prediction reads values already restored)."""
    for c in range(t.shape[0]):
        if not predicted[c]:
            continue
        for i in range(t.shape[1]):
            for j in range(t.shape[2]):
                v = t[c, i, j] + _med(t, c, i, j)
                t[c, i, j] = min(max(v, -_PRED_CAP), _PRED_CAP)


@njit(cache=True)
def _read_escape(x, data, pos, lanes, nsym):
    """After an escape symbol: the out-of-range value from its bypass bits. Returns (value, x, pos, status)."""
    k, x, pos, ok = _get_bits(x, np.uint64(_ESC_HDR), data, pos, lanes)
    if not ok:
        return np.int64(0), x, pos, ERR_TRUNCATED
    if k > np.uint64(62):
        return np.int64(0), x, pos, ERR_CORRUPT
    w = _ONE
    rem = np.int64(k)
    while rem > 0:
        m = min(_ESC_CHUNK, rem)
        b, x, pos, ok = _get_bits(x, np.uint64(m), data, pos, lanes)
        if not ok:
            return np.int64(0), x, pos, ERR_TRUNCATED
        w = (w << np.uint64(m)) | b
        rem -= m
    raw = np.int64(w - _ONE)
    v = -((raw + 1) // 2) if raw & 1 else raw // 2 + (nsym - 1)
    return v, x, pos, 0


@njit(cache=True)
def decode_context(data, tables, lengths, offsets, lut, prec, nctx, out):
    """Inverse of encode_indexed(s, context_indexes(s)) with escapes, one lane: fills out (C, H, W) in coding
    order, each symbol's table chosen from the symbols decoded before it. The caller has validated the tables
    (C * nctx of them) and built lut = slot_lut(...)."""
    p = np.uint64(prec)
    mask = (_ONE << p) - _ONE
    states = np.empty(1, np.uint64)
    pos = _open(data, 1, states)
    if pos < 0:
        return pos
    bshift = prec - _LUT_BITS
    x = states[0]
    for c in range(out.shape[0]):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                t = c * nctx + neighbour_context(out, c, i, j, nctx)
                nsym = lengths[t] - 1
                s, x, pos, ok = _pop_one_lane(x, tables[t], lut[t], p, mask, bshift, data, pos)
                if not ok:
                    return ERR_TRUNCATED
                v = np.int64(s)
                if s == nsym - 1:
                    v, x, pos, status = _read_escape(x, data, pos, 1, nsym)
                    if status < 0:
                        return status
                out[c, i, j] = v + offsets[t]
    states[0] = x
    return _close(states, 1, data, pos)


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
