"""Collective helpers so that codebook state stays identical on every process (no-ops when not distributed)."""
from __future__ import annotations

import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank, 0 when not distributed."""
    return dist.get_rank() if is_distributed() else 0


def all_reduce_sum_(t: Tensor) -> Tensor:
    """Sum `t` in place over all processes."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_(t: Tensor, src: int = 0) -> Tensor:
    """Overwrite `t` in place with rank `src`'s copy."""
    if is_distributed():
        dist.broadcast(t, src=src)
    return t

