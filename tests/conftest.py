"""Test-wide set-up: helpers shared by several test folders (tests/tiny_image_family.py) import by name."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
