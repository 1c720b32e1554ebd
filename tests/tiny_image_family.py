"""A second codec family that lives only in the tests: a 2-layer image VQ codec on the shared platform.

It proves that a family needs only its hooks, network, media I/O, evaluation and training pieces (a loss set,
a discriminator, a data module): `mediatok encode / decode / info / eval / tokenize / train fit` handle it
without any audio code changing. `register()` / `unregister()` bracket its use.

    uint8 (H, W, 3) --prepare (to [0, 1], pad to /4)--> (3, H', W') --conv s2, conv s2--> (D, H'/4, W'/4)
        --VQ--> tokens (1, H'/4, W'/4) --convT s2, convT s2--> (3, H', W') --restore (crop, uint8)--> (H, W, 3)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from mediatok.codecs import MediaIO, register_family, unregister_family
from mediatok.codecs.base import Codec, Prepared, header_int
from mediatok.quantizers import VectorQuantizer

STRIDE = 4


@dataclass
class TinyImageConfig:
    """Everything needed to rebuild a TinyImageNet."""

    hidden: int = 16
    latent_dim: int = 8
    codebook_size: int = 64

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TinyImageConfig:
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown TinyImageConfig keys {unknown}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TinyImageOutput:
    """What TinyImageNet.forward returns."""

    reconstruction: Tensor  # (B, 3, H, W)
    indices: Tensor  # (B, 1, H / 4, W / 4)
    commit_loss: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)


class TinyImageNet(nn.Module):
    """Two stride-2 convolutions, one VQ codebook, two transposed convolutions. x (B, 3, H, W), H, W % 4 == 0."""

    def __init__(self, cfg: TinyImageConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or TinyImageConfig()
        self.encoder = nn.Sequential(nn.Conv2d(3, cfg.hidden, 4, 2, 1), nn.GELU(),
                                     nn.Conv2d(cfg.hidden, cfg.latent_dim, 4, 2, 1))
        self.quantizer = VectorQuantizer(cfg.latent_dim, cfg.codebook_size)
        self.decoder = nn.Sequential(nn.ConvTranspose2d(cfg.latent_dim, cfg.hidden, 4, 2, 1), nn.GELU(),
                                     nn.ConvTranspose2d(cfg.hidden, 3, 4, 2, 1))

    @property
    def num_codebooks(self) -> int:
        return 1

    @property
    def bitrate(self) -> float:
        """Bits per pixel before entropy coding."""
        return math.log2(self.cfg.codebook_size) / STRIDE**2

    def forward(self, x: Tensor) -> TinyImageOutput:
        out = self.quantizer(self.encoder(x))
        return TinyImageOutput(self.decoder(out.quantized), out.indices, out.loss, out.stats)

    def encode_latents(self, x: Tensor) -> Tensor:
        """x (B, 3, H, W) -> tokens (B, 1, H / 4, W / 4)."""
        return self.quantizer(self.encoder(x)).indices

    def decode_latents(self, tokens: Tensor) -> Tensor:
        """tokens (B, 1, h, w) -> images (B, 3, 4h, 4w)."""
        return self.decoder(self.quantizer.decode_indices(tokens))


class TinyImageCodec(Codec):
    """uint8 (H, W, 3) arrays or float (3, H, W) tensors in [0, 1] <-> tokens (1, h, w) <-> .mtk bytes."""

    family = "tiny-image"
    modality = "image"
    model_class = TinyImageNet
    token_layout = "h, w"

    @classmethod
    def build_model(cls, config: dict[str, Any]) -> TinyImageNet:
        return TinyImageNet(TinyImageConfig.from_dict(config))

    def prepare(self, x: Any) -> Prepared:
        if isinstance(x, np.ndarray):
            if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
                raise ValueError(f"expected a uint8 (H, W, 3) array, got {x.dtype} {x.shape}")
            x = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).float() / 255
        if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"expected an image (3, H, W) tensor or (H, W, 3) uint8 array, got {type(x).__name__}")
        h, w = x.shape[1:]
        padded = F.pad(x[None], (0, -w % STRIDE, 0, -h % STRIDE), mode="replicate")[0]
        return Prepared(padded.float(), {"height": h, "width": w})

    def check_facts(self, header: dict[str, Any]) -> dict[str, Any]:
        return {"height": header_int(header, "height", None, 1, 16384),
                "width": header_int(header, "width", None, 1, 16384)}

    def latent_shape(self, facts: dict[str, Any]) -> tuple[int, ...]:
        return (1, -(-facts["height"] // STRIDE), -(-facts["width"] // STRIDE))

    def default_facts(self, tokens: Tensor) -> dict[str, Any]:
        return {"height": tokens.shape[1] * STRIDE, "width": tokens.shape[2] * STRIDE}

    def restore(self, y: Tensor, facts: dict[str, Any]) -> np.ndarray:
        y = y[:, : facts["height"], : facts["width"]].clamp(0, 1)
        return (y * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def read_image(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    from PIL import Image

    with Image.open(path) as im:
        return np.array(im.convert("RGB")), {}


def write_image(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)


def pixels(x: np.ndarray, kwargs: dict[str, Any]) -> tuple[float, str]:
    return float(x.shape[0] * x.shape[1]), "px"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255**2 / max(mse, 1e-10))


def evaluate(codec: TinyImageCodec, folder: str | Path, *, limit: int | None = None, with_baselines: bool = True,
             progress: Any = None) -> list[dict[str, Any]]:
    """bpp from real file sizes and PSNR, with Pillow's JPEG at quality 10 as the classical baseline."""
    import io

    from PIL import Image

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IO.read_suffixes)[:limit]
    ours = {"system": f"{codec.name} (ours)", "bits": 0.0, "pixels": 0.0, "psnr": []}
    jpeg = {"system": "jpeg-q10", "bits": 0.0, "pixels": 0.0, "psnr": []}
    for path in progress(files) if progress else files:
        x, _ = read_image(path)
        blob = codec.encode(x)
        ours["bits"] += 8 * len(blob)
        ours["pixels"] += x.shape[0] * x.shape[1]
        ours["psnr"].append(psnr(x, codec.decode(blob)))
        if with_baselines:
            buf = io.BytesIO()
            Image.fromarray(x).save(buf, format="JPEG", quality=10)
            jpeg["bits"] += 8 * buf.tell()
            jpeg["pixels"] += x.shape[0] * x.shape[1]
            jpeg["psnr"].append(psnr(x, np.asarray(Image.open(buf).convert("RGB"))))
    rows = [ours] + ([jpeg] if with_baselines else [])
    return [{"system": r["system"], "bpp": r["bits"] / max(r["pixels"], 1), "psnr": float(np.mean(r["psnr"]))}
            for r in rows if r["psnr"]]


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| system | bpp | PSNR |", "|---|---|---|"]
    lines += [f"| {r['system']} | {r['bpp']:.3f} | {r['psnr']:.2f} |" for r in rows]
    return "\n".join(lines)


