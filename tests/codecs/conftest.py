"""A tiny randomly initialised speech codec with a fitted prior, shared by the codec tests."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from mediatok.codecs.audio import AudioCodec, AudioCodecConfig, SpeechCodec

sys.path.insert(0, str(Path(__file__).parent))  # test modules here import audio_helpers
from audio_helpers import TINY, speechlike  # noqa: E402


@pytest.fixture(scope="session")
def tiny_codec() -> SpeechCodec:
    """Randomly initialised (k-means-initialised codebooks) tiny codec with a FrequencyPrior fitted on its tokens."""
    from mediatok.entropy import FrequencyPrior

    torch.manual_seed(0)
    model = AudioCodec(AudioCodecConfig(**TINY))
    model.train()
    with torch.no_grad():
        model(speechlike(4.0)[None, None, :64000])  # initialises the codebooks on real-looking latents
    model.eval()
    codec = SpeechCodec(model, name="tiny-test", short_id="tt")
    tokens = codec.tokenize(speechlike(6.0, seed=1), 16000)
    codec.prior = FrequencyPrior.fit(tokens, model.quantizer.codebook_size)
    return codec
