"""Finite scalar quantization: each channel rounded to a few levels, no codebook to learn or collapse."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mediatok.quantizers.base import (
    QuantizerOutput,
    check_indices,
    check_input,
    from_rows,
    to_rows,
    usage_stats,
)


class FSQ(nn.Module):
    """FSQ (Mentzer et al., 2023): each of len(levels) channels tanh-bounded and cut into L_i equal slices. z (B, D, *S).

    The implicit codebook has prod(levels) entries; indices (B, 1, *S). D != len(levels) adds linear projections.
    Codes lie in [-1, 1]; feed roughly unit-scale input (e.g. normalised per channel) to use the whole grid.
    """

    def __init__(self, levels: list[int] | tuple[int, ...], dim: int | None = None) -> None:
        super().__init__()
        levels = list(levels)
        if not levels or any(int(v) != v or v < 2 for v in levels):
            raise ValueError(f"levels must be a non-empty list of integers >= 2, got {levels}")
        self.levels = levels
        self.dim = dim if dim is not None else len(levels)
        if self.dim < 1:
            raise ValueError(f"dim must be >= 1, got {self.dim}")
        inner = len(levels)
        self.project_in: nn.Module = nn.Linear(self.dim, inner) if self.dim != inner else nn.Identity()
        self.project_out: nn.Module = nn.Linear(inner, self.dim) if self.dim != inner else nn.Identity()
        lv = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("_levels", lv, persistent=False)
        basis = torch.cumprod(torch.tensor([1] + levels[:-1], dtype=torch.int64), 0)
        self.register_buffer("_basis", basis, persistent=False)
        self.register_buffer("usage_counts", torch.zeros(self.codebook_size, dtype=torch.float64), persistent=False)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    @property
    def num_codebooks(self) -> int:
        return 1

    @property
    def bits_per_token(self) -> float:
        """sum(log2(L_i)) bits per position."""
        return sum(math.log2(v) for v in self.levels)

    def _digits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Unbounded values (N, d) -> bounded y (N, d) in (-L/2, L/2) and the level of each channel, 0..L-1.

        Level k owns y in [k - L/2, k + 1 - L/2): every level, even or odd L, the end ones included, gets an
        equal slice of tanh's range. (The paper's round(L//2 * tanh) gives the end levels half a slice, and an
        even L needs a shifted tanh, which made the bottom level of L = 2 all but unreachable.)
        """
        y = torch.tanh(x) * (self._levels / 2)
        # clamp: tanh rounds to exactly +-1 for |x| > ~9, which would land on level L
        digits = torch.floor(y + self._levels / 2).clamp(min=torch.zeros_like(self._levels), max=self._levels - 1)
        return y, digits.long()

    def _digits_to_codes(self, digits: Tensor) -> Tensor:
        """Levels (N, d) -> codes in [-1, 1]: the centre of each level's slice, (k - (L-1)/2) / ((L-1)/2)."""
        half = (self._levels - 1) / 2
        return (digits.float() - half) / half

    def _indices_to_digits(self, indices: Tensor) -> Tensor:
        """Flat indices (N,) -> level per channel (N, d), mixed radix with channel 0 least significant."""
        return (indices[:, None] // self._basis) % self._levels.long()

    def forward(self, z: Tensor) -> QuantizerOutput:
        """z (B, D, *S) -> quantized (B, D, *S), indices (B, 1, *S); loss is zero (nothing to commit to)."""
        check_input(z, self.dim)
        y, digits = self._digits(self.project_in(to_rows(z)))  # (N, d) each
        indices = (digits * self._basis).sum(-1)  # (N,)
        # The same arithmetic as decode_indices, so indices reproduce the output bit for bit.
        codes = self._digits_to_codes(digits)
        if self.training:
            # Straight-through: y / half - its detached copy adds exactly zero to the value, the identity's gradient.
            y_scaled = y / ((self._levels - 1) / 2)
            codes = codes + (y_scaled - y_scaled.detach())
        counts = torch.bincount(indices, minlength=self.codebook_size).float()
        self.usage_counts += counts.double()
        quantized = from_rows(self.project_out(codes), z.shape)
        return QuantizerOutput(quantized, from_rows(indices[:, None], z.shape), z.new_zeros(()), usage_stats(counts))

    def decode_indices(self, indices: Tensor) -> Tensor:
        """indices (B, 1, *S) -> quantized (B, D, *S)."""
        check_indices(indices, 1, self.codebook_size)
        codes = self._digits_to_codes(self._indices_to_digits(indices.movedim(1, -1).reshape(-1)))
        return from_rows(self.project_out(codes), (indices.shape[0], self.dim, *indices.shape[2:]))
