"""Shared checks for entropy models: token grids (Q, *S) and untrusted saved states."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from mediatok.errors import BitstreamError

_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def grid_frames(shape: int | tuple[int, ...] | list[int] | torch.Size, num_codebooks: int,
                owner: str) -> tuple[int, tuple[int, ...]]:
    """(frames, full shape) for a decode request: an int T means (Q, T); a tuple must be (Q, *S) with
    this model's Q. Raises BitstreamError (a header field is wrong) before anything is allocated."""
    if isinstance(shape, (int,)) and not isinstance(shape, bool):
        if shape < 0:
            raise BitstreamError(f"{owner}: num_frames must be >= 0, got {shape}")
        return int(shape), (num_codebooks, int(shape))
    if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) < 2:
        raise BitstreamError(f"{owner}: shape must be (Q, *S) with at least one grid axis, got {shape!r}")
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BitstreamError(f"{owner}: shape entries must be non-negative ints, got {tuple(shape)!r}")
    if shape[0] != num_codebooks:
        raise BitstreamError(f"{owner}: shape {tuple(shape)} has {shape[0]} codebooks, the prior has {num_codebooks}")
    return math.prod(shape[1:]), tuple(int(d) for d in shape)


def flat_grid(indices: Any, num_codebooks: int) -> tuple[Tensor, tuple[int, ...]]:
    """Indices (Q, *S) -> ((Q, prod(S)) in raster order, original shape); ValueError naming what is wrong."""
    x = torch.as_tensor(indices)
    if x.is_floating_point() or x.is_complex() or x.ndim < 2 or x.shape[0] != num_codebooks:
        raise ValueError(f"indices must be integers of shape (Q={num_codebooks}, *S) with S = (T,), (h, w) or "
                         f"(d, h, w), got {x.dtype} of shape {tuple(x.shape)}")
    return x.reshape(num_codebooks, -1), tuple(x.shape)  # (Q, N) raster order


def state_int(state: dict[str, Any], key: str, ndim: int, owner: str) -> Tensor:
    """state[key] as int32, refusing anything but an integer tensor of ndim dims within int32 range."""
    if key not in state:
        raise ValueError(f"{owner} state is missing {key!r}")
    v = state[key]
    if not isinstance(v, Tensor) or v.dtype not in _INT_DTYPES:
        kind = v.dtype if isinstance(v, Tensor) else type(v).__name__
        raise ValueError(f"{owner} state {key!r} must be an integer tensor, got {kind}")
    if v.ndim != ndim:
        raise ValueError(f"{owner} state {key!r} must have {ndim} dims, got shape {tuple(v.shape)}")
    if v.numel() and (int(v.min()) < -(1 << 31) or int(v.max()) >= 1 << 31):
        raise ValueError(f"{owner} state {key!r} holds values outside int32")
    return v.to(torch.int32)


def state_float(state: dict[str, Any], key: str, ndim: int, owner: str) -> Tensor:
    """state[key] as a finite float tensor of ndim dims (dtype kept: bit-exact values matter)."""
    if key not in state:
        raise ValueError(f"{owner} state is missing {key!r}")
    v = state[key]
    if not isinstance(v, Tensor) or not v.is_floating_point():
        kind = v.dtype if isinstance(v, Tensor) else type(v).__name__
        raise ValueError(f"{owner} state {key!r} must be a float tensor, got {kind}")
    if v.ndim != ndim or not bool(torch.isfinite(v).all()):
        raise ValueError(f"{owner} state {key!r} must be finite with {ndim} dims, got shape {tuple(v.shape)}")
    return v


def check_keys(state: dict[str, Any], allowed: set[str], owner: str, optional: frozenset[str] = frozenset()) -> None:
    """Refuse missing keys and keys a state of this kind never has (a mixed-up or foreign state)."""
    if not isinstance(state, dict):
        raise ValueError(f"{owner} state must be a dict of tensors, got {type(state).__name__}")
    extra = set(state) - allowed - optional
    if extra:
        raise ValueError(f"{owner} state has unexpected keys {sorted(extra)} (expected {sorted(allowed)})")
    missing = allowed - set(state)
    if missing:
        raise ValueError(f"{owner} state is missing {sorted(missing)}")
