"""Residual VQ (SoundStream / EnCodec) and grouped residual VQ (HiFi-Codec's GRVQ)."""
from __future__ import annotations

import math

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


_MASK64 = (1 << 64) - 1


def _dropout_seed(seed: int, step: int) -> int:
    """A generator seed for quantizer dropout at `step`: splitmix64 of (seed, step), reduced to 32 bits.

    torch's CPU generator keeps only the low 32 bits of a seed, so seed and step are mixed rather than packed.
    """
    z = (seed * 0x9E3779B97F4A7C15 + step) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 32


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
    The depth of training step t is a function of (`dropout_seed`, t) only: every DDP rank draws the same one
    (a rank that ran fewer levels would leave the others waiting in the codebooks' all_reduce), and the step
    counter is a buffer, so a resumed run continues the sequence.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        num_quantizers: int,
        *,
        codebook_dim: int | None = None,
        quantizer_dropout: float = 0.0,
        dropout_seed: int = 0,
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
        self.dropout_seed = int(dropout_seed)
        self.register_buffer("dropout_step", torch.zeros((), dtype=torch.long))
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
        if not (self.training and self.quantizer_dropout > 0):
            return self.num_quantizers
        step = int(self.dropout_step)
        self.dropout_step += 1
        g = torch.Generator().manual_seed(_dropout_seed(self.dropout_seed, step))
        if float(torch.rand((), generator=g)) >= self.quantizer_dropout:
            return self.num_quantizers
        return int(torch.randint(1, self.num_quantizers + 1, (), generator=g))

    def _load_from_state_dict(self, state_dict: dict[str, Tensor], prefix: str, *args, **kwargs) -> None:
        """Checkpoints from before the dropout step counter (the shipped ones) load and start the sequence at 0."""
        state_dict.setdefault(prefix + "dropout_step", torch.zeros((), dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

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
