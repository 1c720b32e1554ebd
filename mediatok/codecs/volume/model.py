"""The shape network: a Conv3d autoencoder on the packed wavelet tree of a truncated SDF, with one VQ codebook.

    sdf (B, R, R, R) in unit-cube units (negative inside)
        --truncate: clamp(sdf / (truncation * cell), -1, 1)--> tsdf
        --dwt3 (Haar, `levels`) + pack_tree(keep)--> (B, 8^keep, R / 2^levels, ...)   (WaLa's wavelet tree)
        --1x1 conv, ResBlock3d x blocks, [stride-2 conv, ResBlock3d] x down, 1x1 conv--> z (B, latent_dim, s, s, s)
        --VQ-EMA--> indices (B, 1, s, s, s)           s = R / 2^(levels + down)
        --mirror image of the encoder--> packed tree --unpack_tree + idwt3--> tsdf (B, R, R, R), unclamped

Sanghi et al., "WaLa: Billion Parameter Wavelet Diffusion Brings Scalable 3D Shape Generation" (2024): an SDF
is compressed by coding its coarse wavelet coefficients (and the coarsest details) with a convolutional
autoencoder and a VQ bottleneck. Here the SDF is truncated to a band of `truncation` cells around the surface,
which is all that marching cubes reads, so that space far from the surface is constant and its tokens are
nearly free under the entropy model. Residual branches start small (SkipInit, as in the image network) instead
of normalisation layers.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mediatok.codecs.volume.wavelets import dwt3, idwt3, pack_tree, tree_channels, tree_layout, unpack_tree
from mediatok.quantizers import VectorQuantizer


@dataclass
class ShapeVQConfig:
    """Everything needed to rebuild a ShapeVQ. `widths` has down + 1 entries: at the tree's grid, then per stride-2 stage."""

    resolution: int = 64  # R: SDF grid side
    levels: int = 2  # Haar levels: the tree's grid is R / 2^levels
    keep: int = 2  # detail levels packed into channels (levels: lossless tree; fewer: WaLa's coarse + coarsest details)
    truncation: float = 3.0  # SDF band half-width in cells (marching cubes reads only the cells next to the surface)
    widths: tuple[int, ...] = (64,)
    blocks: int = 2  # residual blocks per stage, in the encoder and in the decoder
    down: int = 0  # stride-2 stages after the tree: the token grid is R / 2^(levels + down)
    latent_dim: int = 8
    codebook_size: int = 1024
    commitment_weight: float = 0.25
    dead_code_threshold: float = 0.1
    ema_decay: float = 0.99
    kmeans_init: bool = True
    residual_gain: float = 0.1

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if self.resolution < 8 or self.resolution > 512 or self.resolution % 2 ** (self.levels + self.down):
            raise ValueError(f"resolution must be in [8, 512] and a multiple of 2^(levels + down) = "
                             f"{2 ** (self.levels + self.down)}, got {self.resolution}")
        if not 1 <= self.levels <= 5 or not 0 <= self.keep <= self.levels:
            raise ValueError(f"need 1 <= levels <= 5 and 0 <= keep <= levels, got levels={self.levels}, keep={self.keep}")
        if len(self.widths) != self.down + 1 or any(not 1 <= w <= 1024 for w in self.widths):
            raise ValueError(f"widths needs down + 1 = {self.down + 1} entries in [1, 1024], got {self.widths}")
        if not 0 < self.truncation <= self.resolution:
            raise ValueError(f"truncation must be in (0, resolution] cells, got {self.truncation}")
        for name in ("blocks", "latent_dim", "codebook_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def token_side(self) -> int:
        return self.resolution // 2 ** (self.levels + self.down)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShapeVQConfig:
        """From config.json's "model" dict; unknown keys are refused (a typo must not silently change a model)."""
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown ShapeVQConfig keys {unknown}; known: {sorted(f.name for f in fields(cls))}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


@dataclass(frozen=True)
class ShapeVQOutput:
    """What ShapeVQ.forward returns."""

    reconstruction: Tensor  # (B, R, R, R) truncated SDF in [-1, 1] units of the band, unclamped
    target: Tensor  # (B, R, R, R) the input's truncated SDF, what the reconstruction is compared with
    indices: Tensor  # (B, 1, s, s, s) int64
    commit_loss: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)


