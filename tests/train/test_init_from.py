"""A later session resumes training from the shipped checkpoint folder (training .ckpt files are not in git)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from mediatok.codecs.audio.codec import SpeechCodec
from mediatok.codecs.audio.model import AudioCodec, AudioCodecConfig
from mediatok.train.audio import AudioLosses
from mediatok.train.module import CodecModule

SHIPPED = Path(__file__).resolve().parents[2] / "pretrained" / "speech-16k"


def _shipped_config() -> dict:
    return json.loads((SHIPPED / "config.json").read_text())["model"]


def test_module_starts_from_the_shipped_weights():
    codec = AudioCodec(AudioCodecConfig.from_dict(_shipped_config()))
    module = CodecModule(codec, AudioLosses(16000), init_from=str(SHIPPED))
    shipped = SpeechCodec.load(SHIPPED).model.state_dict()
    state = module.codec.state_dict()
    assert state.keys() == shipped.keys()
    for key, value in shipped.items():
        assert torch.equal(state[key], value), key


def test_mismatched_codec_settings_are_refused():
    other = {**_shipped_config(), "latent_dim": _shipped_config()["latent_dim"] * 2}
    with pytest.raises(ValueError, match="init_from"):
        CodecModule(AudioCodec(AudioCodecConfig.from_dict(other)), AudioLosses(16000), init_from=str(SHIPPED))


def test_a_network_of_another_family_is_refused():
    class Other(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="holds a AudioCodec, but this run trains a Other"):
        CodecModule(Other(), AudioLosses(16000), init_from=str(SHIPPED))


def test_losses_at_another_sample_rate_are_refused():
    with pytest.raises(ValueError, match="sample_rate: 16000"):
        CodecModule(AudioCodec(AudioCodecConfig.from_dict(_shipped_config())), AudioLosses(24000))
