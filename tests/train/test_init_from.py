"""A later session resumes training from the shipped checkpoint folder (training .ckpt files are not in git)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mediatok.codecs.audio.codec import SpeechCodec
from mediatok.codecs.audio.model import AudioCodecConfig
from mediatok.train.module import AudioCodecModule

SHIPPED = Path(__file__).resolve().parents[2] / "pretrained" / "speech-16k"


def test_module_starts_from_the_shipped_weights():
    config = AudioCodecConfig.from_dict(json.loads((SHIPPED / "config.json").read_text())["model"])
    module = AudioCodecModule(codec=config, init_from=str(SHIPPED))
    shipped = SpeechCodec.load(SHIPPED).model.state_dict()
    state = module.codec.state_dict()
    assert state.keys() == shipped.keys()
    for key, value in shipped.items():
        assert torch.equal(state[key], value), key


def test_mismatched_codec_settings_are_refused():
    cfg = json.loads((SHIPPED / "config.json").read_text())["model"]
    other = {k: v for k, v in cfg.items()}
    other["latent_dim"] = cfg["latent_dim"] * 2
    with pytest.raises(ValueError, match="init_from"):
        AudioCodecModule(codec=AudioCodecConfig.from_dict(other), init_from=str(SHIPPED))
