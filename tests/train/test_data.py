"""Prepared audio folders and the crops the data module serves."""
from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

from mediatok.train.audio import AudioDataModule, ClipArray, FixedCrops, RandomCrops, prepare_folder


def _folder(tmp_path, n=3):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        sf.write(str(src / f"c{i}.wav"), 0.1 * rng.standard_normal((22050 + 5000 * i, 2)).astype(np.float32), 22050)
    return src


def test_prepare_folder_resamples_and_downmixes(tmp_path):
    assert prepare_folder(_folder(tmp_path), tmp_path / "d", "train", 16000) == 3
    clips = ClipArray(tmp_path / "d", "train")
    assert len(clips) == 3
    assert list(clips.lengths) == [16000, 16000 + -(-5000 * 16000 // 22050), 16000 + -(-10000 * 16000 // 22050)]
    assert clips.audio.dtype == np.float32


def test_crops_have_fixed_shape_and_stay_in_range(tmp_path):
    prepare_folder(_folder(tmp_path), tmp_path / "d", "train", 16000)
    clips = ClipArray(tmp_path / "d", "train")
    torch.manual_seed(0)
    ds = RandomCrops(clips, segment=8000, epoch_size=10)
    items = [ds[k] for k in range(10)]
    assert all(x.shape == (1, 8000) for x in items) and all(x.abs().max() <= 0.99 for x in items)
    val = FixedCrops(clips, segment=40000, max_clips=2)
    assert len(val) == 2 and torch.equal(val[0], val[0]) and val[0].shape == (1, 40000)
    assert (val[0][0, 16000:] == 0).all()  # past the clip's end: zero padding


def test_datamodule_batches(tmp_path):
    src = _folder(tmp_path)
    prepare_folder(src, tmp_path / "d", "train", 16000)
    prepare_folder(src, tmp_path / "d", "val", 16000)
    dm = AudioDataModule(root=str(tmp_path / "d"), segment=3200, batch_size=4, epoch_size=8, val_segment=3200,
                         val_clips=2, num_workers=0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (4, 1, 3200)
    assert next(iter(dm.val_dataloader())).shape == (2, 1, 3200)
