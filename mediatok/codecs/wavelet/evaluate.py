"""Rate-distortion evaluation of the wavelet codecs against the classical codecs of their media, in one run.

    rows = evaluate_image(codec, "data/images/test", out_dir="runs/wavelet-eval")   # one row per system and rate
    print(format_image_table(rows))

Images: every rate of the codec, each with JPEG and WebP (Pillow) at the quality whose file size is nearest ours
for that image (WebP on a 2x-downscaled image where WebP cannot go that low), and the shipped VQ tokenizer
(`image-vq`, at its main and nested codebooks: its own rates, the nearest it can come to ours) when it is
installed. Rates are real file sizes; encode and decode speed in megapixels per second of wall time.
With `out_dir`: rd.png (PSNR and MS-SSIM against bpp, JPEG and WebP over a quality ladder) and grid.png.

Audio: every rate of the codec, each with Opus (opusenc) at the nearest bitrate it accepts (6 kbit/s at least),
PESQ-WB and STOI, and speed as multiples of real time.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mediatok.codecs.image.evaluate import (add_measurement, format_table, nearest_quality, pillow_codec, summary_row,
                                            webp_matched, write_figures)
from mediatok.codecs.image.io import READ_SUFFIXES, read_image
from mediatok.errors import ModelNotFoundError


def _accumulator() -> dict[str, Any]:
    return {"bits": 0.0, "pixels": 0.0, "psnr": [], "ms_ssim": [], "enc_s": 0.0, "dec_s": 0.0, "quality": []}


def evaluate_image(codec: Any, folder: str | Path, *, limit: int | None = None, with_baselines: bool = True,
                   progress: Callable | None = None, out_dir: str | Path | None = None,
                   compare: str | None = "image-vq") -> list[dict[str, Any]]:
    """One row per (system, rate) over the images in folder: ours at every rate, JPEG and WebP matched to each,
    and the `compare` model (default image-vq, skipped when not installed) at its own rates."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in READ_SUFFIXES)[:limit]
    if not files:
        raise ValueError(f"no images ({', '.join(READ_SUFFIXES)}) in {folder}")
    rates = range(codec.num_rates)
    other = _load_other(compare) if with_baselines else None
    other_sizes = [None, *getattr(other.model.cfg, "nested_sizes", ())] if other is not None else []
    systems = [f"{kind} r{r}" for r in rates for kind in (["ours"] + (["jpeg", "webp"] if with_baselines else []))]
    systems += [f"other {n}" for n in other_sizes]
    acc = {s: _accumulator() for s in systems}
    samples: list[dict[str, np.ndarray]] = []
    for path in progress(files) if progress else files:
        x = read_image(path)
        recon: dict[str, np.ndarray] = {"original": x}
        for r in rates:
            t0 = time.perf_counter()
            blob = codec.encode(x, rate=r)
            t1 = time.perf_counter()
            y = codec.decode(blob)
            add_measurement(acc[f"ours r{r}"], x, y, 8 * len(blob), t1 - t0, time.perf_counter() - t1)
            if r in (0, codec.num_rates - 1):
                recon[f"ours r{r}"] = y
            if with_baselines:
                decoded, size, q = nearest_quality(lambda q: pillow_codec(x, "JPEG", q), len(blob), lo=1)
                add_measurement(acc[f"jpeg r{r}"], x, decoded, 8 * size, 0.0, 0.0)
                acc[f"jpeg r{r}"]["quality"].append(q)
                decoded_w, size, q = webp_matched(x, len(blob))
                add_measurement(acc[f"webp r{r}"], x, decoded_w, 8 * size, 0.0, 0.0)
                acc[f"webp r{r}"]["quality"].append(q)
                if r == 0:
                    recon["jpeg r0"], recon["webp r0"] = decoded, decoded_w
        for n in other_sizes:
            t0 = time.perf_counter()
            blob = other.encode(x) if n is None else other.encode(x, codebook_size=n)
            t1 = time.perf_counter()
            add_measurement(acc[f"other {n}"], x, other.decode(blob), 8 * len(blob), t1 - t0, time.perf_counter() - t1)
        if len(samples) < 6:
            samples.append(recon)
    rows = [summary_row(_system_name(codec, other, s), acc[s]) for s in systems]
    for r in rates:
        rows[r * (3 if with_baselines else 1)]["lambda"] = codec.model.cfg.lambdas[r]
    if out_dir is not None:
        write_figures(rows, samples, files, Path(out_dir), with_baselines)
    return rows


