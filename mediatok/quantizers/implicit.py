"""Quantizers whose codewords are a trained linear map of a frozen codebook: SimVQ and VQGAN-LC."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mediatok.quantizers.base import GradientEstimator, check_positive
from mediatok.quantizers.codebook import Codebook
from mediatok.quantizers.kmeans import kmeans
from mediatok.quantizers.vq import SingleCodebookQuantizer


class ProjectedCodebook(Codebook):
    """Codewords = W(C): C (K, c) is frozen, the linear map W: c -> d is trained by the codebook loss.

    Every step moves all K codewords together through W, which is why such codebooks stay fully used
    (Zhu et al., "Addressing Representation Collapse in Vector Quantized Models with One Linear Layer", 2024).
    """

    def __init__(self, dim: int, codebook_size: int, base_dim: int, *, commitment_weight: float = 0.25) -> None:
        super().__init__(dim, codebook_size, ema_decay=None, commitment_weight=commitment_weight, kmeans_init=False)
        check_positive(base_dim=base_dim)
        del self.embed  # the codewords are derived, not stored
        self.register_buffer("base", torch.randn(codebook_size, base_dim) / math.sqrt(base_dim))
        self.projector = nn.Linear(base_dim, dim)
        self._cache: tuple[tuple[int, ...], Tensor] | None = None

    def _cache_key(self) -> tuple[int, ...]:
        tensors = (self.base, self.projector.weight, self.projector.bias)
        return tuple(v for t in tensors for v in (t.data_ptr(), t._version))

    def codes(self) -> Tensor:
        """W(C) (K, d); cached while nothing can change it (eval mode or no grad)."""
        if self.training and torch.is_grad_enabled():
            self._cache = None
            return self.projector(self.base)
        key = self._cache_key()
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self.projector(self.base))
        return self._cache[1]


class SimVQ(SingleCodebookQuantizer):
    """SimVQ: a frozen random codebook re-parameterised by one trained linear layer. z (B, D, *S).

    Zhu et al., 2024. `codebook_dim` (default D) is the width of the frozen codebook C; codes are C W.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        codebook_dim: int | None = None,
        commitment_weight: float = 0.25,
        gradient: GradientEstimator = "ste",
    ) -> None:
        codebook = ProjectedCodebook(dim, codebook_size, codebook_dim or dim, commitment_weight=commitment_weight)
        super().__init__(dim, codebook, None, gradient)


class LCQuantizer(SingleCodebookQuantizer):
    """VQGAN-LC's large codebook: K frozen entries of width `codebook_dim` from k-means on features, a trained
    projector into the latent space. Practical at 100k+ entries. z (B, D, *S). Zhu et al., 2024.

    Call `init_from_features(features)` once before training (e.g. with pretrained encoder features);
    without it the frozen entries are random, which makes this a wide SimVQ.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        codebook_dim: int,
        *,
        commitment_weight: float = 0.25,
        gradient: GradientEstimator = "ste",
    ) -> None:
        codebook = ProjectedCodebook(dim, codebook_size, codebook_dim, commitment_weight=commitment_weight)
        super().__init__(dim, codebook, None, gradient)

    @torch.no_grad()
    def init_from_features(self, features: Tensor, *, iters: int = 10) -> None:
        """Set the frozen entries to k-means centroids of features (M, codebook_dim) or (B, codebook_dim, *S)."""
        base = self.codebook.base
        if features.ndim > 2:
            features = features.movedim(1, -1).reshape(-1, features.shape[1])
        if features.ndim != 2 or features.shape[1] != base.shape[1]:
            raise ValueError(f"expected features (M, {base.shape[1]}), got {tuple(features.shape)}")
        if not torch.isfinite(features).all():
            raise ValueError("features contain NaN or infinite values")
        centers, _ = kmeans(features.to(base.device), self.codebook_size, iters=iters)
        base.copy_(centers)
        projector = self.codebook.projector
        if projector.in_features == projector.out_features:
            # Features already in the latent space: start the projector at the identity, so the codewords
            # start exactly on the feature clusters instead of a random linear scrambling of them.
            nn.init.eye_(projector.weight)
            nn.init.zeros_(projector.bias)
