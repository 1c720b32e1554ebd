"""mediatok: neural codecs and tokenizers for media (audio, images, 3D shapes).

    codec = mediatok.load("speech-16k")
    blob = codec.encode(x, sample_rate=16000)   # or mediatok.encode(x, 16000)
    y, sr = codec.decode(blob)                  # or mediatok.decode(blob): the model is named in the header
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from mediatok.errors import BitstreamError, MediatokError, ModelNotFoundError

__version__ = "0.1.0"

DEFAULT_AUDIO_MODEL = "speech-16k"


def list_models() -> list[str]:
    """Names of the shipped and registered models."""
    from mediatok.codecs import list_models as _list

    return _list()


def load(name: str | Path) -> Any:
    """A codec by name (see `list_models`) or by checkpoint-folder path."""
    from mediatok.codecs import load as _load

    return _load(name)


@lru_cache(maxsize=4)
def _cached(name: str) -> Any:
    return load(name)


def encode(x: Any, sample_rate: int | None = None, model: str = DEFAULT_AUDIO_MODEL) -> bytes:
    """Media (array, tensor or file path) -> .mtk bytes with `model`."""
    return _cached(model).encode(x, sample_rate)


def decode(blob: bytes, model: str | None = None) -> Any:
    """.mtk bytes -> media; the model is the one named in the header unless `model` is given."""
    if model is None:
        from mediatok.entropy import unpack

        header, _ = unpack(bytes(blob))
        model = header.get("model")
        if not isinstance(model, str):
            raise BitstreamError("the bitstream names no model; pass model=...")
    return _cached(model).decode(blob)


def tokenize(x: Any, sample_rate: int | None = None, model: str = DEFAULT_AUDIO_MODEL) -> Any:
    """Media -> LongTensor of tokens (codebooks, frames), without entropy coding."""
    return _cached(model).tokenize(x, sample_rate)


def detokenize(tokens: Any, model: str = DEFAULT_AUDIO_MODEL) -> Any:
    """Tokens (codebooks, frames) -> media, e.g. (waveform, sample_rate) for audio."""
    return _cached(model).detokenize(tokens)


__all__ = [
    "BitstreamError", "MediatokError", "ModelNotFoundError", "__version__",
    "decode", "detokenize", "encode", "list_models", "load", "tokenize",
]
