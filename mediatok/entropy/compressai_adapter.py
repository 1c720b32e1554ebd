"""CompressAI EntropyBottleneck / GaussianConditional latents in the .mtk container.

    y (B, C, *S) --BottleneckModel.encode per item (module's integer tables)--> one chunk per item
                  (or backend="compressai": module.compress strings as chunks)

The module's `_quantized_cdf`, `_cdf_length` and `_offset` are integer buffers computed once by
`module.update()` and saved in its state dict, so both backends are bit-exact across machines as long as
the decoder loads the same state. Header keys: coder ("eb" or "gc"), backend, shape. The chunk-level
model (bottleneck.py) bounds every declared shape by the bytes of its chunk before anything is allocated.
"""
from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from mediatok.entropy.bottleneck import MAX_SYMBOLS, BottleneckModel, module_kind
from mediatok.entropy.container import pack, unpack
from mediatok.errors import BitstreamError

__all__ = ["MAX_SYMBOLS", "compress_entropy_model", "decompress_entropy_model"]


def compress_entropy_model(module: Any, y: Tensor, indexes: Tensor | None = None, means: Tensor | None = None,
                           *, backend: Literal["mediatok", "compressai"] = "mediatok",
                           header: dict[str, Any] | None = None) -> bytes:
    """Code latents y (B, C, *S) with an EntropyBottleneck (indexes/means derived) or a GaussianConditional
    (indexes from module.build_indexes(scales), optional means) into one .mtk container, one chunk per item."""
    kind = module_kind(module)
    if y.ndim < 2:
        raise ValueError(f"y must be (B, C, *S), got shape {tuple(y.shape)}")
    if kind == "gc" and (indexes is None or indexes.shape != y.shape):
        raise ValueError(f"GaussianConditional needs indexes of y's shape {tuple(y.shape)}")
    if backend == "compressai":
        chunks = module.compress(y) if kind == "eb" else module.compress(y, indexes, means)
    elif backend == "mediatok":
        model = BottleneckModel.from_module(module)
        if kind == "eb":
            chunks = [model.encode(y[i]) for i in range(y.shape[0])]
        else:
            chunks = [model.encode(y[i], indexes[i], None if means is None else means[i]) for i in range(y.shape[0])]
    else:
        raise ValueError(f"backend must be 'mediatok' or 'compressai', got {backend!r}")
    meta = {"coder": kind, "backend": backend, "shape": tuple(int(s) for s in y.shape)}
    return pack({**meta, **(header or {})}, list(chunks))


def decompress_entropy_model(module: Any, data: bytes, indexes: Tensor | None = None,
                             means: Tensor | None = None) -> Tensor:
    """Inverse of compress_entropy_model: dequantized latents (B, C, *S). BitstreamError, before any
    allocation, when the header's shape holds more values than the chunks' bytes can code."""
    kind = module_kind(module)
    header, chunks = unpack(data)
    shape = header.get("shape")
    if (header.get("coder") != kind or header.get("backend") not in ("mediatok", "compressai")
            or not isinstance(shape, tuple) or len(shape) < 2 or min(shape) < 0 or shape[0] != len(chunks)):
        raise BitstreamError(f"not a {kind} latent container for this module (header {header})")
    if kind == "gc" and (indexes is None or tuple(indexes.shape) != shape):
        raise ValueError(f"GaussianConditional needs indexes of the coded shape {shape}")
    model = BottleneckModel.from_module(module)
    for i, chunk in enumerate(chunks):  # both backends' streams cost at least the tables' information
        model.check_shape(len(chunk), shape[1:], None if indexes is None else indexes[i])
    if header["backend"] == "compressai":
        try:
            if kind == "eb":
                return module.decompress(chunks, shape[2:])
            return module.decompress(chunks, indexes, means=means)
        except (RuntimeError, ValueError) as e:  # CompressAI's C++ decoder signals bad strings this way
            raise BitstreamError(f"CompressAI could not decode the strings: {e}") from e
    if kind == "eb":
        items = [model.decode(chunk, shape[1:]) for chunk in chunks]
        device, dtype = module._quantized_cdf.device, model.medians.dtype
    else:
        items = [model.decode(chunk, shape[1:], indexes[i], None if means is None else means[i])
                 for i, chunk in enumerate(chunks)]
        device = means.device if means is not None else torch.device("cpu")
        dtype = means.dtype if means is not None else torch.float
    return (torch.stack(items) if items else torch.empty(shape, dtype=dtype)).to(device)  # where CompressAI puts it
