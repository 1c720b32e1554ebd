"""Small generated meshes and a tiny untrained shape codec for the volume tests (no data/, no downloads)."""
from __future__ import annotations

import numpy as np
import torch
import trimesh

from mediatok.codecs.volume import ShapeCodec, ShapeVQ, ShapeVQConfig

TINY = dict(widths=(8,), blocks=1, latent_dim=4, codebook_size=32)


def sphere_sdf(resolution: int = 64, radius: float = 0.6) -> np.ndarray:
    """Analytic SDF of a centred sphere on the codec's grid (cell centres of [-1, 1]^3)."""
    g = (np.arange(resolution) + 0.5) / resolution * 2 - 1
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    return (np.sqrt(x**2 + y**2 + z**2) - radius).astype(np.float32)


def torus(offset=(3.0, -2.0, 5.0), scale: float = 4.0) -> trimesh.Trimesh:
    """A torus away from the origin, in its own units (the codec must hand it back in this frame)."""
    m = trimesh.creation.torus(major_radius=1.0, minor_radius=0.4, major_sections=48, minor_sections=24)
    m.apply_scale(scale)
    m.apply_translation(offset)
    return m


def tiny_codec(seed: int = 0) -> ShapeCodec:
    """Randomly initialised tiny codec whose codebook was k-means-initialised on sphere SDFs."""
    torch.manual_seed(seed)
    model = ShapeVQ(ShapeVQConfig(**TINY))
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(np.stack([sphere_sdf(radius=r) for r in (0.3, 0.5, 0.7)])))
    return ShapeCodec(model.eval(), name="tiny-shape", short_id="ts")
