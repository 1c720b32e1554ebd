"""Rebalance a shipped image tokenizer's codebook on training photos seen at several scales; writes a new folder.

    train photos --bicubic resize by each of --scales--> encoder latents (tiles of 64 tokens, 4 of context)
        --mediatok.quantizers.rebalance_codebook--> codewords --Codebook.move_codes--> weights rounded to fp16
        --`mediatok.train.export.package`: nested codebooks and token priors fitted on --prior-data, as export
          does--> <out>/ (config + weights + priors)

Why: a codebook trained on 128 px crops of photos of at most 1024 px holds codes for texture at that scale; a
larger photo of the same kind of scene (a 1536 px wallpaper) is smoother per 8 x 8 token, so those codes go unused
and the smooth cells stay coarse. Counting use on the training photos upscaled as well as at their own size, and
moving the least used codewords into the busiest cells, flattens use over a range of scales. The moves read only
training photos; the prior fit reads training photos and the val split (its context classes); no held-out photo.
The weights change, so the model hash does: .mtk files of the old weights are refused by the new model.

    OMP_NUM_THREADS=2 python scripts/rebalance_image_vq.py <stage-4 export> pretrained/image-vq --name image-vq \
        --short-id i8b --min-usage 0.7 --rounds 20 --max-moves 0.05      # how image-vq v2 was made (its CARD)

`--report` prints code use and quality on the val photos (at each scale) before and after; without an output
folder nothing is written. `--latents F` keeps the encoded latents (11 min on 2 cores) for trying other settings.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

import mediatok
from mediatok.codecs.image.codec import tiles
from mediatok.codecs.image.evaluate import _perplexity, ms_ssim, psnr
from mediatok.quantizers.rebalance import rebalance_codebook
from mediatok.train.export import parse_sizes
from mediatok.train.image.data import read_folder, to_tensor


def rescaled(rgb: np.ndarray, scale: float) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H', W') in [0, 1], bicubic-resized by scale (antialiased when shrinking),
    cropped to multiples of 8."""
    x = to_tensor(rgb)
    if scale != 1:
        size = (max(8, round(x.shape[1] * scale)), max(8, round(x.shape[2] * scale)))
        x = F.interpolate(x[None], size=size, mode="bicubic", antialias=scale < 1, align_corners=False)[0].clamp(0, 1)
    return x[:, : x.shape[1] // 8 * 8, : x.shape[2] // 8 * 8]


@torch.no_grad()
def latents(model, x: torch.Tensor, tile: int = 64, margin: int = 4) -> torch.Tensor:
    """Encoder latents (h * w, D) of x (3, H, W) (H, W multiples of f), in tiles of `tile` tokens with `margin`
    tokens of context (the codec's own tiling, `mediatok.codecs.image.codec.tiles`)."""
    f = model.cfg.downsample
    h, w = x.shape[1] // f, x.shape[2] // f
    out = torch.empty(model.cfg.latent_dim, h, w)
    for (t0, t1, l0, l1), (c0, c1, d0, d1) in tiles(h, w, tile, margin):
        z = model.encode(x[None, :, c0 * f : c1 * f, d0 * f : d1 * f])[0]
        out[:, t0:t1, l0:l1] = z[:, t0 - c0 : t1 - c0, l0 - d0 : l1 - d0]
    return out.reshape(out.shape[0], -1).T.contiguous()


def cached_latents(path: str | None, key: dict[str, str], compute) -> torch.Tensor:
    """compute()'s latents, or those kept in `path` when they were computed for the same key (model, scales,
    rows, seed); written to `path` otherwise."""
    if path and Path(path).exists():
        with safe_open(path, "pt") as f:
            kept = f.metadata() or {}
            if kept != key:
                raise SystemExit(f"{path} holds latents of {kept}, not of {key}: delete it or pass another path")
            return f.get_tensor("latents")
    rows = compute()
    if path:
        save_file({"latents": rows.contiguous()}, path, metadata=key)
    return rows


@torch.no_grad()
def report(codec, photos: list[np.ndarray], scales: list[float], label: str) -> None:
    """Code use, perplexity, PSNR and MS-SSIM of the tokenizer on photos at each scale (and pooled)."""
    model = codec.model
    k = model.cfg.codebook_size
    pooled = torch.zeros(k, dtype=torch.long)
    for s in scales:
        counts, psnrs, ssims = torch.zeros(k, dtype=torch.long), [], []
        for rgb in photos:
            x = rescaled(rgb, s)
            idx = codec.tokenize(x)
            counts += torch.bincount(idx.reshape(-1), minlength=k)
            # measured as `mediatok eval` measures: uint8 against uint8, with its helpers
            ref = (x * 255).round().byte().permute(1, 2, 0).numpy()
            y = codec.detokenize(idx)[: ref.shape[0], : ref.shape[1]]  # uint8 (H, W, 3)
            psnrs.append(psnr(ref, y))
            if min(ref.shape[:2]) >= 176:
                ssims.append(ms_ssim(ref, y))
        pooled += counts
        print(f"{label} scale {s:g}: tokens {int(counts.sum())} ({counts.sum() / k:.1f}/code), used "
              f"{100 * (counts > 0).float().mean():.2f} %, perplexity {_perplexity(counts.double()):.0f}, "
              f"PSNR {np.mean(psnrs):.2f}, MS-SSIM {np.mean(ssims):.4f}")
    print(f"{label} pooled: used {100 * (pooled > 0).float().mean():.2f} % of {k} ({pooled.sum() / k:.1f} tokens/code)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="shipped folder or registered name, e.g. pretrained/image-vq")
    parser.add_argument("out", nargs="?", help="folder to write (config.json + model.safetensors)")
    parser.add_argument("--data", default="data/images", help="prepared photos (train/ and val/ under it)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.0],
                        help="resize factors of the training photos whose latents count (above 1: upscaled)")
    parser.add_argument("--rows", type=int, default=3_000_000, help="latents to fit on (a random subset)")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of moves (stops early once no code is rare)")
    parser.add_argument("--min-usage", type=float, default=0.3,
                        help="a code used less than this times the uniform rate on the latents is moved")
    parser.add_argument("--max-moves", type=float, default=0.03, help="at most this share of the codes moves a round")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random subset of latents")
    parser.add_argument("--report", action="store_true", help="print val code use and quality before and after")
    parser.add_argument("--latents", help="a .safetensors file to keep the fitted latents in: read when it holds "
                                          "those of this model, scales, rows, seed and data; else written")
    parser.add_argument("--prior-data", default="data/images",
                        help="prepared data to fit the token priors (and nested codebooks) on, as export does "
                             "('' for none: raw indices)")
    parser.add_argument("--nested-sizes", type=parse_sizes, default=(4096, 1024, 256),
                        help="nested codebooks to fit after the moves, as export's option ('' for none)")
    parser.add_argument("--nested-steps", type=int, default=200,
                        help="fine-tuning steps of each nested codebook, as export's option")
    parser.add_argument("--name", default=None, help="model name (default: the output folder's name)")
    parser.add_argument("--short-id", default=None, help="short id for bitstream headers (default: the model's)")
    args = parser.parse_args(argv)
    if not args.out and not args.report:
        parser.error("give an output folder, or --report")

    torch.manual_seed(args.seed)
    codec = mediatok.load(args.model)
    model = codec.model.eval()
    codebook = model.quantizer.codebook
    start = time.time()
    val = read_folder(Path(args.data) / "val") if args.report else []
    if args.report:
        report(codec, val, args.scales, "before")

    def compute() -> torch.Tensor:
        train = read_folder(Path(args.data) / "train")
        rows = torch.cat([latents(model, rescaled(rgb, s)).half() for s in args.scales for rgb in train])
        if rows.shape[0] > args.rows:
            rng = np.random.default_rng(args.seed)
            rows = rows[torch.from_numpy(np.sort(rng.choice(rows.shape[0], args.rows, replace=False)))]
        return rows

    key = {"model": codec.model_hash.hex() or str(args.model), "scales": repr(args.scales), "rows": str(args.rows),
           "seed": str(args.seed), "data": str(args.data)}
    rows = cached_latents(args.latents, key, compute)
    print(f"latents {tuple(rows.shape)} at scales {args.scales} in {time.time() - start:.0f} s")
    before = model.code_vectors().float().clone()
    res = rebalance_codebook(before, rows, rounds=args.rounds, min_usage=args.min_usage, max_moves=args.max_moves)
    changed = torch.nonzero((res.codes != before).any(1)).squeeze(1)
    codebook.move_codes(changed, res.codes[changed])
    usage = res.counts.double() * res.codes.shape[0] / rows.shape[0]
    print(f"moved {res.moved.numel()} codes ({changed.numel()} codewords changed); on the fitted rows "
          f"{int((usage < 0.2).sum())} codes under 0.2x uniform, max {float(usage.max()):.2f}x, "
          f"{time.time() - start:.0f} s")
    if args.report:
        report(codec, val, args.scales, "after")
    if args.out:
        from mediatok.train.export import package

        options = {}
        if args.prior_data and args.nested_sizes:
            options = {"nested_sizes": args.nested_sizes, "nested_steps": args.nested_steps}
        package(model, codec.family, args.out, args.name or Path(args.out).name, args.short_id or codec.short_id,
                prior_data=args.prior_data or None, **options)
        print(f"wrote {args.out}, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
