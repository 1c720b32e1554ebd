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


def _single_codebook_config() -> dict:
    return {**_shipped_config(), "quantizer": "lc", "codebook_size": 256, "num_groups": 1, "num_quantizers": 1}


def test_skipped_modules_keep_their_fresh_init_and_the_rest_is_shipped():
    torch.manual_seed(0)
    codec = AudioCodec(AudioCodecConfig.from_dict(_single_codebook_config()))
    fresh = {k: v.clone() for k, v in codec.state_dict().items()}
    module = CodecModule(codec, AudioLosses(16000), init_from=str(SHIPPED), init_skip=["quantizer"])
    shipped = SpeechCodec.load(SHIPPED).model.state_dict()
    state = module.codec.state_dict()
    skipped = [k for k in state if k.startswith("quantizer.")]
    assert skipped, "the LC quantizer has tensors of its own"
    for key in skipped:
        assert torch.equal(state[key], fresh[key]), key
    loaded = [k for k in state if not k.startswith("quantizer.")]
    assert set(loaded) == {k for k in shipped if not k.startswith("quantizer.")}
    for key in loaded:
        assert torch.equal(state[key], shipped[key]), key
        assert not torch.equal(state[key], fresh[key]) or key.endswith(("bias", "gamma")), key


def test_skipping_a_submodule_still_loads_the_rest_strictly():
    # The quantizer differs from the shipped GRVQ, so leaving only the decoder's head out must still fail there.
    codec = AudioCodec(AudioCodecConfig.from_dict(_single_codebook_config()))
    with pytest.raises(ValueError, match=r"(?s)init_from=.*init_skip=\['decoder.head'\].*quantizer"):
        CodecModule(codec, AudioLosses(16000), init_from=str(SHIPPED), init_skip=["decoder.head"])


@pytest.mark.parametrize("name", ["quantiser", "encoder.nothing", ""])
def test_skipping_an_unknown_module_is_an_error(name):
    codec = AudioCodec(AudioCodecConfig.from_dict(_shipped_config()))
    with pytest.raises(ValueError, match="not submodules of the codec.*'decoder', 'encoder', 'quantizer'"):
        CodecModule(codec, AudioLosses(16000), init_from=str(SHIPPED), init_skip=[name])


def test_init_skip_without_init_from_is_an_error():
    codec = AudioCodec(AudioCodecConfig.from_dict(_shipped_config()))
    with pytest.raises(ValueError, match="init_from is not set"):
        CodecModule(codec, AudioLosses(16000), init_skip=["quantizer"])
