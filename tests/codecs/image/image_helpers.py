"""Photo-like synthetic pictures and small randomly initialised image codecs, shared by the image tests."""
from __future__ import annotations

import numpy as np
import torch

from mediatok.codecs.image import ImageCodec, ImageVQ, ImageVQConfig

SMALL = dict(widths=(8, 16, 16, 24), latent_dim=4, codebook_size=64)


def photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Deterministic uint8 (h, w, 3): smooth colour gradients, a disc, stripes and mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w, 1)
    c = rng.uniform(0.1, 1.0, (3, 3))
    img = np.stack([c[k, 0] * xx + c[k, 1] * yy + 0.2 * c[k, 2] for k in range(3)], -1)
    cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.25)
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
    img[..., 1] += 0.1 * np.sin(40 * xx)
    img += rng.normal(0, 0.02, img.shape)
    return (img.clip(0, 1) * 255).round().astype(np.uint8)


def make_codec(seed: int = 0, **overrides) -> ImageCodec:
    """A small ImageCodec whose codebook is k-means-initialised on latents of photo-like pictures (no prior)."""
    torch.manual_seed(seed)
    tile = overrides.pop("tile", 64)
    margin = overrides.pop("margin", 8)
    model = ImageVQ(ImageVQConfig(**{**SMALL, **overrides}))
    batch = torch.stack([torch.from_numpy(photo_like(64, 64, s)).permute(2, 0, 1).float() / 255 for s in range(4)])
    model.train()
    with torch.no_grad():
        model(batch)
    model.eval()
    return ImageCodec(model, name="image-test", short_id="imt", tile=tile, margin=margin)
