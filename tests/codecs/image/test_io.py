"""Image files: every awkward mode is converted with a note (or refused with a clear error), writing by suffix."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from image_helpers import photo_like
from mediatok.codecs.image import ImageConversionWarning, read_image, write_image


def _read_quietly(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageConversionWarning)
        return read_image(path)


def test_rgb_and_grayscale_read_without_notes(tmp_path):
    img = photo_like(20, 30)
    Image.fromarray(img).save(tmp_path / "a.png")
    np.testing.assert_array_equal(_read_quietly(tmp_path / "a.png"), img)
    Image.fromarray(img[..., 0]).save(tmp_path / "g.png")
    g = _read_quietly(tmp_path / "g.png")
    assert g.shape == (20, 30, 3) and (g[..., 0] == g[..., 2]).all() and (g[..., 0] == img[..., 0]).all()


def test_16_bit_grayscale_is_scaled_to_8_bits(tmp_path):
    a = (np.arange(20 * 30).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "d.png")
    with pytest.warns(ImageConversionWarning, match="16-bit"):
        x = read_image(tmp_path / "d.png")
    assert x.dtype == np.uint8 and x.shape == (20, 30, 3)
    np.testing.assert_array_equal(x[..., 0], np.round(a / 65535 * 255).astype(np.uint8))


def test_rgba_and_palette_transparency_composite_on_white(tmp_path):
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:5, :, 3] = 255  # top half opaque red-ish, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    with pytest.warns(ImageConversionWarning, match="composited on white"):
        x = read_image(tmp_path / "t.png")
    assert (x[:5] == [200, 0, 0]).all() and (x[5:] == 255).all()
    rgba[..., 3] = 255  # fully opaque: no note, nothing changes
    Image.fromarray(rgba, "RGBA").save(tmp_path / "o.png")
    assert (_read_quietly(tmp_path / "o.png") == rgba[..., :3]).all()
    p = Image.fromarray(photo_like(10, 12)).convert("P", palette=Image.ADAPTIVE, colors=16)
    p.info["transparency"] = 0
    p.save(tmp_path / "p.png", transparency=0)
    with pytest.warns(ImageConversionWarning, match="composited on white"):
        assert read_image(tmp_path / "p.png").shape == (10, 12, 3)
    Image.fromarray(photo_like(10, 12)).convert("P").save(tmp_path / "q.png")  # opaque palette: plain RGB
    assert _read_quietly(tmp_path / "q.png").shape == (10, 12, 3)


def test_cmyk_is_converted_with_a_note(tmp_path):
    Image.fromarray(photo_like(16, 16)).convert("CMYK").save(tmp_path / "c.jpg")
    with pytest.warns(ImageConversionWarning, match="CMYK"):
        assert read_image(tmp_path / "c.jpg").shape == (16, 16, 3)


def test_exif_orientation_is_applied(tmp_path):
    img = np.zeros((10, 20, 3), np.uint8)
    img[:, :5] = 255  # a white band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(img).save(tmp_path / "r.jpg", exif=exif, quality=95)
    x = read_image(tmp_path / "r.jpg")
    assert x.shape == (20, 10, 3)
    assert x[:5].mean() > 200 and x[-5:].mean() < 50  # the left band is now on top


def test_tiny_image_reads(tmp_path):
    Image.fromarray(np.full((1, 1, 3), 7, np.uint8)).save(tmp_path / "one.png")
    assert _read_quietly(tmp_path / "one.png").tolist() == [[[7, 7, 7]]]


def test_huge_image_is_refused_before_decoding(tmp_path):
    Image.new("1", (9000, 8000)).save(tmp_path / "huge.png")  # 72 MP, a few kB on disk
    with pytest.raises(ValueError, match="72.0 MP, more than the limit"):
        read_image(tmp_path / "huge.png")
    Image.fromarray(photo_like(20, 30)).save(tmp_path / "s.png")
    with pytest.raises(ValueError, match="larger max_pixels"):
        read_image(tmp_path / "s.png", max_pixels=100)


def test_corrupted_missing_and_foreign_files(tmp_path):
    Image.fromarray(photo_like(64, 64)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        read_image(tmp_path / "cut.png")
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ValueError, match="not an image file"):
        read_image(tmp_path / "noise.jpg")
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.png")


@pytest.mark.parametrize("suffix, exact", [(".png", True), (".jpg", False), (".webp", False)])
def test_write_by_suffix(tmp_path, suffix, exact):
    img = photo_like(24, 32)
    write_image(tmp_path / f"o{suffix}", img)
    back = read_image(tmp_path / f"o{suffix}")
    assert back.shape == img.shape
    if exact:
        np.testing.assert_array_equal(back, img)
    else:
        assert np.abs(back.astype(int) - img).mean() < 8
    with Image.open(tmp_path / f"o{suffix}") as im:
        assert im.format == {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP"}[suffix]


def test_write_refuses_unknown_suffixes(tmp_path):
    with pytest.raises(ValueError, match="cannot write .gif images"):
        write_image(tmp_path / "o.gif", photo_like(8, 8))
