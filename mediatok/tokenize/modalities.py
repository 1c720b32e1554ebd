"""The loader-per-modality layer: read one file, hand it to the codec's `tokenize`, describe the item.

The pipeline knows nothing of media; a `Loader` knows how to read its files and which codec call makes tokens.
Audio: soundfile -> float32 -> mono (1, T) -> `codec.tokenize(x, sample_rate)` (the codec resamples).
Images and meshes plug in as more `Loader`s in `LOADERS` when their codecs land.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from mediatok.errors import ModelNotFoundError


class Loader(Protocol):
    """How one modality reads a file and turns it into tokens with a codec."""

    modality: str
    extensions: tuple[str, ...]

    def load(self, file: str) -> tuple[Any, dict[str, Any]]:
        """file -> (the codec's input, JSON-able facts about the item such as duration or size)."""
        ...

    def tokenize(self, codec: Any, x: Any, info: dict[str, Any]) -> Tensor:
        """The codec's input -> integer tokens (codebooks, *positions)."""
        ...


class AudioLoader:
    """Audio files -> mono float32 (1, T) -> `codec.tokenize`; any channel count and sample rate."""

    modality = "audio"
    extensions = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".w64")

    def load(self, file: str) -> tuple[Tensor, dict[str, Any]]:
        """file -> (wav (1, T) float32, {duration, sample_rate, num_samples, channels})."""
        import soundfile as sf

        data, sr = sf.read(file, dtype="float32", always_2d=True)  # (T, C)
        if data.shape[0] == 0:
            raise ValueError("the file holds no samples")
        mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
        n, channels = data.shape
        info = {"duration": n / sr, "sample_rate": int(sr), "num_samples": int(n), "channels": int(channels)}
        return torch.from_numpy(np.ascontiguousarray(mono))[None], info

    def tokenize(self, codec: Any, x: Tensor, info: dict[str, Any]) -> Tensor:
        """wav (1, T) -> tokens (Q, frames) through the public `codec.tokenize`, or a bare `AudioCodec` module."""
        if hasattr(codec, "tokenize"):
            return codec.tokenize(x, sample_rate=info["sample_rate"])
        return _tokenize_audio_module(codec, x, info["sample_rate"])


def _tokenize_audio_module(module: nn.Module, x: Tensor, sample_rate: int) -> Tensor:
    """A bare `AudioCodec` (no `tokenize` wrapper): resample, zero-pad to a whole frame, encode. (1, T) -> (Q, n)."""
    import torch.nn.functional as F
    import torchaudio.functional as AF

    cfg = module.cfg
    if sample_rate != cfg.sample_rate:
        x = AF.resample(x, sample_rate, cfg.sample_rate)
    pad = -x.shape[-1] % cfg.hop
    x = F.pad(x, (0, pad))[None]  # (1, 1, T') with T' a multiple of hop
    device = next(module.parameters()).device
    return module.encode_indices(x.to(device))[0]  # (Q, T' / hop)


LOADERS: dict[str, Loader] = {"audio": AudioLoader()}


def loader_for(codec: Any) -> Loader:
    """The loader for the codec's modality (`codec.modality`, audio when the codec does not say)."""
    modality = getattr(codec, "modality", "audio")
    if modality not in LOADERS:
        raise ValueError(f"no tokenize loader for modality {modality!r}; known: {sorted(LOADERS)}")
    return LOADERS[modality]


@dataclass(frozen=True)
class CodecInfo:
    """What a token file needs to say about the codec that made it."""

    name: str
    modality: str
    num_codebooks: int
    codebook_size: int
    fingerprint: str  # sha256 prefix of the weights: a resumed run refuses shards made by other weights
    sample_rate: int | None = None
    frame_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict."""
        return asdict(self)


def load_codec(model: Any) -> Any:
    """A model name or checkpoint folder -> `mediatok.load(model)`; a codec object is returned as it is."""
    if isinstance(model, (str, os.PathLike)):
        import mediatok

        load = getattr(mediatok, "load", None)
        if load is None:
            raise ModelNotFoundError(f"cannot load {os.fspath(model)!r}: this build has no mediatok.load; pass a codec")
        model = load(model)
    if isinstance(model, nn.Module):
        model.eval()
    elif isinstance(getattr(model, "model", None), nn.Module):
        model.model.eval()
    return model


def _modules(codec: Any) -> list[nn.Module]:
    if isinstance(codec, nn.Module):
        return [codec]
    return [v for _, v in sorted(vars(codec).items()) if isinstance(v, nn.Module)]


def weights_fingerprint(codec: Any) -> str:
    """sha256 prefix over the codec's tensors (names, dtypes, shapes, bytes), in name order."""
    if isinstance(getattr(codec, "fingerprint", None), str):
        return codec.fingerprint
    h = hashlib.sha256()
    for i, module in enumerate(_modules(codec)):
        for name, t in sorted(module.state_dict().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{i}.{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def _attr(codec: Any, name: str) -> Any:
    """`codec.<name>`, else `codec.cfg.<name>`, else the wrapped module's, else None."""
    for obj in (codec, getattr(codec, "cfg", None), getattr(codec, "config", None), getattr(codec, "model", None),
                getattr(getattr(codec, "model", None), "cfg", None)):
        value = getattr(obj, name, None) if obj is not None else None
        if value is not None and not callable(value):
            return value
    return None


def codec_info(codec: Any, model: Any = None) -> CodecInfo:
    """Describe `codec`; `model` is what the user named it by (a registry name or a checkpoint folder)."""
    name = getattr(codec, "name", None)
    if not isinstance(name, str):
        name = Path(os.fspath(model)).name if isinstance(model, (str, os.PathLike)) else type(codec).__name__
    num_codebooks, codebook_size = _attr(codec, "num_codebooks"), _attr(codec, "codebook_size")
    if num_codebooks is None or codebook_size is None:
        raise ValueError(f"codec {name!r} must expose num_codebooks and codebook_size to be tokenized into shards")
    sample_rate, frame_rate = _attr(codec, "sample_rate"), _attr(codec, "frame_rate")
    return CodecInfo(
        name=name, modality=getattr(codec, "modality", "audio"), num_codebooks=int(num_codebooks),
        codebook_size=int(codebook_size), fingerprint=weights_fingerprint(codec),
        sample_rate=None if sample_rate is None else int(sample_rate),
        frame_rate=None if frame_rate is None else float(frame_rate),
    )