def _load_other(name: str | None) -> Any:
    """The comparison tokenizer, or None (with a note) when it is not installed."""
    if not name:
        return None
    import mediatok

    try:
        return mediatok.load(name)
    except ModelNotFoundError as e:
        print(f"note: comparison model {name!r} not available ({e}); its rows are left out")
        return None


def _system_name(codec: Any, other: Any, system: str) -> str:
    kind, _, tag = system.partition(" ")
    if kind == "ours":
        return f"{codec.name} rate {tag[1:]} (ours)"
    if kind == "other":
        return other.name if tag == "None" else f"{other.name} @{tag} codes"
    return f"{kind} at {codec.name} rate {tag[1:]}'s size"


def format_image_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of evaluate_image's rows."""
    return format_table(rows)


def evaluate_audio(codec: Any, folder: str | Path, *, limit: int | None = None, with_baselines: bool = True,
                   progress: Callable | None = None, out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per (system, rate) over the audio files under folder (all splits pooled): ours at every rate, and
    Opus at the bitrate nearest ours that it accepts (6 kbit/s at least), PESQ-WB / STOI / mel distance."""
    import tempfile

    import torch

    from mediatok.codecs.audio.evaluate import audio_files, opus_baseline
    from mediatok.codecs.audio.io import read_audio
    from mediatok.codecs.audio.metrics import quality

    files = audio_files(folder, limit)
    sr = codec.sample_rate
    rows: list[dict[str, Any]] = []
    clips = []
    for path in files:
        wav, rate = read_audio(path)
        clips.append(codec.prepare(wav, sample_rate=rate).x[0].numpy())  # mono at the model's rate
    seconds = sum(len(c) for c in clips) / sr
    for r in range(codec.num_rates):
        bits, compute, scores = 0.0, 0.0, []
        for x in progress(clips) if progress else clips:
            t0 = time.perf_counter()
            blob = codec.encode(torch.from_numpy(x), sample_rate=sr, rate=r)
            y, _ = codec.decode(blob)
            compute += time.perf_counter() - t0
            bits += 8 * len(blob)
            scores.append(quality(x, y.numpy(), sr))
        rows.append(_audio_row(f"{codec.name} rate {r} (ours)", len(clips), seconds, bits, scores,
                               x_realtime=seconds / max(compute, 1e-9), lmbda=codec.model.cfg.lambdas[r]))
        opus = opus_baseline(max(6.0, round(bits / seconds / 1000))) if with_baselines else None
        if opus is None:
            continue
        obits, oscores = 0.0, []
        with tempfile.TemporaryDirectory() as tmp:
            for x in clips:
                y, b = opus(x, Path(tmp))
                obits += b
                oscores.append(quality(x, y, sr))
        rows.append(_audio_row(f"opus near rate {r}", len(clips), seconds, obits, oscores))
    return rows


def _audio_row(system: str, files: int, seconds: float, bits: float, scores: list[dict[str, float]],
               **extra: float) -> dict[str, Any]:
    mean = {k: float(np.nanmean([s[k] for s in scores])) for k in ("pesq_wb", "stoi", "mel")}
    return {"system": system, "files": files, "minutes": seconds / 60, "kbps": bits / seconds / 1000, **mean, **extra}


def format_audio_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of evaluate_audio's rows."""
    lines = ["| system | files | kbps | PESQ-WB | STOI | mel | x real time |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        speed = f"{r['x_realtime']:.0f}" if "x_realtime" in r else ""
        lines.append(f"| {r['system']} | {r['files']} | {r['kbps']:.2f} | {r['pesq_wb']:.3f} | {r['stoi']:.3f} | "
                     f"{r['mel']:.3f} | {speed} |")
    return "\n".join(lines)