class ResBlock3d(nn.Module):
    """x + gain * conv(silu(conv(silu(x)))). (B, C, D, H, W) -> same."""

    def __init__(self, dim: int, gain: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv3d(dim, dim, 3, padding=1)
        self.gain = nn.Parameter(torch.full((1, dim, 1, 1, 1), float(gain)))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.gain * self.conv2(F.silu(self.conv1(F.silu(x))))


class ShapeVQ(nn.Module):
    """SDF (B, R, R, R) <-> indices (B, 1, s, s, s) through the packed wavelet tree (see the module docstring)."""

    def __init__(self, cfg: ShapeVQConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or ShapeVQConfig()
        w, g, c = cfg.widths, cfg.residual_gain, tree_channels(cfg.keep)
        enc: list[nn.Module] = [nn.Conv3d(c, w[0], 1)] + [ResBlock3d(w[0], g) for _ in range(cfg.blocks)]
        for i in range(cfg.down):
            enc += [nn.Conv3d(w[i], w[i + 1], 3, stride=2, padding=1)] + [ResBlock3d(w[i + 1], g) for _ in range(cfg.blocks)]
        enc += [nn.SiLU(), nn.Conv3d(w[-1], cfg.latent_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        self.quantizer = VectorQuantizer(cfg.latent_dim, cfg.codebook_size, ema_decay=cfg.ema_decay,
                                         kmeans_init=cfg.kmeans_init, commitment_weight=cfg.commitment_weight,
                                         dead_code_threshold=cfg.dead_code_threshold)
        dec: list[nn.Module] = [nn.Conv3d(cfg.latent_dim, w[-1], 3, padding=1)]
        for i in range(cfg.down, 0, -1):
            dec += [ResBlock3d(w[i], g) for _ in range(cfg.blocks)]
            dec += [nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv3d(w[i], w[i - 1], 3, padding=1)]
        dec += [ResBlock3d(w[0], g) for _ in range(cfg.blocks)] + [nn.SiLU(), nn.Conv3d(w[0], c, 1)]
        self.decoder = nn.Sequential(*dec)
        # The packed tree's coarse band grows by 2^(3/2) a level (orthonormal Haar): scaled back to about [-1, 1].
        self.tree_scale = float(2 ** (1.5 * cfg.levels))
        self._layout = tree_layout(cfg.resolution, cfg.levels)

    @property
    def num_codebooks(self) -> int:
        return 1

    @property
    def bitrate(self) -> float:
        """Bits per voxel before entropy coding: log2(K) / (R / s)^3."""
        return math.log2(self.cfg.codebook_size) / (self.cfg.resolution // self.cfg.token_side) ** 3

    def truncate(self, sdf: Tensor) -> Tensor:
        """SDF in unit-cube units -> clamp(sdf / band, -1, 1), band = truncation cells."""
        return (sdf / (self.cfg.truncation * 2 / self.cfg.resolution)).clamp(-1, 1)

    def untruncate(self, tsdf: Tensor) -> Tensor:
        """The network's output -> SDF in unit-cube units (exact within the band, clamped beyond it)."""
        return tsdf.clamp(-1, 1) * (self.cfg.truncation * 2 / self.cfg.resolution)

    def _check(self, sdf: Tensor) -> None:
        r = self.cfg.resolution
        if sdf.ndim != 4 or tuple(sdf.shape[1:]) != (r, r, r):
            raise ValueError(f"expected SDF grids (B, {r}, {r}, {r}), got {tuple(sdf.shape)}")

    def encode(self, sdf: Tensor) -> Tensor:
        """Continuous latents: SDF (B, R, R, R) -> z (B, latent_dim, s, s, s), float32."""
        self._check(sdf)
        tree = pack_tree(dwt3(self.truncate(sdf.float()), "haar", self.cfg.levels), self.cfg.keep)
        return self.encoder(tree / self.tree_scale).float()

    def quantize(self, z: Tensor):
        """z -> QuantizerOutput, in float32 outside autocast (exact distances)."""
        with torch.autocast(z.device.type, enabled=False):
            return self.quantizer(z.float().contiguous())

    def decode(self, quantized: Tensor) -> Tensor:
        """Quantized latents (B, latent_dim, s, s, s) -> truncated SDF (B, R, R, R), unclamped."""
        tree = self.decoder(quantized) * self.tree_scale
        return idwt3(unpack_tree(tree, self._layout, self.cfg.keep), "haar")  # the layout gives shapes only

    def forward(self, sdf: Tensor) -> ShapeVQOutput:
        """SDF (B, R, R, R) -> reconstruction and target (truncated), indices, commitment loss, codebook stats."""
        q = self.quantize(self.encode(sdf))
        return ShapeVQOutput(self.decode(q.quantized), self.truncate(sdf.float()), q.indices, q.loss, dict(q.stats))

    def encode_latents(self, sdf: Tensor) -> Tensor:
        """SDF (B, R, R, R) -> tokens (B, 1, s, s, s) int64."""
        return self.quantize(self.encode(sdf)).indices

    def decode_latents(self, tokens: Tensor) -> Tensor:
        """tokens (B, 1, s, s, s) -> SDF (B, R, R, R) in unit-cube units (clamped to the band)."""
        with torch.autocast(tokens.device.type, enabled=False):
            quantized = self.quantizer.decode_indices(tokens)
        return self.untruncate(self.decode(quantized))
