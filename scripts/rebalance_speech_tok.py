"""Rebalance a shipped single-codebook speech tokenizer's codes on augmented training speech; writes a new folder.

    train clips --speed change (resampling, +-4-10 %) [+ AudioAugment]--> encoder latents
        --mediatok.quantizers.rebalance_codebook--> codewords --Codebook.move_codes--> weights rounded to fp16
        --the audio export hook's fit_prior on --prior-data (MarkovPrior, 80 min of training tokens, as
          `mediatok.train.export`)--> <out>/ (config + weights + the refitted prior)

Why: speech-tok-16k uses every code on its training voices but about 97 % of them on unseen speakers; codes that
only the training voices reach are moved into the busiest cells of speech that mimics other voices (a resampled
clip shifts pitch and formants together, a crude stand-in for another vocal tract). The moves read only training
clips; the prior fit reads training clips and the val split (to choose its context classes); no held-out clip.
The tokens and the weights file change, so the model hash does: .mtk files of the old weights are refused.

    OMP_NUM_THREADS=1 python scripts/rebalance_speech_tok.py <step-8000 export> pretrained/speech-tok-16k

(<step-8000 export>: the folder written by the export command in speech-tok-16k's CARD, i.e. pretrained/speech-tok-16k
as of commit cc2f4d9; the shipped folder is already rebalanced, running the script on it would move codes again.)

Measured on speech-tok-16k (defaults, 5.3 min on one thread; tokens only, no fine-tune): 976 codes moved; code use
on the val split 96.5 -> 97.5 %, on speed-changed val 96.0 -> 97.8 %; held-out, all 1,177 clips 98.6 -> 99.3 %, the
519 clips of `mediatok eval --limit 100` 97.1 -> 97.7 %; val mel distance 0.430 -> 0.433, STOI 0.745 -> 0.744 on 40
val clips. The token prior is refitted at the end (`--prior-data ''` keeps the old one, which no longer matches the
moved codes); the output is the shipped speech-tok-16k since the codebook rebalancing (see its CARD).
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torchaudio.functional as AF

import mediatok
from mediatok.quantizers.rebalance import rebalance_codebook
from mediatok.train.export import entropy_fit, round_to_fp16
from mediatok.train.audio import AudioAugment


def speed_change(x: np.ndarray, rng: np.random.Generator, low: float, high: float, sample_rate: int) -> np.ndarray:
    """x resampled by a factor 1 +- U(low, high): faster or slower, higher or lower voice (rounded to 100 Hz)."""
    factor = 1 + float(rng.choice([-1.0, 1.0]) * rng.uniform(low, high))
    new = int(round(sample_rate * factor / 100)) * 100
    return AF.resample(torch.from_numpy(np.ascontiguousarray(x)), sample_rate, new).numpy()


@torch.no_grad()
def augmented_latents(model, root: str, *, with_augment: bool, seed: int, speed: tuple[float, float],
                      sample_rate: int, hop: int) -> np.ndarray:
    """Encoder latents (frames, D) float16 of every training clip, speed-changed (and through AudioAugment)."""
    audio = np.load(f"{root}/train.npy", mmap_mode="r")
    offsets = np.load(f"{root}/train_offsets.npy")
    rng, augment, rows = np.random.default_rng(seed), AudioAugment(sample_rate=sample_rate), []
    for begin, end in zip(offsets[:-1], offsets[1:]):
        x = speed_change(np.asarray(audio[begin:end], dtype=np.float32), rng, *speed, sample_rate)
        if with_augment:
            x = augment(x, rng)
        wav = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]  # (1, T)
        frames = math.ceil(wav.shape[1] / hop)
        wav = torch.nn.functional.pad(wav, (0, frames * hop - wav.shape[1]))
        rows.append(model.encoder(wav[None])[0].T.numpy().astype(np.float16))  # (frames, D)
    return np.concatenate(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="shipped folder or registered name, e.g. pretrained/speech-tok-16k")
    parser.add_argument("out", help="folder to write (config.json + model.safetensors)")
    parser.add_argument("--data", default="data/speech16k/wide", help="folder with train.npy + train_offsets.npy")
    parser.add_argument("--rows", type=int, default=1_200_000, help="latent frames to fit on (half per variant)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--min-usage", type=float, default=0.6)
    parser.add_argument("--max-moves", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prior-data", default="data/speech16k/wide",
                        help="prepared data to refit the token prior on, as export does ('' keeps the old prior)")
    parser.add_argument("--prior-minutes", type=float, default=80.0, help="minutes of training clips for the prior")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    codec = mediatok.load(args.model)
    model = codec.model.eval()
    codebook = model.quantizer.codebook
    cfg = model.cfg
    start = time.time()
    # Two views of every clip: speed change alone, and speed change + EQ / noise / level (AudioAugment).
    views = [augmented_latents(model, args.data, with_augment=aug, seed=args.seed + i, speed=(0.04, 0.10),
                               sample_rate=cfg.sample_rate, hop=cfg.hop) for i, aug in enumerate((False, True))]
    rng = np.random.default_rng(args.seed)
    per = min(args.rows // len(views), *(len(v) for v in views))
    x = torch.from_numpy(np.concatenate([v[np.sort(rng.choice(len(v), per, replace=False))] for v in views]))
    print(f"latents {tuple(x.shape)} in {time.time() - start:.0f} s")
    with torch.no_grad():
        before = codebook.codes().float().clone()
    res = rebalance_codebook(before, x, rounds=args.rounds, min_usage=args.min_usage, max_moves=args.max_moves)
    changed = torch.nonzero((res.codes != before).any(1)).squeeze(1)
    codebook.move_codes(changed, res.codes[changed])
    with torch.no_grad():
        gap = float((codebook.codes().float()[changed] - res.codes[changed]).norm(dim=1).mean())
    usage = res.counts.double() * res.codes.shape[0] / x.shape[0]
    print(f"moved {res.moved.numel()} codes ({changed.numel()} codewords changed, mean distance to target after the "
          f"projector {gap:.3f}); fitted rows: {int((usage < 0.2).sum())} codes under 0.2x uniform, "
          f"max {float(usage.max()):.2f}x, {time.time() - start:.0f} s")
    if args.prior_data:  # the tokens changed: refit the prior on what the fp16 weights emit, as export does
        round_to_fp16(model)
        codec.prior = entropy_fit(codec.family)(model, args.prior_data, minutes=args.prior_minutes)
        print(f"prior refitted on {args.prior_minutes:g} min of {args.prior_data}, {time.time() - start:.0f} s")
    codec.save(args.out)


if __name__ == "__main__":
    main()
