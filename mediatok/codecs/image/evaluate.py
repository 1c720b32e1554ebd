"""Image evaluation: rate from real file sizes, PSNR, MS-SSIM, codebook use and speed, against JPEG and WebP.

    rows = evaluate(codec, "data/images/test512", out_dir="runs/eval")   # one row per system
    print(format_table(rows))

Baselines are Pillow's JPEG and WebP, each at the quality whose file size is nearest our own for that image
(binary search over quality). WebP cannot go below about 0.07 bpp at 512 x 512, so a third baseline,
"webp 2x-down", codes the image downscaled 2x (Lanczos) and upscales the decoded picture back (bicubic):
the fair comparison for the lowest rates, and the peer of our own 2x-down row (`encode(x, downscale=2)`).
With `out_dir`, writes grid.png (centre crops: original, ours, the baselines), rd.png (PSNR and MS-SSIM against
bpp; JPEG and WebP over a ladder of qualities) and use.png (code use as the set grows).
"""
from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mediatok.codecs.figures import NOT_DRAWN, pyplot
from mediatok.codecs.image import metrics
from mediatok.codecs.image.io import READ_SUFFIXES, read_image

RD_QUALITIES = {"jpeg": (3, 8, 15, 30, 50, 75, 90), "webp": (0, 5, 15, 30, 50, 75, 90)}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of the same shape (capped at 100 dB for identical images)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return min(100.0, 10 * math.log10(255**2 / max(mse, 1e-10)))


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two uint8 (H, W, 3) images with as many scales (<= 5) as the short side allows (see
    `mediatok.codecs.image.metrics`); NaN under 3 px."""
    if min(a.shape[:2]) < 3:
        return float("nan")
    x = torch.from_numpy(np.array(a, dtype=np.float64)).permute(2, 0, 1)[None]  # (1, 3, H, W), a copy: inputs may be read-only
    y = torch.from_numpy(np.array(b, dtype=np.float64)).permute(2, 0, 1)[None]
    return float(metrics.ms_ssim(x, y, data_range=255)[0])


def pillow_codec(image: np.ndarray, fmt: str, quality: int) -> tuple[np.ndarray, int]:
    """Encode and decode with Pillow: (decoded uint8 (H, W, 3), file size in bytes)."""
    from PIL import Image

    buf = io.BytesIO()
    options = {"quality": quality} | ({"method": 6} if fmt == "WEBP" else {"optimize": True})
    Image.fromarray(image).save(buf, format=fmt, **options)
    size = buf.tell()
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")), size


def webp_2x_down(image: np.ndarray, quality: int) -> tuple[np.ndarray, int]:
    """WebP on the image downscaled 2x (Lanczos), decoded and upscaled back (bicubic) to the original size."""
    from PIL import Image

    h, w = image.shape[:2]
    small = np.asarray(Image.fromarray(image).resize((max(1, w // 2), max(1, h // 2)), Image.LANCZOS))
    decoded, size = pillow_codec(small, "WEBP", quality)
    return np.asarray(Image.fromarray(decoded).resize((w, h), Image.BICUBIC)), size


def nearest_quality(code: Callable[[int], tuple[np.ndarray, int]], target_bytes: float, lo: int = 0,
                    hi: int = 100) -> tuple[np.ndarray, int, int]:
    """Binary search over quality for the file size nearest target_bytes: (decoded, size, quality)."""
    cache: dict[int, tuple[np.ndarray, int]] = {}

    def at(q: int) -> tuple[np.ndarray, int]:
        if q not in cache:
            cache[q] = code(q)
        return cache[q]

    a, b = lo, hi
    while b - a > 1:  # sizes grow with quality (Pillow's encoders are monotone up to small wiggles)
        mid = (a + b) // 2
        if at(mid)[1] <= target_bytes:
            a = mid
        else:
            b = mid
    best = min((a, b), key=lambda q: (abs(at(q)[1] - target_bytes), q))
    return (*at(best), best)


def evaluate(codec: Any, folder: str | Path, *, limit: int | None = None, with_baselines: bool = True,
             progress: Callable | None = None, out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per system over the images in folder: bpp from real file sizes, PSNR, MS-SSIM, MP/s; ours also
    reports codebook utilisation over the whole set, tokens per code and token perplexity, and how utilisation
    grew file by file (`use_growth`: (tokens per code, share of codes used) after each file, in sorted order)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in READ_SUFFIXES)[:limit]
    if not files:
        raise ValueError(f"no images ({', '.join(READ_SUFFIXES)}) in {folder}")
    nested = tuple(getattr(codec.model.cfg, "nested_sizes", ()))
    baselines = ["jpeg", "webp", "webp 2x-down"] if with_baselines else []
    # Lower operating points of ours, each with WebP matched to its size: every nested codebook (WebP, or below
    # WebP's floor, WebP on a 2x-downscaled image), then every codebook on the image shrunk 2x
    # (`encode(x, codebook_size=n, downscale=2)`), the lowest rates, against WebP on the same shrunk image.
    # (ours' key, the peer's key, encode options, the peer)
    lower = [(f"ours @{n}", f"webp-matched @{n}", {"codebook_size": n}, webp_matched) for n in nested]
    if 2 in getattr(codec, "downscales", ()):
        lower += [(f"ours 2x-down{_at(n)}", f"webp 2x-down-matched{_at(n)}", {"codebook_size": n, "downscale": 2},
                   webp_2x_down_matched) for n in (None, *nested)]
    systems = ["ours", *baselines,
               *(key for mine, peer, _, _ in lower for key in ([mine, peer] if with_baselines else [mine]))]
    acc = {s: {"bits": 0.0, "pixels": 0.0, "psnr": [], "ms_ssim": [], "enc_s": 0.0, "dec_s": 0.0, "quality": []}
           for s in systems}
    counts = torch.zeros(codec.codebook_size, dtype=torch.float64)
    growth: list[tuple[float, float]] = []
    samples: list[dict[str, np.ndarray]] = []
    for path in progress(files) if progress else files:
        x = read_image(path)
        pixels = x.shape[0] * x.shape[1]
        t0 = time.perf_counter()
        blob = codec.encode(x)
        t1 = time.perf_counter()
        y = codec.decode(blob)
        t2 = time.perf_counter()
        tokens = codec.tokenize(x)
        counts += torch.bincount(tokens.reshape(-1), minlength=codec.codebook_size).double()
        growth.append((float(counts.sum()) / codec.codebook_size, float((counts > 0).double().mean())))
        recon = {"ours": y}
        add_measurement(acc["ours"], x, y, 8 * len(blob), t1 - t0, t2 - t1)
        if with_baselines:
            for name, fn in (("jpeg", lambda q: pillow_codec(x, "JPEG", q)), ("webp", lambda q: pillow_codec(x, "WEBP", q)),
                             ("webp 2x-down", lambda q: webp_2x_down(x, q))):
                decoded, size, q = nearest_quality(fn, len(blob), lo=1 if name == "jpeg" else 0)
                add_measurement(acc[name], x, decoded, 8 * size, 0.0, 0.0)
                acc[name]["quality"].append(q)
                recon[name] = decoded
        for mine, peer, options, peer_codec in lower:
            t0 = time.perf_counter()
            small = codec.encode(x, **options)
            t1 = time.perf_counter()
            y_n = codec.decode(small)
            add_measurement(acc[mine], x, y_n, 8 * len(small), t1 - t0, time.perf_counter() - t1)
            if mine == "ours 2x-down":  # the grid shows the main codebook's lowest rate
                recon[mine] = y_n
            if with_baselines:
                decoded, size, q = peer_codec(x, len(small))
                add_measurement(acc[peer], x, decoded, 8 * size, 0.0, 0.0)
                acc[peer]["quality"].append(q)
        if len(samples) < 6:
            samples.append({"original": x, **recon})
    rows = [summary_row(_system_name(codec, s), acc[s]) for s in systems]
    rows[0].update(nominal_bpp=float(codec.bitrate), utilization=float((counts > 0).double().mean()),
                   tokens_per_code=float(counts.sum()) / codec.codebook_size,
                   perplexity=float(_perplexity(counts)), use_growth=growth)
    if out_dir is not None:
        write_figures(rows, samples, files, Path(out_dir), with_baselines)
        rows[0]["use_plot"] = write_use_plot(growth, Path(out_dir) / "use.png")
    return rows


def write_figures(rows: list[dict[str, Any]], samples: list[dict[str, np.ndarray]], files: list[Path], out_dir: Path,
                  with_baselines: bool) -> None:
    """out_dir/grid.png (the samples) and out_dir/rd.png (the rows beside JPEG's and WebP's quality ladders over
    the first 8 files); their paths go into the first row. Shared with the wavelet family; the tokenizer's code-use
    curve is drawn by `evaluate` itself."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_grid(samples, out_dir / "grid.png")
    curves = rd_curves([read_image(p) for p in files[:8]]) if with_baselines else {}
    rows[0]["rd_plot"] = write_rd_plot(rows, curves, out_dir / "rd.png")
    rows[0]["grid"] = str(out_dir / "grid.png")


