"""The shipped speech-tok-16k tokenizer: one token per 20 ms frame from one 4096-code codebook, round trips."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mediatok
from mediatok.codecs.audio import load_audio
from mediatok.codecs.audio.metrics import mel_distance
from mediatok.tokenize.patterns import get_pattern

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "pretrained" / "speech-tok-16k"
pytestmark = pytest.mark.skipif(not (FOLDER / "config.json").exists(), reason="pretrained/speech-tok-16k not present")


@pytest.fixture(scope="module")
def codec():
    return mediatok.load("speech-tok-16k")


@pytest.fixture(scope="module")
def example() -> torch.Tensor:
    return torch.from_numpy(load_audio(ROOT / "examples" / "speech.wav", 16000))


def test_one_codebook_of_4096_at_50_frames_per_second(codec):
    assert "speech-tok-16k" in mediatok.list_models()
    assert (codec.num_codebooks, codec.codebook_size, codec.frame_rate) == (1, 4096, 50.0)
    assert codec.bitrate == pytest.approx(600.0)  # 12 bits x 50 frames/s


def test_tokens_round_trip_one_token_per_frame(codec, example):
    tokens = codec.tokenize(example, 16000)
    frames = -(-len(example) // 320)
    assert tokens.shape == (1, frames) and tokens.dtype == torch.int64
    assert 0 <= int(tokens.min()) and int(tokens.max()) < 4096
    y, sr = codec.detokenize(tokens)
    assert sr == 16000 and y.shape == (1, frames * 320)
    for name in ("flat", "delay"):  # a single codebook: both LM patterns are one id per frame, nothing padded
        pattern = get_pattern(name, codec.num_codebooks, codec.codebook_size)
        sequence = pattern.apply(tokens)
        assert sequence.numel() == frames
        assert torch.equal(pattern.invert(sequence), tokens)


def test_bitstream_round_trip_matches_the_tokens(codec, example):
    blob = codec.encode(example, 16000)
    assert len(blob) * 8 / (len(example) / 16000) < 650  # 600 bit/s of tokens; measured 549 with prior and header
    y, sr = mediatok.decode(blob)  # found from the header's short id
    assert sr == 16000 and y.shape == example.shape
    z, _ = codec.detokenize(codec.tokenize(example, 16000))
    torch.testing.assert_close(y, z[0, : len(example)], atol=1e-4, rtol=0)
    assert mel_distance(example.numpy(), y.numpy(), 16000) < 1.0  # measured 0.77 (speech-16k: 0.79)
