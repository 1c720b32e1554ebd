"""ImageCodec: every input kind round-trips to its kind and size, odd and tiny sizes, tiling, bad input, headers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import mediatok
from image_helpers import make_codec, photo_like
from mediatok.codecs.image import ImageCodec
from mediatok.entropy import pack, unpack
from mediatok.errors import BitstreamError


def _kinds(img: np.ndarray, tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(img).save(path)
    return {
        "uint8 rgb": (img, np.ndarray, img.shape),
        "float tensor": (torch.from_numpy(img).permute(2, 0, 1).float() / 255, torch.Tensor, (3, *img.shape[:2])),
        "pil rgb": (Image.fromarray(img), Image.Image, None),
        "uint8 gray": (img[..., 1].copy(), np.ndarray, img.shape[:2]),
        "pil gray": (Image.fromarray(img).convert("L"), Image.Image, None),
        "path": (path, np.ndarray, img.shape),
    }


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (1, 1), (5, 3), (9, 130)])
def test_every_kind_round_trips_to_its_kind_and_size(small_codec, tmp_path, size):
    img = photo_like(*size, seed=3)
    for name, (x, kind, shape) in _kinds(img, tmp_path).items():
        y = small_codec.decode(small_codec.encode(x))
        assert isinstance(y, kind), name
        if isinstance(y, Image.Image):
            assert y.size == (size[1], size[0]) and y.mode == x.mode, name
        else:
            assert tuple(y.shape) == shape, name
            assert y.dtype == (torch.float32 if kind is torch.Tensor else np.uint8), name


def test_read_only_arrays_encode_without_warnings():
    """np.asarray of a PIL image is read-only; it must encode like a writable copy, without torch's warning about
    non-writable arrays. A fresh interpreter: torch gives that warning once per process, so an earlier test could
    have used it up."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import numpy as np; from PIL import Image; from image_helpers import make_codec, photo_like\n"
        "codec = make_codec(); img = photo_like(24, 40, seed=4); frozen = np.asarray(Image.fromarray(img))\n"
        "assert not frozen.flags.writeable\n"
        "assert codec.encode(frozen) == codec.encode(img.copy())\n"
    )
    proc = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).parent, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_bitstream_matches_tokens_and_detokenize(small_codec):
    img = photo_like(37, 53)
    tokens = small_codec.tokenize(img)
    assert tokens.shape == (1, 5, 7) and tokens.dtype == torch.int64  # ceil(37 / 8), ceil(53 / 8)
    y = small_codec.decode(small_codec.encode(img))
    np.testing.assert_array_equal(y, small_codec.detokenize(tokens)[:37, :53])
    assert small_codec.detokenize(tokens).shape == (40, 56, 3)
    with pytest.raises(ValueError, match=r"shape \(1, h, w\)"):
        small_codec.detokenize(torch.zeros(2, 3, 3, dtype=torch.long))


def test_raw_bitstream_costs_log2_k_bits_per_token(small_codec):
    blob = small_codec.encode(photo_like(64, 64))
    assert len(blob) - 64 * 6 // 8 < 40  # 64 tokens x 6 bits + a small container


def test_tiling_equals_one_pass_without_attention():
    codec = make_codec(attention=False, tile=4, margin=12)
    x = torch.from_numpy(photo_like(200, 264, seed=5)).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        one_pass = codec.model.encode_latents(x[None])[0]
        tiled = codec.encode_latents(x)
        assert torch.equal(tiled, one_pass)
        torch.testing.assert_close(codec.decode_latents(tiled), codec.model.decode_latents(tiled[None])[0],
                                   atol=1e-4, rtol=0)


def test_tiling_with_attention_stays_close_to_one_pass():
    codec = make_codec(tile=8, margin=4)
    tokens = torch.randint(0, 64, (1, 20, 24))
    with torch.no_grad():
        tiled = codec.decode_latents(tokens)
        one_pass = codec.model.decode_latents(tokens[None])[0]
    mse = float((tiled - one_pass).pow(2).mean())
    assert 10 * np.log10(1 / max(mse, 1e-12)) > 30  # seams from global attention stay below -30 dB


@pytest.mark.parametrize("x, error, match", [
    (np.zeros((8, 8, 3), np.float32), TypeError, "expected a uint8 image array"),
    (np.zeros((8, 8, 4), np.uint8), ValueError, "drop the alpha channel"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, "empty"),
    (torch.rand(1, 3, 8, 8), ValueError, r"pass x\[0\]"),
    (torch.rand(8, 8, 3), ValueError, r"x.permute\(2, 0, 1\)"),
    (torch.rand(3, 8, 8) * 255, ValueError, "divide 0-255 data by 255"),
    (torch.full((3, 8, 8), float("nan")), ValueError, "NaN"),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), TypeError, "float image tensor"),
    ([[0, 1]], TypeError, "expected an image"),
    (np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (9000, 9000, 3)), ValueError, "larger than the codec's limit"),
])
def test_bad_inputs_say_what_was_expected(small_codec, x, error, match):
    with pytest.raises(error, match=match):
        small_codec.encode(x)


