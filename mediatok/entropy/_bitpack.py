"""numba kernels for RawIndices: fixed-width little-endian bit packing of indices (1..31 bits each)."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def pack(values, width, out):
    """Write each value's low `width` bits, least significant first; returns -1 if a value needs more."""
    acc = np.uint64(0)
    nbits = 0
    pos = 0
    limit = np.int64(1) << width
    for i in range(values.shape[0]):
        v = values[i]
        if v < 0 or v >= limit:
            return -1
        acc |= np.uint64(v) << np.uint64(nbits)
        nbits += width
        while nbits >= 8:
            out[pos] = np.uint8(acc & np.uint64(255))
            acc >>= np.uint64(8)
            nbits -= 8
            pos += 1
    if nbits > 0:
        out[pos] = np.uint8(acc)
    return 0


@njit(cache=True)
def unpack(data, width, k, out):
    """Inverse of pack into out (its length sets the count). Returns 0, -1 (an index >= k) or -2 (padding
    bits set). The caller has checked len(data) == ceil(len(out) * width / 8)."""
    acc = np.uint64(0)
    nbits = 0
    pos = 0
    mask = (np.uint64(1) << np.uint64(width)) - np.uint64(1)
    for i in range(out.shape[0]):
        while nbits < width:
            acc |= np.uint64(data[pos]) << np.uint64(nbits)
            pos += 1
            nbits += 8
        v = np.int64(acc & mask)
        if v >= k:
            return -1
        out[i] = v
        acc >>= np.uint64(width)
        nbits -= width
    return -2 if acc != np.uint64(0) else 0
