"""Nested codebooks: several bitrates from one trained image tokenizer (Mao et al., "Extreme Image Compression
using Fine-tuned VQGANs", 2024).

    main codebook vectors (K, D) --k-means--> n centres (n < K) --fine-tune the n entries only, through the frozen
    encoder and decoder, on L1 + MS-SSIM of random crops--> the nested codebook of n entries

Encoding with `codebook_size=n` maps each latent to the nearest of the n entries: log2(n) bits a token instead
of log2(K), at some loss of detail. Only the tables move in the fine-tune, so the main codebook's tokens, and
every bitstream made with it, are unchanged.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from mediatok.codecs.image.model import ImageVQ, nearest_entries
from mediatok.quantizers.kmeans import kmeans
from mediatok.train.image.data import RandomCrops
from mediatok.train.image.losses import ms_ssim_loss


def with_nested_sizes(model: ImageVQ, sizes: tuple[int, ...] | list[int]) -> ImageVQ:
    """A copy of model whose config has nested codebooks of `sizes` instead of its own (tables of sizes it already
    had are kept, new ones zero); every other weight copied."""
    cfg = dataclasses.replace(model.cfg, nested_sizes=tuple(int(s) for s in sizes))
    grown = ImageVQ(cfg)
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    stray = [k for k in [*missing, *unexpected] if not k.startswith("nested_")]  # old nested tables are dropped
    if stray:
        raise ValueError(f"model weights do not fit the grown config: {stray[:5]}")
    return grown.to(next(model.parameters()).device).eval()


def fit_nested_codebooks(model: ImageVQ, images: list[np.ndarray], steps: int = 200, crop: int = 128,
                         batch_size: int = 4, lr: float = 1e-3, seed: int = 0,
                         progress: bool = False) -> dict[int, dict[str, float]]:
    """Fill every nested table of model (in place): k-means of the main codebook, then `steps` fine-tuning steps
    on random crops of images; a table that fine-tuning made worse on a fixed batch of crops keeps its k-means start.
    Returns, per size, the objective (L1 + 1 - MS-SSIM) on that batch before and after, and which table was kept."""
    torch.manual_seed(seed)
    codes = model.code_vectors().detach().float()  # (K, D)
    crops = RandomCrops(images, crop, epoch_size=(max(1, steps) + 2) * max(8, batch_size), seed=seed)
    held = torch.stack([crops[i] for i in range(max(8, batch_size))])  # the fixed batch the choice is made on
    report = {}
    model.eval().requires_grad_(False)
    try:
        for size in model.cfg.nested_sizes:
            centres, _ = kmeans(codes, size, iters=20, generator=torch.Generator().manual_seed(seed))
            table = torch.nn.Parameter(centres.clone())
            opt = torch.optim.Adam([table], lr=lr)
            before = float(_objective(model, table.detach(), held))
            for step in range(steps):
                x = torch.stack([crops[max(8, batch_size) + step * batch_size + i] for i in range(batch_size)])
                y = _reconstruct(model, table, x)
                loss = (y - x).abs().mean() + ms_ssim_loss(y, x)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if progress and step % 50 == 0:
                    print(f"nested {size}: step {step} loss {float(loss.detach()):.4f}", flush=True)
            tuned = table.detach().half().float()  # as shipped: fp16
            after = float(_objective(model, tuned, held))
            # Moving entries reassigns latents, so a very small codebook can end worse than its k-means start:
            # keep whichever does better on the fixed batch.
            model.nested_codebook(size).copy_(tuned if after < before else centres.half().float())
            report[size] = {"before": before, "after": min(before, after), "kept": "fine-tuned" if after < before
                            else "k-means"}
    finally:
        model.requires_grad_(True)
    return report


def _reconstruct(model: ImageVQ, table: Tensor, x: Tensor) -> Tensor:
    """x through the encoder, the nearest entries of table (gradients reach the table) and the decoder."""
    with torch.no_grad():
        z = model.encode(x)  # (B, D, h, w)
    q = table[nearest_entries(z, table)[:, 0]].permute(0, 3, 1, 2)  # (B, D, h, w)
    return model.decode(q)


@torch.no_grad()
def _objective(model: ImageVQ, table: Tensor, x: Tensor) -> Tensor:
    y = _reconstruct(model, table, x)
    return (y - x).abs().mean() + ms_ssim_loss(y, x)


def nested_tokens(model: ImageVQ, latents: list[Tensor], size: int) -> list[Tensor]:
    """Indices into the nested codebook of `size` for each latent grid (D, h, w) -> (1, h, w)."""
    table = model.nested_codebook(size)
    return [nearest_entries(z[None], table)[0] for z in latents]
