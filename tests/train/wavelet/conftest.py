"""Fixtures of the wavelet training tests: a speech folder cut from the bundled example (photos: ../conftest.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

EXAMPLES = Path(__file__).parents[3] / "examples"


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
