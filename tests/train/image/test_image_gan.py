"""The image GAN phase: PatchGAN scores, the hinge objective, and VQGAN's adaptive weight in CodecModule."""
from __future__ import annotations

import pytest
import torch

from mediatok.codecs.image.model import ImageVQ, ImageVQConfig
from mediatok.train.gan import discriminator_loss, generator_losses
from mediatok.train.image import ImageLosses, ImageLossWeights, PatchDiscriminator
from mediatok.train.losses import LossSet
from mediatok.train.module import CodecModule


def _photo_batch(photo, size: int = 64) -> torch.Tensor:
    x = torch.from_numpy(photo[:size, :2 * size].copy()).permute(2, 0, 1).float() / 255
    return torch.stack([x[:, :, :size], x[:, :, size:]])  # (2, 3, size, size)


def test_patch_discriminator_scores_patches_and_returns_its_features(photo):
    disc = PatchDiscriminator(width=8, layers=3)
    [(scores, features)] = disc(_photo_batch(photo, 128))
    assert scores.shape == (2, 1, 14, 14)  # 128 / 8 = 16, less one pixel for each of the two 4x4 stride-1 convs
    assert [f.shape[1] for f in features] == [8, 16, 32, 64]
    with pytest.raises(ValueError, match="width and layers"):
        PatchDiscriminator(width=0)


def test_hinge_objective_has_its_margins():
    def judged(score: float):
        return [(torch.full((1, 1, 2, 2), score), [torch.ones(1, 2, 2, 2)])]

    assert float(discriminator_loss(judged(1.0), judged(-1.0), "hinge")) == 0.0  # beyond both margins: no loss
    assert float(discriminator_loss(judged(0.0), judged(0.0), "hinge")) == 2.0
    adv, fm = generator_losses(judged(1.0), judged(3.0), "hinge")
    assert float(adv) == -3.0 and float(fm) == 0.0  # the generator keeps raising fake scores, without a floor
    with pytest.raises(ValueError, match="gan_loss must be one of"):
        discriminator_loss(judged(0.0), judged(0.0), "wgan")


def test_adaptive_weight_balances_the_gradients_at_the_last_layer(photo):
    torch.manual_seed(0)
    codec = ImageVQ(ImageVQConfig(widths=(8, 8, 8, 8), blocks=1, codebook_size=32))
    losses = ImageLosses(ImageLossWeights(adversarial=1.0, feature=0.0))
    module = CodecModule(codec, losses, PatchDiscriminator(width=8), gan_loss="hinge", adaptive_gan_weight=True)
    module.log = lambda *a, **k: None  # outside a Trainer
    batch = _photo_batch(photo)
    out = codec(batch)
    rec = losses.weights.total(losses(batch, out))
    adv, _ = module._adversarial_terms(batch, out)
    weight = module._adaptive_weight(rec, adv)
    last = losses.last_layer(codec)
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv, last, retain_graph=True)[0]
    # Weighted, the adversarial gradient at the last layer is as large as the reconstruction's (up to the 1e-4
    # that keeps the ratio finite when the discriminator's gradient vanishes).
    assert float(weight) == pytest.approx(float(g_rec.norm() / (g_adv.norm() + 1e-4)), rel=1e-5)
    assert float((weight * g_adv).norm()) == pytest.approx(float(g_rec.norm()), rel=0.05)


def test_adaptive_weight_needs_a_last_layer():
    class NoLastLayer(LossSet):
        weights = ImageLossWeights()

    codec = ImageVQ(ImageVQConfig(widths=(8, 8, 8, 8), blocks=1, codebook_size=32))
    with pytest.raises(ValueError, match="last_layer returned None"):
        CodecModule(codec, NoLastLayer(), PatchDiscriminator(width=8), adaptive_gan_weight=True)
    with pytest.raises(ValueError, match="gan_loss must be one of"):
        CodecModule(codec, ImageLosses(), gan_loss="wgan")
