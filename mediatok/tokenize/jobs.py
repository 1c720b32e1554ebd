"""Shard jobs: which items a shard holds, and tokenizing them one by one. Shared by every way of running
(in process, worker processes, Lightning ranks), so each writes the same bytes.

    item --io.read--> (x, kwargs) --codec.tokenize(x, **kwargs, **options)--> tokens (Q, *S)
                                  --checked--> shard dtype array
                                  --io.amount(x, kwargs)--> (amount, unit) recorded with the item
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mediatok.codecs.base import torch_threads
from mediatok.tokenize.media import CodecInfo
from mediatok.tokenize.shards import token_dtype, write_shard
from mediatok.tokenize.sources import Item

log = logging.getLogger("mediatok.tokenize")

Records = list[dict[str, Any]]
_RECORD_KEYS = ("id", "path", "text", "metadata", "amount", "unit", "shape", "offset")


@dataclass(frozen=True)
class ShardJob:
    """Shard `index` holds these items, in this order."""

    index: int
    items: tuple[Item, ...]


def plan_shards(items: Sequence[Item], shard_size: int) -> list[ShardJob]:
    """Fixed-size consecutive chunks of the item list."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    return [ShardJob(k, tuple(items[i : i + shard_size])) for k, i in enumerate(range(0, len(items), shard_size))]


def shard_header(info: CodecInfo) -> dict[str, Any]:
    """The codec facts every shard index repeats (a resumed run compares them)."""
    return {"model": info.to_dict(), "dtype": token_dtype(info.codebook_size).name}


def _codes_array(codes: Any, header: dict[str, Any]) -> np.ndarray:
    """The codec's tokens -> a checked numpy array of the shard dtype, (Q, *S) as the codec gave it."""
    model = header["model"]
    codes = codes.detach().cpu() if isinstance(codes, Tensor) else torch.as_tensor(codes)
    if codes.ndim < 2 or codes.shape[0] != model["num_codebooks"] or codes.dtype.is_floating_point:
        raise ValueError(f"codec returned tokens {codes.dtype} {tuple(codes.shape)}; "
                         f"expected integers ({model['num_codebooks']}, *positions)")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= model["codebook_size"]):
        raise ValueError(f"codec returned tokens outside [0, {model['codebook_size']})")
    return codes.numpy().astype(header["dtype"])


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def tokenize_item(item: Item, codec: Any, io: Any,
                  options: dict[str, Any] | None = None) -> tuple[Tensor, dict[str, Any]]:
    """One file -> (tokens (Q, *S), facts): the read kwargs that are plain values (e.g. sample_rate) and the
    amount of media with its unit, as the family's I/O measures it. `options` go to every `codec.tokenize`."""
    x, kwargs = io.read(Path(item.file))
    tokens = codec.tokenize(x, **kwargs, **(options or {}))
    amount, unit = io.amount(x, kwargs)
    facts = {k: v for k, v in kwargs.items() if _plain(v) and k not in _RECORD_KEYS}
    return tokens, {**facts, "amount": float(amount), "unit": str(unit)}


def tokenize_items(job: ShardJob, codec: Any, io: Any, header: dict[str, Any],
                   on_item: Callable[[float, str], None] | None = None) -> tuple[Records, list[np.ndarray], Records]:
    """Tokenize one shard's items one at a time -> (records, token arrays, failures).

    One intra-op thread, set here and restored on return, in every kind of run: the same kernels give the same
    tokens, and the caller's process keeps its own setting.
    """
    records, arrays, failures = [], [], []
    options = header["model"].get("options", {})
    with torch_threads(1), torch.inference_mode():
        for item in job.items:
            amount, unit = 0.0, ""
            try:
                tokens, facts = tokenize_item(item, codec, io, options)
                arrays.append(_codes_array(tokens, header))
            except Exception as e:  # noqa: BLE001 - one bad file must not stop a dataset; it is reported instead
                msg = f"{type(e).__name__}: {e}".replace(item.file, item.path)  # no machine-specific paths in shards
                log.warning("skipping %s: %s", item.path, msg)
                failures.append({"id": item.id, "path": item.path, "error": msg})
            else:
                records.append({**facts, "id": item.id, "path": item.path, "text": item.text,
                                "metadata": item.metadata})
                amount, unit = facts["amount"], facts["unit"]
            if on_item is not None:
                on_item(amount, unit)
    return records, arrays, failures


def run_shard(job: ShardJob, codec: Any, io: Any, header: dict[str, Any], out: Path,
              on_item: Callable[[float, str], None] | None = None) -> int:
    """Tokenize and write one shard; returns its number of failed items."""
    records, arrays, failures = tokenize_items(job, codec, io, header, on_item)
    write_shard(out, job.index, [it.id for it in job.items], records, arrays, failures, header)
    return len(failures)
