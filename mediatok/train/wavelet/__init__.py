"""The wavelet codecs' training pieces, chosen by class path in configs/wavelet/*.yaml and trained by `CodecModule`:

    losses:      RateDistortionLosses (lambda_r * MSE + rate + quantile loss) with RateDistortionWeights;
                 one run trains every rate of the network (a random rate per step, each with its lambda)
    data:        the image family's ImageFolderDataModule, the audio family's AudioDataModule
    callbacks:   the image family's ImageSamples / ImageQuality at the network's default rate
    export hook: fit_rates (the bottlenecks' integer tables at the exported weights, and each rate's measured bit
                 rate on held-out data), registered for the families "image-wavelet" and "audio-wavelet"
"""
from __future__ import annotations

from mediatok.train.export import register_entropy_fit
from mediatok.train.wavelet.fit import fit_audio_rates, fit_image_rates
from mediatok.train.wavelet.losses import RateDistortionLosses, RateDistortionWeights

register_entropy_fit("image-wavelet", fit_image_rates)
register_entropy_fit("audio-wavelet", fit_audio_rates)

__all__ = ["RateDistortionLosses", "RateDistortionWeights", "fit_audio_rates", "fit_image_rates"]
