"""Priors for VQ token indices: static per-codebook tables, an adaptive-count model, context priors.

    FrequencyPrior   fit once on training indices, saved with the model (integer tables -> bit-exact)
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
from mediatok.entropy.cdf import quantize_pmf
from mediatok.entropy.coder import (DEFAULT_PRECISION, RangeDecoder, RangeEncoder, _as_data, _check_precision,
                                    _decode_status, _run_encoder, as_array, decode_indexed, encode_indexed)
from mediatok.errors import BitstreamError


MAX_FRAMES = 1 << 26  # about 10 days at 75 frames/s: a decoder never allocates for more


class FrequencyPrior:
    """Per-codebook static frequency tables for indices (Q, T): codebook q codes with its own integer CDF.

    prior = FrequencyPrior.fit(train_indices, codebook_sizes=1024)   # (Q, N) LongTensor
    blob = prior.encode(indices)                                       # (Q, T) -> bytes
    prior.decode(blob, num_frames=T)                                   # -> (Q, T) LongTensor
    state = prior.state_dict()   # {"cdf": int32 (Q, Kmax+1), "sizes": int32 (Q,), "precision": int32 ()}
    FrequencyPrior.from_state_dict(state)   # store `state` in the codec's safetensors under a prefix

    Tables are integers fixed at fit time, so encoder and decoder agree on every machine. Symbols are
    coded frame by frame (t-major: all Q codebooks of frame 0, then frame 1, ...). Unseen codes keep a
    small probability (counts + `smoothing`, and every code >= 1/2^precision).
    """

    def __init__(self, cdf: Tensor, sizes: Tensor, precision: int = DEFAULT_PRECISION) -> None:
        self.precision = _check_precision(int(precision))
        self.cdf = torch.as_tensor(cdf).to(torch.int32).contiguous()  # (Q, Kmax+1)
        self.sizes = torch.as_tensor(sizes).to(torch.int32).reshape(-1)  # (Q,)
        if self.cdf.ndim != 2 or self.cdf.shape[0] != self.sizes.shape[0]:
            raise ValueError(f"cdf must be (Q, Kmax+1) and sizes (Q,), got {tuple(self.cdf.shape)} and "
                             f"{tuple(self.sizes.shape)}")
        self._lengths = (self.sizes + 1).numpy()
        self._offsets = np.zeros(self.sizes.shape[0], np.int32)
        bad = K.check_tables(self.cdf.numpy(), self._lengths, self.precision, 2)
        if bad >= 0:
            raise ValueError(f"FrequencyPrior table {bad} is not a valid {self.precision}-bit CDF")
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
        idx = as_array(indices, np.int64, "indices")
        if idx.ndim != 2 or idx.shape[0] != self.num_codebooks:
            raise ValueError(f"indices must be (Q={self.num_codebooks}, T), got shape {idx.shape}")
        return idx

    def _table_index(self, frames: int) -> np.ndarray:
        return np.tile(np.arange(self.num_codebooks, dtype=np.int32), frames)  # (T*Q,) t-major

    def encode(self, indices: Tensor) -> bytes:
        """Entropy-code indices (Q, T) into bytes (no header: store Q, T in the container)."""
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

    def decode(self, data: bytes, num_frames: int) -> Tensor:
        """Inverse of encode: LongTensor (Q, num_frames). BitstreamError if data cannot hold that many."""
        t = int(num_frames)
        if t < 0:
            raise ValueError(f"num_frames must be >= 0, got {num_frames}")
        limit = self.max_frames(len(data))
        if t > limit:
            raise BitstreamError(f"{len(data)} bytes cannot hold {t} frames of {self.num_codebooks} codebooks "
                                 f"(at most {limit}): the frame count or the stream is corrupt")
        out = decode_indexed(data, self._table_index(t), self.cdf.numpy(), self._lengths, self._offsets,
                             self.precision, escape=False)
        return torch.from_numpy(out.reshape(t, self.num_codebooks).T.copy())  # (Q, T)

    def bits(self, indices: Tensor) -> float:
        """Ideal information content of indices (Q, T) under the integer tables, in bits."""
        idx = torch.from_numpy(self._check_indices(indices))
        freq = (self.cdf[:, 1:] - self.cdf[:, :-1]).double()  # (Q, Kmax)
        return float(-(torch.gather(freq, 1, idx).log2() - self.precision).sum())

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors only, safe for safetensors."""
        return {"cdf": self.cdf.clone(), "sizes": self.sizes.clone(),
                "precision": torch.tensor(self.precision, dtype=torch.int32)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> FrequencyPrior:
        """Rebuild from state_dict() output (validated: tables must be proper CDFs)."""
        missing = {"cdf", "sizes", "precision"} - set(state)
        if missing:
            raise ValueError(f"FrequencyPrior state is missing {sorted(missing)}")
        return cls(state["cdf"], state["sizes"], int(state["precision"]))

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """In-place load, like nn.Module."""
        other = FrequencyPrior.from_state_dict(state)
        self.__dict__.update(other.__dict__)


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
