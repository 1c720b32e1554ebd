"""Single-codebook vector quantizer."""
from __future__ import annotations

import math

from torch import Tensor, nn

from mediatok.quantizers.base import (
    GradientEstimator,
    Projection,
    QuantizerOutput,
    apply_estimator,
    check_indices,
    check_input,
    from_rows,
    to_rows,
)
from mediatok.quantizers.codebook import Codebook, Metric


class SingleCodebookQuantizer(nn.Module):
    """Layout, gradient estimator and decoding around one codebook; subclasses choose the codebook."""

    def __init__(self, dim: int, codebook: Codebook, codebook_dim: int | None, gradient: GradientEstimator) -> None:
        super().__init__()
        if gradient not in ("ste", "rotation"):
            raise ValueError(f"gradient must be 'ste' or 'rotation', got {gradient!r}")
        self.dim, self.gradient = dim, gradient
        self.projection = Projection(dim, codebook_dim)
        self.codebook = codebook

    @property
    def codebook_size(self) -> int:
        return self.codebook.codebook_size

    @property
    def num_codebooks(self) -> int:
        return 1

    @property
    def bits_per_token(self) -> float:
        """Bits per position before entropy coding: log2(K)."""
        return math.log2(self.codebook_size)

    def forward(self, z: Tensor) -> QuantizerOutput:
        """z (B, D, *S) -> quantized (B, D, *S), indices (B, 1, *S)."""
        check_input(z, self.dim)
        x = self.projection.project_in(to_rows(z))  # (N, d)
        result = self.codebook(x)
        q = apply_estimator(x, result.quantized, self.gradient) if self.training else result.quantized
        quantized = from_rows(self.projection.project_out(q), z.shape)
        indices = from_rows(result.indices[:, None], z.shape)  # (B, 1, *S)
        return QuantizerOutput(quantized, indices, result.loss, result.stats)

    def decode_indices(self, indices: Tensor) -> Tensor:
        """indices (B, 1, *S) -> quantized (B, D, *S); equals forward's output in eval mode."""
        check_indices(indices, 1, self.codebook_size)
        rows = self.codebook.lookup(indices.movedim(1, -1).reshape(-1))  # (N, d)
        return from_rows(self.projection.project_out(rows), (indices.shape[0], self.dim, *indices.shape[2:]))


class VectorQuantizer(SingleCodebookQuantizer):
    """Nearest-codeword quantizer over one codebook (VQ-VAE; EMA updates as in VQ-VAE-2). z (B, D, *S).

    `codebook_dim` < `dim` searches in a learned low-dimensional space (factorised codes, as in ViT-VQGAN).
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        codebook_dim: int | None = None,
        metric: Metric = "l2",
        ema_decay: float | None = 0.99,
        commitment_weight: float = 0.25,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 0.1,
        dead_code_window: float = 4.0,
        gradient: GradientEstimator = "ste",
    ) -> None:
        codebook = Codebook(
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
        super().__init__(dim, codebook, codebook_dim, gradient)
