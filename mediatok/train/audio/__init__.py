"""Audio's training pieces, chosen by class path in configs/audio/*.yaml and trained by `CodecModule`:

    losses:        AudioLosses (mel + STFT + phase derivatives + commitment) with AudioLossWeights
    discriminator: MultiDiscriminator (multi-period + multi-resolution STFT)
    data:          AudioDataModule over folders written by prepare_folder, AudioAugment (EQ, noise, level; optional)
    callbacks:     AudioSamples (.wav reconstructions), SpeechQuality (PESQ / STOI on validation crops),
                   CodebookFromLatents (k-means of encoder latents seeds an LC codebook)
    export hook:   fit_prior (MarkovPrior on the exported model's own tokens), registered for family "audio"
"""
from __future__ import annotations

from mediatok.train.audio.augment import AudioAugment, normalize_loudness
from mediatok.train.audio.callbacks import AudioSamples, CodebookFromLatents, SpeechQuality
from mediatok.train.audio.data import AudioDataModule, ClipArray, FixedCrops, RandomCrops, prepare_folder
from mediatok.train.audio.discriminators import MultiDiscriminator, PeriodDiscriminator, STFTDiscriminator
from mediatok.train.audio.losses import AudioLosses, AudioLossWeights, MultiResolutionSTFTLoss, MultiScaleMelLoss
from mediatok.train.audio.prior import fit_prior
from mediatok.train.export import register_entropy_fit

register_entropy_fit("audio", fit_prior)

__all__ = ["AudioAugment", "AudioDataModule", "AudioLossWeights", "AudioLosses", "AudioSamples", "ClipArray",
           "CodebookFromLatents",
           "FixedCrops", "MultiDiscriminator", "MultiResolutionSTFTLoss", "MultiScaleMelLoss", "PeriodDiscriminator",
           "RandomCrops", "STFTDiscriminator", "SpeechQuality", "fit_prior", "normalize_loudness", "prepare_folder"]
