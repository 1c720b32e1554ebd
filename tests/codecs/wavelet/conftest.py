"""Fixtures of the wavelet codec tests: small untrained networks (their tables derived at construction)."""
from __future__ import annotations

import pytest
import torch

from mediatok.codecs.wavelet import (WaveletAudioAutoencoder, WaveletAudioCodec, WaveletAutoencoderConfig,
                                     WaveletImageAutoencoder, WaveletImageCodec)


def small_image_network(seed: int = 0) -> WaveletImageAutoencoder:
    torch.manual_seed(seed)
    cfg = WaveletAutoencoderConfig(latent_channels=4, decoder_width=16, decoder_blocks=1, lambdas=(0.002, 0.01))
    return WaveletImageAutoencoder(cfg).eval()


def small_audio_network(seed: int = 0) -> WaveletAudioAutoencoder:
    torch.manual_seed(seed)
    cfg = WaveletAutoencoderConfig(dims=1, channels=1, levels=4, latent_channels=4, decoder_width=16, decoder_blocks=1,
                                   lambdas=(0.002, 0.01), offset=0.0, sample_rate=16000)
    return WaveletAudioAutoencoder(cfg).eval()


@pytest.fixture(scope="session")
def image_codec() -> WaveletImageCodec:
    return WaveletImageCodec(small_image_network(), name="tiny-wavelet", short_id="tw")


@pytest.fixture(scope="session")
def audio_codec() -> WaveletAudioCodec:
    return WaveletAudioCodec(small_audio_network(), name="tiny-audio-wavelet", short_id="taw")
