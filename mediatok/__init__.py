"""mediatok: neural codecs and tokenizers for media (audio, images, 3D shapes)."""
from __future__ import annotations

from mediatok.errors import BitstreamError, MediatokError, ModelNotFoundError

__version__ = "0.1.0"

__all__ = ["BitstreamError", "MediatokError", "ModelNotFoundError", "__version__"]
