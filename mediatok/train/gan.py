"""GAN losses with feature matching, for any discriminator of the shape below.

    discriminator(x) -> [(score map, [feature maps]), ...]   one entry per sub-discriminator

Two objectives, chosen by name (`CodecModule(gan_loss=...)`):
- "lsgan": least squares (Mao et al., 2017), the audio codecs' choice (HiFi-GAN, EnCodec);
- "hinge": the hinge loss of VQGAN's PatchGAN (Lim and Ye, 2017): the discriminator pushes real scores above +1
  and fake ones below -1, the generator raises fake scores without bound.
Feature matching (MelGAN / HiFi-GAN) normalises each feature term by the mean magnitude of the real features, so
that layers of different scales weigh alike.
"""
from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

Features = list[Tensor]
Judgement = list[tuple[Tensor, Features]]
GanLoss = Literal["lsgan", "hinge"]
GAN_LOSSES = ("lsgan", "hinge")


def _check(kind: str) -> None:
    if kind not in GAN_LOSSES:
        raise ValueError(f"gan_loss must be one of {GAN_LOSSES}, got {kind!r}")


def discriminator_loss(real: Judgement, fake: Judgement, kind: GanLoss = "lsgan") -> Tensor:
    """The discriminator's loss: lsgan real -> 1, fake -> 0; hinge real >= 1, fake <= -1."""
    _check(kind)
    if kind == "hinge":
        return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for (r, _), (f, _) in zip(real, fake)) / len(real)
    return sum(((1 - r).square().mean() + f.square().mean()) for (r, _), (f, _) in zip(real, fake)) / len(real)


def generator_losses(real: Judgement, fake: Judgement, kind: GanLoss = "lsgan") -> tuple[Tensor, Tensor]:
    """(adversarial loss, feature-matching loss) for the generator; real features are targets."""
    _check(kind)
    if kind == "hinge":
        adv = sum(-f.mean() for f, _ in fake) / len(fake)
    else:
        adv = sum((1 - f).square().mean() for f, _ in fake) / len(fake)
    fm = sum(
        F.l1_loss(ff, rf.detach()) / (rf.detach().abs().mean() + 1e-5)
        for (_, rfs), (_, ffs) in zip(real, fake)
        for rf, ff in zip(rfs, ffs)
    ) / max(1, sum(len(r[1]) for r in real))
    return adv, fm
