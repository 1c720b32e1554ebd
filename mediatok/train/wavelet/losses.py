"""Rate-distortion losses of the wavelet codecs: lambda_r * distortion + rate + the entropy models' quantile loss.

    terms = {"distortion": lambda_r * scale * MSE, "rate": bits per input unit, "aux": quantile loss}

As in CompressAI's training recipes, the distortion is `lambda * 255^2 * MSE` for images in [0, 1] and the rate is
bits per pixel; audio in [-1, 1] uses `lambda * 32768^2 * MSE` (16-bit sample units) and bits per sample. lambda_r is the weight of the rate the network drew for this batch (its `lmbda`),
so one run trains every rate of the network; the weights below only balance the three terms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mediatok.train.losses import LossSet, LossWeights


@dataclass
class RateDistortionWeights(LossWeights):
    """Weights of `RateDistortionLosses`' terms (lambda itself belongs to the network's rates)."""

    distortion: float = 1.0
    rate: float = 1.0
    aux: float = 1.0


class RateDistortionLosses(LossSet):
    """lambda_r * scale^2 * MSE + bits per input sample (pixel or audio sample) + quantile loss of a
    `WaveletAutoencoder`'s output; `scale` is the peak value (255 for 8-bit images, 32768 for 16-bit audio)."""

    def __init__(self, weights: RateDistortionWeights | None = None, scale: float = 255.0) -> None:
        super().__init__()
        self.weights = weights or RateDistortionWeights()
        self.scale = float(scale)

    def forward(self, batch: Tensor, out) -> dict[str, Tensor]:
        """Unweighted terms: distortion (lambda-scaled), rate (bits per pixel or per sample), aux."""
        # bits per pixel counts pixels (not values): an image's 3 channels share one pixel, audio has one channel
        positions = batch.shape[0] * math.prod(batch.shape[2:])
        bits = -torch.log2(out.likelihoods.clamp_min(1e-12)).sum() / positions
        mse = (out.reconstruction.float() - batch).square().mean()
        return {"distortion": out.lmbda * self.scale**2 * mse, "rate": bits, "aux": out.aux_loss}

    def aux_parameters(self, codec: nn.Module) -> list[nn.Parameter]:
        """The bottlenecks' quantiles: only the aux term trains them (CompressAI gives them an optimiser of their
        own), and its gradients start thousands of times larger than the codec's, which a shared clipping norm
        would turn into vanishing codec updates."""
        return [eb.quantiles for eb in codec.bottlenecks]

    def last_layer(self, codec: nn.Module) -> Tensor:
        """The decoder's output convolution."""
        return codec.synthesis_out.weight
