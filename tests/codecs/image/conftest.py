"""Fixtures of the image tests (helpers in image_helpers.py, importable from the test modules)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test modules here import image_helpers
from image_helpers import make_codec  # noqa: E402

from mediatok.codecs.image import ImageCodec  # noqa: E402


@pytest.fixture(scope="session")
def small_codec() -> ImageCodec:
    return make_codec()
