"""Priors for VQ token indices: static per-codebook tables, an adaptive-count model, context priors.

    FrequencyPrior   fit once on training indices, saved with the model (integer tables -> bit-exact)
    MarkovPrior      like FrequencyPrior, but each symbol's table depends on the previous frame's symbol
                     of its codebook (through fitted context classes): ~20 % fewer bits on speech tokens
    AdaptivePrior    no side information: counts start uniform and adapt as symbols are coded
    ContextPrior     protocol for learned/autoregressive priors: next-symbol CDF row from the history
"""
from __future__ import annotations

import math
from typing import Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from mediatok.entropy import _kernels as K
from mediatok.entropy import _models as M
from mediatok.entropy._checks import check_keys, flat_grid, grid_frames, state_int
from mediatok.entropy._context_fit import class_counts, kl_kmeans, pair_counts
from mediatok.entropy.cdf import quantize_pmf
from mediatok.entropy.coder import (DEFAULT_PRECISION, RangeDecoder, RangeEncoder, _as_data, _check_precision,
                                    _decode_status, _run_encoder, as_array, decode_indexed, encode_indexed)
from mediatok.errors import BitstreamError


MAX_FRAMES = 1 << 26  # about 10 days at 75 frames/s: a decoder never allocates for more


class FrequencyPrior:
    """Per-codebook static frequency tables for indices (Q, *S): codebook q codes with its own integer CDF.

    prior = FrequencyPrior.fit(train_indices, codebook_sizes=1024)   # (Q, N) LongTensor
    blob = prior.encode(indices)                                       # (Q, *S) -> bytes
    prior.decode(blob, (Q, *S))                                        # -> (Q, *S) LongTensor (or an int T)
    state = prior.state_dict()   # {"cdf": int32 (Q, Kmax+1), "sizes": int32 (Q,), "precision": int32 ()}
    FrequencyPrior.from_state_dict(state)   # store `state` in the codec's safetensors under a prefix

    Tables are integers fixed at fit time, so encoder and decoder agree on every machine. Symbols are
    coded frame by frame (t-major: all Q codebooks of frame 0, then frame 1, ...); a grid S = (h, w) or
    (d, h, w) is flattened into frames in raster order, so (Q, T) bytes are what they always were.
    Unseen codes keep a small probability (counts + `smoothing`, and every code >= 1/2^precision).
    """

    kind = "frequency"

    def __init__(self, cdf: Tensor, sizes: Tensor, precision: int = DEFAULT_PRECISION) -> None:
        self.precision = _check_precision(int(precision))
        self.cdf = torch.as_tensor(cdf).to(torch.int32).contiguous()  # (Q, Kmax+1)
        self.sizes = torch.as_tensor(sizes).to(torch.int32).reshape(-1)  # (Q,)
        if self.cdf.ndim != 2 or self.cdf.shape[0] != self.sizes.shape[0]:
            raise ValueError(f"cdf must be (Q, Kmax+1) and sizes (Q,), got {tuple(self.cdf.shape)} and "
                             f"{tuple(self.sizes.shape)}")
        self._lengths = (self.sizes + 1).numpy()
        self._offsets = np.zeros(self.sizes.shape[0], np.int32)
        if self.sizes.numel() == 0 or int(self.sizes.min()) < 1 or int(self.sizes.max()) + 1 > self.cdf.shape[1]:
            raise ValueError(f"FrequencyPrior 'sizes' {self.sizes.tolist()} do not fit 'cdf' tables of width "
                             f"{self.cdf.shape[1]}")
        bad = K.check_tables(self.cdf.numpy(), self._lengths, self.precision, 2)
        if bad >= 0:
            raise ValueError(f"FrequencyPrior 'cdf' table {bad} is not a valid {self.precision}-bit CDF")
        top = (self.cdf[:, 1:] - self.cdf[:, :-1]).max(-1).values.double()  # (Q,) largest frequency
        self._min_frame_bits = float((self.precision - top.log2()).sum())

    @property
    def num_codebooks(self) -> int:
        return int(self.sizes.shape[0])

    @classmethod
    def fit(cls, indices: Tensor, codebook_sizes: int | Sequence[int], precision: int = DEFAULT_PRECISION,
            smoothing: float = 0.5) -> FrequencyPrior:
        """Fit tables on indices (Q, N) or (B, Q, T) with codebook_sizes (one int for all, or one per q)."""
        idx = torch.as_tensor(indices)
        if idx.ndim == 3:
            idx = idx.transpose(0, 1).reshape(idx.shape[1], -1)  # (Q, B*T)
        if idx.ndim != 2 or idx.is_floating_point():
            raise ValueError(f"indices must be integer (Q, N) or (B, Q, T), got {idx.dtype} {tuple(idx.shape)}")
        q = idx.shape[0]
        sizes = [int(codebook_sizes)] * q if isinstance(codebook_sizes, int) else [int(s) for s in codebook_sizes]
        if len(sizes) != q or min(sizes) < 1:
            raise ValueError(f"codebook_sizes must be a positive int or {q} positive ints, got {codebook_sizes!r}")
        kmax = max(sizes)
        if idx.numel() and (idx.min() < 0 or (idx >= torch.tensor(sizes)[:, None]).any()):
            raise ValueError("indices must lie in [0, codebook_size) for their codebook")
        offsets = torch.arange(q)[:, None] * kmax  # (Q, 1) one bincount for every codebook at once
        counts = torch.bincount((idx.long() + offsets).reshape(-1), minlength=q * kmax).reshape(q, kmax)
        pmf = counts.double() + smoothing  # (Q, Kmax)
        cdf = quantize_pmf(pmf, precision, lengths=torch.tensor(sizes))  # (Q, Kmax+1)
        return cls(cdf, torch.tensor(sizes, dtype=torch.int32), precision)

    def _check_indices(self, indices: Tensor) -> np.ndarray:
        """(Q, *S) -> (Q, N) int64 array in raster order."""
        return as_array(flat_grid(indices, self.num_codebooks)[0], np.int64, "indices")

    def _table_index(self, frames: int) -> np.ndarray:
        return np.tile(np.arange(self.num_codebooks, dtype=np.int32), frames)  # (T*Q,) t-major

    def encode(self, indices: Tensor) -> bytes:
        """Entropy-code indices (Q, *S) into bytes (no header: store the shape in the container)."""
        idx = self._check_indices(indices)
        sym = np.ascontiguousarray(idx.T).reshape(-1)  # (T*Q,) frame by frame
        return encode_indexed(sym, self._table_index(idx.shape[1]), self.cdf.numpy(), self._lengths,
                              self._offsets, self.precision, escape=False)

    def max_frames(self, num_bytes: int) -> int:
        """Most frames a valid stream of num_bytes can hold: every frame costs at least the sum over
        codebooks of -log2(largest probability) bits. Bounds allocations by untrusted frame counts."""
        min_bits = self._min_frame_bits
        if min_bits <= 0:  # every codebook has a single code: frames are free
            return MAX_FRAMES
        return min(MAX_FRAMES, int((8 * num_bytes + 2 * self.precision + 64) / min_bits) + 1)

    def decode(self, data: bytes, shape: int | tuple[int, ...]) -> Tensor:
        """Inverse of encode: LongTensor of shape (Q, *S) (an int T means (Q, T)). BitstreamError, before
        any allocation, if shape has another Q or more frames than data can hold."""
        t, full = grid_frames(shape, self.num_codebooks, "FrequencyPrior.decode")
        limit = self.max_frames(len(data))
        if t > limit:
            raise BitstreamError(f"{len(data)} bytes cannot hold {t} frames of {self.num_codebooks} codebooks "
                                 f"(at most {limit}): the frame count or the stream is corrupt")
        out = decode_indexed(data, self._table_index(t), self.cdf.numpy(), self._lengths, self._offsets,
                             self.precision, escape=False)
        return torch.from_numpy(out.reshape(t, self.num_codebooks).T.copy()).reshape(full)  # (Q, *S)

    def bits(self, indices: Tensor) -> float:
        """Ideal information content of indices (Q, *S) under the integer tables, in bits."""
        idx = torch.from_numpy(self._check_indices(indices))
        freq = (self.cdf[:, 1:] - self.cdf[:, :-1]).double()  # (Q, Kmax)
        return float(-(torch.gather(freq, 1, idx).log2() - self.precision).sum())

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors only, safe for safetensors."""
        return {"cdf": self.cdf.clone(), "sizes": self.sizes.clone(),
                "precision": torch.tensor(self.precision, dtype=torch.int32)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> FrequencyPrior:
        """Rebuild from state_dict() output, which may be untrusted: ValueError naming the bad key."""
        owner = "FrequencyPrior"
        check_keys(state, {"cdf", "sizes", "precision"}, owner)
        precision = int(state_int(state, "precision", 0, owner))
        return cls(state_int(state, "cdf", 2, owner), state_int(state, "sizes", 1, owner), precision)

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """In-place load, like nn.Module."""
        other = FrequencyPrior.from_state_dict(state)
        self.__dict__.update(other.__dict__)


class MarkovPrior:
    """First-order context prior for indices (Q, *S): symbol (q, t) is coded with the table of the context
    class of the previous frame's symbol in codebook q (a start context at t = 0). Grids are flattened
    into frames in raster order, so the context of a pixel is its left neighbour (or the end of the row
    above).

    prior = MarkovPrior.fit([clip_indices, ...], codebook_sizes=1024, num_classes=64)  # each (Q, *S_i)
    blob = prior.encode(indices)                          # (Q, *S) -> bytes
    prior.decode(blob, (Q, *S))                           # -> (Q, *S) LongTensor (or an int T: (Q, T))
    state = prior.state_dict()   # {"rows", "cdf", "row_codebook", "sizes", "precision"}: int32 tensors

    Speech codec tokens at 50 frames/s change slowly, so the previous frame predicts the next far better
    than the codebook's overall frequencies do. A full K x K bigram table would be large and over-fitted;
    instead the K + 1 previous symbols (start included) of each codebook are clustered into C classes by
    KL k-means on their next-symbol counts (each context joins the class whose distribution codes its
    counts in the fewest bits), and each class gets one integer table. rows[q, s] is the table of
    previous symbol s (s = sizes[q]: the start context). Tables are integers fixed at fit time, so encoder
    and decoder agree on every machine; decoding runs frame by frame in one numba kernel. Fitting counts
    only the (previous, next) pairs it sees, so memory grows with the tokens, not with K^2.
    """

    kind = "markov"

    def __init__(self, rows: Tensor, cdf: Tensor, row_codebook: Tensor, sizes: Tensor,
                 precision: int = DEFAULT_PRECISION) -> None:
        self.precision = _check_precision(int(precision))
        self.rows = torch.as_tensor(rows).to(torch.int32).contiguous()  # (Q, Kmax+1)
        self.cdf = torch.as_tensor(cdf).to(torch.int32).contiguous()  # (R, Kmax+1)
        self.row_codebook = torch.as_tensor(row_codebook).to(torch.int32).reshape(-1)  # (R,)
        self.sizes = torch.as_tensor(sizes).to(torch.int32).reshape(-1)  # (Q,)
        q, r = self.sizes.shape[0], self.cdf.shape[0]
        if self.cdf.ndim != 2 or self.row_codebook.shape[0] != r or self.rows.shape != (q, self.cdf.shape[1]):
            raise ValueError(f"MarkovPrior expects rows (Q, Kmax+1), cdf (R, Kmax+1), row_codebook (R,), sizes (Q,); "
                             f"got {tuple(self.rows.shape)}, {tuple(self.cdf.shape)}, "
                             f"{tuple(self.row_codebook.shape)}, {tuple(self.sizes.shape)}")
        if q == 0 or int(self.sizes.min()) < 1 or int(self.sizes.max()) + 1 > self.cdf.shape[1]:
            raise ValueError(f"MarkovPrior 'sizes' {self.sizes.tolist()[:8]} do not fit 'cdf' tables of width "
                             f"{self.cdf.shape[1]}")
        if r == 0 or int(self.row_codebook.min()) < 0 or int(self.row_codebook.max()) >= q:
            raise ValueError("MarkovPrior 'row_codebook' must name a codebook for every table")
        if int(self.rows.min()) < 0 or int(self.rows.max()) >= r:
            raise ValueError(f"MarkovPrior 'rows' must index the {r} tables")
        for j in range(q):  # every context of codebook j (start included) must use one of j's own tables
            used = self.rows[j, : int(self.sizes[j]) + 1].long()
            if bool((self.row_codebook[used] != j).any()):
                raise ValueError(f"MarkovPrior 'rows' of codebook {j} point at another codebook's tables")
        self._lengths = (self.sizes[self.row_codebook.long()] + 1).numpy()  # (R,)
        self._offsets = np.zeros(r, np.int32)
        bad = K.check_tables(self.cdf.numpy(), self._lengths, self.precision, 2)
        if bad >= 0:
            raise ValueError(f"MarkovPrior 'cdf' table {bad} is not a valid {self.precision}-bit CDF")
        top = (self.cdf[:, 1:] - self.cdf[:, :-1]).max(-1).values.double()  # (R,) largest frequency per table
        cheapest = self.precision - top.log2()  # (R,) fewest bits any symbol costs in that table
        self._min_frame_bits = float(sum(float(cheapest[self.row_codebook == j].min()) for j in range(q)))
        self._lut: np.ndarray | None = None  # decoder's slot lookup, built on first decode

    @property
    def num_codebooks(self) -> int:
        return int(self.sizes.shape[0])

    @classmethod
    def fit(cls, indices: Tensor | Sequence[Tensor], codebook_sizes: int | Sequence[int],
            num_classes: int | Sequence[int] = 32, precision: int = DEFAULT_PRECISION,
            smoothing: float = 0.1, iterations: int = 20) -> MarkovPrior:
        """Fit on training indices: one (Q, T) clip, a (B, Q, T) batch or a list of (Q, T_i) clips (contexts
        never cross clips). num_classes: context classes per codebook (one int for all, or one per q);
        smoothing: pseudo-count added to every symbol of every class table (unseen codes stay codable)."""
        clips = _as_clips(indices)
        q = clips[0].shape[0]
        sizes = [int(codebook_sizes)] * q if isinstance(codebook_sizes, int) else [int(v) for v in codebook_sizes]
        classes = [int(num_classes)] * q if isinstance(num_classes, int) else [int(v) for v in num_classes]
        if len(sizes) != q or min(sizes) < 1:
            raise ValueError(f"codebook_sizes must be a positive int or {q} positive ints, got {codebook_sizes!r}")
        if len(classes) != q or min(classes) < 1:
            raise ValueError(f"num_classes must be a positive int or {q} positive ints, got {num_classes!r}")
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        for c in clips:
            if c.shape[0] != q:
                raise ValueError(f"every clip must have {q} codebooks, got one with {c.shape[0]}")
            if c.size and (c.min() < 0 or (c >= np.array(sizes)[:, None]).any()):
                raise ValueError("indices must lie in [0, codebook_size) for their codebook")
        kmax = max(sizes)
        rows = np.zeros((q, kmax + 1), np.int32)
        tables, owners = [], []
        for j in range(q):
            k = sizes[j]
            ctx, sym, cnt = pair_counts(clips, j, k)  # sparse (previous symbol or start = k, symbol) counts
            label = kl_kmeans(ctx, sym, cnt, k + 1, k, min(classes[j], k + 1), iterations)  # (k+1,) class per context
            pooled = class_counts(ctx, sym, cnt, label, k)  # (C, k)
            first = len(tables)
            for row in pooled:
                pmf = torch.zeros(kmax, dtype=torch.float64)
                pmf[:k] = torch.from_numpy(row + smoothing)
                tables.append(pmf)
                owners.append(j)
            rows[j, : k + 1] = first + label
            rows[j, k + 1 :] = first  # unused (codebook smaller than Kmax), kept valid
        pmfs = torch.stack(tables)  # (R, Kmax)
        lengths = torch.tensor([sizes[o] for o in owners])
        cdf = quantize_pmf(pmfs, precision, lengths=lengths)
        return cls(torch.from_numpy(rows), cdf, torch.tensor(owners, dtype=torch.int32),
                   torch.tensor(sizes, dtype=torch.int32), precision)

    def _check_indices(self, indices: Tensor) -> np.ndarray:
        """(Q, *S) -> (Q, N) int64 array in raster order, every index inside its codebook."""
        idx = as_array(flat_grid(indices, self.num_codebooks)[0], np.int64, "indices")
        if idx.size and (idx.min() < 0 or (idx >= self.sizes.numpy()[:, None]).any()):
            raise ValueError(f"indices must lie in [0, codebook_size) for their codebook (sizes {self.sizes.tolist()})")
        return idx

    def _tables_for(self, idx: np.ndarray) -> np.ndarray:
        """Table of every symbol of idx (Q, T): rows[q, previous symbol], the start context at t = 0."""
        start = self.sizes.numpy().astype(np.int64)[:, None]  # (Q, 1)
        prev = np.concatenate([start, idx[:, :-1]], axis=1)[:, : idx.shape[1]]  # (Q, T), T = 0 included
        return self.rows.numpy()[np.arange(idx.shape[0])[:, None], prev]  # (Q, T)

    def encode(self, indices: Tensor) -> bytes:
        """Entropy-code indices (Q, *S) into bytes (no header: store the shape in the container)."""
        idx = self._check_indices(indices)
        sym = np.ascontiguousarray(idx.T).reshape(-1)  # (T*Q,) frame by frame
        tab = np.ascontiguousarray(self._tables_for(idx).T).reshape(-1).astype(np.int32)
        return encode_indexed(sym, tab, self.cdf.numpy(), self._lengths, self._offsets, self.precision,
                              escape=False)

    def max_frames(self, num_bytes: int) -> int:
        """Most frames a valid stream of num_bytes can hold (bounds allocations by untrusted frame counts)."""
        if self._min_frame_bits <= 0:
            return MAX_FRAMES
        return min(MAX_FRAMES, int((8 * num_bytes + 2 * self.precision + 64) / self._min_frame_bits) + 1)

    def decode(self, data: bytes, shape: int | tuple[int, ...]) -> Tensor:
        """Inverse of encode: LongTensor of shape (Q, *S) (an int T means (Q, T)). BitstreamError, before
        any allocation, if shape has another Q or more frames than data can hold."""
        t, full = grid_frames(shape, self.num_codebooks, "MarkovPrior.decode")
        stream = _as_data(data)
        limit = self.max_frames(stream.shape[0])
        if t > limit:
            raise BitstreamError(f"{stream.shape[0]} bytes cannot hold {t} frames of {self.num_codebooks} "
                                 f"codebooks (at most {limit}): the frame count or the stream is corrupt")
        out = np.empty((t, self.num_codebooks), np.int64)
        if self._lut is None:
            self._lut = K.slot_lut(self.cdf.numpy(), self._lengths, self.precision)
        _decode_status(K.decode_markov(stream, self.rows.numpy(), self.cdf.numpy(), self._lengths, self._lut,
                                       self.precision, out))
        return torch.from_numpy(np.ascontiguousarray(out.T)).reshape(full)  # (Q, *S)

    def bits(self, indices: Tensor) -> float:
        """Ideal information content of indices (Q, *S) under the integer tables, in bits."""
        return float(self.codebook_bits(indices).sum())

    def codebook_bits(self, indices: Tensor) -> Tensor:
        """Ideal information content of each codebook's indices (Q, *S), in bits: float64 (Q,)."""
        idx = self._check_indices(indices)
        tab = torch.from_numpy(self._tables_for(idx).astype(np.int64))  # (Q, T)
        freq = (self.cdf[:, 1:] - self.cdf[:, :-1]).double()  # (R, Kmax)
        return -(freq[tab, torch.from_numpy(idx)].log2() - self.precision).sum(1)

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors only, safe for safetensors."""
        return {"rows": self.rows.clone(), "cdf": self.cdf.clone(), "row_codebook": self.row_codebook.clone(),
                "sizes": self.sizes.clone(), "precision": torch.tensor(self.precision, dtype=torch.int32)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> MarkovPrior:
        """Rebuild from state_dict() output, which may be untrusted (tables, rows and owners must be
        consistent): ValueError naming the bad key."""
        owner = "MarkovPrior"
        check_keys(state, {"rows", "cdf", "row_codebook", "sizes", "precision"}, owner)
        precision = int(state_int(state, "precision", 0, owner))
        return cls(state_int(state, "rows", 2, owner), state_int(state, "cdf", 2, owner),
                   state_int(state, "row_codebook", 1, owner), state_int(state, "sizes", 1, owner), precision)


def prior_from_state_dict(state: dict[str, Tensor]) -> FrequencyPrior | MarkovPrior:
    """The prior a saved state describes: MarkovPrior when it has context rows, else FrequencyPrior."""
    return MarkovPrior.from_state_dict(state) if "rows" in state else FrequencyPrior.from_state_dict(state)


def _as_clips(indices: Tensor | Sequence[Tensor]) -> list[np.ndarray]:
    """Training clips as (Q, N) int64 arrays: a (Q, T) clip, a (B, Q, T) batch, or a list of (Q, *S_i) clips
    (grids flattened in raster order, as the priors code them)."""
    if isinstance(indices, (Tensor, np.ndarray)):
        arr = np.asarray(indices.cpu() if isinstance(indices, Tensor) else indices)
        clips = list(arr) if arr.ndim == 3 else [arr]
    else:
        clips = [np.asarray(c.cpu() if isinstance(c, Tensor) else c) for c in indices]
    if not clips:
        raise ValueError("no indices to fit on")
    for c in clips:
        if c.ndim < 2 or not np.issubdtype(c.dtype, np.integer):
            raise ValueError(f"indices must be integer (Q, T) clips, a (B, Q, T) batch or a list of (Q, *S) grids, "
                             f"got {c.dtype} {c.shape}")
    return [c.reshape(c.shape[0], -1).astype(np.int64) for c in clips]  # (Q, N) raster order


class AdaptivePrior:
    """Adaptive-count model over K symbols: counts start at 1, each coded symbol adds `increment`, counts
    halve past `limit`, and the integer CDF is rebuilt every `period` symbols. No side information;
    integer arithmetic only, so every machine agrees."""

    def __init__(self, num_symbols: int, precision: int = DEFAULT_PRECISION, period: int = 16,
                 increment: int = 24, limit: int = 1 << 16) -> None:
        self.precision = _check_precision(precision)
        if not 1 <= num_symbols <= (1 << self.precision):
            raise ValueError(f"num_symbols must be in [1, 2^{self.precision}], got {num_symbols}")
        if period < 1 or increment < 1 or not num_symbols < limit <= 1 << 30:
            raise ValueError("need period >= 1, increment >= 1 and num_symbols < limit <= 2^30")
        self.k, self.period, self.increment, self.limit = int(num_symbols), int(period), int(increment), int(limit)

    def encode(self, symbols: Tensor) -> bytes:
        """Code a 1-D sequence of symbols in [0, K)."""
        sym = as_array(symbols, np.int64, "symbols").reshape(-1)
        starts = np.empty(sym.shape[0], np.int64)
        freqs = np.empty(sym.shape[0], np.int64)
        if M.adaptive_model(sym, self.k, self.precision, self.period, self.increment, self.limit, starts, freqs) < 0:
            raise ValueError(f"symbols must lie in [0, {self.k})")
        return _run_encoder(K.encode_cf, sym.shape[0], (starts, freqs, self.precision, 1), sym.shape[0] + 24)

    def max_symbols(self, num_bytes: int) -> int:
        """Most symbols a valid stream of num_bytes can hold (no code ever gets more than M - K + 1 slots)."""
        min_bits = -math.log2(1 - (self.k - 1) / (1 << self.precision))
        if min_bits <= 0:
            return MAX_FRAMES
        return min(MAX_FRAMES, int((8 * num_bytes + 2 * self.precision + 64) / min_bits) + 1)

    def decode(self, data: bytes, n: int) -> Tensor:
        """Inverse of encode: LongTensor (n,). BitstreamError if data cannot hold n symbols."""
        if not 0 <= int(n) <= self.max_symbols(len(data)):
            if int(n) < 0:
                raise ValueError(f"n must be >= 0, got {n}")
            raise BitstreamError(f"{len(data)} bytes cannot hold {n} symbols of a {self.k}-symbol adaptive model")
        out = np.empty(int(n), np.int64)
        _decode_status(M.adaptive_decode(_as_data(data), self.k, self.precision, self.period, self.increment,
                                         self.limit, out))
        return torch.from_numpy(out)


class ContextPrior(Protocol):
    """A learned or hand-made context model. `cdf(history)` returns the integer CDF row (K+1,) of the next
    symbol given the LongTensor of the symbols before it. It must be a deterministic function of
    `history` (same code path, dtype and shapes in encoder and decoder); integer outputs from
    quantize_pmf of a float model are fine when that model's arithmetic is reproducible."""

    precision: int

    def cdf(self, history: Tensor) -> Tensor: ...


def encode_with_context(prior: ContextPrior, symbols: Tensor) -> bytes:
    """Code symbols (N,) with the next-symbol CDFs of a ContextPrior, calling it once per position."""
    enc = RangeEncoder(prior.precision)
    sym = torch.as_tensor(symbols).reshape(-1).long()
    for i in range(sym.shape[0]):
        enc.encode_next(int(sym[i]), prior.cdf(sym[:i]))
    return enc.finish()


def decode_with_context(prior: ContextPrior, data: bytes, n: int) -> Tensor:
    """Inverse of encode_with_context: LongTensor (n,), built symbol by symbol."""
    dec = RangeDecoder(data, prior.precision)
    out = torch.zeros(int(n), dtype=torch.long)
    for i in range(int(n)):
        out[i] = dec.decode_next(prior.cdf(out[:i]))
    dec.finish()
    return out
