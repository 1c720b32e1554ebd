"""The image network: a VQGAN-style convolutional encoder/decoder around one vector quantizer.

    x (B, 3, H, W) in [0, 1], H and W multiples of f
        --conv_in--> [ResBlock x n, Down] per level --ResBlock, Attention, ResBlock--> conv_out
        --> z (B, latent_dim, H/f, W/f) --quantizer (VQ-EMA | SimVQ | LC)--> indices (B, 1, H/f, W/f)
        --> conv_in --ResBlock, Attention, ResBlock--> [ResBlock x n, Up] per level --conv_out--> (B, 3, H, W)

Esser et al., "Taming Transformers for High-Resolution Image Synthesis" (2021), with the changes that make it
train on a CPU (issue 11): widths of at most a few hundred channels, attention only at the lowest resolution,
and no GroupNorm: each residual branch is scaled by a learnable per-channel gain that starts small
(SkipInit, De and Smith 2020), which keeps the untrained network near the identity path and costs nothing in
the backward pass (GroupNorm's backward took a quarter of each step there). Every layer is a plain conv or a
pointwise op, so `to(memory_format=torch.channels_last)` applies throughout. The quantizer always runs in
float32, outside any autocast region: nearest-codeword distances in bf16 would tie and flip.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mediatok.quantizers import LCQuantizer, SimVQ, VectorQuantizer

QuantizerKind = Literal["vq-ema", "simvq", "lc"]


@dataclass
class ImageVQConfig:
    """Everything needed to rebuild an ImageVQ. `widths` has log2(downsample) + 1 entries, one per resolution."""

    downsample: int = 8  # f: 8 or 16 (any power of two from 2 to 32)
    widths: tuple[int, ...] = (16, 32, 64, 128)  # narrow where the resolution is high: that is where a CPU's time goes
    blocks: int = 2  # residual blocks per resolution, in the encoder and in the decoder
    attention: bool = True  # one self-attention layer at the lowest resolution (encoder and decoder)
    latent_dim: int = 8
    quantizer: QuantizerKind = "vq-ema"
    codebook_size: int = 16384
    codebook_dim: int | None = None  # SimVQ / LC: width of the frozen codebook (LC: of the feature space)
    commitment_weight: float = 0.25
    dead_code_threshold: float = 0.1
    ema_decay: float = 0.99  # vq-ema only
    kmeans_init: bool = True  # vq-ema: k-means on the first batch; simvq / lc: moment-matched projector
    residual_gain: float = 0.1  # initial value of every residual branch's gain
    # Training only: the first `quantizer_warmup` training forwards skip the quantizer (a plain autoencoder),
    # keeping a sample of the latents; the codebook is then initialised on that sample (k-means for vq-ema).
    # A random encoder's first batch is a poor place to put 16k codes: the prototype of issue 11 reached
    # 99.96 % use with 150 warm-up steps.
    quantizer_warmup: int = 0
    warmup_sample: int = 65536  # latents kept for the initialisation
    # Smaller codebooks selectable at encode time (variable bitrate from one model, as in Mao et al., "Extreme
    # Image Compression using Fine-tuned VQGANs", 2024): k-means of the main codebook's vectors, then fine-tuned
    # through the frozen decoder (mediatok.train.image.nested). Empty: only the main codebook.
    nested_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        self.nested_sizes = tuple(int(n) for n in self.nested_sizes)
        if any(not 2 <= n < self.codebook_size for n in self.nested_sizes) or len(set(self.nested_sizes)) != len(
                self.nested_sizes):
            raise ValueError(f"nested_sizes must be distinct sizes in [2, codebook_size = {self.codebook_size}), "
                             f"got {self.nested_sizes}")
        levels = math.log2(self.downsample) if self.downsample > 0 else -1
        if levels != int(levels) or not 1 <= levels <= 5:
            raise ValueError(f"downsample must be a power of two in [2, 32], got {self.downsample}")
        if len(self.widths) != int(levels) + 1:
            raise ValueError(f"widths needs log2(downsample) + 1 = {int(levels) + 1} entries for downsample "
                             f"{self.downsample}, got {len(self.widths)}: {self.widths}")
        if any(w < 1 or w > 1024 for w in self.widths):
            raise ValueError(f"every width must be in [1, 1024], got {self.widths}")
        if self.quantizer not in ("vq-ema", "simvq", "lc"):
            raise ValueError(f"quantizer must be 'vq-ema', 'simvq' or 'lc', got {self.quantizer!r}")
        if self.quantizer == "lc" and self.codebook_dim is None:
            raise ValueError("quantizer 'lc' needs codebook_dim (the width of the features its codebook is built from)")
        if self.quantizer_warmup < 0 or self.warmup_sample < 1:
            raise ValueError(f"quantizer_warmup must be >= 0 and warmup_sample >= 1, got {self.quantizer_warmup}, "
                             f"{self.warmup_sample}")
        for name in ("blocks", "latent_dim", "codebook_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageVQConfig:
        """From config.json's "model" dict; unknown keys are refused (a typo must not silently change a model)."""
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown ImageVQConfig keys {unknown}; known: {sorted(f.name for f in fields(cls))}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["nested_sizes"] = list(self.nested_sizes)
        return d


