"""mediatok: neural codecs and tokenizers for media (audio, images, 3D shapes).

    codec = mediatok.load("speech-16k")
    blob = codec.encode(x, sample_rate=16000)   # or mediatok.encode(x, 16000); images: codec.encode(img)
    y, sr = codec.decode(blob)                  # or mediatok.decode(blob): the model is named in the header
    tokens = codec.tokenize(x, sample_rate=16000)   # int64 (codebooks, *positions)
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


@lru_cache(maxsize=4)
def _cached_by_id(model_id: str) -> Any:
    from mediatok.codecs import load_by_id

    return load_by_id(model_id)


def default_model_for(x: Any) -> str:
    """The default model for an input: by the file's suffix for a path, the audio default for arrays."""
    from mediatok.codecs import family_for_file

    if isinstance(x, (str, Path)):
        fam = family_for_file(x)
        if fam.default_model is None:
            raise ModelNotFoundError(f"no default model for {fam.modality} files yet; pass model=...")
        return fam.default_model
    return DEFAULT_AUDIO_MODEL


def _kwargs(sample_rate: int | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    return kwargs if sample_rate is None else {"sample_rate": sample_rate, **kwargs}


def encode(x: Any, sample_rate: int | None = None, model: str | None = None, **kwargs: Any) -> bytes:
    """Media (array, tensor or file path) -> .mtk bytes with `model` (default: the input media's default model)."""
    return _cached(model or default_model_for(x)).encode(x, **_kwargs(sample_rate, kwargs))


def decode(blob: bytes, model: str | None = None) -> Any:
    """.mtk bytes -> media; the model is the one the header names (a registered or shipped id) unless given."""
    if model is not None:
        return _cached(model).decode(blob)
    from mediatok.entropy import unpack

    header, _ = unpack(bytes(blob))
    model_id = header.get("model")
    if not isinstance(model_id, str):
        raise BitstreamError("the bitstream names no model; pass model=...")
    try:
        codec = _cached_by_id(model_id)
    except ModelNotFoundError as e:
        raise BitstreamError(str(e)) from None
    return codec.decode(blob)


def tokenize(x: Any, sample_rate: int | None = None, model: str | None = None, **kwargs: Any) -> Any:
    """Media -> LongTensor of tokens (codebooks, *positions), without entropy coding."""
    return _cached(model or default_model_for(x)).tokenize(x, **_kwargs(sample_rate, kwargs))


def detokenize(tokens: Any, model: str = DEFAULT_AUDIO_MODEL) -> Any:
    """Tokens (codebooks, *positions) -> media, e.g. (waveform, sample_rate) for audio."""
    return _cached(model).detokenize(tokens)


__all__ = [
    "BitstreamError", "MediatokError", "ModelNotFoundError", "__version__",
    "decode", "default_model_for", "detokenize", "encode", "list_models", "load", "tokenize",
]
