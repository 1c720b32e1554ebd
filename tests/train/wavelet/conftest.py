"""Fixtures of the wavelet training tests: photo and speech folders cut from the bundled examples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

EXAMPLES = Path(__file__).parents[3] / "examples"


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """root/{train,val}: quarter crops of examples/chelsea.png for training, two other crops for validation."""
    photo = np.asarray(Image.open(EXAMPLES / "chelsea.png").convert("RGB"))
    root = tmp_path_factory.mktemp("images")
    (root / "train").mkdir()
    (root / "val").mkdir()
    h, w = photo.shape[0] // 2, photo.shape[1] // 2
    for i, (top, left) in enumerate([(0, 0), (0, w), (h, 0), (h, w)]):
        Image.fromarray(photo[top : top + h, left : left + w]).save(root / "train" / f"q{i}.png")
    Image.fromarray(photo[50:200, 100:260]).save(root / "val" / "centre.png")
    Image.fromarray(photo[::-1, ::2][:150, :160].copy()).save(root / "val" / "flipped.png")
    return root


@pytest.fixture(scope="session")
def speech_folder(tmp_path_factory) -> Path:
    """root/{train,val}.npy + offsets (the layout of scripts/prepare_speech.py) and root/test/*.wav, all cut from
    examples/speech.wav."""
    wav, sr = sf.read(EXAMPLES / "speech.wav", dtype="float32")
    assert sr == 16000
    root = tmp_path_factory.mktemp("speech")
    half = len(wav) // 2
    for split, clip in (("train", wav[:half]), ("val", wav[half:])):
        np.save(root / f"{split}.npy", clip)
        np.save(root / f"{split}_offsets.npy", np.array([0, len(clip) // 2, len(clip)], np.int64))
    (root / "test").mkdir()
    sf.write(root / "test" / "a.wav", wav[half : half + 16000], sr)
    return root