def _at(n: int | None) -> str:
    """The suffix naming a nested codebook in a system's key ("" for the main one)."""
    return "" if n is None else f" @{n}"


def _system_name(codec: Any, system: str) -> str:
    if system == "ours":
        return f"{codec.name} (ours)"
    if system.startswith("ours @"):
        return f"{codec.name} {system[len('ours '):]} codes (ours)"
    if system.startswith("ours 2x-down"):
        rest = system[len("ours 2x-down"):]
        return f"{codec.name} 2x-down{rest}{' codes' if rest else ''} (ours)"
    if system.startswith("webp 2x-down-matched"):
        return f"webp 2x-down at {codec.name} 2x-down{system[len('webp 2x-down-matched'):]}'s size"
    if system.startswith("webp-matched @"):
        return f"webp / webp 2x-down at {codec.name} {system[len('webp-matched '):]}'s size"
    return system


def webp_matched(x: np.ndarray, target_bytes: int) -> tuple[np.ndarray, int, int]:
    """WebP at the quality nearest to target_bytes; below WebP's smallest file, WebP of the 2x-downscaled image."""
    decoded, size, q = nearest_quality(lambda q: pillow_codec(x, "WEBP", q), target_bytes, lo=0)
    if size > 1.1 * target_bytes:
        decoded, size, q = nearest_quality(lambda q: webp_2x_down(x, q), target_bytes, lo=0)
    return decoded, size, q


