"""The audio codec's public behaviour: shapes, bitstream round trips, chunking, checkpoints and bad input."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

import mediatok
from mediatok.codecs.audio import AudioCodec, AudioCodecConfig, SpeechCodec
from mediatok.entropy import unpack
from audio_helpers import TINY, speechlike


def test_model_shapes_and_indices_reproduce_output(tiny_codec):
    model = tiny_codec.model
    x = speechlike(1.0)[None, None]
    out = model(x)
    assert out.audio.shape == x.shape
    assert out.indices.shape == (1, 4, 50) and out.indices.dtype == torch.int64
    assert torch.allclose(model.decode_indices(out.indices), out.audio, atol=1e-5)
    assert model.bitrate == 4 * 6 * 50  # 2 groups x 2 levels x log2(64) bits at 50 Hz


def test_encode_decode_keeps_shape_and_rate(tiny_codec):
    x = speechlike(1.3)
    for inp in (x, x[None], torch.stack([x, 0.5 * x])):
        y, sr = tiny_codec.decode(tiny_codec.encode(inp, 16000))
        assert sr == 16000 and y.shape == inp.shape and torch.isfinite(y).all()


def test_bitstream_decodes_to_detokenized_tokens(tiny_codec):
    x = speechlike(2.0, seed=3)
    tokens = tiny_codec.tokenize(x, 16000)
    y_tok, _ = tiny_codec.detokenize(tokens)
    y, _ = tiny_codec.decode(tiny_codec.encode(x, 16000))
    torch.testing.assert_close(y, y_tok[0, : len(x)])


def test_entropy_coding_beats_raw_indices_and_container_is_small(tiny_codec):
    x = speechlike(1.0, seed=1)
    blob = tiny_codec.encode(x, 16000)
    header, chunks = unpack(blob)
    raw_bytes = 50 * 4 * 6 / 8
    assert len(chunks[0]) < raw_bytes  # the prior was fitted on this kind of signal
    assert len(blob) - len(chunks[0]) < 32  # container overhead for a one-chunk file


def test_other_sample_rates_are_resampled_with_a_notice(tiny_codec):
    x = speechlike(1.0, sample_rate=44100)
    with pytest.warns(UserWarning, match="resampling from 44100"):
        blob = tiny_codec.encode(x[None], 44100)
    y, sr = tiny_codec.decode(blob)
    assert sr == 44100 and y.shape == (1, len(x))


def test_chunked_processing_matches_one_pass(tiny_codec):
    x = speechlike(5.0, seed=2)
    whole = SpeechCodec(tiny_codec.model, tiny_codec.prior, chunk_seconds=100)
    chunked = SpeechCodec(tiny_codec.model, tiny_codec.prior, chunk_seconds=1.0, margin=32)
    t_whole, t_chunked = whole.tokenize(x, 16000), chunked.tokenize(x, 16000)
    assert torch.equal(t_whole, t_chunked)
    y_whole, _ = whole.detokenize(t_whole)
    y_chunked, _ = chunked.detokenize(t_chunked)
    torch.testing.assert_close(y_chunked, y_whole, atol=1e-4, rtol=1e-4)


def test_save_load_roundtrip_is_safetensors_and_json(tiny_codec, tmp_path):
    tiny_codec.save(tmp_path / "m", card="# tiny\n")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["codec"] == "audio"
    raw = (tmp_path / "m" / "model.safetensors").read_bytes()
    assert b"\x80\x04" not in raw[:16] and raw[8:9] == b"{"  # safetensors: u64 header size, then JSON
    loaded = mediatok.load(tmp_path / "m")
    x = speechlike(1.0, seed=4)
    # fp16 storage rounds weights: the tokens may differ in rare near-ties, the audio stays close.
    tokens = loaded.tokenize(x, 16000)
    assert (tokens == tiny_codec.tokenize(x, 16000)).float().mean() > 0.9
    y, _ = loaded.decode(loaded.encode(x, 16000))
    assert y.shape == x.shape


def test_saving_the_same_weights_gives_the_same_file(tiny_codec, tmp_path):
    """The file's hash is the model id in every bitstream header: saving again must not change it (safetensors
    keeps metadata in a hash map, whose order varied between saves when there were several entries)."""
    files = []
    for i in range(4):
        tiny_codec.save(tmp_path / f"m{i}")
        files.append((tmp_path / f"m{i}" / "model.safetensors").read_bytes())
    assert all(f == files[0] for f in files[1:])
    assert mediatok.load(tmp_path / "m0").model_hash == mediatok.load(tmp_path / "m3").model_hash


def test_decode_refuses_other_models_and_corruption(tiny_codec, tmp_path):
    blob = tiny_codec.encode(speechlike(1.0), 16000)
    other = SpeechCodec(tiny_codec.model, tiny_codec.prior, name="other", short_id="ot")
    with pytest.raises(mediatok.BitstreamError, match="made by model 'tt'"):
        other.decode(blob)
    with pytest.raises(mediatok.BitstreamError):
        tiny_codec.decode(blob[: len(blob) // 2])
    corrupted = bytearray(blob)
    corrupted[-6] ^= 0xFF
    with pytest.raises(mediatok.BitstreamError):
        tiny_codec.decode(bytes(corrupted))
    with pytest.raises(mediatok.BitstreamError):
        tiny_codec.decode(b"RIFF" + bytes(40))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.zeros(0), "empty"),
        (torch.zeros(100), "shorter than one codec frame"),
        (torch.tensor([0.0, float("nan")] * 400), "NaN"),
        (torch.tensor([0.0, float("inf")] * 400), "NaN or infinite"),
        (torch.zeros(1, 1, 800), r"\(samples,\) or \(channels, samples\)"),
        (torch.zeros(800, 2), "pass x.T"),
    ],
)
def test_bad_input_gets_clear_errors(tiny_codec, x, match):
    with pytest.raises(ValueError, match=match):
        tiny_codec.encode(x, 16000)


def test_bad_files_and_arguments(tiny_codec, tmp_path):
    bogus = tmp_path / "notes.wav"
    bogus.write_text("this is not audio")
    with pytest.raises(ValueError, match="could not read .* as audio"):
        tiny_codec.encode(bogus)
    with pytest.raises(FileNotFoundError):
        tiny_codec.encode(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="sample_rate is required"):
        tiny_codec.encode(speechlike(1.0))
    with pytest.raises(TypeError, match="floating-point"):
        tiny_codec.encode(torch.zeros(800, dtype=torch.int32), 16000)
    with pytest.raises(ValueError, match=r"shape \(4, frames\)"):
        tiny_codec.detokenize(torch.zeros(3, 10, dtype=torch.long))


def test_file_input_int16_and_stereo(tiny_codec, tmp_path):
    x = speechlike(1.0).numpy()
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([x, x], axis=1), 16000, subtype="PCM_16")
    y, sr = tiny_codec.decode(tiny_codec.encode(path))
    assert y.shape == (2, 16000) and sr == 16000
    pcm = (x * 32767).astype(np.int16)
    y16, _ = tiny_codec.decode(tiny_codec.encode(pcm, 16000))
    assert y16.shape == (16000,)
    frozen = x.copy()
    frozen.flags.writeable = False  # as np.load(..., mmap_mode="r") gives them
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tiny_codec.encode(frozen, 16000) == tiny_codec.encode(x, 16000)


def test_config_refuses_unknown_keys():
    with pytest.raises(ValueError, match="unknown AudioCodecConfig keys"):
        AudioCodecConfig.from_dict({**TINY, "bogus": 1})


@pytest.mark.parametrize("kind", ["grvq", "rvq", "vq", "simvq", "lc"])
def test_every_quantizer_kind_builds_and_round_trips(kind):
    torch.manual_seed(0)
    model = AudioCodec(AudioCodecConfig(**{**TINY, "quantizer": kind, "num_quantizers": 3}))
    x = speechlike(0.4)[None, None, :6400]
    model.train()
    model(x)
    model.eval()
    out = model(x)
    torch.testing.assert_close(model.decode_indices(out.indices), out.audio)


def test_registry_refuses_duplicates():
    from mediatok.codecs import register_family

    with pytest.raises(ValueError, match="already registered by mediatok.codecs.audio"):
        register_family("audio", SpeechCodec.load)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(mediatok.ModelNotFoundError, match="no model named"):
            mediatok.load("no-such-model")


def test_num_threads_applies_during_a_call_and_is_restored(tiny_codec):
    from mediatok.codecs import base

    seen = []
    original = tiny_codec.encode_latents
    tiny_codec.num_threads = 1
    tiny_codec.encode_latents = lambda x: (seen.append(torch.get_num_threads()), original(x))[1]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tiny_codec.tokenize(speechlike(0.5), 16000)
        assert seen == [1] and torch.get_num_threads() == 2
        with base.torch_threads(None):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
        tiny_codec.num_threads = None
        del tiny_codec.encode_latents
