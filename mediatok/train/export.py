"""Export a training checkpoint to an inference folder: fp16 safetensors + config.json (+ CARD.md).

    python -m mediatok.train.export runs/speech-16k/checkpoints/last.ckpt pretrained/speech-16k \
        --name speech-16k --prior-data data/speech16k --prior-minutes 80

The entropy prior (a MarkovPrior: per-codebook tables chosen by the previous frame's token) is fitted on tokens
of training audio produced by the exported weights themselves (rounded to fp16 first), so the tables match what
the shipped model emits; its number of context classes per codebook is chosen on the validation split.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mediatok.codecs.audio import AudioCodec, AudioCodecConfig, SpeechCodec
from mediatok.entropy import MarkovPrior
from mediatok.train.data import ClipArray


def codec_from_checkpoint(path: str | Path) -> AudioCodec:
    """The `AudioCodec` inside a Lightning checkpoint written by `AudioCodecModule` (our own file)."""
    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    cfg = ckpt.get("codec_config") or dict(ckpt["hyper_parameters"]["codec"].__dict__)
    model = AudioCodec(AudioCodecConfig.from_dict(dict(cfg)))
    state = {k[len("codec."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("codec.")}
    model.load_state_dict(state, strict=True)
    return model.eval()


CLASS_CHOICES = (16, 32, 64, 128)  # context classes per codebook tried by fit_prior


@torch.inference_mode()
def clip_tokens(model: AudioCodec, data_root: str | Path, split: str, minutes: float | None = None,
                seed: int = 0) -> list[Tensor]:
    """Tokens (Q, T_i) of whole clips of data_root/<split> in a seeded random order, up to `minutes`."""
    clips = ClipArray(data_root, split)
    order = np.random.default_rng(seed).permutation(len(clips))
    codec = SpeechCodec(model)
    tokens, total = [], 0
    for i in order:
        n = int(clips.lengths[i]) // model.cfg.hop * model.cfg.hop
        if n == 0:
            continue
        tokens.append(codec._encode_frames(torch.from_numpy(clips.crop(int(i), 0, n))[None]))
        total += n
        if minutes is not None and total >= minutes * 60 * model.cfg.sample_rate:
            break
    return tokens


def fit_prior(model: AudioCodec, data_root: str | Path, minutes: float, seed: int = 0) -> MarkovPrior:
    """MarkovPrior fitted on the tokens of about `minutes` of training clips; the number of context
    classes of each codebook is the one of CLASS_CHOICES that codes the validation split's tokens best."""
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


def export(ckpt: str | Path, out: str | Path, name: str, prior_data: str | Path | None, prior_minutes: float,
           short_id: str | None = None) -> SpeechCodec:
    """Checkpoint -> folder; returns the loaded exported codec."""
    model = codec_from_checkpoint(ckpt)
    with torch.no_grad():  # round to what the fp16 file will hold, so the prior sees the shipped model's tokens
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())
    prior = fit_prior(model, prior_data, prior_minutes) if prior_data else None
    SpeechCodec(model, prior, name=name, short_id=short_id).save(out)
    return SpeechCodec.load(out)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("out")
    p.add_argument("--name", default=None, help="model name (default: the output folder's name)")
    p.add_argument("--prior-data", default="data/speech16k", help="prepared data folder for fitting the prior ('' for none)")
    p.add_argument("--prior-minutes", type=float, default=80.0, help="minutes of training clips to fit the prior on")
    p.add_argument("--short-id", default=None, help="short model id written into every bitstream header")
    a = p.parse_args(argv)
    codec = export(a.ckpt, a.out, a.name or Path(a.out).name, a.prior_data or None, a.prior_minutes, a.short_id)
    print(f"exported {codec.name}: {codec.bitrate:.0f} bit/s nominal -> {a.out}")


if __name__ == "__main__":
    main()
