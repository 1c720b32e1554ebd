"""Image's training pieces, chosen by class path in configs/image/*.yaml and trained by `CodecModule`:

    losses:        ImageLosses (L1 + MS-SSIM + focal frequency + commitment) with ImageLossWeights
    discriminator: PatchDiscriminator (PatchGAN, spectral norm; hinge loss and adaptive weight in CodecModule)
    data:          ImageFolderDataModule over data/images/{train,val} (scripts/prepare_images.py)
    callbacks:     ImageSamples (PNG grids of reconstructions), ImageQuality (val/psnr, val/ms_ssim),
                   CodebookFromFeatures (VQGAN-LC's codebook from a user's .npy / .safetensors features)
    export hook:   fit_prior (MarkovPrior on the exported model's own tokens), registered for family "image"
"""
from __future__ import annotations

from mediatok.train.export import register_entropy_fit
from mediatok.train.image.callbacks import CodebookFromFeatures, ImageQuality, ImageSamples, load_features
from mediatok.train.image.data import ImageFolderDataModule, RandomCrops, read_folder
from mediatok.train.image.discriminators import PatchDiscriminator
from mediatok.train.image.losses import ImageLosses, ImageLossWeights, focal_frequency_loss, ms_ssim_loss
from mediatok.train.image.prior import fit_prior

register_entropy_fit("image", fit_prior)

__all__ = ["CodebookFromFeatures", "ImageFolderDataModule", "ImageLossWeights", "ImageLosses", "ImageQuality",
           "ImageSamples", "PatchDiscriminator", "RandomCrops", "fit_prior", "focal_frequency_loss", "load_features",
           "ms_ssim_loss", "read_folder"]
