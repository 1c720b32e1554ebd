"""One entropy-model interface for every codec: indices or latents in, one payload chunk out.

    model.encode(x) -> bytes               x: int (Q, *S) indices, or float (C, *S) latents
    model.decode(data, shape) -> Tensor    shape: the full (Q, *S) / (C, *S) the container's header stores
    model.state_dict() -> {name: Tensor}   safetensors-storable; entropy_model_from_state_dict rebuilds it

    kind          class             state keys
    "frequency"   FrequencyPrior    cdf, sizes, precision
    "markov"      MarkovPrior       rows, cdf, row_codebook, sizes, precision
    "raw"         RawIndices        codebook_size
    "bottleneck"  BottleneckModel   cdf, cdf_lengths, offsets, precision (+ medians for an EntropyBottleneck)
    "context"     ContextBottleneckModel   cdf, cdf_lengths, offsets, medians, contexts, precision

decode never allocates for a shape its payload cannot hold: it raises mediatok.BitstreamError first.
"""
from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from mediatok.entropy import _bitpack
from mediatok.entropy._checks import check_keys
from mediatok.entropy.bottleneck import BottleneckModel
from mediatok.entropy.coder import _as_data
from mediatok.entropy.context import ContextBottleneckModel
from mediatok.entropy.priors import FrequencyPrior, MarkovPrior
from mediatok.errors import BitstreamError

MAX_CODEBOOK = 1 << 31


@runtime_checkable
class EntropyModel(Protocol):
    """What a Codec calls to turn tokens or latents into one payload chunk and back."""

    kind: str  # "frequency" | "markov" | "raw" | "bottleneck" | "context"

    def encode(self, x: Tensor) -> bytes: ...

    def decode(self, data: bytes, shape: tuple[int, ...]) -> Tensor: ...

    def state_dict(self) -> dict[str, Tensor]: ...


class RawIndices:
    """Indices in [0, K) packed at a fixed ceil(log2 K) bits each (at least 1): the fallback for a codec
    without a fitted prior. Works up to K = 2^31; little-endian bit order, zero padding in the last byte.

    raw = RawIndices(16384); blob = raw.encode(tokens)   # any int shape, e.g. (Q, h, w): 14 bits per index
    raw.decode(blob, tuple(tokens.shape))                # BitstreamError unless blob is exactly that long
    """

    kind = "raw"

    def __init__(self, codebook_size: int) -> None:
        if isinstance(codebook_size, bool) or not isinstance(codebook_size, (int, np.integer)) \
                or not 1 <= int(codebook_size) <= MAX_CODEBOOK:
            raise ValueError(f"codebook_size must be an int in [1, 2^31], got {codebook_size!r}")
        self.codebook_size = int(codebook_size)
        self.width = max(1, (self.codebook_size - 1).bit_length())  # bits per index

    def payload_bytes(self, count: int) -> int:
        """Exact payload length for count indices."""
        return (count * self.width + 7) // 8

    def encode(self, x: Tensor) -> bytes:
        """Pack integer indices of any shape (raster order) into bytes; ValueError if one is outside [0, K)."""
        t = torch.as_tensor(x)
        if t.is_floating_point() or t.is_complex():
            raise ValueError(f"indices must be integers, got {t.dtype}")
        values = t.detach().to("cpu", torch.int64).contiguous().reshape(-1).numpy()
        out = np.zeros(self.payload_bytes(values.shape[0]), np.uint8)
        if values.size and (int(values.min()) < 0 or int(values.max()) >= self.codebook_size):
            raise ValueError(f"indices must lie in [0, {self.codebook_size}), got values in "
                             f"[{int(values.min())}, {int(values.max())}]")
        if _bitpack.pack(values, self.width, out) < 0:
            raise AssertionError("RawIndices: an index did not fit its width (internal error)")
        return out.tobytes()

    def decode(self, data: bytes, shape: tuple[int, ...]) -> Tensor:
        """Inverse of encode: LongTensor of `shape`. BitstreamError, before allocating, unless data holds
        exactly that many indices; BitstreamError if an index is >= K or the padding bits are set."""
        dims = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else shape
        if not isinstance(dims, (tuple, list, torch.Size)) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
            raise BitstreamError(f"RawIndices.decode: shape must be non-negative ints, got {shape!r}")
        buf = _as_data(data)
        count = math.prod(dims)
        if self.payload_bytes(count) != buf.shape[0]:
            raise BitstreamError(f"raw payload has {buf.shape[0]} bytes; shape {tuple(dims)} at {self.width} bits "
                                 f"per index needs {self.payload_bytes(count)}")
        out = np.empty(count, np.int64)
        status = _bitpack.unpack(buf, self.width, self.codebook_size, out)
        if status == -1:
            raise BitstreamError(f"raw payload holds an index >= codebook_size {self.codebook_size}")
        if status < 0:
            raise BitstreamError("raw payload has non-zero padding bits: it is corrupted")
        return torch.from_numpy(out).reshape(tuple(dims))

    def state_dict(self) -> dict[str, Tensor]:
        """{"codebook_size": int64 scalar}."""
        return {"codebook_size": torch.tensor(self.codebook_size, dtype=torch.int64)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> RawIndices:
        """Rebuild from state_dict() output (untrusted: ValueError naming the bad key)."""
        check_keys(state, {"codebook_size"}, "RawIndices")
        v = state["codebook_size"]
        if not isinstance(v, Tensor) or v.is_floating_point() or v.ndim != 0:
            raise ValueError(f"RawIndices state 'codebook_size' must be an integer scalar tensor, got {v!r}")
        if not 1 <= int(v) <= MAX_CODEBOOK:
            raise ValueError(f"RawIndices state 'codebook_size' must be in [1, 2^31], got {int(v)}")
        return cls(int(v))


def entropy_model_from_state_dict(state: dict[str, Tensor]) -> EntropyModel:
    """The entropy model a saved (untrusted) state describes, told apart by its keys: "rows" -> MarkovPrior,
    "sizes" -> FrequencyPrior, "codebook_size" -> RawIndices, "contexts" -> ContextBottleneckModel,
    "cdf_lengths" -> BottleneckModel.
    ValueError naming the key for anything missing, unexpected, mistyped or inconsistent."""
    if not isinstance(state, dict):
        raise ValueError(f"an entropy-model state must be a dict of tensors, got {type(state).__name__}")
    if "rows" in state:
        return MarkovPrior.from_state_dict(state)
    if "sizes" in state:
        return FrequencyPrior.from_state_dict(state)
    if "codebook_size" in state:
        return RawIndices.from_state_dict(state)
    if "contexts" in state:
        return ContextBottleneckModel.from_state_dict(state)
    if "cdf_lengths" in state:
        return BottleneckModel.from_state_dict(state)
    raise ValueError(f"not an entropy-model state: keys {sorted(state)[:10]}; expected 'rows' (MarkovPrior), "
                     "'sizes' (FrequencyPrior), 'codebook_size' (RawIndices), 'contexts' (ContextBottleneckModel) or "
                     "'cdf_lengths' (BottleneckModel)")


__all__ = ["BottleneckModel", "ContextBottleneckModel", "EntropyModel", "FrequencyPrior", "MarkovPrior", "RawIndices",
           "entropy_model_from_state_dict"]
