"""The shipped image-vq models: v3 (the default, short id i8c), v2 (image-vq-v2, i8b) and v1 (image-vq-v1, i8),
the older ones kept so that their files still decode by their header with the weights that wrote them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mediatok
from mediatok.codecs.image.io import read_image
from mediatok.entropy import unpack
from mediatok.errors import BitstreamError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "chelsea.png"  # a held-out test photo (scripts/prepare_images.py HELD_OUT)
SHIPPED = {"image-vq": "i8c", "image-vq-v2": "i8b", "image-vq-v1": "i8"}
pytestmark = pytest.mark.skipif(
    not all((ROOT / "pretrained" / name / "config.json").exists() for name in SHIPPED),
    reason=f"one of pretrained/{{{', '.join(SHIPPED)}}} not present")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.mark.parametrize("old_name", ["image-vq-v1", "image-vq-v2"])
def test_files_of_earlier_image_models_still_decode_by_their_header(old_name):
    x = read_image(EXAMPLE)
    old, new = mediatok.load(old_name), mediatok.load("image-vq")
    old_blob, new_blob = old.encode(x), new.encode(x)
    assert unpack(old_blob)[0]["model"] == SHIPPED[old_name] and unpack(new_blob)[0]["model"] == SHIPPED["image-vq"]
    y_old, y_new = mediatok.decode(old_blob), mediatok.decode(new_blob)  # each found from its header
    assert np.array_equal(y_old, old.decode(old_blob)) and np.array_equal(y_new, new.decode(new_blob))
    assert not np.array_equal(y_old, y_new)
    assert _psnr(x, y_old) > 25 and _psnr(x, y_new) > 25  # both reconstruct the photo
    with pytest.raises(BitstreamError):  # the header's model hash keeps a file from the wrong weights
        new.decode(old_blob)


def test_shipped_model_rates_from_its_nested_codebooks():
    x = read_image(EXAMPLE)
    codec = mediatok.load("image-vq")
    ks = (16384, 4096, 1024, 256)
    sizes = [len(codec.encode(x, codebook_size=k)) for k in ks]
    assert sizes == sorted(sizes, reverse=True)
    tokens = -(-x.shape[0] // 8) * -(-x.shape[1] // 8)
    for k, size in zip(ks, sizes):  # each prior codes the tokens in about log2(K) bits or fewer (+ a short header)
        assert size * 8 < tokens * np.log2(k) + 8 * 64, k


def test_shipped_model_codes_a_shrunk_photo_for_a_quarter_of_the_bits():
    """downscale=2 and 4: one token per 16 x 16 (32 x 32) pixels of the photo, decoded back at its size."""
    x = read_image(EXAMPLE)
    codec = mediatok.load("image-vq")
    blobs = {d: codec.encode(x, downscale=d) for d in (1, 2, 4)}
    ys = {d: mediatok.decode(blob) for d, blob in blobs.items()}
    assert all(y.shape == x.shape for y in ys.values())
    assert len(blobs[4]) < 0.5 * len(blobs[2]) < 0.25 * len(blobs[1])  # a quarter of the tokens each step
    quality = [_psnr(x, ys[d]) for d in (1, 2, 4)]
    assert quality == sorted(quality, reverse=True) and quality[2] > 22  # blurrier, still the photo
