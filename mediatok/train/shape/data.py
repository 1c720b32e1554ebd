"""Shape training data: the SDF grids of scripts/prepare_shapes.py, with the 48 symmetries of the cube.

    data/shapes/train.npy (N, R, R, R) float16 --item k: grid k mod N, a random axis permutation and flips-->
        float32 (R, R, R)   (an SDF stays an SDF under any isometry of the grid, so this augmentation is exact)
"""
from __future__ import annotations

from itertools import permutations
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mediatok.train.data import item_rng

PERMUTATIONS = tuple(permutations(range(3)))


def load_grids(path: str | Path) -> np.ndarray:
    """(N, R, R, R) float16 grids from a .npy written by the recipe (memory-mapped)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `OMP_NUM_THREADS=1 python scripts/prepare_shapes.py` first")
    grids = np.load(path, mmap_mode="r")
    if grids.ndim != 4 or len(set(grids.shape[1:])) != 1:
        raise ValueError(f"{path} holds an array of shape {grids.shape}, expected (N, R, R, R)")
    return grids


def symmetry(grid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of the 48 symmetries of the cube applied to an (R, R, R) grid."""
    g = np.transpose(grid, PERMUTATIONS[rng.integers(len(PERMUTATIONS))])
    flips = tuple(i for i in range(3) if rng.random() < 0.5)
    return np.flip(g, flips) if flips else g


class SymmetricGrids(Dataset):
    """`epoch_size` items: grid k mod N under a random symmetry of the cube (float32 (R, R, R))."""

    def __init__(self, grids: np.ndarray, epoch_size: int, seed: int = 0) -> None:
        if len(grids) == 0:
            raise ValueError("no training grids")
        self.grids, self.epoch_size, self.seed = grids, int(epoch_size), int(seed)

    def __len__(self) -> int:
        return self.epoch_size

    def __getitem__(self, k: int) -> torch.Tensor:
        rng = item_rng(self.seed, k)
        grid = self.grids[int(rng.integers(len(self.grids)))]
        return torch.from_numpy(np.ascontiguousarray(symmetry(np.asarray(grid), rng), dtype=np.float32))


class ShapeGridDataModule(L.LightningDataModule):
    """Random symmetric copies of root/train.npy for training, root/val.npy as they are for validation."""

    def __init__(self, root: str = "data/shapes", batch_size: int = 4, epoch_size: int = 4000,
                 val_batch_size: int = 4, num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_set: SymmetricGrids | None = None
        self.val_set: list[torch.Tensor] | None = None

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        self.train_set = SymmetricGrids(np.asarray(load_grids(Path(h.root) / "train.npy")), h.epoch_size, h.seed)
        self.val_set = [torch.from_numpy(np.asarray(g, np.float32)) for g in load_grids(Path(h.root) / "val.npy")]

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "setup() runs first"
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, drop_last=True,
                          num_workers=self.hparams.num_workers, persistent_workers=self.hparams.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "setup() runs first"
        return DataLoader(self.val_set, batch_size=self.hparams.val_batch_size)