@dataclass(frozen=True)
class ImageVQOutput:
    """What ImageVQ.forward returns."""

    reconstruction: Tensor  # (B, 3, H, W), unclamped, in the input's [0, 1] scale
    indices: Tensor  # (B, 1, H / f, W / f) int64
    commit_loss: Tensor  # scalar: the quantizer's commitment + codebook terms, already weighted
    stats: dict[str, Tensor] = field(default_factory=dict)  # utilization, perplexity, dead_codes, commitment


class ResBlock(nn.Module):
    """x + gain * conv(silu(conv(silu(x)))), a 1x1 shortcut when the width changes. (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, dim_in: int, dim_out: int, gain: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, padding=1)
        self.shortcut = nn.Conv2d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()
        self.gain = nn.Parameter(torch.full((1, dim_out, 1, 1), float(gain)))

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.silu(self.conv1(F.silu(x))))
        return self.shortcut(x) + self.gain * h


class Attention(nn.Module):
    """Single-head self-attention over all positions, with unit-normalised queries and keys (a learnable
    temperature instead of a normalisation layer keeps the logits bounded). (B, C, h, w) -> (B, C, h, w)."""

    def __init__(self, dim: int, gain: float) -> None:
        super().__init__()
        self.qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)
        self.temperature = nn.Parameter(torch.tensor(10.0))
        self.gain = nn.Parameter(torch.full((1, dim, 1, 1), float(gain)))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).flatten(2).transpose(1, 2).chunk(3, dim=-1)  # 3 x (B, h*w, C)
        k = F.normalize(k, dim=-1)
        q = F.normalize(q, dim=-1) * self.temperature  # the learnable temperature scales the cosine logits
        a = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], scale=1.0)
        a = a[:, 0].transpose(1, 2).reshape(b, c, h, w)  # (B, C, h, w)
        return x + self.gain * self.proj(a)


class Encoder(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, latent_dim, H / f, W / f)."""

    def __init__(self, cfg: ImageVQConfig) -> None:
        super().__init__()
        w, g = cfg.widths, cfg.residual_gain
        self.conv_in = nn.Conv2d(3, w[0], 3, padding=1)
        self.levels = nn.ModuleList()
        for i in range(len(w) - 1):
            blocks = [ResBlock(w[i], w[i], g) for _ in range(cfg.blocks)]
            self.levels.append(nn.Sequential(*blocks, nn.Conv2d(w[i], w[i + 1], 3, stride=2, padding=1)))
        mid = [ResBlock(w[-1], w[-1], g)] + ([Attention(w[-1], g)] if cfg.attention else []) + [ResBlock(w[-1], w[-1], g)]
        self.mid = nn.Sequential(*mid)
        self.conv_out = nn.Conv2d(w[-1], cfg.latent_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.levels:
            h = level(h)
        return self.conv_out(F.silu(self.mid(h)))


class Decoder(nn.Module):
    """(B, latent_dim, h, w) -> (B, 3, h * f, w * f) in [-1, 1] (unclamped)."""

    def __init__(self, cfg: ImageVQConfig) -> None:
        super().__init__()
        w, g = cfg.widths[::-1], cfg.residual_gain
        self.conv_in = nn.Conv2d(cfg.latent_dim, w[0], 3, padding=1)
        mid = [ResBlock(w[0], w[0], g)] + ([Attention(w[0], g)] if cfg.attention else []) + [ResBlock(w[0], w[0], g)]
        self.mid = nn.Sequential(*mid)
        self.levels = nn.ModuleList()
        for i in range(len(w) - 1):
            # The conv after upsampling already narrows to the next width: at the high resolutions, where the
            # cost is, no layer is wider than that resolution's own width.
            blocks = [ResBlock(w[i + 1], w[i + 1], g) for _ in range(cfg.blocks)]
            self.levels.append(nn.ModuleDict({"up": nn.Conv2d(w[i], w[i + 1], 3, padding=1), "blocks": nn.Sequential(*blocks)}))
        self.conv_out = nn.Conv2d(w[-1], 3, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for level in self.levels:
            h = level["up"](F.interpolate(h, scale_factor=2.0, mode="nearest"))
            h = level["blocks"](h)
        return self.conv_out(F.silu(h))


def nearest_entries(z: Tensor, table: Tensor) -> Tensor:
    """Index of the nearest row of table (n, D) to each latent of z (B, D, h, w) -> (B, 1, h, w), exact search."""
    from mediatok.kernels import nearest_codeword

    rows = z.detach().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    indices, _ = nearest_codeword(rows.float().contiguous(), table.detach().float().contiguous())
    return indices.view(z.shape[0], 1, *z.shape[2:])


def build_quantizer(cfg: ImageVQConfig) -> nn.Module:
    """The quantizer the config names, over latent_dim-wide latents."""
    common = dict(commitment_weight=cfg.commitment_weight, dead_code_threshold=cfg.dead_code_threshold)
    if cfg.quantizer == "vq-ema":
        return VectorQuantizer(cfg.latent_dim, cfg.codebook_size, codebook_dim=cfg.codebook_dim,
                               ema_decay=cfg.ema_decay, kmeans_init=cfg.kmeans_init, **common)
    if cfg.quantizer == "simvq":
        return SimVQ(cfg.latent_dim, cfg.codebook_size, codebook_dim=cfg.codebook_dim, moment_init=cfg.kmeans_init,
                     **common)
    return LCQuantizer(cfg.latent_dim, cfg.codebook_size, cfg.codebook_dim, moment_init=cfg.kmeans_init, **common)


class ImageVQ(nn.Module):
    """VQGAN-style image tokenizer: (B, 3, H, W) in [0, 1] <-> indices (B, 1, H / f, W / f), H, W % f == 0."""

    def __init__(self, cfg: ImageVQConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or ImageVQConfig()
        self.encoder = Encoder(cfg)
        self.quantizer = build_quantizer(cfg)
        self.decoder = Decoder(cfg)
        # Training forwards left before the quantizer is used (saved, so a resumed run does not warm up again).
        self.register_buffer("warmup_left", torch.tensor(cfg.quantizer_warmup, dtype=torch.long))
        self._warmup_latents: list[Tensor] = []
        for n in cfg.nested_sizes:  # filled by mediatok.train.image.nested.fit_nested_codebooks
            self.register_buffer(f"nested_{n}", torch.zeros(n, cfg.latent_dim))

    @property
    def downsample(self) -> int:
        return self.cfg.downsample

    @property
    def num_codebooks(self) -> int:
        return 1

    @property
    def bitrate(self) -> float:
        """Bits per pixel before entropy coding: log2(K) / f^2."""
        return math.log2(self.cfg.codebook_size) / self.cfg.downsample**2

    def _check(self, x: Tensor) -> None:
        f = self.cfg.downsample
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (B, 3, H, W), got {tuple(x.shape)}")
        if x.shape[2] % f or x.shape[3] % f:
            raise ValueError(f"height and width must be multiples of {f}, got {tuple(x.shape[2:])}; pad first")

    def encode(self, x: Tensor) -> Tensor:
        """Continuous latents before quantization: x (B, 3, H, W) in [0, 1] -> z (B, latent_dim, H / f, W / f), float32."""
        self._check(x)
        return self.encoder(x * 2 - 1).float()

    def quantize(self, z: Tensor):
        """z (B, latent_dim, h, w) -> QuantizerOutput, in float32 outside autocast (exact distances)."""
        with torch.autocast(z.device.type, enabled=False):
            return self.quantizer(z.float().contiguous())

    def decode(self, quantized: Tensor) -> Tensor:
        """Quantized latents (B, latent_dim, h, w) -> images (B, 3, h * f, w * f) in [0, 1] (unclamped)."""
        return self.decoder(quantized) * 0.5 + 0.5

    def forward(self, x: Tensor) -> ImageVQOutput:
        """x (B, 3, H, W) in [0, 1] -> reconstruction, indices, commitment loss and codebook statistics.

        During the quantizer warm-up (training only) the latents bypass the quantizer: indices are all -1 and
        the commitment loss is 0."""
        z = self.encode(x)
        if self.training and int(self.warmup_left) > 0:
            return self._warmup_forward(z)
        q = self.quantize(z)
        return ImageVQOutput(self.decode(q.quantized), q.indices, q.loss, dict(q.stats))

    def _warmup_forward(self, z: Tensor) -> ImageVQOutput:
        """A plain autoencoder step that also samples latents; the last one initialises the codebook on them."""
        b, d, h, w = z.shape
        rows = z.detach().permute(0, 2, 3, 1).reshape(-1, d)
        per_step = -(-self.cfg.warmup_sample // max(1, self.cfg.quantizer_warmup))
        pick = torch.randperm(rows.shape[0], device=rows.device)[:per_step]
        self._warmup_latents.append(rows[pick].float())
        self.warmup_left -= 1
        if int(self.warmup_left) == 0:
            sample = torch.cat(self._warmup_latents)[-self.cfg.warmup_sample:]  # (N, D)
            self._warmup_latents = []
            if isinstance(self.quantizer, LCQuantizer) and self.cfg.codebook_dim == d:
                # VQGAN-LC without CLIP: the frozen entries are k-means centres of the encoder's own features,
                # and the projector starts as the map from those features to themselves.
                self.quantizer.init_from_features(sample, latents=sample)
            else:
                # One training-mode quantizer call on the sample: the codebook initialises itself on it (k-means,
                # or the moment-matched projector), as it would on a first batch.
                self.quantize(sample.T.reshape(1, d, -1, 1))
        indices = torch.full((b, 1, h, w), -1, dtype=torch.long, device=z.device)
        # A zero that touches every trainable quantizer parameter (SimVQ / LC projectors): DDP expects a gradient
        # for each parameter at every step, and raises when some get none.
        unused = sum((p.sum() for p in self.quantizer.parameters() if p.requires_grad), z.new_zeros(()))
        return ImageVQOutput(self.decode(z), indices, 0.0 * unused, {})

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        """Every selectable codebook size, the main one first."""
        return (self.cfg.codebook_size, *self.cfg.nested_sizes)

    def nested_codebook(self, size: int) -> Tensor:
        """The (size, latent_dim) table of a nested codebook; ValueError for a size this model does not have."""
        if size not in self.cfg.nested_sizes:
            raise ValueError(f"this model has codebook sizes {list(self.codebook_sizes)}, not {size}")
        return getattr(self, f"nested_{size}")

    def code_vectors(self) -> Tensor:
        """The main codebook's entries as latents (K, latent_dim): what decode() receives for each index."""
        k = self.cfg.codebook_size
        with torch.autocast(self.warmup_left.device.type, enabled=False):
            return self.quantizer.decode_indices(torch.arange(k, device=self.warmup_left.device).view(1, 1, k))[0].T

    def encode_latents(self, x: Tensor, codebook_size: int | None = None) -> Tensor:
        """x (B, 3, H, W) in [0, 1] -> tokens (B, 1, H / f, W / f) int64, indices into the main codebook or, with
        `codebook_size`, into that nested codebook (the nearest of its entries to each latent)."""
        if codebook_size is None or codebook_size == self.cfg.codebook_size:
            return self.quantize(self.encode(x)).indices
        return nearest_entries(self.encode(x), self.nested_codebook(codebook_size))

    def decode_latents(self, tokens: Tensor, codebook_size: int | None = None) -> Tensor:
        """tokens (B, 1, h, w) -> images (B, 3, h * f, w * f) in [0, 1] (unclamped)."""
        if codebook_size is None or codebook_size == self.cfg.codebook_size:
            with torch.autocast(tokens.device.type, enabled=False):
                quantized = self.quantizer.decode_indices(tokens)
            return self.decode(quantized)
        table = self.nested_codebook(codebook_size)
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= codebook_size):
            raise ValueError(f"tokens must lie in [0, {codebook_size}) for the nested codebook of {codebook_size}")
        return self.decode(table[tokens[:, 0]].permute(0, 3, 1, 2).float())
