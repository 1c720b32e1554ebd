"""Export hooks of the wavelet codecs: integer tables per rate, and each rate's bit rate measured on held-out data.

Images get context tables (ContextBottleneckModel) fitted on training latents; audio keeps the bottleneck's own.

Each bottleneck's quantiles are fitted to its learnt density first (they fix the tables' range; training moves them
too slowly). A continuous-latent codec has no nominal rate before entropy coding, so the rate that `mediatok models` and
`codec.bitrate` report is measured here: the real .mtk sizes of the validation images (bit/pixel) or clips (bit/s)
coded by the exported weights (already rounded to fp16 by `mediatok.train.export`), one figure per rate.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mediatok.codecs.wavelet.codec import (WaveletAudioAutoencoder, WaveletAudioCodec, WaveletImageAutoencoder,
                                           WaveletImageCodec, bottleneck_models)
from mediatok.codecs.wavelet.model import round_latents
from mediatok.entropy.context import ContextBottleneckModel


def _with_measured(model: Any, rates: list[float]) -> Any:
    model.cfg = dataclasses.replace(model.cfg, measured_rate=tuple(rates))
    return model


def fit_image_rates(model: WaveletImageAutoencoder, data_root: str | Path, images: int | None = None,
                    contexts: int = 24, context_images: int = 60, context_crop: int = 512) -> dict[str, Any]:
    """Tables of every rate, and bit/pixel per rate over data_root/val (the first `images`, default all).

    With `contexts` > 0 (the default), each rate's tables are a ContextBottleneckModel fitted on the latents of
    `context_images` training photos (centre crops of at most `context_crop` px a side, to bound the time), rounded
    around the bottleneck's medians; with 0, the bottleneck's own tables (one per channel)."""
    from mediatok.train.image.data import read_folder

    priors = bottleneck_models(model.eval(), fit_quantiles=True)
    codec = WaveletImageCodec(model, rate_priors=priors, model_hash=bytes(3))  # a shipped header's size, near enough
    if contexts > 0:
        crops = [_centre_crop(p, context_crop) for p in read_folder(Path(data_root) / "train")[:context_images]]
        images_in = [codec.prepare(p).x for p in crops]
        for r in range(model.cfg.num_rates):
            with torch.inference_mode():
                latents = [codec.latents_before_rounding(x, r) for x in images_in]
            medians = priors[r].medians
            # fit rounds plainly: which channels the coder predicts is chosen on those values; the deadzone then
            # applies to the other channels, and the tables are refitted on the values it gives
            fitted = ContextBottleneckModel.fit(latents, medians, num_contexts=contexts)
            deadzone = model.deadzone(r)
            if deadzone > 0:
                column = (-1, 1, 1)
                stored = [round_latents(y, medians.float().reshape(column), deadzone,
                                        fitted.predicted.reshape(column)) for y in latents]
                fitted = ContextBottleneckModel.fit(stored, medians, num_contexts=contexts, predict=fitted.predicted)
            priors[r] = fitted
        codec = WaveletImageCodec(model, rate_priors=priors, model_hash=bytes(3))
    photos = read_folder(Path(data_root) / "val")[:images]
    pixels = sum(p.shape[0] * p.shape[1] for p in photos)
    with torch.inference_mode():
        rates = [sum(8 * len(codec.encode(p, rate=r)) for p in photos) / pixels for r in range(model.cfg.num_rates)]
    return {"model": _with_measured(model, rates), "rate_priors": priors}


def _centre_crop(photo: np.ndarray, size: int) -> np.ndarray:
    h, w = photo.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(photo[top : top + size, left : left + size])


def fit_audio_rates(model: WaveletAudioAutoencoder, data_root: str | Path, minutes: float = 5.0) -> dict[str, Any]:
    """Tables of every rate, and bit/s per rate over up to `minutes` of data_root's validation clips."""
    from mediatok.train.audio.data import ClipArray

    priors = bottleneck_models(model.eval(), fit_quantiles=True)
    codec = WaveletAudioCodec(model, rate_priors=priors, model_hash=bytes(3))
    clips = ClipArray(data_root, "val")
    budget, seconds, bits = minutes * 60 * model.cfg.sample_rate, 0.0, np.zeros(model.cfg.num_rates)
    for i in range(len(clips)):  # (encode runs without autograd: the codec's own no_grad)
        wav = torch.from_numpy(clips.crop(i, 0, int(clips.lengths[i])))[None]
        for r in range(model.cfg.num_rates):
            bits[r] += 8 * len(codec.encode(wav, sample_rate=model.cfg.sample_rate, rate=r))
        seconds += wav.shape[1] / model.cfg.sample_rate
        if seconds * model.cfg.sample_rate >= budget:
            break
    return {"model": _with_measured(model, list(bits / max(seconds, 1e-9))), "rate_priors": priors}
