"""Residual VQ (SoundStream / EnCodec) and grouped residual VQ (HiFi-Codec's GRVQ)."""
from __future__ import annotations

import math
import random

import torch
from torch import Tensor, nn

from mediatok.quantizers.base import (
    GradientEstimator,
    Projection,
    QuantizerOutput,
    apply_estimator,
    check_indices,
    check_input,
    check_positive,
    from_rows,
    to_rows,
)
from mediatok.quantizers.codebook import Codebook, Metric


def _mean_stats(per_level: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Average each statistic over levels (or groups) and keep the per-level values as 'name/i'."""
    stats: dict[str, Tensor] = {}
    for key in per_level[0]:
        values = torch.stack([s[key] for s in per_level])
        stats[key] = values.mean()
        stats.update({f"{key}/{i}": v for i, v in enumerate(values)})
    return stats


class ResidualVQ(nn.Module):
    """Q codebooks, each quantizing what the previous ones left over. z (B, D, *S) -> indices (B, Q, *S).

    `quantizer_dropout` = p trains, on a fraction p of the batches, with only the first n ~ U{1..Q} levels,
    so the model decodes well at every bitrate (SoundStream); pass `num_quantizers=n` at inference.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        num_quantizers: int,
        *,
        codebook_dim: int | None = None,
        quantizer_dropout: float = 0.0,
        metric: Metric = "l2",
        ema_decay: float | None = 0.99,
        commitment_weight: float = 0.25,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 0.1,
        dead_code_window: float = 4.0,
        gradient: GradientEstimator = "ste",
    ) -> None:
        super().__init__()
        check_positive(num_quantizers=num_quantizers)
        if not 0.0 <= quantizer_dropout <= 1.0:
            raise ValueError(f"quantizer_dropout must be in [0, 1], got {quantizer_dropout}")
        if gradient not in ("ste", "rotation"):
            raise ValueError(f"gradient must be 'ste' or 'rotation', got {gradient!r}")
        self.dim, self.num_quantizers, self.quantizer_dropout, self.gradient = dim, num_quantizers, quantizer_dropout, gradient
        self.projection = Projection(dim, codebook_dim)
        self.levels = nn.ModuleList(
            Codebook(
                codebook_dim or dim,
                codebook_size,
                metric=metric,
                ema_decay=ema_decay,
                commitment_weight=commitment_weight,
                kmeans_init=kmeans_init,
                kmeans_iters=kmeans_iters,
                dead_code_threshold=dead_code_threshold,
                dead_code_window=dead_code_window,
            )
            for _ in range(num_quantizers)
        )

    @property
    def codebook_size(self) -> int:
        return self.levels[0].codebook_size

    @property
    def num_codebooks(self) -> int:
        return self.num_quantizers

    @property
    def bits_per_token(self) -> float:
        """Bits per position at full depth: Q * log2(K)."""
        return self.num_quantizers * math.log2(self.codebook_size)

    def _depth(self, num_quantizers: int | None) -> int:
        if num_quantizers is not None:
            if not 1 <= num_quantizers <= self.num_quantizers:
                raise ValueError(f"num_quantizers must be in 1..{self.num_quantizers}, got {num_quantizers}")
            return num_quantizers
        if self.training and self.quantizer_dropout > 0 and random.random() < self.quantizer_dropout:
            return random.randint(1, self.num_quantizers)
        return self.num_quantizers

    def forward(self, z: Tensor, num_quantizers: int | None = None) -> QuantizerOutput:
        """z (B, D, *S) -> quantized (B, D, *S), indices (B, n, *S) with n levels used."""
        check_input(z, self.dim)
        x = self.projection.project_in(to_rows(z))  # (N, d)
        residual = x
        total: Tensor | None = None
        indices, losses, stats = [], [], []
        for codebook in self.levels[: self._depth(num_quantizers)]:
            result = codebook(residual)
            total = result.quantized if total is None else total + result.quantized
            # Each level sees a fixed target: later levels do not push gradients into earlier codewords.
            residual = residual - result.quantized.detach()
            indices.append(result.indices)
            losses.append(result.loss)
            stats.append(result.stats)
        assert total is not None, "at least one level always runs"
        q = apply_estimator(x, total, self.gradient) if self.training else total
        quantized = from_rows(self.projection.project_out(q), z.shape)
        return QuantizerOutput(
            quantized, from_rows(torch.stack(indices, dim=1), z.shape), torch.stack(losses).sum(), _mean_stats(stats)
        )

    def decode_indices(self, indices: Tensor) -> Tensor:
        """indices (B, n, *S), n <= Q levels -> quantized (B, D, *S); equals forward's output in eval mode."""
        check_indices(indices, self.num_quantizers, self.codebook_size, allow_fewer=True)
        rows = indices.movedim(1, -1).reshape(-1, indices.shape[1])  # (N, n)
        total = self.levels[0].lookup(rows[:, 0])
        for level in range(1, rows.shape[1]):
            total = total + self.levels[level].lookup(rows[:, level])
        return from_rows(self.projection.project_out(total), (indices.shape[0], self.dim, *indices.shape[2:]))