def webp_2x_down_matched(x: np.ndarray, target_bytes: int) -> tuple[np.ndarray, int, int]:
    """WebP of the 2x-downscaled image at the quality nearest to target_bytes (the peer of ours at 2x-down)."""
    return nearest_quality(lambda q: webp_2x_down(x, q), target_bytes, lo=0)


def add_measurement(a: dict[str, Any], x: np.ndarray, y: np.ndarray, bits: float, enc_s: float, dec_s: float) -> None:
    """Add one image's bits, PSNR, MS-SSIM and coding times to a system's accumulator."""
    a["bits"] += bits
    a["pixels"] += x.shape[0] * x.shape[1]
    a["psnr"].append(psnr(x, y))
    a["ms_ssim"].append(ms_ssim(x, y))
    a["enc_s"] += enc_s
    a["dec_s"] += dec_s


def summary_row(system: str, a: dict[str, Any]) -> dict[str, Any]:
    """A system's table row from its accumulator: bpp over all pixels, mean PSNR and MS-SSIM, MP/s."""
    mp = a["pixels"] / 1e6
    row: dict[str, Any] = {"system": system, "images": len(a["psnr"]), "bpp": a["bits"] / max(a["pixels"], 1),
                           "psnr": float(np.mean(a["psnr"])), "ms_ssim": float(np.nanmean(a["ms_ssim"]))}
    if a["enc_s"] > 0:
        row.update(encode_mp_s=mp / a["enc_s"], decode_mp_s=mp / max(a["dec_s"], 1e-9))
    if a["quality"]:
        row["quality"] = float(np.mean(a["quality"]))
    return row


def _perplexity(counts: torch.Tensor) -> float:
    p = counts / counts.sum().clamp_min(1)
    return float(torch.exp(-(p * p.clamp_min(1e-30).log()).sum()))


def rd_curves(images: list[np.ndarray]) -> dict[str, list[tuple[float, float, float]]]:
    """(bpp, PSNR, MS-SSIM) of JPEG and WebP over RD_QUALITIES, averaged over images (for the RD plot)."""
    curves: dict[str, list[tuple[float, float, float]]] = {}
    pixels = sum(x.shape[0] * x.shape[1] for x in images)
    for name, qualities in RD_QUALITIES.items():
        points = []
        for q in qualities:
            res = [pillow_codec(x, name.upper(), q) for x in images]
            points.append((sum(8 * s for _, s in res) / pixels, float(np.mean([psnr(x, y) for x, (y, _) in zip(images, res)])),
                           float(np.nanmean([ms_ssim(x, y) for x, (y, _) in zip(images, res)]))))
        curves[name] = points
    return curves


