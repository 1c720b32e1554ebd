"""The wavelet codecs end to end: every input kind and size, rates in the header, latents and symbols, checkpoints,
hostile bitstreams."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import mediatok
from mediatok.codecs.wavelet import WaveletAudioCodec, WaveletImageCodec
from mediatok.entropy import pack, unpack
from mediatok.errors import BitstreamError

EXAMPLE = "examples/chelsea.png"


def photo(h: int = 70, w: int = 93) -> np.ndarray:
    """A crop of the bundled photo (real image statistics, odd sizes)."""
    from mediatok.codecs.image.io import read_image

    return np.ascontiguousarray(read_image(EXAMPLE)[:h, :w])


def test_roundtrip_keeps_kind_and_size(image_codec):
    x = photo()
    for given, check in ((x, lambda y: y.dtype == np.uint8 and y.shape == x.shape),
                         (torch.from_numpy(x).permute(2, 0, 1).float() / 255,
                          lambda y: y.dtype == torch.float32 and y.shape == (3, 70, 93)),
                         (Image.fromarray(x), lambda y: isinstance(y, Image.Image) and y.size == (93, 70)),
                         (x[..., 0], lambda y: y.shape == (70, 93) and y.dtype == np.uint8)):
        assert check(image_codec.decode(image_codec.encode(given)))


def test_rates_are_in_the_header_and_cost_different_bits(image_codec):
    x = photo(128, 128)
    blobs = [image_codec.encode(x, rate=r) for r in range(image_codec.num_rates)]
    headers = [unpack(b)[0] for b in blobs]
    assert "rate" in headers[0] and "rate" not in headers[-1]  # the default (highest) rate is implied
    assert len(set(map(len, blobs))) == len(blobs)
    for r, blob in enumerate(blobs):  # each file decodes with its own rate's tables and gains
        assert np.array_equal(image_codec.decode(blob), image_codec.from_latent(image_codec.latent(x, rate=r), rate=r))


def test_latent_and_tokens_are_what_the_file_stores(image_codec):
    x = photo()
    z = image_codec.latent(x)
    assert z.shape == (4, 9, 12) and z.dtype == torch.float32
    tokens = image_codec.tokenize(x)
    assert tokens.dtype == torch.int64 and tokens.shape == z.shape
    medians = image_codec.entropy_model.medians.float()[:, None, None]
    assert torch.equal(tokens.float() + medians, z)
    assert np.array_equal(image_codec.detokenize(tokens), image_codec.from_latent(z))
    decoded = image_codec.decode(image_codec.encode(x))
    assert np.array_equal(decoded, image_codec.from_latent(z)[:70, :93])


def test_tiles_give_the_latents_of_one_pass():
    from tests.codecs.wavelet.conftest import small_image_network

    net = small_image_network()
    x = photo(300, 260)
    one = WaveletImageCodec(net, encode_tile=64)
    tiled = WaveletImageCodec(net, tile=8, encode_tile=8, margin=8)
    assert torch.allclose(one.latent(x), tiled.latent(x), atol=1e-6) or \
        (one.tokenize(x) != tiled.tokenize(x)).float().mean() < 1e-3  # rounding may flip a value sitting on .5
    y1, y2 = one.from_latent(one.latent(x)), tiled.from_latent(one.latent(x))
    assert np.abs(y1.astype(int) - y2.astype(int)).max() <= 1


def test_save_load_decodes_identically(image_codec, tmp_path):
    x = photo()
    image_codec.save(tmp_path / "m")
    loaded = WaveletImageCodec.load(tmp_path / "m")
    blob = loaded.encode(x, rate=0)
    assert np.array_equal(loaded.decode(blob), WaveletImageCodec.load(tmp_path / "m").decode(blob))
    assert {k.split(".")[0] for k in loaded.entropy_state()} == {"prior", "prior@0"}  # default rate 1, and rate 0
    for r in range(2):  # the tables are read back, not derived again from the fp16 weights
        assert torch.equal(loaded.rate_priors[r].cdf, image_codec.rate_priors[r].cdf)
    assert mediatok.codecs.load_folder(tmp_path / "m").family == "image-wavelet"


def test_bad_rates_and_inputs_are_named(image_codec):
    with pytest.raises(ValueError, match="rate"):
        image_codec.encode(photo(), rate=5)
    with pytest.raises(ValueError, match="rate"):
        image_codec.encode(photo(), rate=True)
    with pytest.raises(TypeError, match="uint8"):
        image_codec.encode(photo().astype(np.float32))
    with pytest.raises(ValueError, match="latents"):
        image_codec.from_latent(torch.zeros(3, 2, 2))
    with pytest.raises(TypeError, match="integers"):
        image_codec.detokenize(torch.zeros(4, 2, 2))
    with pytest.raises(AttributeError, match="no codebook"):
        image_codec.codebook_size


def test_hostile_headers_raise_bitstream_errors(image_codec):
    blob = image_codec.encode(photo(64, 64), rate=0)
    header, chunks = unpack(blob)
    for field, value in (("rate", 2), ("rate", -1), ("height", 1 << 16), ("width", 0), ("format", 9),
                         ("height", 60000), ("colour", 1)):
        bad = pack({**header, field: value}, chunks)
        with pytest.raises(BitstreamError):
            image_codec.decode(bad)
    with pytest.raises(BitstreamError):
        image_codec.decode(blob[: len(blob) // 2])
    with pytest.raises(BitstreamError, match="made by model"):
        image_codec.decode(pack({**header, "model": "i8"}, chunks))


def test_context_tables_code_what_the_latents_hold(image_codec, tmp_path):
    """Context tables fitted on latents (what export ships for images) replace the bottleneck's: the file decodes
    to what from_latent gives, survives save/load bit for bit, and still refuses damaged files."""
    from mediatok.codecs.image.io import read_image
    from mediatok.entropy import ContextBottleneckModel

    net = image_codec.model
    training = [np.ascontiguousarray(read_image(EXAMPLE)[r : r + 96, c : c + 128]) for r, c in ((0, 0), (150, 200))]
    priors = {r: ContextBottleneckModel.fit([image_codec.latent(p, rate=r) for p in training],
                                            image_codec.rate_priors[r].medians) for r in range(2)}
    codec = WaveletImageCodec(net, rate_priors=priors, name="tiny-wavelet", short_id="tw")
    x = photo(80, 100)
    for r in range(2):
        blob = codec.encode(x, rate=r)
        whole = codec.from_latent(codec.latent(x, rate=r), rate=r)  # at the latents' size: 80 x 104
        assert np.array_equal(codec.decode(blob), whole[:80, :100])
    codec.save(tmp_path / "m")
    loaded = WaveletImageCodec.load(tmp_path / "m")
    assert all(isinstance(loaded.rate_priors[r], ContextBottleneckModel) for r in range(2))
    for r in range(2):  # the tables are read back as they were fitted
        assert torch.equal(loaded.rate_priors[r].cdf, priors[r].cdf)
    blob = loaded.encode(x, rate=0)
    assert np.array_equal(loaded.decode(blob), loaded.from_latent(loaded.latent(x, rate=0), rate=0)[:80, :100])
    with pytest.raises(BitstreamError):
        loaded.decode(blob[: len(blob) - 7])
    header, chunks = unpack(blob)
    with pytest.raises(BitstreamError):
        loaded.decode(pack({**header, "height": 60000, "width": 60000}, chunks))
    with pytest.raises(ValueError, match="latent channels"):
        WaveletImageCodec(net, rate_priors={0: ContextBottleneckModel.fit([torch.zeros(3, 4, 4)], torch.zeros(3))})


def test_audio_roundtrip_rates_and_latents(audio_codec):
    t = torch.linspace(0, 1, 16000)
    wav = (0.3 * torch.sin(2 * torch.pi * 220 * t) * torch.exp(-3 * t))[None]
    for r in range(audio_codec.num_rates):
        y, sr = audio_codec.decode(audio_codec.encode(wav, sample_rate=16000, rate=r))
        assert sr == 16000 and y.shape == wav.shape
    z = audio_codec.latent(wav, sample_rate=16000)
    assert z.shape == (4, 1000)
    y, _ = audio_codec.from_latent(z)
    assert y.shape == (1, 16000)
    tokens = audio_codec.tokenize(wav, sample_rate=16000)
    assert tokens.shape == (4, 1000) and tokens.dtype == torch.int64
    with pytest.raises(ValueError, match="sample_rate"):
        audio_codec.encode(wav)
    header, chunks = unpack(audio_codec.encode(wav, sample_rate=16000))
    with pytest.raises(BitstreamError):
        audio_codec.decode(pack({**header, "num_samples": 1 << 39}, chunks))


def test_families_are_registered():
    fams = mediatok.codecs.families()
    assert fams["image-wavelet"].codec_class is WaveletImageCodec and fams["image-wavelet"].modality == "image"
    assert fams["audio-wavelet"].codec_class is WaveletAudioCodec and fams["audio-wavelet"].modality == "audio"


def test_command_line_encodes_at_a_rate(image_codec, tmp_path, capsys):
    from mediatok.cli import main

    image_codec.save(tmp_path / "tiny")
    src = tmp_path / "photo.png"
    Image.fromarray(photo()).save(src)
    main(["encode", str(src), "-o", str(tmp_path / "low.mtk"), "--model", str(tmp_path / "tiny"), "--rate", "0"])
    main(["encode", str(src), "-o", str(tmp_path / "high.mtk"), "--model", str(tmp_path / "tiny")])
    low, high = (tmp_path / "low.mtk").read_bytes(), (tmp_path / "high.mtk").read_bytes()
    assert unpack(low)[0]["rate"] == 0 and "rate" not in unpack(high)[0] and low != high  # (untrained: sizes unordered)
    main(["decode", str(tmp_path / "low.mtk"), "-o", str(tmp_path / "low.png"), "--model", str(tmp_path / "tiny")])
    assert np.asarray(Image.open(tmp_path / "low.png")).shape == (70, 93, 3)
    assert main(["encode", str(src), "-o", str(tmp_path / "x.mtk"), "--model", str(tmp_path / "tiny"), "--rate", "2"]) != 0
    assert "--rate must be in 0..1" in capsys.readouterr().err


def test_deadzone_zeroes_small_values_of_the_channels_coded_raw(image_codec):
    """A rate's deadzone sends values within 0.5 + deadzone of zero to zero in the channels the coder does not
    predict, leaves predicted channels plainly rounded, and what the file stores is still what latent() gives."""
    import dataclasses

    from mediatok.codecs.wavelet import WaveletAutoencoderConfig, WaveletImageAutoencoder
    from mediatok.entropy import ContextBottleneckModel

    net = WaveletImageAutoencoder(dataclasses.replace(image_codec.model.cfg, deadzone=(0.3, 0.0))).eval()
    net.load_state_dict(image_codec.model.state_dict())
    medians = image_codec.rate_priors[0].medians
    predicted = torch.tensor([True, False, False, False])
    priors = {r: ContextBottleneckModel.fit([image_codec.latent(photo(96, 128), rate=r)], medians, predict=predicted)
              for r in range(2)}
    plain = WaveletImageCodec(image_codec.model, rate_priors=priors, name="tiny-wavelet", short_id="tw")
    dead = WaveletImageCodec(net, rate_priors=priors, name="tiny-wavelet", short_id="tw")
    values = torch.tensor([0.75, -0.79, 0.81, 1.7, -1.85, 3.0])
    y = values.reshape(1, 2, 3).repeat(4, 1, 1) + medians.reshape(-1, 1, 1)
    rounded = dead._round(y, 0) - medians.reshape(-1, 1, 1)
    assert torch.equal(rounded[0], torch.round(values).reshape(2, 3))  # predicted: plain rounding
    # raw channels: sign * floor(|v| + 0.5 - 0.3); every step's upper threshold moves up by the deadzone
    expected = torch.tensor([0.0, 0.0, 1.0, 1.0, -2.0, 3.0]).reshape(2, 3)
    assert all(torch.allclose(rounded[c], expected) for c in range(1, 4))
    assert torch.equal(dead._round(y, 1), plain._round(y, 1))  # rate 1 has no deadzone
    x = photo(80, 100)
    z_plain, z_dead = plain.latent(x, rate=0), dead.latent(x, rate=0)
    assert (z_dead != medians.reshape(-1, 1, 1)).sum() < (z_plain != medians.reshape(-1, 1, 1)).sum()
    blob = dead.encode(x, rate=0)
    assert len(blob) <= len(plain.encode(x, rate=0))
    assert np.array_equal(dead.decode(blob), dead.from_latent(z_dead, rate=0)[:80, :100])
    with pytest.raises(ValueError, match="deadzone"):
        WaveletAutoencoderConfig(lambdas=(0.002, 0.01), deadzone=(0.6, 0.1))
    with pytest.raises(ValueError, match="deadzone"):
        WaveletAutoencoderConfig(lambdas=(0.002, 0.01), deadzone=(0.1,))
