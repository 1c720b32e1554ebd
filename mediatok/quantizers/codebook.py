"""The codebook core under every quantizer: search, updates, initialisation, restarts and usage statistics."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mediatok.kernels import nearest_codeword
from mediatok.quantizers import distributed
from mediatok.quantizers.base import check_positive, usage_stats
from mediatok.quantizers.kmeans import kmeans

Metric = Literal["l2", "cosine"]


@dataclass(frozen=True)
class CodebookResult:
    """One codebook's answer for a batch of rows."""

    quantized: Tensor  # (N, d) selected codewords, carrying gradient to the codebook when it is trained by gradient
    indices: Tensor  # (N,) int64
    loss: Tensor  # scalar, weighted
    stats: dict[str, Tensor]


class Codebook(nn.Module):
    """K codewords of dimension d, searched exactly through `mediatok.kernels.nearest_codeword`.

    Updates: exponential moving averages of assigned vectors (`ema_decay`, VQ-VAE-2 style) or gradients of the
    codebook loss (`ema_decay=None`). Initialisation: k-means++ and Lloyd steps on the first training batch.
    Dead codes: each code keeps its usage relative to uniform (1.0 = used exactly K-th of the time), averaged
    over a window of `dead_code_window * K` tokens, so the rule does not depend on the batch size; codes below
    `dead_code_threshold` are moved onto batch vectors that are poorly served (sampled by squared error).
    All updates are summed over processes, so every rank holds the same codebook.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        metric: Metric = "l2",
        ema_decay: float | None = 0.99,
        commitment_weight: float = 0.25,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 0.0,
        dead_code_window: float = 4.0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        check_positive(dim=dim, codebook_size=codebook_size)
        if metric not in ("l2", "cosine"):
            raise ValueError(f"metric must be 'l2' or 'cosine', got {metric!r}")
        if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) or None for gradient updates, got {ema_decay}")
        if dead_code_threshold < 0:
            raise ValueError(f"dead_code_threshold must be >= 0, got {dead_code_threshold}")
        self.dim, self.codebook_size, self.metric = dim, codebook_size, metric
        self.ema_decay, self.commitment_weight, self.eps = ema_decay, commitment_weight, eps
        self.kmeans_iters, self.dead_code_threshold, self.dead_code_window = kmeans_iters, dead_code_threshold, dead_code_window
        init = torch.randn(codebook_size, dim) / math.sqrt(dim)
        if ema_decay is None:
            self.embed = nn.Parameter(init)
        else:
            self.register_buffer("embed", init)
            self.register_buffer("ema_count", torch.ones(codebook_size))
            self.register_buffer("ema_sum", init.clone())
        self.register_buffer("initialized", torch.tensor(not kmeans_init))
        self.register_buffer("usage", torch.ones(codebook_size))
        # Counts since the last reset_usage(): for utilisation over a whole evaluation, not saved in checkpoints.
        self.register_buffer("usage_counts", torch.zeros(codebook_size, dtype=torch.float64), persistent=False)

    @property
    def trained_by_gradient(self) -> bool:
        return self.ema_decay is None

    def codes(self) -> Tensor:
        """The effective codewords (K, d) used for search and lookup."""
        return F.normalize(self.embed, dim=-1) if self.metric == "cosine" else self.embed

    def lookup(self, indices: Tensor) -> Tensor:
        """Codewords for integer indices of any shape -> (*indices.shape, d)."""
        return F.embedding(indices, self.codes())

    def reset_usage(self) -> None:
        """Start counting code usage afresh (for utilisation over an evaluation set)."""
        self.usage_counts.zero_()

    def utilization(self) -> float:
        """Fraction of codes used since the last reset_usage()."""
        return float((self.usage_counts > 0).double().mean())

    def forward(self, x: Tensor) -> CodebookResult:
        """Quantize rows x (N, d)."""
        if self.training and not bool(self.initialized):
            self._initialize(x.detach())
        if self.metric == "cosine":
            x = F.normalize(x, dim=-1)
        codes = self.codes()
        indices, sq_dist = nearest_codeword(x.detach(), codes.detach())
        quantized = F.embedding(indices, codes)
        counts = torch.bincount(indices, minlength=self.codebook_size).to(torch.float32)
        self.usage_counts += counts.to(torch.float64)
        commitment = F.mse_loss(x, quantized.detach())
        loss = self.commitment_weight * commitment
        if self.trained_by_gradient and codes.requires_grad:
            loss = loss + F.mse_loss(x.detach(), quantized)
        if self.training:
            counts = distributed.all_reduce_sum_(counts.clone())
            if self.ema_decay is not None:
                self._ema_update(x.detach(), indices, counts)
            self._track_usage_and_restart(x.detach(), sq_dist, counts)
        stats = usage_stats(counts)
        if self.dead_code_threshold > 0:
            stats["dead_codes"] = (self.usage < self.dead_code_threshold).sum().float()
        stats["commitment"] = commitment.detach()
        return CodebookResult(quantized, indices, loss, stats)

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        if self.metric == "cosine":
            x = F.normalize(x, dim=-1)
        centers, counts = kmeans(x, self.codebook_size, iters=self.kmeans_iters)
        # Each process saw its own batch: every rank starts from rank 0's centres, so the codebooks agree
        # from the first step (the EMA updates and restarts after it are all-reduced or broadcast).
        distributed.broadcast_(centers)
        distributed.broadcast_(counts)
        self.embed.data.copy_(centers)
        if self.ema_decay is not None:
            self.ema_count.copy_(counts.clamp_min(1.0))
            self.ema_sum.copy_(centers * self.ema_count[:, None])
        # Usage starts from the k-means cluster sizes: seeds that won no vector (a first batch smaller than K
        # gives jittered copies) are dead at once and get restarted, instead of waiting out a usage window.
        self.usage.copy_(counts * (self.codebook_size / counts.sum().clamp_min(1.0)))
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, x: Tensor, indices: Tensor, counts: Tensor) -> None:
        sums = distributed.all_reduce_sum_(torch.zeros_like(self.ema_sum).index_add_(0, indices, x.float()))
        self.ema_count.lerp_(counts, 1.0 - self.ema_decay)
        self.ema_sum.lerp_(sums, 1.0 - self.ema_decay)
        # Laplace smoothing keeps rarely used codes from dividing by ~0.
        total = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (total + self.codebook_size * self.eps) * total
        self.embed.copy_(self.ema_sum / smoothed[:, None])

    @torch.no_grad()
    def _track_usage_and_restart(self, x: Tensor, sq_dist: Tensor, counts: Tensor) -> None:
        tokens = counts.sum()
        if tokens <= 0:
            return
        keep = math.exp(-float(tokens) / (self.dead_code_window * self.codebook_size))
        self.usage.mul_(keep).add_(counts * (self.codebook_size / tokens), alpha=1.0 - keep)
        if self.dead_code_threshold <= 0:
            return
        dead = torch.nonzero(self.usage < self.dead_code_threshold).squeeze(1)
        if dead.numel() == 0:
            return
        # At most one restart per batch row, without replacement: duplicated replacements would shadow each
        # other (only the lowest index can win) and stay dead. The least used codes go first.
        count = distributed.broadcast_(torch.tensor([min(dead.numel(), x.shape[0])], device=x.device))
        dead = dead[torch.argsort(self.usage[dead], stable=True)[: int(count)]]
        # Rank 0 draws the replacements from its batch; every rank receives the same vectors.
        if distributed.rank() == 0:
            pick = torch.multinomial(sq_dist.double() + 1e-12, dead.numel(), replacement=False)
            fresh = x[pick].float()
        else:
            fresh = x.new_empty(dead.numel(), self.dim, dtype=torch.float32)
        distributed.broadcast_(fresh)
        self._replace_codes(dead, fresh)
        self.usage[dead] = 1.0

    @torch.no_grad()
    def move_codes(self, indices: Tensor, codewords: Tensor) -> None:
        """Set the codewords at `indices` (M,) to `codewords` (M, d), e.g. from `rebalance_codebook` after training.

        Goes through the same path as a dead-code restart (an LC / SimVQ codebook re-draws its frozen entries
        through the projector), and marks the moved codes as used at the uniform rate so that the next training
        steps do not take them for dead before they have been given a chance.
        """
        indices = torch.as_tensor(indices, dtype=torch.long, device=self.usage.device).reshape(-1)
        if codewords.shape != (indices.numel(), self.dim):
            raise ValueError(f"expected codewords ({indices.numel()}, {self.dim}) for {indices.numel()} indices, "
                             f"got {tuple(codewords.shape)}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(f"indices must lie in [0, {self.codebook_size}), got {int(indices.min())}..{int(indices.max())}")
        self._replace_codes(indices, codewords.to(self.usage.device).float())
        self.usage[indices] = 1.0

    @torch.no_grad()
    def _replace_codes(self, dead: Tensor, fresh: Tensor) -> None:
        """Move the codewords with indices `dead` (num_dead,) onto the rows of fresh (num_dead, d)."""
        if self.metric == "cosine":
            fresh = F.normalize(fresh, dim=-1)
        self.embed.data[dead] = fresh.to(self.embed.dtype)
        if self.ema_decay is not None:
            self.ema_count[dead] = 1.0
            self.ema_sum[dead] = fresh