def write_grid(samples: list[dict[str, np.ndarray]], path: Path, cell: int = 256) -> None:
    """PNG grid: one row per image (centre crops of at most cell x cell), columns original, ours, baselines."""
    from PIL import Image, ImageDraw

    if not samples:
        return
    columns = list(samples[0])
    label = 14
    grid = Image.new("RGB", (cell * len(columns), label + cell * len(samples)), "white")
    draw = ImageDraw.Draw(grid)
    for j, name in enumerate(columns):
        draw.text((j * cell + 4, 1), name, fill="black")
    for i, sample in enumerate(samples):
        for j, name in enumerate(columns):
            img = sample[name]
            h, w = img.shape[:2]
            top, left = max(0, (h - cell) // 2), max(0, (w - cell) // 2)
            grid.paste(Image.fromarray(np.ascontiguousarray(img[top : top + cell, left : left + cell])),
                       (j * cell, label + i * cell))
    grid.save(path)


def write_rd_plot(rows: list[dict[str, Any]], curves: dict[str, list[tuple[float, float, float]]], path: Path) -> str:
    """PSNR and MS-SSIM against bpp (matplotlib); returns the path, or what is missing to draw it.

    Ours is one line through all its operating points (each labelled), each baseline matched to them one dashed
    line per kind ("webp at ...'s size"), the other rows single squares, the quality ladders thin lines: with a
    dozen systems, a marker and colour per row would not be readable."""
    plt = pyplot()
    if plt is None:
        return NOT_DRAWN
    ours, single, matched = [], [], {}
    for r in rows:
        if "(ours)" in r["system"]:
            ours.append(r)
        elif r["system"].endswith("'s size") and " at " in r["system"]:
            matched.setdefault(r["system"].split(" at ")[0], []).append(r)
        else:
            single.append(r)
    ours.sort(key=lambda r: r["bpp"])
    names = [r["system"].replace(" (ours)", "") for r in ours]
    stem = os.path.commonprefix(names)
    if any(len(n) > len(stem) and n[len(stem)] != " " for n in names):  # cut back to a whole word
        stem = stem.rpartition(" ")[0]
    if stem and all(n[len(stem):].strip().isdigit() for n in names):  # "rate 0", not a bare "0"
        stem = stem.rstrip().rpartition(" ")[0]
    labels = [n[len(stem):].strip() or "full rate" for n in names]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, key, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ms_ssim", "MS-SSIM")):
        k = 1 if key == "psnr" else 2
        for name, points in curves.items():
            ax.plot([p[0] for p in points], [p[k] for p in points], ".-", lw=1, alpha=0.5,
                    label=f"{name} (quality ladder)")
        for group, members in matched.items():
            members = sorted(members, key=lambda r: r["bpp"])
            ax.plot([r["bpp"] for r in members], [r[key] for r in members], "s--", ms=5,
                    label=f"{group}, matched to ours")
        for r in single:
            ax.plot(r["bpp"], r[key], "s", ms=7, label=r["system"])
        if ours:
            ax.plot([r["bpp"] for r in ours], [r[key] for r in ours], "*-", color="black", ms=11,
                    label=f"ours ({stem or names[0]})")
            for r, text in zip(ours, labels):
                ax.annotate(text, (r["bpp"], r[key]), textcoords="offset points", xytext=(4, -9), fontsize=6)
        xmax = 1.15 * max(r["bpp"] for r in rows)  # the systems' range; the ladders run on beyond it
        ys = [r[key] for r in rows] + [p[k] for points in curves.values() for p in points if p[0] <= xmax]
        lo, hi = float(np.nanmin(ys)), float(np.nanmax(ys))
        pad = 0.05 * (hi - lo) or 0.01
        ax.set_xlim(0, xmax)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("bits per pixel (file size)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def write_use_plot(growth: list[tuple[float, float]], path: Path) -> str:
    """Share of codes used against tokens seen per code, one point per file (matplotlib); returns the path, or
    what is missing to draw it.

    Why: a utilisation figure depends on how many tokens the set gives each code and on how alike its images are
    (a few large, smooth photos repeat a few codes); the curve shows whether use was still rising when the set
    ended."""
    plt = pyplot()
    if plt is None:
        return NOT_DRAWN
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([g[0] for g in growth], [100 * g[1] for g in growth], "o-", markersize=3)
    ax.axhline(99, color="grey", linestyle=":", label="99 % of the codebook")
    ax.axvline(10, color="grey", linestyle="--", label="10 tokens per code")
    ax.set_xlabel("tokens per code so far (files in sorted order)")
    ax.set_ylabel("codes used (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of evaluate's rows (ours first, with utilisation and speed)."""
    lines = ["| system | images | bpp | PSNR | MS-SSIM | codes used | tokens/code | enc MP/s | dec MP/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        used = f"{100 * r['utilization']:.2f} %" if "utilization" in r else ""
        per = f"{r['tokens_per_code']:.1f}" if "tokens_per_code" in r else ""
        enc = f"{r['encode_mp_s']:.3f}" if "encode_mp_s" in r else ""
        dec = f"{r['decode_mp_s']:.3f}" if "decode_mp_s" in r else ""
        system = r["system"] + (f" (q~{r['quality']:.0f})" if "quality" in r else "")
        lines.append(f"| {system} | {r['images']} | {r['bpp']:.4f} | {r['psnr']:.2f} | {r['ms_ssim']:.4f} | {used} | "
                     f"{per} | {enc} | {dec} |")
    return "\n".join(lines)