# ---- training pieces: what `mediatok train fit --config` selects by class path -------------------------------------
from mediatok.train.losses import LossSet, LossWeights  # noqa: E402 - training imports stay out of the codec part


@dataclass
class TinyImageWeights(LossWeights):
    """One weight per term of TinyImageLosses (plus the GAN terms of LossWeights)."""

    l1: float = 1.0
    commit: float = 1.0


class TinyImageLosses(LossSet):
    """L1 + the quantizer's commitment term."""

    def __init__(self, weights: TinyImageWeights | None = None) -> None:
        super().__init__()
        self.weights = weights or TinyImageWeights()

    def forward(self, batch: Tensor, out: TinyImageOutput) -> dict[str, Tensor]:
        return {"l1": F.l1_loss(out.reconstruction, batch), "commit": out.commit_loss}


class PatchDiscriminator(nn.Module):
    """One conv layer and a 1x1 score map: [(score, [features])], the contract of mediatok.train.gan."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.post = nn.Conv2d(channels, 1, 1)

    def forward(self, x: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        h = F.leaky_relu(self.conv(x), 0.1)
        return [(self.post(h), [h])]


class TinyImageData(L.LightningDataModule):
    """Fixed top-left crops of the PNGs in `root` (training and validation alike: a plumbing test, not a recipe)."""

    def __init__(self, root: str, crop: int = 16, batch_size: int = 4) -> None:
        super().__init__()
        self.root, self.crop, self.batch_size = Path(root), crop, batch_size
        self.images: Tensor | None = None

    def setup(self, stage: str | None = None) -> None:
        crops = [torch.from_numpy(read_image(p)[0][: self.crop, : self.crop]).permute(2, 0, 1).float() / 255
                 for p in sorted(self.root.glob("*.png"))]
        if not crops:
            raise FileNotFoundError(f"no .png images in {self.root}")
        self.images = torch.stack(crops)  # (N, 3, crop, crop)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.images, batch_size=self.batch_size, shuffle=False, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.images, batch_size=self.batch_size)


IO = MediaIO((".png", ".jpg"), (".png",), read_image, write_image, pixels)


def register() -> None:
    """Register the family (tests call unregister() afterwards)."""
    register_family("tiny-image", TinyImageCodec, modality="image", io=IO, evaluate=evaluate,
                    format_table=format_table, default_model=None)


def unregister() -> None:
    unregister_family("tiny-image")


def synthetic_images(folder: Path, count: int, size: tuple[int, int] = (36, 52), seed: int = 0) -> list[Path]:
    """Deterministic smooth test pictures (gradients, discs, stripes) as PNGs; odd sizes on purpose."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    paths = []
    for i in range(count):
        c = rng.uniform(0.2, 1.0, (3, 3))
        img = np.stack([c[k, 0] * xx + c[k, 1] * yy + c[k, 2] * 0.3 for k in range(3)], -1)
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
        path = folder / f"img{i:03d}.png"
        Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths
