"""Shape's loss set: the truncated SDF's band error, a one-sided term beyond the band, and the commitment.

Marching cubes reads the SDF only in the cells next to the surface, and volumetric IoU depends only on its sign,
so the error inside the band counts (and counts `surface` times more within one cell of the surface, where a
small error moves the surface or flips a voxel), while beyond the band, where the target is clamped to +-1, any
value at least as far out is equally right: there the loss only pulls back predictions that fall short.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mediatok.train.losses import LossSet, LossWeights


@dataclass
class ShapeLossWeights(LossWeights):
    """Weights of the shape terms (and of the GAN terms, unused by the shipped recipe)."""

    band: float = 1.0
    beyond: float = 1.0
    commit: float = 1.0


class ShapeLosses(LossSet):
    """terms(batch, out) -> {"band", "beyond", "commit"} for `ShapeVQOutput`s (truncated SDFs in [-1, 1])."""

    def __init__(self, weights: ShapeLossWeights | None = None, surface: float = 4.0) -> None:
        super().__init__()
        self.weights = weights or ShapeLossWeights()
        self.surface = float(surface)
        self.truncation = 3.0  # band half-width in cells; check_codec takes the codec's own

    def forward(self, batch: Tensor, out: object) -> dict[str, Tensor]:
        """Unweighted terms; `batch` is the SDF the network saw, `out.target` its truncated form."""
        y, t = out.reconstruction.float(), out.target.float()  # (B, R, R, R) each
        inside_band = t.abs() < 1
        near = t.abs() < 1 / self.truncation  # within one cell of the surface
        w = inside_band.float() * (1 + self.surface * near.float())
        band = (w * (y - t).abs()).sum() / w.sum().clamp_min(1)
        short = torch.relu(1 - y * t.sign()) * (~inside_band).float()  # beyond the band: only falling short counts
        beyond = short.sum() / (~inside_band).float().sum().clamp_min(1)
        return {"band": band, "beyond": beyond, "commit": torch.as_tensor(out.commit_loss, dtype=y.dtype).reshape(())}

    def check_codec(self, codec: nn.Module) -> None:
        if not hasattr(codec, "truncate"):
            raise ValueError(f"ShapeLosses trains SDF networks (ShapeVQ), not {type(codec).__name__}")
        self.truncation = float(codec.cfg.truncation)
