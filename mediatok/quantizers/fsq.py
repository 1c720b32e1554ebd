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
    """FSQ (Mentzer et al., 2023): bound each of len(levels) channels, round to L_i levels. z (B, D, *S).

    The implicit codebook has prod(levels) entries; indices (B, 1, *S). D != len(levels) adds linear projections.
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

    def _bound(self, x: Tensor) -> Tensor:
        """Squash into (-(L-1)/2, (L-1)/2), shifted by 1/2 for even L so that rounding gives exactly L values."""
        half = (self._levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(x + shift) * half - offset

    def _codes_to_indices(self, codes: Tensor) -> Tensor:
        """Integer level per channel (N, d) in [-(L//2), ...] -> flat index (N,)."""
        digits = (codes + (self._levels // 2)).round().long()
        return (digits * self._basis).sum(-1)

    def _indices_to_codes(self, indices: Tensor) -> Tensor:
        digits = (indices[:, None] // self._basis) % self._levels.long()
        return (digits - (self._levels // 2).long()).float() / (self._levels // 2)

    def forward(self, z: Tensor) -> QuantizerOutput:
        """z (B, D, *S) -> quantized (B, D, *S), indices (B, 1, *S); loss is zero (nothing to commit to)."""
        check_input(z, self.dim)
        x = self._bound(self.project_in(to_rows(z)))  # (N, d)
        rounded = x.round()
        indices = self._codes_to_indices(rounded)
        scale = self._levels // 2
        if self.training:
            codes = (x + (rounded - x).detach()) / scale
        else:
            # Identical arithmetic to decode_indices, so indices reproduce the output bit for bit.
            codes = self._indices_to_codes(indices)
        counts = torch.bincount(indices, minlength=self.codebook_size).float()
        self.usage_counts += counts.double()
        quantized = from_rows(self.project_out(codes), z.shape)
        return QuantizerOutput(quantized, from_rows(indices[:, None], z.shape), z.new_zeros(()), usage_stats(counts))

    def decode_indices(self, indices: Tensor) -> Tensor:
        """indices (B, 1, *S) -> quantized (B, D, *S)."""
        check_indices(indices, 1, self.codebook_size)
        codes = self._indices_to_codes(indices.movedim(1, -1).reshape(-1))
        return from_rows(self.project_out(codes), (indices.shape[0], self.dim, *indices.shape[2:]))
