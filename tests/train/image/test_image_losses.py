"""Image training losses: MS-SSIM at any crop size, the focal frequency loss, the loss set's terms."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim as reference_ms_ssim

from mediatok.codecs.image.metrics import ms_ssim, msssim_levels
from mediatok.codecs.image.model import ImageVQ, ImageVQConfig
from mediatok.train.image import ImageLosses, ImageLossWeights, focal_frequency_loss, ms_ssim_loss


def _pair(photo: np.ndarray, size: int, noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(photo[:size, :size].copy()).permute(2, 0, 1)[None].float() / 255
    g = torch.Generator().manual_seed(0)
    return x, (x + noise * torch.randn(x.shape, generator=g)).clamp(0, 1)


@pytest.mark.parametrize(("side", "levels"), [(256, 5), (161, 5), (160, 4), (128, 4), (80, 3), (11, 1), (5, 1)])
def test_msssim_keeps_the_scales_the_crop_allows(side, levels):
    assert msssim_levels(side)[0] == levels
    with pytest.raises(ValueError, match="at least 3 x 3"):
        msssim_levels(2)


def test_msssim_is_pytorch_msssims_above_160_px(photo):
    x, y = _pair(photo, 192)
    assert float(ms_ssim(x.double(), y.double())[0]) == pytest.approx(float(reference_ms_ssim(x, y, data_range=1.0)),
                                                                      abs=1e-5)


def test_msssim_loss_trains_on_128_px_crops(photo):
    x, y = _pair(photo, 128)
    y.requires_grad_(True)
    loss = ms_ssim_loss(y, x)
    loss.backward()
    assert 0.0 < float(loss) < 1.0 and y.grad is not None and y.grad.abs().sum() > 0
    assert float(ms_ssim_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(ms_ssim_loss(_pair(photo, 128, 0.2)[1], x)) > float(loss)  # more noise, more loss


def test_focal_frequency_loss_weights_each_frequency_by_its_error(photo):
    x, y = _pair(photo, 64)
    mse = float((x - y).square().mean())
    ffl = float(focal_frequency_loss(y, x))
    assert 0.0 < ffl < mse  # Parseval: mean |X - Y|^2 is the MSE, and every weight is <= 1
    assert float(focal_frequency_loss(x, x)) == 0.0
    # An error at one frequency (and its mirror) has weight 1 wherever it is non-zero: the loss is the MSE.
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    wave = 0.1 * torch.cos(2 * torch.pi * (5 * xx + 3 * yy) / 64)
    assert float(focal_frequency_loss(x + wave, x)) == pytest.approx(float(wave.square().mean()), rel=1e-4)


def test_image_losses_return_every_weighted_term(photo):
    model = ImageVQ(ImageVQConfig(widths=(8, 8, 8, 8), blocks=1, codebook_size=32, kmeans_init=False))
    x = _pair(photo, 64)[0]
    losses = ImageLosses(ImageLossWeights(l1=2.0, ms_ssim=0.0, frequency=1.0, commit=1.0))
    terms = losses(x, model(x))
    assert set(terms) == {"l1", "ms_ssim", "frequency", "commit"}
    total = losses.weights.total(terms)
    assert float(total) == pytest.approx(float(2 * terms["l1"] + terms["frequency"] + terms["commit"]), rel=1e-6)
    total.backward()
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0
