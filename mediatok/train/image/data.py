"""Image data for codec training: a folder of photos per split, held in memory as uint8 arrays.

    root/train/*.png|jpg|...  --read once (EXIF-rotated, RGB)-->  uint8 (H, W, 3) arrays
        --random crop (image drawn by area) of crop / s px, s log-uniform in [1, max_upscale], bicubic-resized
          to crop; random horizontal flip--> (B, 3, crop, crop) float in [0, 1]
    root/val/*  --centre crop of val_crop (smaller images: their largest centred square)--> fixed validation batch

`scripts/prepare_images.py` writes data/images/{train,val,test}. The training photos (31 MP) fit in memory as
uint8, so the loader does no decoding and costs almost nothing next to the model on a 2-core machine.
"""
from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from mediatok.codecs.image.io import READ_SUFFIXES, read_image
from mediatok.train.data import item_rng


def read_folder(folder: str | Path, min_side: int = 1) -> list[np.ndarray]:
    """Every image under folder as uint8 (H, W, 3), sorted by path; those with a side below min_side left out."""
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in READ_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(sorted(READ_SUFFIXES))}) under {folder}; "
                                "run scripts/prepare_images.py")
    images = [read_image(p) for p in paths]
    kept = [im for im in images if min(im.shape[:2]) >= min_side]
    if not kept:
        raise ValueError(f"no image under {folder} has both sides >= {min_side} px")
    return kept


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255)


class RandomCrops(Dataset):
    """Item k: a random crop x crop from an image drawn in proportion to its area, flipped left-right half the time.

    With max_upscale > 1 the crop is cut at crop / s px and resized back to crop (bicubic), s drawn log-uniform in
    [1, max_upscale]: the same scene seen larger, i.e. smoother per token. Why: photos come at any resolution, and
    a tokenizer trained only at the training photos' own scale leaves the codes that a large photo's smooth
    regions need coarse and spends codes on texture that such photos lack.
    """

    def __init__(self, images: list[np.ndarray], crop: int, epoch_size: int, seed: int = 0,
                 max_upscale: float = 1.0) -> None:
        small = [im.shape[:2] for im in images if min(im.shape[:2]) < crop]
        if small:
            raise ValueError(f"{len(small)} training images are smaller than the {crop} px crop (e.g. {small[0]})")
        if not 1.0 <= max_upscale <= crop / 8:
            raise ValueError(f"max_upscale must lie in [1, crop / 8 = {crop / 8:g}], got {max_upscale}")
        self.images, self.crop, self.epoch_size, self.seed = images, crop, epoch_size, seed
        self.max_upscale = max_upscale
        area = np.array([im.shape[0] * im.shape[1] for im in images], dtype=np.float64)
        self.p = area / area.sum()

    def __len__(self) -> int:
        return self.epoch_size

    def __getitem__(self, k: int) -> torch.Tensor:
        rng = item_rng(self.seed, k)
        im = self.images[int(rng.choice(len(self.p), p=self.p))]
        side = self.crop
        if self.max_upscale > 1:
            side = round(self.crop / math.exp(rng.uniform(0.0, math.log(self.max_upscale))))
        top = int(rng.integers(0, im.shape[0] - side + 1))
        left = int(rng.integers(0, im.shape[1] - side + 1))
        patch = im[top : top + side, left : left + side]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        x = to_tensor(patch)
        if side != self.crop:
            x = F.interpolate(x[None], size=(self.crop, self.crop), mode="bicubic", align_corners=False)[0].clamp_(0, 1)
        return x


def centre_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """The centred size x size crop, or the largest centred square when the image is smaller."""
    side = min(size, *rgb.shape[:2])
    top, left = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
    return rgb[top : top + side, left : left + side]


class ImageFolderDataModule(L.LightningDataModule):
    """Random training crops of root/train and fixed centre crops of root/val (see `scripts/prepare_images.py`)."""

    def __init__(self, root: str = "data/images", crop: int = 128, batch_size: int = 8, epoch_size: int = 8000,
                 val_crop: int = 256, val_images: int = 16, val_batch_size: int = 4, num_workers: int = 0,
                 seed: int = 0, max_upscale: float = 1.0) -> None:
        super().__init__()
        if crop < 16 or val_crop < 16:
            raise ValueError(f"crop and val_crop must be >= 16 px, got {crop}, {val_crop}")
        self.save_hyperparameters()
        self.train_set: RandomCrops | None = None
        self.val_set: list[torch.Tensor] | None = None

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        self.train_set = RandomCrops(read_folder(Path(h.root) / "train", h.crop), h.crop, h.epoch_size, seed=h.seed,
                                     max_upscale=h.max_upscale)
        val = read_folder(Path(h.root) / "val", h.val_crop)[: h.val_images]
        self.val_set = [to_tensor(centre_square(im, h.val_crop)) for im in val]

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "setup() runs first"
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, drop_last=True,
                          num_workers=self.hparams.num_workers, persistent_workers=self.hparams.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "setup() runs first"
        return DataLoader(self.val_set, batch_size=self.hparams.val_batch_size)
