"""Quantizers whose codewords are a trained linear map of a frozen codebook: SimVQ and VQGAN-LC."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mediatok.quantizers import distributed
from mediatok.quantizers.base import GradientEstimator, check_positive
from mediatok.quantizers.codebook import Codebook
from mediatok.quantizers.kmeans import kmeans
from mediatok.quantizers.vq import SingleCodebookQuantizer


class ProjectedCodebook(Codebook):
    """Codewords = W(C): C (K, c) is frozen, the linear map W: c -> d is trained by the codebook loss.

    Every step moves all K codewords together through W, which keeps the codebook from collapsing onto a few
    codes (Zhu et al., "Addressing Representation Collapse in Vector Quantized Models with One Linear Layer", 2024).
    With `moment_init`, the first training batch sets W so that the codewords' mean and principal axes match
    the batch's (the data-dependent start that k-means gives an explicit codebook): a random W leaves most
    codewords far from where the latents are, and they are only slowly pulled in.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        base_dim: int,
        *,
        commitment_weight: float = 0.25,
        moment_init: bool = True,
        dead_code_threshold: float = 0.0,
        dead_code_window: float = 4.0,
    ) -> None:
        super().__init__(
            dim,
            codebook_size,
            ema_decay=None,
            commitment_weight=commitment_weight,
            kmeans_init=moment_init,
            dead_code_threshold=dead_code_threshold,
            dead_code_window=dead_code_window,
        )
        check_positive(base_dim=base_dim)
        del self.embed  # the codewords are derived, not stored
        self.register_buffer("base", torch.randn(codebook_size, base_dim) / math.sqrt(base_dim))
        self.projector = nn.Linear(base_dim, dim)
        self._cache: tuple[tuple[int, ...], Tensor] | None = None

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        mean_z, cov_z = _moments(x.double(), across_processes=True)  # (d,), (d, d)
        mean_c, cov_c = _moments(self.base.double(), across_processes=False)  # (c,), (c, c)
        var_c, axes_c = torch.linalg.eigh(cov_c)  # ascending
        var_z, axes_z = torch.linalg.eigh(cov_z)
        r = min(var_c.numel(), var_z.numel())
        var_c, axes_c = var_c.flip(0)[:r].clamp_min(1e-12), axes_c.flip(1)[:, :r]  # (r,), (c, r)
        var_z, axes_z = var_z.flip(0)[:r], axes_z.flip(1)[:, :r]  # (r,), (d, r)
        # A floor keeps W well conditioned when the first batch barely varies along some axes.
        var_z = var_z.clamp_min(1e-4 * float(var_z.max().clamp_min(1e-12)))
        # Whiten C along its principal axes, then colour with the batch's: the i-th largest axis of C maps onto
        # the i-th largest axis of the latents.
        a = axes_c @ torch.diag((var_z / var_c).sqrt()) @ axes_z.T  # (c, d)
        self.projector.weight.copy_(a.T.to(self.projector.weight.dtype))
        self.projector.bias.copy_((mean_z - mean_c @ a).to(self.projector.bias.dtype))
        self.initialized.fill_(True)

    @torch.no_grad()
    def _replace_codes(self, dead: Tensor, fresh: Tensor) -> None:
        """Re-draw the frozen entries of dead codes so that W maps them onto fresh (num_dead, d).

        C stays frozen (no gradient ever reaches it); only where the data left a code unused is its entry
        re-drawn, through the pseudo-inverse of W, exactly as a restart moves an explicit codeword.
        """
        weight = self.projector.weight.double()  # (d, c)
        # rtol drops near-null directions of W, which would otherwise give huge, unstable entries.
        inverse = torch.linalg.pinv(weight, rtol=1e-3)  # (c, d)
        entries = (fresh.double() - self.projector.bias.double()) @ inverse.T  # (num_dead, c)
        # Out of place: this step's graph still holds the old entries for W's gradient.
        base = self.base.clone()
        base[dead] = entries.to(base.dtype)
        self.base = base
        self._cache = None

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