class GroupedResidualVQ(nn.Module):
    """HiFi-Codec's GRVQ: channels split into G groups, each with its own residual VQ of Q levels.

    z (B, D, *S) -> indices (B, G * Q, *S), group-major (group 0's levels first). Yang et al., 2023.
    """

    def __init__(self, dim: int, codebook_size: int, num_groups: int, num_quantizers: int, **kwargs) -> None:
        super().__init__()
        check_positive(num_groups=num_groups)
        if dim % num_groups:
            raise ValueError(f"dim ({dim}) must be divisible by num_groups ({num_groups})")
        self.dim, self.num_groups, self.num_quantizers = dim, num_groups, num_quantizers
        self.groups = nn.ModuleList(
            ResidualVQ(dim // num_groups, codebook_size, num_quantizers, **kwargs) for _ in range(num_groups)
        )

    @property
    def codebook_size(self) -> int:
        return self.groups[0].codebook_size

    @property
    def num_codebooks(self) -> int:
        return self.num_groups * self.num_quantizers

    @property
    def bits_per_token(self) -> float:
        """Bits per position: G * Q * log2(K)."""
        return self.num_groups * self.groups[0].bits_per_token

    def forward(self, z: Tensor, num_quantizers: int | None = None) -> QuantizerOutput:
        """z (B, D, *S) -> quantized (B, D, *S), indices (B, G * n, *S)."""
        check_input(z, self.dim)
        if num_quantizers is None and self.training and self.groups[0].quantizer_dropout > 0:
            # One depth for all groups so that every group's indices have the same number of levels.
            num_quantizers = self.groups[0]._depth(None)
        outs = [g(part, num_quantizers) for g, part in zip(self.groups, z.chunk(self.num_groups, dim=1))]
        return QuantizerOutput(
            torch.cat([o.quantized for o in outs], dim=1),
            torch.cat([o.indices for o in outs], dim=1),
            torch.stack([o.loss for o in outs]).sum(),
            _mean_stats([{k: v for k, v in o.stats.items() if "/" not in k} for o in outs]),
        )

    def decode_indices(self, indices: Tensor) -> Tensor:
        """indices (B, G * n, *S) -> quantized (B, D, *S)."""
        check_indices(indices, self.num_codebooks, self.codebook_size, allow_fewer=True)
        if indices.shape[1] % self.num_groups:
            raise ValueError(
                f"indices have {indices.shape[1]} codebooks, not a multiple of num_groups={self.num_groups}"
            )
        parts = indices.chunk(self.num_groups, dim=1)
        return torch.cat([g.decode_indices(p) for g, p in zip(self.groups, parts)], dim=1)
