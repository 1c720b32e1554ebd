"""Shape's training pieces, chosen by class path in configs/shape/*.yaml and trained by `CodecModule`:

    losses:      ShapeLosses (band L1 with the surface weighted, one-sided beyond the band, commitment)
    data:        ShapeGridDataModule over data/shapes/{train,val}.npy (scripts/prepare_shapes.py)
    callbacks:   ShapeIoU (val/iou at the training resolution)
    export hook: fit_prior (MarkovPrior on the exported model's own tokens), registered for family "shape"
"""
from __future__ import annotations

from mediatok.train.export import register_entropy_fit
from mediatok.train.shape.callbacks import ShapeIoU, voxel_iou
from mediatok.train.shape.data import ShapeGridDataModule, SymmetricGrids, load_grids, symmetry
from mediatok.train.shape.losses import ShapeLosses, ShapeLossWeights
from mediatok.train.shape.prior import fit_prior

register_entropy_fit("shape", fit_prior)

__all__ = ["ShapeGridDataModule", "ShapeIoU", "ShapeLossWeights", "ShapeLosses", "SymmetricGrids", "fit_prior",
           "load_grids", "symmetry", "voxel_iou"]
