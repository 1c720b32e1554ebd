"""Audio's export hook: the entropy model shipped with a speech codec, fitted on its own tokens.

The MarkovPrior (per-codebook tables chosen by the previous frame's token) is fitted on tokens of training audio
produced by the exported weights themselves (rounded to fp16 first by `mediatok.train.export`), so the tables
match what the shipped model emits; its number of context classes per codebook is chosen on the validation split.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from mediatok.codecs.audio import AudioCodec, SpeechCodec
from mediatok.train.audio.data import ClipArray

if TYPE_CHECKING:
    from mediatok.entropy import MarkovPrior

CLASS_CHOICES = (16, 32, 64, 128)  # context classes per codebook tried by fit_prior


@torch.inference_mode()
def clip_tokens(model: AudioCodec, data_root: str | Path, split: str, minutes: float | None = None,
                seed: int = 0) -> list[Tensor]:
    """Tokens (Q, T_i) of whole clips of data_root/<split> in a seeded random order, up to `minutes`."""
    clips = ClipArray(data_root, split)
    order = np.random.default_rng(seed).permutation(len(clips))
    codec = SpeechCodec(model)
    sr, hop = model.cfg.sample_rate, model.cfg.hop
    tokens, total = [], 0
    for i in order:
        n = int(clips.lengths[i]) // hop * hop
        if n == 0:
            continue
        tokens.append(codec.tokenize(torch.from_numpy(clips.crop(int(i), 0, n))[None], sample_rate=sr))
        total += n
        if minutes is not None and total >= minutes * 60 * sr:
            break
    return tokens


def fit_prior(model: AudioCodec, data_root: str | Path, minutes: float = 80.0, seed: int = 0) -> MarkovPrior:
    """MarkovPrior fitted on the tokens of about `minutes` of training clips; the number of context
    classes of each codebook is the one of CLASS_CHOICES that codes the validation split's tokens best."""
    from mediatok.entropy import MarkovPrior  # here, so that training never needs the entropy coder

    train = clip_tokens(model, data_root, "train", minutes, seed)
    val = clip_tokens(model, data_root, "val")
    size = model.quantizer.codebook_size
    if not val:  # nothing held out to choose on: the default number of classes
        return MarkovPrior.fit(train, size)
    bits = []  # (choices, Q) validation bits per codebook
    for classes in CLASS_CHOICES:
        prior = MarkovPrior.fit(train, size, num_classes=classes)
        bits.append(sum(prior.codebook_bits(t) for t in val))
    best = torch.stack(bits).argmin(0)  # (Q,)
    chosen = [CLASS_CHOICES[int(b)] for b in best]
    return MarkovPrior.fit(train, size, num_classes=chosen)
