"""BottleneckModel: continuous latents (C, *S) through a CompressAI entropy model's integer tables.

    y (C, *S) --round(y - median | mean)--> ints --encode_indexed(tables, escapes)--> one payload chunk
    chunk --decode_indexed--> ints --+ median | mean--> dequantized latents (C, *S)

EntropyBottleneck: table c codes channel c around its median (both taken from the module). GaussianConditional:
the caller passes indexes (module.build_indexes(scales), same shape as y) and optional means. The tables
(`_quantized_cdf`, `_cdf_length`, `_offset`, fixed by `module.update()`) and the medians are all the state
there is, so decoding needs neither the module nor CompressAI and is bit-exact after a safetensors round
trip. The same code serves the container-level functions of compressai_adapter.py, one chunk per item.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mediatok.entropy._checks import check_keys, state_float, state_int
from mediatok.entropy.coder import _check_precision, as_array, check_cdf, decode_indexed, encode_indexed
from mediatok.errors import BitstreamError

MAX_SYMBOLS = 1 << 28  # never more latent values than this per chunk, whatever the payload


def module_kind(module: Any) -> str:
    """"eb" for a CompressAI EntropyBottleneck, "gc" for a GaussianConditional; ValueError otherwise."""
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional

    if isinstance(module, EntropyBottleneck):
        return "eb"
    if isinstance(module, GaussianConditional):
        return "gc"
    raise ValueError(f"module must be a CompressAI EntropyBottleneck or GaussianConditional, got "
                     f"{type(module).__name__}")


class BottleneckModel:
    """Chunk-level entropy model for float latents (C, *S) with CompressAI's integer tables.

    model = BottleneckModel.from_module(eb)              # after eb.update(); or from_state_dict(state)
    blob = model.encode(y)                               # y (C, *S) float; a GaussianConditional needs
    y_hat = model.decode(blob, tuple(y.shape))           #   indexes=..., means=... in both calls
    """

    kind = "bottleneck"

    def __init__(self, cdf: Tensor, cdf_lengths: Tensor, offsets: Tensor, precision: int = 16,
                 medians: Tensor | None = None) -> None:
        self.precision = _check_precision(int(precision))
        self.cdf = torch.as_tensor(cdf).to(torch.int32).contiguous()  # (T, Lmax)
        self.cdf_lengths = torch.as_tensor(cdf_lengths).to(torch.int32).reshape(-1)  # (T,)
        self.offsets = torch.as_tensor(offsets).to(torch.int32).reshape(-1)  # (T,)
        t = self.cdf.shape[0] if self.cdf.ndim == 2 else -1
        if t < 1 or self.cdf_lengths.shape[0] != t or self.offsets.shape[0] != t:
            raise ValueError(f"BottleneckModel expects 'cdf' (T, L), 'cdf_lengths' (T,) and 'offsets' (T,) with T >= 1; "
                             f"got {tuple(self.cdf.shape)}, {tuple(self.cdf_lengths.shape)}, {tuple(self.offsets.shape)}")
        # 3 entries at least: one value, the escape symbol, the end (so no symbol is ever free)
        if int(self.cdf_lengths.min()) < 3 or int(self.cdf_lengths.max()) > self.cdf.shape[1]:
            raise ValueError(f"BottleneckModel 'cdf_lengths' must lie in [3, {self.cdf.shape[1]}]")
        check_cdf(self.cdf.numpy(), self.precision, self.cdf_lengths.numpy(), "BottleneckModel 'cdf'")
        self.medians = None
        if medians is not None:
            self.medians = torch.as_tensor(medians).detach().cpu().reshape(-1)  # (C,) float, dtype kept
            if self.medians.shape[0] != t or not self.medians.is_floating_point():
                raise ValueError(f"BottleneckModel 'medians' must be float (C={t},), got {self.medians.dtype} "
                                 f"{tuple(self.medians.shape)}")
        freq = (self.cdf[:, 1:] - self.cdf[:, :-1]).double()  # (T, Lmax-1)
        inside = torch.arange(freq.shape[1]) < (self.cdf_lengths - 1)[:, None].long()
        top = torch.where(inside, freq, torch.zeros(())).max(1).values  # (T,) largest frequency per table
        self._cheapest = (self.precision - top.log2()).clamp_min(0)  # (T,) fewest bits a symbol costs

    @property
    def num_tables(self) -> int:
        return int(self.cdf.shape[0])

    @classmethod
    def from_module(cls, module: Any) -> BottleneckModel:
        """Tables (and an EntropyBottleneck's medians) of a CompressAI module after module.update()."""
        kind = module_kind(module)
        if module._quantized_cdf.numel() == 0:
            raise ValueError("the entropy model has no CDF tables; call module.update() first")
        medians = module._get_medians().detach().reshape(-1).cpu() if kind == "eb" else None
        return cls(module._quantized_cdf.cpu(), module._cdf_length.reshape(-1).cpu(),
                   module._offset.reshape(-1).cpu(), int(module.entropy_coder_precision), medians)

    def _centres(self, shape: tuple[int, ...], means: Tensor | None) -> Tensor | None:
        """What symbols are rounded around: the per-channel medians (EB) or the caller's means (GC)."""
        if self.medians is None:
            if means is not None and tuple(means.shape) != shape:
                raise ValueError(f"means must have the latents' shape {shape}, got {tuple(means.shape)}")
            return means
        if means is not None:
            raise ValueError("an EntropyBottleneck model takes no means: it codes around its medians")
        if len(shape) < 1 or shape[0] != self.num_tables:
            raise ValueError(f"latents must be (C={self.num_tables}, *S), got shape {shape}")
        return self.medians.reshape(-1, *([1] * (len(shape) - 1)))  # (C, 1, ...)

    def _indexes(self, shape: tuple[int, ...], indexes: Tensor | None) -> np.ndarray:
        if self.medians is not None:
            if indexes is not None:
                raise ValueError("an EntropyBottleneck model builds its own indexes (table c for channel c)")
            per = math.prod(shape[1:])
            return np.repeat(np.arange(self.num_tables, dtype=np.int32), per)  # (C * prod(S),)
        if indexes is None or tuple(indexes.shape) != shape:
            raise ValueError(f"a GaussianConditional model needs indexes of the latents' shape {shape} "
                             f"(module.build_indexes(scales)), got {None if indexes is None else tuple(indexes.shape)}")
        return as_array(indexes, np.int32, "indexes").reshape(-1)

    def encode(self, y: Tensor, indexes: Tensor | None = None, means: Tensor | None = None) -> bytes:
        """Latents y (C, *S) -> payload bytes (CompressAI's symbols: round(y - centre), escapes past the tables)."""
        y = torch.as_tensor(y)
        if not y.is_floating_point():
            raise ValueError(f"latents must be a float tensor, got {y.dtype}")
        shape = tuple(y.shape)
        centre = self._centres(shape, means)
        idx = self._indexes(shape, indexes)
        out = y.detach().cpu().clone()
        if centre is not None:
            out -= centre.to(out.device)  # in place, as CompressAI's quantize(mode="symbols")
        symbols = torch.round(out).int().reshape(-1)
        return encode_indexed(symbols, idx, self.cdf, self.cdf_lengths, self.offsets, self.precision)

    def max_symbols(self, num_bytes: int, shape: tuple[int, ...], indexes: Tensor | None = None) -> int:
        """Most latent values of this shape's layout a valid num_bytes payload can hold: every symbol costs
        at least -log2(largest probability of its table) bits. Bounds allocations by untrusted shapes."""
        budget = 8 * num_bytes + 2 * self.precision + 64
        if self.medians is not None and len(shape) >= 1:  # each frame of C channels costs sum_c cheapest_c
            per_frame = float(self._cheapest.sum())
            frames = MAX_SYMBOLS if per_frame <= 0 else int(budget / per_frame) + 1
            return min(MAX_SYMBOLS, frames * self.num_tables)
        used = self._cheapest if indexes is None else self._cheapest[torch.as_tensor(indexes).reshape(-1).long()
                                                                     .clamp(0, self.num_tables - 1).unique()]
        least = float(used.min()) if used.numel() else 0.0
        return MAX_SYMBOLS if least <= 0 else min(MAX_SYMBOLS, int(budget / least) + 1)

    def check_shape(self, num_bytes: int, shape: Any, indexes: Tensor | None = None) -> tuple[int, ...]:
        """The shape as a tuple, or BitstreamError if it is malformed or holds more than num_bytes can."""
        if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) < 1 or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise BitstreamError(f"latent shape must be (C, *S) non-negative ints, got {shape!r}")
        shape = tuple(shape)
        if self.medians is not None and shape[0] != self.num_tables:
            raise BitstreamError(f"latent shape {shape} has {shape[0]} channels, the bottleneck {self.num_tables}")
        limit = self.max_symbols(num_bytes, shape, indexes)
        if math.prod(shape) > limit:
            raise BitstreamError(f"{num_bytes} payload bytes cannot hold {math.prod(shape)} latent values of shape "
                                 f"{shape} (at most {limit}): the shape or the stream is corrupt")
        return shape

    def decode(self, data: bytes, shape: tuple[int, ...], indexes: Tensor | None = None,
               means: Tensor | None = None) -> Tensor:
        """Inverse of encode: dequantized latents of `shape` (C, *S), float like CompressAI's decompress
        (the medians' or means' dtype, else float32). BitstreamError before allocating if shape is too big."""
        shape = self.check_shape(len(data), shape, indexes)
        centre = self._centres(shape, means)
        values = decode_indexed(data, self._indexes(shape, indexes), self.cdf, self.cdf_lengths, self.offsets,
                                self.precision)
        values = torch.as_tensor(values).reshape(shape)
        if centre is None:
            return values.float()
        out = values.to(centre.dtype)
        out += centre.to(out.device)  # as CompressAI's dequantize: cast to the centre's dtype, then add
        return out

    def state_dict(self) -> dict[str, Tensor]:
        """Integer tables, precision and (EntropyBottleneck) medians: safe for safetensors."""
        state = {"cdf": self.cdf.clone(), "cdf_lengths": self.cdf_lengths.clone(), "offsets": self.offsets.clone(),
                 "precision": torch.tensor(self.precision, dtype=torch.int32)}
        if self.medians is not None:
            state["medians"] = self.medians.clone()
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> BottleneckModel:
        """Rebuild from state_dict() output (untrusted: ValueError naming the bad key)."""
        owner = "BottleneckModel"
        check_keys(state, {"cdf", "cdf_lengths", "offsets", "precision"}, owner, optional=frozenset({"medians"}))
        medians = state_float(state, "medians", 1, owner) if "medians" in state else None
        return cls(state_int(state, "cdf", 2, owner), state_int(state, "cdf_lengths", 1, owner),
                   state_int(state, "offsets", 1, owner), int(state_int(state, "precision", 0, owner)), medians)
