"""Image's export hook: the entropy model shipped with an image codec, fitted on its own tokens.

Tokens of the training photos, produced by the exported weights themselves (rounded to fp16 first by
`mediatok.train.export`), so the tables match what the shipped model emits. The MarkovPrior codes each token
with the table of its left neighbour's context class (raster order); the number of classes is the one of
CLASS_CHOICES that codes the validation photos' tokens in the fewest bits.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mediatok.codecs.image.codec import ImageCodec
from mediatok.codecs.image.model import ImageVQ
from mediatok.train.image.data import read_folder

if TYPE_CHECKING:
    from mediatok.entropy import MarkovPrior

CLASS_CHOICES = (16, 64, 256)  # context classes tried by fit_prior


@torch.inference_mode()
def image_tokens(model: ImageVQ, folder: str | Path, images: int | None = None) -> list[Tensor]:
    """Tokens of the first `images` photos under folder (all by default), each flattened to (1, h * w)."""
    codec = ImageCodec(model.eval())
    return [codec.tokenize(im).reshape(1, -1) for im in read_folder(folder)[:images]]


def fit_prior(model: ImageVQ, data_root: str | Path, images: int | None = None) -> MarkovPrior:
    """MarkovPrior on the tokens of data_root/train (the first `images`), classes chosen on data_root/val."""
    from mediatok.entropy import MarkovPrior  # here, so that training never needs the entropy coder

    size = model.quantizer.codebook_size
    train = image_tokens(model, Path(data_root) / "train", images)
    try:
        val = image_tokens(model, Path(data_root) / "val")
    except FileNotFoundError:
        return MarkovPrior.fit(train, size)
    bits = [sum(MarkovPrior.fit(train, size, num_classes=c).codebook_bits(t) for t in val) for c in CLASS_CHOICES]
    best = CLASS_CHOICES[int(torch.stack(bits).sum(1).argmin())]
    return MarkovPrior.fit(train, size, num_classes=best)
