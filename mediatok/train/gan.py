"""Least-squares GAN losses with feature matching, for any discriminator of the shape below.

    discriminator(x) -> [(score map, [feature maps]), ...]   one entry per sub-discriminator

LSGAN (Mao et al., 2017) and the feature-matching loss of MelGAN / HiFi-GAN, each feature term normalised by
the mean magnitude of the real features so that layers of different scales weigh alike.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

Features = list[Tensor]
Judgement = list[tuple[Tensor, Features]]


def discriminator_loss(real: Judgement, fake: Judgement) -> Tensor:
    """Least-squares GAN loss for the discriminator: real -> 1, fake -> 0."""
    return sum(((1 - r).square().mean() + f.square().mean()) for (r, _), (f, _) in zip(real, fake)) / len(real)


def generator_losses(real: Judgement, fake: Judgement) -> tuple[Tensor, Tensor]:
    """(adversarial loss, feature-matching loss) for the generator; real features are targets."""
    adv = sum((1 - f).square().mean() for f, _ in fake) / len(fake)
    fm = sum(
        F.l1_loss(ff, rf.detach()) / (rf.detach().abs().mean() + 1e-5)
        for (_, rfs), (_, ffs) in zip(real, fake)
        for rf, ff in zip(rfs, ffs)
    ) / sum(len(r[1]) for r in real)
    return adv, fm
