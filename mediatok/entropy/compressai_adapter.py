"""CompressAI EntropyBottleneck / GaussianConditional latents in the .mtk container.

    y (B, C, *S) --module.quantize("symbols")--> ints --encode_indexed(module's integer tables)--> chunk/item
                                                  (or backend="compressai": module.compress strings as chunks)

The module's `_quantized_cdf`, `_cdf_length` and `_offset` are integer buffers computed once by
`module.update()` and saved in its state dict, so both backends are bit-exact across machines as long as
the decoder loads the same state. Header keys: coder ("eb" or "gc"), backend, shape.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor

from mediatok.entropy.coder import decode_indexed, encode_indexed
from mediatok.entropy.container import pack, unpack
from mediatok.errors import BitstreamError

MAX_SYMBOLS = 1 << 28  # a header may not make the decoder allocate more than this many latent values


def _kind(module: Any) -> str:
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional

    if isinstance(module, EntropyBottleneck):
        return "eb"
    if isinstance(module, GaussianConditional):
        return "gc"
    raise ValueError(f"module must be a CompressAI EntropyBottleneck or GaussianConditional, got "
                     f"{type(module).__name__}")


def _eb_indexes_means(module: Any, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """The indexes and medians CompressAI's EntropyBottleneck.compress uses for `shape` (B, C, *S)."""
    indexes = module._build_indexes(shape)  # (B, C, *S)
    medians = module._extend_ndims(module._get_medians().detach(), len(shape) - 2)  # (C, 1, ...)
    return indexes, medians.expand(shape[0], *([-1] * (len(shape) - 1)))


def _tables(module: Any) -> tuple[Tensor, Tensor, Tensor, int]:
    if module._quantized_cdf.numel() == 0:
        raise ValueError("the entropy model has no CDF tables; call module.update() first")
    return (module._quantized_cdf.cpu(), module._cdf_length.reshape(-1).cpu(), module._offset.reshape(-1).cpu(),
            int(module.entropy_coder_precision))


def compress_entropy_model(module: Any, y: Tensor, indexes: Tensor | None = None, means: Tensor | None = None,
                           *, backend: Literal["mediatok", "compressai"] = "mediatok",
                           header: dict[str, Any] | None = None) -> bytes:
    """Code latents y (B, C, *S) with an EntropyBottleneck (indexes/means derived) or a GaussianConditional
    (indexes from module.build_indexes(scales), optional means) into one .mtk container, one chunk per item."""
    kind = _kind(module)
    if y.ndim < 2:
        raise ValueError(f"y must be (B, C, *S), got shape {tuple(y.shape)}")
    if kind == "eb":
        indexes, means = _eb_indexes_means(module, tuple(y.shape))
    elif indexes is None or indexes.shape != y.shape:
        raise ValueError(f"GaussianConditional needs indexes of y's shape {tuple(y.shape)}")
    if backend == "compressai":
        chunks = module.compress(y) if kind == "eb" else module.compress(y, indexes, means)
    elif backend == "mediatok":
        symbols = module.quantize(y, "symbols", means).cpu()  # (B, C, *S) int32
        tables, lengths, offsets, precision = _tables(module)
        chunks = [encode_indexed(symbols[i].reshape(-1), indexes[i].reshape(-1), tables, lengths, offsets, precision)
                  for i in range(y.shape[0])]
    else:
        raise ValueError(f"backend must be 'mediatok' or 'compressai', got {backend!r}")
    meta = {"coder": kind, "backend": backend, "shape": tuple(int(s) for s in y.shape)}
    return pack({**meta, **(header or {})}, list(chunks))


def decompress_entropy_model(module: Any, data: bytes, indexes: Tensor | None = None,
                             means: Tensor | None = None) -> Tensor:
    """Inverse of compress_entropy_model: dequantized latents (B, C, *S)."""
    kind = _kind(module)
    header, chunks = unpack(data)
    shape = header.get("shape")
    if (header.get("coder") != kind or header.get("backend") not in ("mediatok", "compressai")
            or not isinstance(shape, tuple) or len(shape) < 2 or min(shape) < 0 or shape[0] != len(chunks)):
        raise BitstreamError(f"not a {kind} latent container for this module (header {header})")
    if math.prod(shape) > MAX_SYMBOLS:
        raise BitstreamError(f"container declares {math.prod(shape)} latent values, more than {MAX_SYMBOLS}")
    if kind == "eb":
        if shape[1] != module._quantized_cdf.shape[0]:
            raise BitstreamError(f"container has {shape[1]} channels, the bottleneck {module._quantized_cdf.shape[0]}")
        indexes, means = _eb_indexes_means(module, shape)
    elif indexes is None or tuple(indexes.shape) != shape:
        raise ValueError(f"GaussianConditional needs indexes of the coded shape {shape}")
    if header["backend"] == "compressai":
        try:
            if kind == "eb":
                return module.decompress(chunks, shape[2:])
            return module.decompress(chunks, indexes, means=means)
        except (RuntimeError, ValueError) as e:  # CompressAI's C++ decoder signals bad strings this way
            raise BitstreamError(f"CompressAI could not decode the strings: {e}") from e
    tables, lengths, offsets, precision = _tables(module)
    out = torch.empty(shape, dtype=torch.int64)
    for i, chunk in enumerate(chunks):
        values = decode_indexed(chunk, indexes[i].reshape(-1).cpu(), tables, lengths, offsets, precision)
        out[i] = values.reshape(shape[1:])
    ref = means if means is not None else torch.empty(0)
    return module.dequantize(out.to(ref.device), means, ref.dtype if means is not None else torch.float)
