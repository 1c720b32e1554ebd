"""Image's loss set: L1 + MS-SSIM + focal frequency + commitment, none of which needs downloaded weights.

LPIPS and VGG perceptual losses need pretrained networks that cannot be had offline. MS-SSIM (Wang et al.
2003) carries the structural part instead, and the focal frequency loss (Jiang et al., "Focal Frequency Loss
for Image Reconstruction and Synthesis", 2021) the high frequencies that L1 under-weights: it compares 2-D
spectra and weights each frequency by its current error, so the frequencies the decoder gets wrong (fine
texture, which a pixel loss blurs) dominate instead of the easy low frequencies.

MS-SSIM is `mediatok.codecs.image.metrics.ms_ssim`, the measure `mediatok eval` reports: its scale count follows
the crop (pytorch-msssim refuses crops of 160 px or less at its five scales; 128 px crops get four).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mediatok.codecs.image.metrics import ms_ssim
from mediatok.train.losses import LossSet, LossWeights


def ms_ssim_loss(x: Tensor, y: Tensor) -> Tensor:
    """1 - MS-SSIM(x, y) averaged over batches (B, 3, H, W) in [0, 1], as many scales as the crop allows."""
    return 1 - ms_ssim(x.float(), y.float(), data_range=1.0).mean()


def focal_frequency_loss(x: Tensor, y: Tensor, alpha: float = 1.0) -> Tensor:
    """Focal frequency loss between images (B, C, H, W): mean over frequencies of w * |X - Y|^2 with the
    focusing weight w = |X - Y|^alpha, scaled to [0, 1] per image and channel and held constant (detached)."""
    fx = torch.fft.fft2(x.float(), norm="ortho")
    fy = torch.fft.fft2(y.float(), norm="ortho")
    dist = (fx - fy).abs().square()  # (B, C, H, W)
    with torch.no_grad():
        w = dist.sqrt().pow(alpha)
        w = w / w.flatten(2).amax(-1).clamp_min(1e-12)[..., None, None]
    return (w * dist).mean()


@dataclass
class ImageLossWeights(LossWeights):
    """Weights of `ImageLosses`' terms (and, inherited, of the GAN's adversarial and feature terms)."""

    l1: float = 1.0
    ms_ssim: float = 1.0
    frequency: float = 1.0
    commit: float = 1.0


class ImageLosses(LossSet):
    """L1 + (1 - MS-SSIM) + focal frequency + commitment for an `ImageVQ`'s output. batch (B, 3, H, W) in [0, 1].

    Terms (unweighted): "l1", "ms_ssim", "frequency", "commit" (the quantizer's own, already scaled by its
    commitment_weight); weighted by `weights` (an `ImageLossWeights`).
    """

    def __init__(self, weights: ImageLossWeights | None = None, frequency_alpha: float = 1.0) -> None:
        super().__init__()
        self.weights = weights or ImageLossWeights()
        self.frequency_alpha = frequency_alpha

    def forward(self, batch: Tensor, out) -> dict[str, Tensor]:
        """Unweighted L1, 1 - MS-SSIM, focal frequency and commitment losses."""
        x = out.reconstruction.float()
        return {"l1": (x - batch).abs().mean(), "ms_ssim": ms_ssim_loss(x, batch),
                "frequency": focal_frequency_loss(x, batch, self.frequency_alpha), "commit": out.commit_loss}

    def last_layer(self, codec: nn.Module) -> Tensor:
        """The decoder's output convolution, for the adaptive GAN weight."""
        return codec.decoder.conv_out.weight
