"""rANS coder over integer CDFs: per-symbol CDFs, indexed tables (CompressAI semantics), a step API.

Arrays come in as numpy arrays or CPU torch tensors and reach the numba kernels without copies when
they already have the kernel dtypes (symbols int64, CDFs/indexes/lengths/offsets int32, contiguous).
Decoders return the kind they were given CDFs in: torch in -> LongTensor out, numpy in -> int64 array.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mediatok.entropy import _kernels as K
from mediatok.entropy import _models as M
from mediatok.errors import BitstreamError

DEFAULT_PRECISION = 16
MAX_LANES = 32


def _check_precision(precision: int) -> int:
    if not isinstance(precision, (int, np.integer)) or not 12 <= int(precision) <= 24:
        raise ValueError(f"precision must be an int in [12, 24] bits, got {precision!r}")
    return int(precision)


def _check_lanes(lanes: int) -> int:
    if not isinstance(lanes, (int, np.integer)) or not 1 <= int(lanes) <= MAX_LANES:
        raise ValueError(f"lanes must be an int in [1, {MAX_LANES}], got {lanes!r}")
    return int(lanes)


def as_array(x: Any, dtype: type, name: str, ndim: int | None = None) -> np.ndarray:
    """A contiguous numpy view (a copy only when dtype/layout/device differ) of a tensor, array or list."""
    if isinstance(x, torch.Tensor):
        if x.is_floating_point() or x.is_complex():
            raise ValueError(f"{name} must hold integers, got a {x.dtype} tensor")
        x = x.detach().to("cpu", torch.int64 if dtype is np.int64 else torch.int32).contiguous().numpy()
    else:
        x = np.asarray(x)
        if x.dtype.kind not in "iub" and x.size:
            raise ValueError(f"{name} must hold integers, got dtype {x.dtype}")
        x = np.ascontiguousarray(x, dtype=dtype)
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    return x


def _as_data(data: Any) -> np.ndarray:
    if not isinstance(data, bytes):
        if not isinstance(data, (bytearray, memoryview)):
            raise BitstreamError(f"expected a bytes-like bitstream, got {type(data).__name__}")
        data = bytes(data)
    return np.frombuffer(data, np.uint8)


def _run_encoder(kernel, n: int, args: tuple, worst_words: int) -> bytes:
    for cap in (n + 24 + 2 * MAX_LANES, worst_words):
        out = np.empty(cap, np.uint32)
        start = kernel(*args, out)
        if start != K.ERR_OVERFLOW:
            break
    if start < 0:
        raise ValueError(K.ERRORS.get(start, f"encoder error {start}"))
    return out.view(np.uint8)[start:].tobytes()


def _decode_status(status: int) -> None:
    if status == K.ERR_INDEX:
        raise ValueError(K.ERRORS[status])
    if status < 0:
        raise BitstreamError(K.ERRORS.get(status, f"decoder error {status}"))


def _like(out: np.ndarray, ref: Any) -> Any:
    return torch.from_numpy(out) if isinstance(ref, torch.Tensor) else out


def check_cdf(cdf: np.ndarray, precision: int, lengths: np.ndarray | None = None, name: str = "cdf") -> None:
    """Raise ValueError unless every row is an integer CDF: starts at 0, non-decreasing, ends at 2^precision."""
    rows = cdf.reshape(-1, cdf.shape[-1]) if cdf.ndim != 2 else cdf
    lens = np.empty(0, np.int32) if lengths is None else lengths
    bad = K.check_tables(rows, lens, precision, 2)
    if bad >= 0:
        raise ValueError(
            f"{name} row {bad} is not an integer CDF (need cdf[0] = 0, non-decreasing, last = 2^{precision}"
            f"{', a length in [2, width]' if lengths is not None else ''}); build it with quantize_pmf")


# ------------------------------------------------------------------------------------------ per-symbol CDFs
def encode_cdf(symbols: Any, cdf: Any, precision: int = DEFAULT_PRECISION, *, lanes: int = 1) -> bytes:
    """Encode symbols[N] where symbol i uses its own integer CDF row cdf[N, L+1] (or one shared cdf[L+1])."""
    precision, lanes = _check_precision(precision), _check_lanes(lanes)
    sym = as_array(symbols, np.int64, "symbols").reshape(-1)
    table = as_array(cdf, np.int32, "cdf")
    if table.ndim == 1:
        return encode_indexed(sym, np.zeros(sym.shape[0], np.int32), table[None],
                              np.array([table.shape[0]], np.int32), np.zeros(1, np.int32),
                              precision, lanes=lanes, escape=False)
    if table.ndim != 2 or table.shape[0] != sym.shape[0]:
        raise ValueError(f"cdf must be (N, L+1) with N = {sym.shape[0]} symbols, got shape {table.shape}")
    check_cdf(table, precision)
    return _run_encoder(K.encode_cdf, sym.shape[0], (sym, table, precision, lanes), sym.shape[0] + 24 + 2 * lanes)


def decode_cdf(data: bytes, cdf: Any, precision: int = DEFAULT_PRECISION, *, lanes: int = 1,
               n: int | None = None) -> Any:
    """Inverse of encode_cdf: N symbols from cdf[N, L+1] (or n symbols from one shared cdf[L+1])."""
    precision, lanes = _check_precision(precision), _check_lanes(lanes)
    table = as_array(cdf, np.int32, "cdf")
    if table.ndim == 1:
        if n is None:
            raise ValueError("decode_cdf with one shared cdf[L+1] needs n, the number of symbols")
        out = decode_indexed(data, np.zeros(int(n), np.int32), table[None], np.array([table.shape[0]], np.int32),
                             np.zeros(1, np.int32), precision, lanes=lanes, escape=False)
        return _like(out, cdf)
    if table.ndim != 2:
        raise ValueError(f"cdf must be (N, L+1) or (L+1,), got shape {table.shape}")
    check_cdf(table, precision)
    buf = _as_data(data)
    out = np.empty(table.shape[0], np.int64)
    _decode_status(K.decode_cdf(buf, table, precision, lanes, out))
    return _like(out, cdf)


def _as_pmf(pmf: Any, n: int | None) -> np.ndarray:
    if isinstance(pmf, torch.Tensor):
        if not pmf.is_floating_point():
            raise ValueError(f"pmf must be a float tensor (N, K), got {pmf.dtype}")
        pmf = pmf.detach().to("cpu")
        pmf = (pmf if pmf.dtype in (torch.float32, torch.float64) else pmf.float()).contiguous().numpy()
    else:
        pmf = np.asarray(pmf)
        if pmf.dtype.kind != "f":
            raise ValueError(f"pmf must hold floats, got dtype {pmf.dtype}")
        pmf = np.ascontiguousarray(pmf, pmf.dtype if pmf.dtype in (np.float32, np.float64) else np.float32)
    if pmf.ndim != 2 or pmf.shape[1] < 1 or (n is not None and pmf.shape[0] != n):
        raise ValueError(f"pmf must be (N{'' if n is None else f' = {n}'}, K), got shape {pmf.shape}")
    return pmf


def encode_categorical(symbols: Any, pmf: Any, precision: int = DEFAULT_PRECISION, *, lanes: int = 1) -> bytes:
    """Encode symbols[N] with per-symbol float PMFs pmf[N, K]: the same bytes as
    encode_cdf(symbols, quantize_pmf(pmf, precision)), fused so no (N, K+1) CDF is ever built."""
    precision, lanes = _check_precision(precision), _check_lanes(lanes)
    sym = as_array(symbols, np.int64, "symbols").reshape(-1)
    p = _as_pmf(pmf, sym.shape[0])
    if p.shape[1] > 1 << precision:
        raise ValueError(f"a {precision}-bit CDF holds at most {1 << precision} symbols, got K = {p.shape[1]}")
    return _run_encoder(M.encode_categorical, sym.shape[0], (sym, p, precision, lanes), sym.shape[0] + 24 + 2 * lanes)


def decode_categorical(data: bytes, pmf: Any, precision: int = DEFAULT_PRECISION, *, lanes: int = 1) -> Any:
    """Inverse of encode_categorical (and of encode_cdf with quantize_pmf(pmf)): N symbols."""
    precision, lanes = _check_precision(precision), _check_lanes(lanes)
    p = _as_pmf(pmf, None)
    if p.shape[1] > 1 << precision:
        raise ValueError(f"a {precision}-bit CDF holds at most {1 << precision} symbols, got K = {p.shape[1]}")
    out = np.empty(p.shape[0], np.int64)
    status = M.decode_categorical(_as_data(data), p, precision, lanes, out)
    if status == K.ERR_PMF:
        raise ValueError(K.ERRORS[status])
    _decode_status(status)
    return _like(out, pmf)


# ------------------------------------------------------------------------------------------ indexed tables
def _indexed_args(indexes, cdf_tables, cdf_lengths, offsets, precision, n):
    idx = as_array(indexes, np.int32, "indexes").reshape(-1)
    if idx.shape[0] != n:
        raise ValueError(f"indexes must have one entry per symbol ({n}), got {idx.shape[0]}")
    tables = as_array(cdf_tables, np.int32, "cdf_tables", ndim=2)
    lengths = as_array(cdf_lengths, np.int32, "cdf_lengths").reshape(-1)
    offs = as_array(offsets, np.int32, "offsets").reshape(-1)
    if not lengths.shape[0] == offs.shape[0] == tables.shape[0]:
        raise ValueError(f"cdf_tables {tables.shape}, cdf_lengths {lengths.shape} and offsets {offs.shape} "
                         "must agree on the number of tables")
    check_cdf(tables, precision, lengths, "cdf_tables")
    return idx, tables, lengths, offs


def encode_indexed(symbols: Any, indexes: Any, cdf_tables: Any, cdf_lengths: Any, offsets: Any,
                   precision: int = DEFAULT_PRECISION, *, lanes: int = 1, escape: bool = True) -> bytes:
    """Encode symbols[N], symbol i with table indexes[i] (CompressAI semantics: value = symbol - offset;
    with escape, the last table symbol escapes values outside the table into bypass bits)."""
    precision, lanes = _check_precision(precision), _check_lanes(lanes)
    sym = as_array(symbols, np.int64, "symbols").reshape(-1)
    args = _indexed_args(indexes, cdf_tables, cdf_lengths, offsets, precision, sym.shape[0])
    return _run_encoder(K.encode_indexed, sym.shape[0], (sym, *args, precision, lanes, bool(escape)),
                        6 * sym.shape[0] + 24 + 2 * lanes)


def decode_indexed(data: bytes, indexes: Any, cdf_tables: Any, cdf_lengths: Any, offsets: Any,
                   precision: int = DEFAULT_PRECISION, *, lanes: int = 1, escape: bool = True) -> Any:
    """Inverse of encode_indexed; returns one int64 symbol per entry of indexes (tensor in -> tensor out)."""
    precision, lanes = _check_precision(precision), _check_lanes(lanes)
    n = int(np.prod(np.shape(indexes)))
    idx, tables, lengths, offs = _indexed_args(indexes, cdf_tables, cdf_lengths, offsets, precision, n)
    out = np.empty(n, np.int64)
    _decode_status(K.decode_indexed(_as_data(data), idx, tables, lengths, offs, precision, lanes, bool(escape), out))
    return _like(out, indexes)


# ------------------------------------------------------------------------------------------ step API
class RangeEncoder:
    """Step encoder for autoregressive priors: feed (symbol, cdf_row) in decoding order, then finish().

    rANS encodes back to front, so rows are buffered; the stream is identical to encode_cdf(lanes=1).
    """

    def __init__(self, precision: int = DEFAULT_PRECISION) -> None:
        self.precision = _check_precision(precision)
        self._starts: list[int] = []
        self._freqs: list[int] = []

    def encode_next(self, symbol: int, cdf_row: Any) -> None:
        """Queue one symbol with its CDF row (L+1,)."""
        row = as_array(cdf_row, np.int32, "cdf_row", ndim=1)
        check_cdf(row[None], self.precision, name="cdf_row")
        s = int(symbol)
        if not 0 <= s < row.shape[0] - 1 or row[s + 1] <= row[s]:
            raise ValueError(f"symbol {s} is outside the row's {row.shape[0] - 1} symbols or has zero frequency")
        self._starts.append(int(row[s]))
        self._freqs.append(int(row[s + 1] - row[s]))

    def finish(self) -> bytes:
        """The bitstream of every queued symbol."""
        starts = np.array(self._starts, np.int64)
        freqs = np.array(self._freqs, np.int64)
        return _run_encoder(K.encode_cf, starts.shape[0], (starts, freqs, self.precision, 1), starts.shape[0] + 24)


class RangeDecoder:
    """Step decoder: decode_next(cdf_row) returns the next symbol; finish() checks the stream's end."""

    def __init__(self, data: bytes, precision: int = DEFAULT_PRECISION) -> None:
        self.precision = _check_precision(precision)
        self._data = _as_data(data)
        self._state = np.zeros(2, np.uint64)
        _decode_status(K.open_step(self._data, self._state))

    def decode_next(self, cdf_row: Any) -> int:
        """Decode one symbol with integer CDF row (L+1,)."""
        row = as_array(cdf_row, np.int32, "cdf_row", ndim=1)
        check_cdf(row[None], self.precision, name="cdf_row")
        return int(K.decode_step(self._data, self._state, row, row.shape[0] - 1, self.precision))

    def finish(self) -> None:
        """Raise BitstreamError unless the stream was consumed exactly (catches truncation and corruption)."""
        if int(self._state[0]) != 0 or int(self._state[1]) != self._data.shape[0]:
            raise BitstreamError(K.ERRORS[K.ERR_CORRUPT])