def _moments(x: Tensor, *, across_processes: bool) -> tuple[Tensor, Tensor]:
    """Mean (D,) and covariance (D, D) of rows x (N, D), optionally pooled over all processes."""
    stats = torch.cat([x.new_tensor([x.shape[0]]), x.sum(0), (x.T @ x).reshape(-1)])
    if across_processes:
        distributed.all_reduce_sum_(stats)
    n, d = stats[0].clamp_min(1.0), x.shape[1]
    mean = stats[1 : 1 + d] / n
    cov = stats[1 + d :].reshape(d, d) / n - torch.outer(mean, mean)
    return mean, cov


class SimVQ(SingleCodebookQuantizer):
    """SimVQ: a frozen random codebook re-parameterised by one trained linear layer. z (B, D, *S).

    Zhu et al., 2024. `codebook_dim` (default D) is the width of the frozen codebook C; codes are C W.
    `moment_init=False` keeps the paper's random W instead of matching it to the first batch;
    `dead_code_threshold=0` turns off the re-drawing of unused frozen entries (see ProjectedCodebook).
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        codebook_dim: int | None = None,
        commitment_weight: float = 0.25,
        moment_init: bool = True,
        dead_code_threshold: float = 0.1,
        dead_code_window: float = 4.0,
        gradient: GradientEstimator = "ste",
    ) -> None:
        codebook = ProjectedCodebook(
            dim,
            codebook_size,
            codebook_dim or dim,
            commitment_weight=commitment_weight,
            moment_init=moment_init,
            dead_code_threshold=dead_code_threshold,
            dead_code_window=dead_code_window,
        )
        super().__init__(dim, codebook, None, gradient)


class LCQuantizer(SimVQ):
    """VQGAN-LC's large codebook: K frozen entries of width `codebook_dim` from k-means on features, a trained
    projector into the latent space. Practical at 100k+ entries. z (B, D, *S). Zhu et al., 2024.

    Call `init_from_features(features)` once before training (e.g. with pretrained encoder features);
    without it the frozen entries are random, which makes this a wide SimVQ. Other options as in SimVQ.
    """

    def __init__(self, dim: int, codebook_size: int, codebook_dim: int, **options) -> None:
        super().__init__(dim, codebook_size, codebook_dim=codebook_dim, **options)

    @torch.no_grad()
    def init_from_features(self, features: Tensor, latents: Tensor | None = None, *, iters: int = 10) -> None:
        """Set the frozen entries to k-means centroids of features (M, codebook_dim) or (B, codebook_dim, *S).

        With `latents` (M, dim), the encoder's outputs for the same M items, the projector is also fitted by
        least squares so that projector(feature_i) ~ latent_i: each codeword then starts in the middle of the
        latents of its cluster instead of wherever a random projector puts it.
        """
        base = self.codebook.base
        features = self._rows(features, base.shape[1], "features")
        centers, _ = kmeans(features.to(base.device), self.codebook_size, iters=iters)
        base.copy_(distributed.broadcast_(centers))  # each process may hold other features: rank 0's centres win
        if latents is None:
            return
        latents = self._rows(latents, self.dim, "latents")
        if latents.shape[0] != features.shape[0]:
            raise ValueError(f"latents must pair with features: got {latents.shape[0]} latents for {features.shape[0]} features")
        f = torch.cat([features.double(), features.new_ones(features.shape[0], 1, dtype=torch.float64)], dim=1)
        ridge = 1e-6 * f.pow(2).sum() / f.shape[0]
        gram = f.T @ f + ridge * torch.eye(f.shape[1], dtype=torch.float64)
        solution = torch.linalg.solve(gram, f.T @ latents.double())  # (c + 1, dim)
        projector = self.codebook.projector
        projector.weight.copy_(solution[:-1].T.to(projector.weight.dtype))
        projector.bias.copy_(solution[-1].to(projector.bias.dtype))
        distributed.broadcast_(projector.weight.data)
        distributed.broadcast_(projector.bias.data)
        self.codebook.initialized.fill_(True)  # the projector is data-initialised already

    @staticmethod
    def _rows(t: Tensor, width: int, name: str) -> Tensor:
        if t.ndim > 2:
            t = t.movedim(1, -1).reshape(-1, t.shape[1])
        if t.ndim != 2 or t.shape[1] != width:
            raise ValueError(f"expected {name} (M, {width}), got {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contain NaN or infinite values")
        return t.detach()
