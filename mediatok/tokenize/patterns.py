"""Flattening patterns: multi-codebook tokens (..., Q, *S) <-> what a language model reads, each with an exact inverse.

    codes (Q=3, T=2)      flat (T*Q,)                     delay (Q, T+Q-1), pad = K           parallel (Q, T)
    a0 a1                 a0 b0+K c0+2K a1 b1+K c1+2K     a0 a1 P  P                          a0 a1
    b0 b1                 (one stream, vocab Q*K)         P  b0 b1 P                          b0 b1
    c0 c1                                                 P  P  c0 c1   (vocab K+1)           c0 c1   (vocab K)

- flat: position-major interleave with codebook q offset by q*K, so one softmax over Q*K ids
  (the "flattening" pattern of Copet et al., "Simple and Controllable Music Generation", 2023).
- delay: codebook q shifted right by q steps, so step t predicts codebook q of position t - q and coarse codes
  condition fine ones (MusicGen's delay pattern, same paper). Padding uses the extra id K.
- parallel: unchanged; Q heads predict all codebooks of a position at once.

Positions are frames for audio, S = (T,). Grids (images S = (h, w), volumes S = (d, h, w)) are first read in
raster order (row-major: the last axis fastest), P = prod(S) positions, and the pattern runs over those, so
`apply(codes, grid_ndim=2)` of (Q, h, w) equals `apply(codes.reshape(Q, h * w))`; `invert(seq, grid=(h, w))`
restores the grid.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

PatternName = Literal["flat", "delay", "parallel"]
PATTERNS: tuple[str, ...] = ("flat", "delay", "parallel")


def _layout(grid_ndim: int) -> str:
    """How error messages name the position axes: audio frames, image (h, w), volume (d, h, w)."""
    return {1: "frames", 2: "h, w", 3: "d, h, w"}.get(grid_ndim, f"*S ({grid_ndim} axes)")


def _check_codes(codes: Tensor, num_codebooks: int, codebook_size: int, grid_ndim: int = 1) -> None:
    if grid_ndim < 1:
        raise ValueError(f"grid_ndim (position axes after the codebook axis) must be >= 1, got {grid_ndim}")
    if codes.ndim < grid_ndim + 1 or codes.shape[-grid_ndim - 1] != num_codebooks:
        raise ValueError(f"expected codes of shape (..., {num_codebooks}, {_layout(grid_ndim)}), "
                         f"got {tuple(codes.shape)}")
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise ValueError(f"expected integer codes, got dtype {codes.dtype}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= codebook_size):
        raise ValueError(f"codes must lie in [0, {codebook_size}), got [{int(codes.min())}, {int(codes.max())}]")


@dataclass(frozen=True)
class Pattern:
    """A flattening pattern for `num_codebooks` codebooks of `codebook_size` entries."""

    name: PatternName
    num_codebooks: int
    codebook_size: int

    def __post_init__(self) -> None:
        if self.name not in PATTERNS:
            raise ValueError(f"pattern must be one of {PATTERNS}, got {self.name!r}")
        if self.num_codebooks < 1 or self.codebook_size < 1:
            raise ValueError(f"need num_codebooks, codebook_size >= 1, got {self.num_codebooks}, {self.codebook_size}")

    @property
    def vocab_size(self) -> int:
        """Number of distinct ids the pattern's output can hold."""
        q, k = self.num_codebooks, self.codebook_size
        return {"flat": q * k, "delay": k + 1, "parallel": k}[self.name]

    @property
    def pad_id(self) -> int | None:
        """The id filling the delay pattern's empty corners (None for the other patterns)."""
        return self.codebook_size if self.name == "delay" else None

    def apply(self, codes: Tensor, grid_ndim: int = 1) -> Tensor:
        """codes (..., Q, *S) with len(S) == grid_ndim, P = prod(S) positions in raster order ->
        flat (..., P*Q) | delay (..., Q, P+Q-1) | parallel (..., Q, P), int64."""
        _check_codes(codes, self.num_codebooks, self.codebook_size, grid_ndim)
        lead = codes.shape[: codes.ndim - grid_ndim]  # (..., Q)
        codes = codes.long().reshape(*lead, math.prod(codes.shape[codes.ndim - grid_ndim :]))  # (..., Q, P) raster
        q, k = self.num_codebooks, self.codebook_size
        if self.name == "parallel":
            return codes.clone()
        if self.name == "flat":
            offsets = torch.arange(q, device=codes.device)[:, None] * k  # (Q, 1)
            return (codes + offsets).transpose(-1, -2).reshape(*codes.shape[:-2], -1)  # (..., P*Q) position-major
        p = codes.shape[-1]
        out = codes.new_full((*codes.shape[:-1], p + q - 1), k)  # (..., Q, P+Q-1)
        for i in range(q):
            out[..., i, i : i + p] = codes[..., i, :]
        return out

    def invert(self, seq: Tensor, grid: Sequence[int] | None = None) -> Tensor:
        """The exact inverse of `apply`: pattern output -> codes (..., Q, P) int64, or (..., Q, *grid) when the
        grid S the positions were read from is given; refuses malformed input."""
        codes = self._invert(seq)
        if grid is None:
            return codes
        grid = tuple(int(n) for n in grid)
        if not grid or min(grid) < 0 or math.prod(grid) != codes.shape[-1]:
            raise ValueError(f"grid {grid} does not hold the {codes.shape[-1]} positions of these tokens")
        return codes.reshape(*codes.shape[:-1], *grid)  # (..., Q, *S) raster order

    def _invert(self, seq: Tensor) -> Tensor:
        q, k = self.num_codebooks, self.codebook_size
        if seq.dtype.is_floating_point or seq.dtype == torch.bool:
            raise ValueError(f"expected integer tokens, got dtype {seq.dtype}")
        seq = seq.long()
        if self.name == "parallel":
            _check_codes(seq, q, k)
            return seq.clone()
        if self.name == "flat":
            if seq.ndim < 1 or seq.shape[-1] % q:
                raise ValueError(f"flat tokens must have a last dim divisible by {q} codebooks, got {tuple(seq.shape)}")
            frames = seq.reshape(*seq.shape[:-1], -1, q)  # (..., P, Q)
            codes = frames - torch.arange(q, device=seq.device) * k
            if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= k):
                raise ValueError(f"flat tokens out of place: the id at position j must lie in "
                                 f"[(j % {q}) * {k}, (j % {q} + 1) * {k})")
            return codes.transpose(-1, -2).contiguous()  # (..., Q, P)
        if seq.ndim < 2 or seq.shape[-2] != q or seq.shape[-1] < q - 1:
            raise ValueError(f"delay tokens must have shape (..., {q}, positions + {q - 1}), got {tuple(seq.shape)}")
        p = seq.shape[-1] - (q - 1)
        codes = torch.stack([seq[..., i, i : i + p] for i in range(q)], dim=-2)  # (..., Q, P)
        mask = torch.ones(seq.shape[-2:], dtype=torch.bool, device=seq.device)
        for i in range(q):
            mask[i, i : i + p] = False
        if bool((seq[..., mask] != k).any()):
            raise ValueError(f"delay tokens must hold the pad id {k} outside the shifted codes")
        _check_codes(codes, q, k)
        return codes


def get_pattern(name: str, num_codebooks: int, codebook_size: int) -> Pattern:
    """The pattern called `name` ('flat', 'delay' or 'parallel')."""
    return Pattern(name, num_codebooks, codebook_size)  # type: ignore[arg-type]
