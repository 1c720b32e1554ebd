"""Codebook utilisation and reconstruction error of every quantizer on 8x8 patches of real photographs.

    python benchmarks/quantizers.py [--sizes 1024 16384 100000] [--methods fsq,vq-ema] [--steps 300] [--batch 2048]

Data: grayscale 8x8 patches (stride 4) of the photographs shipped in scikit-image (public domain; see
skimage/data/README.txt), normalised to zero mean and unit variance; the patches of four photographs of
different kinds (HELD_OUT: a scene, a texture, the moon, a printed page) are held out for evaluation.
Each quantizer sits in the same small autoencoder (MLP 64 -> 128 -> LATENT, quantizer,
MLP LATENT -> 128 -> 64), as in a VQ-VAE, and sees the same batches; everything trainable uses Adam
(lr 2e-3) on reconstruction MSE + the quantizer's loss. LC's frozen entries are k-means centroids of the raw
64-d patches ("pretrained features", as VQGAN-LC uses CLIP features), projected into the latent space.
FSQ uses the paper's levels for the nearest power of two (K = 1024 -> [8,5,5,5], 1000 codes; 16384 ->
[8,8,8,6,5], 15360 codes), behind a projection to len(levels) channels normalised per channel, trained with
a batch code-entropy loss of weight 0.1 (NormalizedFSQ explains why; --fsq-entropy 0 turns it off);
its rows report its own K. `--sizes 1000 15360` runs the codebook quantizers at FSQ's K.
Utilisation counts the codes used over training + held-out patches (so that K = 100k can be reached);
MSE is the autoencoder's reconstruction error on the held-out patches.
Peer: vector-quantize-pytorch's VectorQuantize (EMA, k-means init, dead-code threshold 2), in the same run.
Needs the `bench` extra (scikit-image, vector-quantize-pytorch).
"""
from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from mediatok.quantizers import FSQ, LCQuantizer, QuantizerOutput, SimVQ, VectorQuantizer

PHOTOS = ["astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
          "gravel.png", "hubble_deep_field.jpg", "moon.png", "motorcycle_left.png", "motorcycle_right.png",
          "retina.jpg", "rocket.jpg", "cell.png", "clock_motion.png", "ihc.png", "page.png", "text.png"]
# Several photographs of different kinds, so that the held-out MSE is not one image's (the motorcycle pair is a
# stereo pair: both stay on the same side).
HELD_OUT = ("coffee.png", "gravel.png", "moon.png", "page.png")

# Mentzer et al. (2023), table 1: recommended levels per target codebook size 2**bits.
FSQ_PAPER_LEVELS = {8: [8, 6, 5], 10: [8, 5, 5, 5], 12: [7, 5, 5, 5, 5], 14: [8, 8, 8, 6, 5], 16: [8, 8, 8, 5, 5, 5]}


def fsq_levels(k: int) -> list[int]:
    """The paper's levels for the power of two nearest to k (1000 and 1024 -> [8,5,5,5])."""
    bits = min(FSQ_PAPER_LEVELS, key=lambda b: abs(b - math.log2(k)))
    return FSQ_PAPER_LEVELS[bits]


def _patches(gray: np.ndarray, size: int, stride: int) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(gray, dtype=np.float32))
    return t.unfold(0, size, stride).unfold(1, size, stride).reshape(-1, size * size)