@pytest.mark.parametrize("fields, match", [
    ({"height": 70000, "width": 5}, "'height' = 70000 is outside"),
    ({"height": 60000, "width": 60000}, "more than the codec's limit"),
    ({"height": 8, "width": 8, "format": 9}, "'format' = 9 is outside"),
    ({"width": 8}, "lacks 'height'"),
    ({"height": "8", "width": 8}, "must be an integer"),
])
def test_bad_headers_raise_bitstream_errors(small_codec, fields, match):
    blob = pack({"model": "imt", "coder": "raw", **fields}, [b"\x00" * 6])
    with pytest.raises(BitstreamError, match=match):
        small_codec.decode(blob)


def test_corrupted_and_foreign_bitstreams(small_codec):
    blob = bytearray(small_codec.encode(photo_like(16, 16)))
    with pytest.raises(BitstreamError):
        small_codec.decode(bytes(blob[:-3]))
    blob[-1] ^= 0xFF
    with pytest.raises(BitstreamError):
        small_codec.decode(bytes(blob))
    with pytest.raises(BitstreamError):
        small_codec.decode(b"\x89PNG\r\n\x1a\n" + bytes(40))


def test_save_load_keeps_bitstreams_and_family_is_registered(small_codec, tmp_path):
    small_codec.save(tmp_path / "m", dtype=torch.float32)
    loaded = mediatok.load(tmp_path / "m")
    assert isinstance(loaded, ImageCodec) and loaded.stride == 8
    img = photo_like(24, 40, seed=7)
    assert torch.equal(loaded.tokenize(img), small_codec.tokenize(img))
    family = mediatok.codecs.families()["image"]
    assert family.modality == "image" and family.default_model == "image-vq"
    assert {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"} == set(family.io.read_suffixes)
    assert family.io.write_suffixes == (".png", ".jpg", ".webp")


def test_example_photo_round_trips_at_its_odd_size(small_codec):
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "examples" / "chelsea.png"
    y = small_codec.decode(small_codec.encode(path))
    assert y.shape == (300, 451, 3) and y.dtype == np.uint8


@pytest.mark.parametrize("size", [(37, 53), (1, 1), (5, 3), (70, 130)])
@pytest.mark.parametrize("factor", [2, 4])
def test_downscaled_encode_returns_the_input_size_from_fewer_tokens(small_codec, tmp_path, size, factor):
    img = photo_like(*size, seed=8)
    for name, (x, kind, shape) in _kinds(img, tmp_path).items():
        blob = small_codec.encode(x, downscale=factor)
        y = small_codec.decode(blob)
        assert isinstance(y, kind), name
        if isinstance(y, Image.Image):
            assert y.size == (size[1], size[0]) and y.mode == x.mode, name
        else:
            assert tuple(y.shape) == shape, name
    header = unpack(small_codec.encode(img, downscale=factor))[0]
    assert (header["height"], header["width"], header["downscale"]) == (*size, factor)
    hs, ws = -(-size[0] // factor), -(-size[1] // factor)
    assert small_codec.tokenize(img, downscale=factor).shape == (1, -(-hs // 8), -(-ws // 8))


def test_downscaled_encode_codes_the_shrunk_picture_and_grows_it_back(small_codec):
    """The tokens are those of the shrunk image, and decode is exactly that image's decode grown back: the factor
    changes where the pixels come from, not the model."""
    from mediatok.codecs.image.codec import grow_image, shrink_image

    img = photo_like(64, 96, seed=9)
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    small = shrink_image(x, 2)
    assert small.shape == (3, 32, 48)
    assert torch.equal(small_codec.tokenize(img, downscale=2), small_codec.tokenize(small))
    with torch.no_grad():
        expected = grow_image(small_codec.decode_latents(small_codec.tokenize(small)), 64, 96)
    y = small_codec.decode(small_codec.encode(x, downscale=2))
    torch.testing.assert_close(y, expected.clamp(0, 1), atol=1e-6, rtol=0)
    full, quarter = small_codec.encode(img), small_codec.encode(img, downscale=2)
    assert len(quarter) < len(full) and "downscale" not in unpack(full)[0]


@pytest.mark.parametrize("factor", [0, 3, 8, True, "2", 2.0])
def test_bad_downscale_is_refused(small_codec, factor):
    with pytest.raises(ValueError, match="downscale must be one of"):
        small_codec.encode(photo_like(16, 16), downscale=factor)


@pytest.mark.parametrize("factor, match", [(3, "'downscale' = 3 is not one of"), (0, "'downscale' = 0 is outside"),
                                           (2**40, "outside"), ("2", "must be an integer")])
def test_bad_downscale_headers_raise_bitstream_errors(small_codec, factor, match):
    blob = pack({"model": "imt", "coder": "raw", "height": 8, "width": 8, "downscale": factor}, [b"\x00" * 6])
    with pytest.raises(BitstreamError, match=match):
        small_codec.decode(blob)
