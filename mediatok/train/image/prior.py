"""Image's export hook: the entropy models shipped with an image codec, fitted on its own tokens.

Tokens of the training photos, produced by the exported weights themselves (rounded to fp16 first by
`mediatok.train.export`), so the tables match what the shipped model emits. Each photo is encoded in one pass
(the codec tiles images above 512 px, whose tokens can differ slightly at tile seams; the tables do not notice).
The MarkovPrior codes each token with the table of its left neighbour's context class (raster order); the
number of classes is the one of CLASS_CHOICES that codes the validation photos' tokens in the fewest bits.

Conditioning on the top neighbour as well was measured (step-900 checkpoint of the shipped run, 248k test
tokens): order-0 13.66 bits a token, left context 11.24 (64 classes), left and top 10.79 with 64 x 64 class
pairs, 10.98 with 16 x 16: 4 % fewer bits for 16 to 64 times the tables (16-270 MB at 16384 codes), so the
shipped prior is left-context only.

With nested codebook sizes, the nested tables are fitted first (`mediatok.train.image.nested`) and each size
gets its own prior, fitted the same way on the same photos.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from mediatok.codecs.image.codec import ImageCodec
from mediatok.codecs.image.model import ImageVQ
from mediatok.train.image.data import read_folder
from mediatok.train.image.nested import fit_nested_codebooks, nested_tokens, with_nested_sizes

if TYPE_CHECKING:
    from mediatok.entropy import MarkovPrior

CLASS_CHOICES = (16, 64)  # context classes tried by fit_prior (64 x 16384 int32 tables = 4 MB)


@torch.inference_mode()
def image_latents(model: ImageVQ, images: list) -> list[Tensor]:
    """Continuous latents (D, h, w) of each uint8 image, one encoder pass per image."""
    codec = ImageCodec(model.eval())
    return [model.encode(codec.prepare(im).x[None])[0] for im in images]


@torch.inference_mode()
def main_tokens(model: ImageVQ, latents: list[Tensor]) -> list[Tensor]:
    """Main-codebook indices (1, h, w) of each latent grid."""
    return [model.quantize(z[None]).indices[0] for z in latents]


def fit_markov(train: list[Tensor], val: list[Tensor], size: int) -> MarkovPrior:
    """MarkovPrior over raster-order tokens, its class count chosen on val (the default without val)."""
    from mediatok.entropy import MarkovPrior  # here, so that training never needs the entropy coder

    train = [t.reshape(1, -1) for t in train]
    if not val:
        return MarkovPrior.fit(train, size)
    val = [t.reshape(1, -1) for t in val]
    bits = [sum(float(MarkovPrior.fit(train, size, num_classes=c).bits(t)) for t in val) for c in CLASS_CHOICES]
    return MarkovPrior.fit(train, size, num_classes=CLASS_CHOICES[min(range(len(bits)), key=bits.__getitem__)])


def fit_prior(model: ImageVQ, data_root: str | Path, images: int | None = None, nested_sizes: tuple[int, ...] = (),
              nested_steps: int = 200) -> Any:
    """The image codec's entropy models, fitted on data_root/train (the first `images`), classes chosen on
    data_root/val. Without nested sizes: the MarkovPrior. With them: {"model": the network with its nested
    tables fitted, "entropy_model": the main prior, "nested_priors": {size: prior}} (ImageCodec's arguments)."""
    train_images = read_folder(Path(data_root) / "train")[:images]
    val_dir = Path(data_root) / "val"
    val_images = read_folder(val_dir) if val_dir.is_dir() else []
    if nested_sizes:
        model = with_nested_sizes(model, nested_sizes)
        report = fit_nested_codebooks(model, train_images, steps=nested_steps, progress=True)
        for size, r in report.items():
            print(f"nested codebook {size}: L1 + 1 - MS-SSIM on a fixed batch {r['before']:.4f} (k-means) -> "
                  f"{r['after']:.4f} ({r['kept']} kept)")
    train_z, val_z = image_latents(model, train_images), image_latents(model, val_images)
    prior = fit_markov(main_tokens(model, train_z), main_tokens(model, val_z), model.cfg.codebook_size)
    if not nested_sizes:
        return prior
    nested = {s: fit_markov(nested_tokens(model, train_z, s), nested_tokens(model, val_z, s), s) for s in nested_sizes}
    return {"model": model, "entropy_model": prior, "nested_priors": nested}