def load_patches(size: int = 8, stride: int = 4, photos: str | None = None,
                 held_out: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and held-out patches (N, size*size), normalised with the training statistics: scikit-image's
    photographs (HELD_OUT held out), or every image in the folder `photos` with those in `held_out` held out."""
    train, held = [], []
    if photos is None:
        import skimage.color
        import skimage.io

        folder = os.path.join(os.path.dirname(skimage.__file__), "data")
        for name in PHOTOS:
            img = skimage.io.imread(os.path.join(folder, name))
            if img.ndim == 3:
                img = skimage.color.rgb2gray(img[..., :3]) * 255.0
            (held if name in HELD_OUT else train).append(_patches(img, size, stride))
    else:
        from PIL import Image

        from mediatok.train.image.data import read_folder

        for folder, out in ((photos, train), (held_out, held)):
            for rgb in read_folder(folder):
                out.append(_patches(np.asarray(Image.fromarray(rgb).convert("L")), size, stride))
    train_t, held_t = torch.cat(train), torch.cat(held)
    mean, std = train_t.mean(), train_t.std()
    return (train_t - mean) / std, (held_t - mean) / std


LATENT = 8


class AutoEncoder(torch.nn.Module):
    """patches (N, 64) -> latent (1, LATENT, N) -> quantizer -> patches; the quantizer is the only difference."""

    def __init__(self, quantizer: torch.nn.Module, dim: int = 64) -> None:
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(dim, 128), torch.nn.GELU(), torch.nn.Linear(128, LATENT))
        self.decoder = torch.nn.Sequential(torch.nn.Linear(LATENT, 128), torch.nn.GELU(), torch.nn.Linear(128, dim))
        self.quantizer = quantizer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, 64) -> reconstruction (N, 64), indices (N,), quantizer loss."""
        z = self.encoder(x)
        if isinstance(self.quantizer, PeerVQ):
            q, idx, loss = self.quantizer(z)
        else:
            out = self.quantizer(z.T[None])  # (1, LATENT, N): a batch of N tokens
            q, idx, loss = out.quantized[0].T, out.indices.reshape(-1), out.loss
        return self.decoder(q), idx, loss


class NormalizedFSQ(torch.nn.Module):
    """Linear(LATENT -> len(levels)), per-channel normalisation, FSQ, Linear(len(levels) -> LATENT). z (1, LATENT, N).

    FSQ's tanh bound cuts each channel into equal slices of (-1, 1), so it fills its grid when every channel
    arrives at about unit scale; an unnormalised Linear leaves the scale (and the bias) to chance. The
    normalisation is per channel over the tokens (BatchNorm without affine): a LayerNorm across the 4-5 FSQ
    channels would pin every latent to a sphere (zero mean, fixed norm across channels) and leave most of the
    grid unreachable.

    Normalising the marginals is not enough: after 300 steps the encoder's channels are strongly dependent
    (correlations up to 0.9, a near-zero eigenvalue at 5 channels), so the joint codes sit on a thin manifold
    of the grid. Post-hoc whitening + per-channel empirical-CDF mapping of those latents reached only 77 % /
    50 %; a per-channel Gaussian-CDF map, uniform-noise training and a per-channel (marginal) entropy loss did
    not help at 300 steps (<= 61 % / 16 %). What does act on the joint is the batch code-entropy loss of
    lookup-free quantisation (MAGVIT-v2, Yu et al. 2023): each channel's bounded value gets a soft assignment
    to its L levels (softmax of -distance**2 / 0.5), their outer product is the token's soft distribution over
    the prod(levels) codes, and `entropy_weight * (log K - H(batch mean))` is added to the loss. It is FSQ's
    counterpart of the codebook quantizers' dead-code restarts (an implicit grid has no entries to restart),
    it leaves FSQ's rounding untouched and is off in evaluation; `--fsq-entropy 0` gives the plain arm.
    """

    def __init__(self, levels: list[int], dim: int = LATENT, entropy_weight: float = 0.0) -> None:
        super().__init__()
        self.project_in = torch.nn.Conv1d(dim, len(levels), 1)
        self.norm = torch.nn.BatchNorm1d(len(levels), affine=False)
        self.fsq = FSQ(levels)
        self.project_out = torch.nn.Conv1d(len(levels), dim, 1)
        self.levels = list(levels)
        self.entropy_weight = entropy_weight

    @property
    def codebook_size(self) -> int:
        return self.fsq.codebook_size

    def code_entropy_loss(self, h: torch.Tensor) -> torch.Tensor:
        """log K - entropy of the batch-mean soft code distribution; h (1, d, N) is what FSQ receives."""
        joint = None
        for i, n_levels in enumerate(self.levels):
            y = torch.tanh(h[0, i]) * (n_levels / 2)  # FSQ's bounded value, level k owns [k - L/2, k + 1 - L/2)
            centres = torch.arange(n_levels, dtype=h.dtype, device=h.device) - n_levels / 2 + 0.5
            p = torch.softmax(-(y[:, None] - centres) ** 2 / 0.5, -1)  # (N, L)
            joint = p if joint is None else (joint[:, :, None] * p[:, None, :]).reshape(len(p), -1)
        mean = joint.mean(0)
        return math.log(mean.numel()) + (mean * (mean + 1e-12).log()).sum()

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """z (1, LATENT, N) -> quantized (1, LATENT, N), indices (1, 1, N)."""
        h = self.norm(self.project_in(z))
        out = self.fsq(h)  # (1, d, N)
        loss = out.loss
        if self.training and self.entropy_weight > 0:
            loss = loss + self.entropy_weight * self.code_entropy_loss(h)
        return QuantizerOutput(self.project_out(out.quantized), out.indices, loss, out.stats)


class PeerVQ(torch.nn.Module):
    """vector-quantize-pytorch's VectorQuantize with EMA, k-means init and dead-code threshold 2."""

    def __init__(self, dim: int, k: int) -> None:
        super().__init__()
        from vector_quantize_pytorch import VectorQuantize

        self.vq = VectorQuantize(dim=dim, codebook_size=k, decay=0.99, kmeans_init=True, kmeans_iters=10,
                                 threshold_ema_dead_code=2, channel_last=True)

    @property
    def codebook_size(self) -> int:
        return self.vq.codebook_size

    def forward(self, x):  # x (N, D)
        q, idx, loss = self.vq(x[None])
        return q[0], idx[0], loss


def run_one(name: str, make, train: torch.Tensor, held: torch.Tensor, steps: int, batch: int, seed: int = 0):
    """Train one autoencoder with the quantizer make() builds; utilisation, held-out MSE and wall time."""
    torch.manual_seed(seed)
    model = AutoEncoder(make())
    k = model.quantizer.codebook_size  # FSQ's differs from the requested size
    if isinstance(model.quantizer, LCQuantizer):
        _init_lc(model, train)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    model.train()
    for _ in range(steps):
        x = train[torch.randint(len(train), (batch,), generator=g)]
        recon, _, loss = model(x)
        total = torch.nn.functional.mse_loss(recon, x) + loss
        opt.zero_grad()
        total.backward()
        opt.step()
    train_s = time.perf_counter() - start
    model.eval()
    used = torch.zeros(k, dtype=torch.bool)
    squared_error = 0.0
    with torch.no_grad():
        for part in (train, held):
            for chunk in part.split(16384):
                recon, idx, _ = model(chunk)
                used[idx] = True
                if part is held:
                    squared_error += float((recon - chunk).pow(2).sum())
    mse = squared_error / held.numel()
    return {"method": name, "K": k, "util": 100.0 * float(used.float().mean()), "mse": mse, "train_s": train_s}


def _split(values: list[str]) -> list[str]:
    """Accept both `--methods fsq vq-ema` and `--methods fsq,vq-ema`."""
    return [v for value in values for v in value.split(",") if v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1024", "16384", "100000"], help="K values (space or comma)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--fsq-entropy", type=float, default=0.1,
                        help="weight of FSQ's batch code-entropy loss (0: plain normalised FSQ)")
    parser.add_argument("--methods", nargs="+", default=["vq-ema", "simvq", "lc", "fsq", "vqtorch-ema"],
                        help="space or comma separated")
    parser.add_argument("--photos", default=None,
                        help="a folder of photos to take the training patches from instead of scikit-image's "
                             "(e.g. data/images/train from scripts/prepare_images.py); needs --held-out-photos")
    parser.add_argument("--held-out-photos", default=None, help="with --photos: the folder of held-out photos")
    args = parser.parse_args()
    if (args.photos is None) != (args.held_out_photos is None):
        parser.error("--photos and --held-out-photos go together")
    args.sizes = [int(v) for v in _split(args.sizes)]
    args.methods = _split(args.methods)
    train, held = load_patches(photos=args.photos, held_out=args.held_out_photos)
    dim = train.shape[1]
    print(f"# {len(train)} training + {len(held)} held-out 8x8 patches, D={dim}, latent {LATENT}, {args.steps} steps x {args.batch} "
          f"tokens, torch threads={torch.get_num_threads()}")
    print(f"# held out: {args.held_out_photos or ', '.join(HELD_OUT)}")
    print(f"{'method':<16} {'K':>7} {'util %':>7} {'held-out MSE':>13} {'train s':>8}")
    for k in args.sizes:
        factories = {
            "vq-ema": lambda: VectorQuantizer(LATENT, k),
            "simvq": lambda: SimVQ(LATENT, k),
            # Restarts after ~2K unused tokens instead of ~9K: full use of the codebook, at some cost in MSE.
            "simvq-fast-restart": lambda: SimVQ(LATENT, k, dead_code_window=2.0, dead_code_threshold=0.2),
            "lc": lambda: LCQuantizer(LATENT, k, codebook_dim=dim),
            "fsq": lambda: NormalizedFSQ(fsq_levels(k), entropy_weight=args.fsq_entropy),
            "vqtorch-ema": lambda: PeerVQ(LATENT, k),
        }
        unknown = [m for m in args.methods if m not in factories]
        if unknown:
            parser.error(f"unknown method(s) {unknown}; choose from {sorted(factories)}")
        for name in args.methods:
            row = run_one(name, factories[name], train, held, args.steps, args.batch)
            label = f"fsq{fsq_levels(k)}".replace(" ", "") if name == "fsq" else name
            print(f"{label:<16} {row['K']:>7} {row['util']:>7.2f} {row['mse']:>13.4f} {row['train_s']:>8.1f}",
                  flush=True)


def _init_lc(model: AutoEncoder, train: torch.Tensor) -> None:
    """LC's frozen entries: k-means of raw training patches; projector fitted to the encoder's latents of them."""
    g = torch.Generator().manual_seed(1)
    sample = train[torch.randperm(len(train), generator=g)[: max(4 * model.quantizer.codebook_size, 65536)]]
    with torch.no_grad():
        latents = model.encoder(sample)
    model.quantizer.init_from_features(sample, latents, iters=5)


if __name__ == "__main__":
    main()
