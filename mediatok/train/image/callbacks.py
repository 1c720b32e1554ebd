"""Image callbacks: a PNG grid of validation reconstructions, and PSNR / MS-SSIM of the validation crops.

Both read the codec output that `CodecModule.validation_step` returns, so nothing runs the codec twice.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch

from mediatok.codecs.image.metrics import ms_ssim
from mediatok.train.callbacks import samples_root


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (B, 3, H, W) in [0, 1] -> uint8 (B, H, W, 3), clamped and rounded as a decoded file would be."""
    return x.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class ImageSamples(L.Callback):
    """After each validation: <log_dir>/samples/step<N>.png, the first `num` crops above their reconstructions."""

    def __init__(self, num: int = 4) -> None:
        self.num = num

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        root = samples_root(trainer, batch_idx)
        if root is None:
            return
        from PIL import Image

        ref = to_uint8(batch[: self.num])
        rec = to_uint8(pl_module.losses.reconstruction(outputs)[: self.num])
        grid = np.concatenate([np.concatenate(list(ref), axis=1), np.concatenate(list(rec), axis=1)], axis=0)
        root.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(root / f"step{int(pl_module.steps):07d}.png")


class ImageQuality(L.Callback):
    """PSNR (on the uint8-rounded output) and MS-SSIM of every validation crop, logged as val/psnr, val/ms_ssim.

    A checkpoint callback may monitor `val/ms_ssim`."""

    def __init__(self) -> None:
        self._psnr: list[float] = []
        self._msssim: list[float] = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        rec = torch.from_numpy(to_uint8(pl_module.losses.reconstruction(outputs))).permute(0, 3, 1, 2).double() / 255
        ref = batch.detach().double().cpu()
        mse = (rec - ref).square().flatten(1).mean(1).clamp_min(1e-10)
        self._psnr += (10 * torch.log10(1 / mse)).tolist()
        self._msssim += ms_ssim(rec, ref, data_range=1.0).tolist()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self._psnr:
            pl_module.log("val/psnr", float(np.mean(self._psnr)), sync_dist=True)
            pl_module.log("val/ms_ssim", float(np.mean(self._msssim)), sync_dist=True, prog_bar=True)
        self._psnr, self._msssim = [], []


def load_features(path: str | Path) -> torch.Tensor:
    """(M, C) float features from a .npy (no pickles) or .safetensors file (its one tensor, or "features")."""
    path = Path(path)
    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False)
        features = torch.from_numpy(np.asarray(array, dtype=np.float32))
    elif path.suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        if "features" not in tensors and len(tensors) != 1:
            raise ValueError(f"{path} holds {sorted(tensors)}: name the feature tensor 'features'")
        features = tensors.get("features", next(iter(tensors.values()))).float()
    else:
        raise ValueError(f"feature file must be .npy or .safetensors, got {path.name}")
    if features.ndim != 2 or features.shape[0] < 1:
        raise ValueError(f"{path}: expected features (M, C), got {tuple(features.shape)}")
    return features


class CodebookFromFeatures(L.Callback):
    """VQGAN-LC's initialisation from a user's feature file: the frozen codebook of an LC quantizer becomes k-means
    centres of the (M, codebook_dim) features (e.g. CLIP image-patch features computed elsewhere), once, when a
    run starts from scratch; the projector into the latent space is then matched to the first batch and trained.

    Set the network's `quantizer_warmup: 0` with it: the warm-up would initialise the codebook again.
    """

    def __init__(self, path: str, iters: int = 10) -> None:
        self.path, self.iters = path, iters

    def on_fit_start(self, trainer, pl_module) -> None:
        from mediatok.quantizers import LCQuantizer

        quantizer = getattr(pl_module.codec, "quantizer", None)
        if not isinstance(quantizer, LCQuantizer):
            raise ValueError(f"CodebookFromFeatures initialises an LC quantizer; this codec has "
                             f"{type(quantizer).__name__}")
        if int(pl_module.steps) > 0:
            return  # resumed: the codebook is in the checkpoint
        features = load_features(self.path)
        if features.shape[0] < quantizer.codebook_size:
            raise ValueError(f"{self.path}: {features.shape[0]} features cannot seed {quantizer.codebook_size} codes")
        quantizer.init_from_features(features.to(pl_module.device), iters=self.iters)
