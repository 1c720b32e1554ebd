"""Image evaluation: rows for ours and the baselines, MS-SSIM on small images, the grid, the RD plot and the
code-use curve."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from image_helpers import photo_like
from mediatok.codecs.image.evaluate import evaluate, format_table, ms_ssim, nearest_quality, pillow_codec


def test_ms_ssim_fits_its_scales_to_small_images():
    from pytorch_msssim import ms_ssim as reference
    import torch

    for side in (8, 32, 100, 160):
        a = photo_like(side, side + 3)
        assert ms_ssim(a, a) == pytest.approx(1.0)
        noisy = np.clip(a + np.random.default_rng(0).normal(0, 20, a.shape), 0, 255).astype(np.uint8)
        assert 0 < ms_ssim(a, noisy) < 0.99
    a = photo_like(200, 210)
    b = np.clip(a.astype(int) + 9, 0, 255).astype(np.uint8)
    t = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].double()  # noqa: E731
    assert ms_ssim(a, b) == pytest.approx(float(reference(t(a), t(b), data_range=255)))


def test_nearest_quality_finds_the_closest_size():
    img = photo_like(64, 64)
    sizes = {q: pillow_codec(img, "JPEG", q)[1] for q in range(1, 101)}
    target = sizes[40] + 1
    _, size, q = nearest_quality(lambda q: pillow_codec(img, "JPEG", q), target, lo=1)
    assert abs(size - target) <= min(abs(s - target) for s in sizes.values()) + 0.02 * target


def test_evaluate_rows_grid_and_plot(small_codec, tmp_path):
    for i in range(3):
        Image.fromarray(photo_like(48 + 8 * i, 64, seed=i)).save(tmp_path / f"img{i}.png")
    rows = evaluate(small_codec, tmp_path, out_dir=tmp_path / "out")
    assert [r["system"] for r in rows] == ["image-test (ours)", "jpeg", "webp", "webp 2x-down",
                                           "image-test 2x-down (ours)", "webp 2x-down at image-test 2x-down's size"]
    ours = rows[0]
    assert ours["images"] == 3 and ours["bpp"] > 0 and 0 < ours["utilization"] <= 1 and ours["tokens_per_code"] > 0
    assert ours["encode_mp_s"] > 0 and ours["decode_mp_s"] > 0 and np.isfinite(ours["ms_ssim"])
    for r in rows[1:4]:  # the baselines
        assert r["bpp"] > 0 and r["psnr"] > 10 and "quality" in r
    assert (tmp_path / "out" / "grid.png").exists()
    assert ours["rd_plot"] == str(tmp_path / "out" / "rd.png") and (tmp_path / "out" / "rd.png").exists()
    # use grows file by file and ends at the set's figures
    growth = ours["use_growth"]
    assert len(growth) == 3 and all(a[0] < b[0] and a[1] <= b[1] for a, b in zip(growth, growth[1:]))
    assert growth[-1] == pytest.approx((ours["tokens_per_code"], ours["utilization"]))
    assert ours["use_plot"] == str(tmp_path / "out" / "use.png") and (tmp_path / "out" / "use.png").exists()
    table = format_table(rows)
    assert "| image-test (ours) | 3 |" in table and "| webp 2x-down" in table
    down, matched = rows[4], rows[5]  # a quarter of the tokens; WebP on the same shrunk image at about its size
    assert down["images"] == 3 and 0 < down["bpp"] < ours["bpp"] and down["encode_mp_s"] > 0
    assert matched["bpp"] > 0 and matched["psnr"] > 10 and "quality" in matched  # (WebP's floor is above ours here)
    assert len(evaluate(small_codec, tmp_path, limit=1, with_baselines=False)) == 2  # ours, ours 2x-down
    with pytest.raises(ValueError, match="no images"):
        evaluate(small_codec, tmp_path / "out" / "empty")
