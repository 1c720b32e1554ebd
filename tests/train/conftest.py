"""Fixtures of the training tests: a small photo folder cut from examples/chelsea.png (a real photo)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHELSEA = Path(__file__).parents[2] / "examples" / "chelsea.png"


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """examples/chelsea.png as uint8 (300, 451, 3)."""
    return np.asarray(Image.open(CHELSEA).convert("RGB"))


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory, photo) -> Path:
    """root/{train,val}: four quarter crops of the photo for training, two others for validation."""
    root = tmp_path_factory.mktemp("images")
    (root / "train").mkdir()
    (root / "val").mkdir()
    h, w = photo.shape[0] // 2, photo.shape[1] // 2
    for i, (top, left) in enumerate([(0, 0), (0, w), (h, 0), (h, w)]):
        Image.fromarray(photo[top : top + h, left : left + w]).save(root / "train" / f"q{i}.png")
    Image.fromarray(photo[50:200, 100:260]).save(root / "val" / "centre.png")
    Image.fromarray(photo[::-1, ::2][:150, :160].copy()).save(root / "val" / "flipped.jpg", quality=95)
    return root
