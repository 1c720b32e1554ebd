"""The shipped speech-16k model: loads by name, round-trips the example clip at about 2 kbps, decodes by header."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mediatok
from mediatok.codecs.audio import load_audio
from mediatok.codecs.audio.metrics import mel_distance

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (ROOT / "pretrained" / "speech-16k" / "config.json").exists(),
                                reason="pretrained/speech-16k not present")


def test_shipped_model_round_trips_the_example():
    assert "speech-16k" in mediatok.list_models()
    x = torch.from_numpy(load_audio(ROOT / "examples" / "speech.wav", 16000))
    blob = mediatok.encode(x, 16000)
    assert len(blob) * 8 / (len(x) / 16000) < 2100  # 2000 bit/s of tokens plus a 26-byte header
    y, sr = mediatok.decode(blob)  # the model is found from the header's short id
    assert sr == 16000 and y.shape == x.shape
    assert mel_distance(x.numpy(), y.numpy(), 16000) < 1.2  # measured 0.94 for the shipped model


def test_shipped_model_encodes_with_two_threads():
    codec = mediatok.load("speech-16k")
    assert codec.num_threads == 1  # the shipped default (benchmarks/codec_threads.py)
    codec.num_threads = None  # this test is about the two-thread kernel path
    x = torch.from_numpy(load_audio(ROOT / "examples" / "speech.wav", 16000)).repeat(4)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tokens = codec.tokenize(x, 16000)
    finally:
        torch.set_num_threads(threads)
    assert tokens.shape == (4, -(-len(x) // 320)) and int(tokens.max()) < 1024


def test_files_of_the_first_speech_model_still_decode_by_their_header():
    """speech-16k v2 (short id s16b) replaced v1 as the default; v1 stays shipped as speech-16k-v1 (short id s16),
    so its files decode through their header, with the weights that wrote them."""
    from mediatok.entropy import unpack

    if not (ROOT / "pretrained" / "speech-16k-v1" / "config.json").exists():
        pytest.skip("pretrained/speech-16k-v1 not present")
    x = torch.from_numpy(load_audio(ROOT / "examples" / "speech.wav", 16000))
    old, new = mediatok.load("speech-16k-v1"), mediatok.load("speech-16k")
    old_blob, new_blob = old.encode(x, sample_rate=16000), new.encode(x, sample_rate=16000)
    assert unpack(old_blob)[0]["model"] == "s16" and unpack(new_blob)[0]["model"] == "s16b"
    y, sr = mediatok.decode(old_blob)
    assert sr == 16000 and torch.equal(torch.as_tensor(y), torch.as_tensor(old.decode(old_blob)[0]))
    assert not torch.equal(torch.as_tensor(y), torch.as_tensor(new.decode(new_blob)[0]))
