"""The quantizer contract shared by every quantizer: channels-first input, a frozen output record."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

GradientEstimator = Literal["ste", "rotation"]


@dataclass(frozen=True)
class QuantizerOutput:
    """What every quantizer returns from `forward`."""

    quantized: Tensor  # (B, D, *S), same shape as the input
    indices: Tensor  # (B, Q, *S) int64, Q = number of codebooks
    loss: Tensor  # scalar: commitment + codebook terms, already weighted
    stats: dict[str, Tensor] = field(default_factory=dict)


def check_input(z: Tensor, dim: int, name: str = "z") -> None:
    """Raise a clear error unless z is a finite float tensor of shape (B, dim, *S)."""
    if not isinstance(z, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(z).__name__}")
    if z.ndim < 3 or z.ndim > 5:
        raise ValueError(
            f"expected {name} of shape (B, {dim}, T), (B, {dim}, H, W) or (B, {dim}, D, H, W), got {tuple(z.shape)}"
        )
    if z.shape[1] != dim:
        raise ValueError(f"expected {name} with {dim} channels in dim 1, got shape {tuple(z.shape)}")
    if not z.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {z.dtype}")
    if not torch.isfinite(z).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def check_indices(indices: Tensor, num_codebooks: int, codebook_size: int, *, allow_fewer: bool = False) -> None:
    """Raise a clear error unless indices is an integer tensor (B, Q, *S) with values in [0, codebook_size)."""
    if not isinstance(indices, Tensor) or indices.is_floating_point() or indices.dtype == torch.bool:
        raise TypeError(f"indices must be an integer tensor, got {getattr(indices, 'dtype', type(indices).__name__)}")
    if indices.ndim < 3:
        raise ValueError(f"expected indices of shape (B, {num_codebooks}, *S), got {tuple(indices.shape)}")
    q = indices.shape[1]
    if q > num_codebooks or q < 1 or (q != num_codebooks and not allow_fewer):
        expected = f"1..{num_codebooks}" if allow_fewer else str(num_codebooks)
        raise ValueError(f"expected {expected} codebooks in dim 1 of indices, got shape {tuple(indices.shape)}")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= codebook_size):
        raise ValueError(
            f"indices must lie in [0, {codebook_size}), got values in [{int(indices.min())}, {int(indices.max())}]"
        )


def to_rows(z: Tensor) -> Tensor:
    """(B, D, *S) -> (B * prod(S), D), one row per token."""
    return z.movedim(1, -1).reshape(-1, z.shape[1])


def from_rows(rows: Tensor, like_shape: tuple[int, ...]) -> Tensor:
    """(N, C) rows back to (B, C, *S) given the input's shape (B, D, *S)."""
    b, spatial = like_shape[0], like_shape[2:]
    return rows.reshape(b, *spatial, rows.shape[-1]).movedim(-1, 1)


def straight_through(x: Tensor, q: Tensor) -> Tensor:
    """Forward value q, gradient of the identity to x (van den Oord et al., 2017)."""
    return x + (q - x).detach()


def rotation_trick(x: Tensor, q: Tensor, eps: float = 1e-8) -> Tensor:
    """Forward value q; the gradient reaches x through the fixed rotation and scaling that maps x onto q.

    Fifty et al., "Restructuring Vector Quantization with the Rotation Trick" (2024). Rows (N, D).
    """
    with torch.no_grad():
        x_norm = x.norm(dim=-1, keepdim=True).clamp_min(eps)
        q_norm = q.norm(dim=-1, keepdim=True).clamp_min(eps)
        u = x / x_norm
        v = q / q_norm
        r = nn.functional.normalize(u + v, dim=-1, eps=eps)
        scale = q_norm / x_norm
    # Householder-style rotation R = I - 2 r r^T + 2 v u^T maps u to v; only x carries gradient.
    rotated = x - 2 * (x * r).sum(-1, keepdim=True) * r + 2 * (x * u).sum(-1, keepdim=True) * v
    return scale * rotated


def apply_estimator(x: Tensor, q: Tensor, estimator: GradientEstimator) -> Tensor:
    """Pass q forward with the chosen gradient estimator towards x."""
    if estimator == "ste":
        return straight_through(x, q)
    if estimator == "rotation":
        return rotation_trick(x, q)
    raise ValueError(f"gradient must be 'ste' or 'rotation', got {estimator!r}")


class Projection(nn.Module):
    """Optional pair of linear maps into and out of a lower-dimensional codebook space."""

    def __init__(self, dim: int, codebook_dim: int | None) -> None:
        super().__init__()
        self.enabled = codebook_dim is not None and codebook_dim != dim
        inner = codebook_dim if codebook_dim is not None else dim
        self.project_in: nn.Module = nn.Linear(dim, inner) if self.enabled else nn.Identity()
        self.project_out: nn.Module = nn.Linear(inner, dim) if self.enabled else nn.Identity()


def check_positive(**values: int | float) -> None:
    """Raise ValueError naming the first argument that is not >= 1."""
    for name, value in values.items():
        if value is None or value < 1 or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"{name} must be >= 1, got {value!r}")


def usage_stats(counts: Tensor) -> dict[str, Tensor]:
    """Utilisation (fraction of codes used) and perplexity from one batch's code counts (K,)."""
    total = counts.sum().clamp_min(1)
    p = counts / total
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"utilization": (counts > 0).float().mean(), "perplexity": entropy.exp()}
