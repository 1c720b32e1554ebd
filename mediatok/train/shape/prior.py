"""Shape's export hook: the MarkovPrior shipped with a shape codec, fitted on its own tokens.

Tokens of the training grids (data/shapes/train.npy, augmented copies included), produced by the exported weights
themselves (rounded to fp16 by `mediatok.train.export`) and simplified as `ShapeCodec.encode_latents` does; the 3-D
token grid is coded in raster order, each token
with the table of its predecessor's context class, so the long runs of "far outside" and "deep inside" tokens cost
a fraction of a bit each. The class count is the one of CLASS_CHOICES that codes the validation grids' tokens in
the fewest bits.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mediatok.codecs.volume.model import ShapeVQ
from mediatok.train.shape.data import load_grids

CLASS_CHOICES = (16, 64)


@torch.inference_mode()
def grid_tokens(model: ShapeVQ, grids: np.ndarray) -> list[Tensor]:
    """Tokens (1, s, s, s) of each grid (N, R, R, R), as the codec writes them (far tokens simplified)."""
    from mediatok.codecs.volume.codec import ShapeCodec

    codec = ShapeCodec(model)
    return [codec.encode_latents(torch.from_numpy(np.asarray(g, np.float32))) for g in grids]


def fit_prior(model: ShapeVQ, data_root: str | Path, shapes: int | None = None) -> Any:
    """MarkovPrior on the tokens of data_root/train.npy (the first `shapes` grids), classes chosen on val.npy."""
    from mediatok.entropy import MarkovPrior  # here, so that training never needs the entropy coder

    model = model.eval()
    train = [t.reshape(1, -1) for t in grid_tokens(model, load_grids(Path(data_root) / "train.npy")[:shapes])]
    val_path = Path(data_root) / "val.npy"
    val = [t.reshape(1, -1) for t in grid_tokens(model, load_grids(val_path))] if val_path.exists() else []
    size = model.cfg.codebook_size
    if not val:
        return MarkovPrior.fit(train, size)
    bits = [sum(float(MarkovPrior.fit(train, size, num_classes=c).bits(t)) for t in val) for c in CLASS_CHOICES]
    best = CLASS_CHOICES[min(range(len(bits)), key=bits.__getitem__)]
    print(f"shape prior: {len(train)} training grids; validation bytes per shape "
          f"{ {c: round(b / 8 / len(val)) for c, b in zip(CLASS_CHOICES, bits)} } -> {best} classes")
    return MarkovPrior.fit(train, size, num_classes=best)
