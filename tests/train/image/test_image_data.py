"""Image training data: random crops of real photos, fixed validation crops, clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mediatok.train.image import ImageFolderDataModule, RandomCrops, read_folder
from mediatok.train.image.data import centre_square


def test_random_crops_cut_real_pixels_and_flip(photo):
    small = np.ascontiguousarray(photo[::5, ::5])  # (60, 91, 3): few enough windows to search them all
    crops = RandomCrops([small], crop=16, epoch_size=20, seed=0)
    torch.manual_seed(0)
    items = [crops[k] for k in range(len(crops))]
    assert all(x.shape == (3, 16, 16) and x.dtype == torch.float32 for x in items)
    full = torch.from_numpy(small).permute(2, 0, 1).float() / 255
    flipped = full.flip(-1)
    found = {"plain": 0, "flipped": 0}
    for x in items:  # every crop is a window of the photo, as is or mirrored
        for key, src in (("plain", full), ("flipped", flipped)):
            windows = src.unfold(1, 16, 1).unfold(2, 16, 1)  # (3, H-15, W-15, 16, 16)
            hits = (windows == x[:, None, None]).flatten(3).all(-1).all(0)
            found[key] += int(hits.any())
    assert found["plain"] + found["flipped"] >= len(items) and min(found.values()) > 0


def test_upscaled_crops_are_smoother_resized_windows_of_the_photo(photo):
    import torch.nn.functional as F

    small = np.ascontiguousarray(photo[::3, ::3])  # few enough windows to search them all
    plain = RandomCrops([small], crop=32, epoch_size=30, seed=1)
    larger = RandomCrops([small], crop=32, epoch_size=30, seed=1, max_upscale=2.0)
    items = [larger[k] for k in range(len(larger))]
    assert all(x.shape == (3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1 for x in items)

    def roughness(xs):  # mean absolute difference of horizontal neighbours: falls when content is magnified
        return float(torch.stack([(x[..., 1:] - x[..., :-1]).abs().mean() for x in xs]).mean())

    assert roughness(items) < 0.85 * roughness([plain[k] for k in range(len(plain))])
    # Each item is a window of the photo, resized: shrunk back to the window's side it matches that window.
    full = torch.from_numpy(small).permute(2, 0, 1).float() / 255
    for x in items[:3]:
        best = 1.0
        for side in range(16, 33):
            back = F.interpolate(x[None], size=(side, side), mode="area")[0]
            for src in (full, full.flip(-1)):
                windows = src.unfold(1, side, 1).unfold(2, side, 1)  # (3, H', W', side, side)
                best = min(best, float((windows - back[:, None, None]).abs().mean((0, 3, 4)).min()))
        assert best < 0.03


def test_random_crops_check_the_upscale_range(photo):
    with pytest.raises(ValueError, match="max_upscale"):
        RandomCrops([photo], crop=64, epoch_size=1, max_upscale=0.5)
    with pytest.raises(ValueError, match="max_upscale"):
        RandomCrops([photo], crop=64, epoch_size=1, max_upscale=9.0)


def test_random_crops_refuse_images_smaller_than_the_crop(photo):
    with pytest.raises(ValueError, match="smaller than the 512 px crop"):
        RandomCrops([photo], crop=512, epoch_size=1)


def test_data_module_reads_the_split_folders(photo_folder):
    dm = ImageFolderDataModule(root=str(photo_folder), crop=64, batch_size=2, epoch_size=6, val_crop=128,
                               val_batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (2, 3, 64, 64) and 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0
    val = list(dm.val_dataloader())
    assert [v.shape for v in val] == [(2, 3, 128, 128)]  # both validation photos, centre squares of 128


def test_missing_or_too_small_folders_say_what_to_do(tmp_path, photo_folder):
    with pytest.raises(FileNotFoundError, match="prepare_images.py"):
        read_folder(tmp_path)
    with pytest.raises(ValueError, match="both sides >= 4000 px"):
        read_folder(photo_folder / "train", min_side=4000)
    with pytest.raises(ValueError, match="crop and val_crop"):
        ImageFolderDataModule(crop=8)


def test_centre_square_shrinks_to_small_images(photo):
    assert centre_square(photo, 128).shape == (128, 128, 3)
    assert centre_square(photo, 1000).shape == (300, 300, 3)
    assert np.array_equal(centre_square(photo, 100), photo[100:200, 175:275])
