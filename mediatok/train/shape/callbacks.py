"""Shape training callbacks: volumetric IoU of the reconstructions on the validation grids."""
from __future__ import annotations

from typing import Any

import lightning as L
import torch


def voxel_iou(pred_sdf: torch.Tensor, true_sdf: torch.Tensor) -> torch.Tensor:
    """IoU of the insides (sdf < 0) of two batches of grids (B, R, R, R) -> (B,)."""
    a, b = pred_sdf < 0, true_sdf < 0
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


class ShapeIoU(L.Callback):
    """Logs val/iou: the mean volumetric IoU at the training resolution of the validation reconstructions."""

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._ious: list[torch.Tensor] = []

    def on_validation_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        self._ious.append(voxel_iou(outputs.reconstruction.detach(), outputs.target).cpu())

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._ious:
            module.log("val/iou", torch.cat(self._ious).mean(), sync_dist=True)
