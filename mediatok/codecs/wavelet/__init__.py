"""Wavelet autoencoders (WaLLoC-style): continuous latents with an entropy bottleneck, for images and audio.

    transform   CDF 9/7 wavelets: dwt / idwt (lifting), packet1d / packet2d and their inverses
    model       WaveletAutoencoder: packet -> near-linear encoder -> per-rate gains -> bottleneck -> deep decoder
    codec       WaveletImageCodec ("image-wavelet" family), WaveletAudioCodec ("audio-wavelet")
    evaluate    rate-distortion tables and plots against the classical codecs of each media
"""
from __future__ import annotations

from mediatok.codecs import register_family
from mediatok.codecs.audio import AUDIO_IO
from mediatok.codecs.image import IMAGE_IO
from mediatok.codecs.wavelet.codec import (WaveletAudioAutoencoder, WaveletAudioCodec, WaveletImageAutoencoder,
                                           WaveletImageCodec, bottleneck_models)
from mediatok.codecs.wavelet.evaluate import evaluate_audio, evaluate_image, format_audio_table, format_image_table
from mediatok.codecs.wavelet.model import WaveletAutoencoder, WaveletAutoencoderConfig, WaveletOutput
from mediatok.codecs.wavelet.transform import dwt, idwt, ipacket1d, ipacket2d, packet1d, packet2d

register_family("image-wavelet", WaveletImageCodec, modality="image", io=IMAGE_IO, evaluate=evaluate_image,
                format_table=format_image_table, default_model="image-wavelet")
register_family("audio-wavelet", WaveletAudioCodec, modality="audio", io=AUDIO_IO, evaluate=evaluate_audio,
                format_table=format_audio_table, default_model="audio-wavelet")

__all__ = ["WaveletAudioAutoencoder", "WaveletAudioCodec", "WaveletAutoencoder", "WaveletAutoencoderConfig",
           "WaveletImageAutoencoder", "WaveletImageCodec", "WaveletOutput", "bottleneck_models", "dwt", "idwt",
           "ipacket1d", "ipacket2d", "packet1d", "packet2d"]
