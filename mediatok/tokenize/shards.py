"""Token shards on disk: plain numpy arrays + small JSON indexes, and `TokenDataset` to read them back.

    OUT/shard-00000.npy    uint16 (N,): every item's raw codes (Q, *S) in C order, item after item
    OUT/shard-00000.json   index: per item id, path, text, metadata, shape (Q, *S), offset into the array, the
                           amount of media and its unit (seconds, pixels, ...); items that failed, with the
                           error; the codec's name and weights fingerprint
    OUT/manifest.json      written last, once every shard exists: codec, pattern, shard list + sha256, totals

Items keep their shape: (Q, frames) for audio, (Q, h, w) for images, (Q, d, h, w) for volumes, each recorded in
the index, so an item comes back as the codec made it. Tokens are stored as raw codes in [0, codebook_size),
whatever the flattening pattern; the pattern is applied when reading, so one tokenization serves flat, delay and
parallel LMs (grids flattened in raster order, see `patterns`).
Files hold no timestamps, host names, worker counts or absolute paths: the same input gives the same bytes.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from mediatok.tokenize.patterns import Pattern, PatternName, get_pattern

log = logging.getLogger("mediatok.tokenize")

# /2: items of any shape (Q, *S), grids flattened in raster order, each item's media as amount + unit
FORMAT = "mediatok-tokens/2"
MANIFEST = "manifest.json"


def shard_name(index: int) -> str:
    """File stem of shard `index`."""
    return f"shard-{index:05d}"


def token_dtype(codebook_size: int) -> np.dtype:
    """The smallest unsigned dtype holding codes in [0, codebook_size).

    Shards hold raw codes, never pattern ids (flat ids reach Q*K) nor positions, so the dtype depends only on the
    codebook size, whatever the item's shape: uint16 holds every code of a codebook of at most 65,536 entries (all
    shipped models: 1,024) at half the bytes of int32 and, like nanoGPT's token files, maps straight into memory
    with `np.load(..., mmap_mode="r")`; larger codebooks get uint32.
    """
    return np.dtype(np.uint16) if codebook_size <= 1 << 16 else np.dtype(np.uint32)


def dumps(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, fixed separators, trailing newline) so equal data gives equal files."""
    return (json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file + rename: readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def npy_bytes(array: np.ndarray) -> bytes:
    """The .npy file bytes of `array` (header + data; no pickle)."""
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def write_shard(out: Path, index: int, planned: list[str], records: list[dict[str, Any]], arrays: list[np.ndarray],
                failures: list[dict[str, str]], header: dict[str, Any]) -> None:
    """Write one shard: the concatenated token array first, then its index (whose presence marks the shard done)."""
    dtype = np.dtype(header["dtype"])
    flat = np.concatenate([a.reshape(-1) for a in arrays]).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)
    offset = 0
    items = []
    for rec, a in zip(records, arrays, strict=True):
        items.append({**rec, "offset": offset, "shape": list(a.shape)})
        offset += a.size
    name = shard_name(index)
    atomic_write(out / f"{name}.npy", npy_bytes(flat))
    index_doc = {**header, "format": FORMAT, "shard": index, "num_tokens": int(flat.size), "items": items,
                 "failures": failures, "planned": planned}
    atomic_write(out / f"{name}.json", dumps(index_doc))


def read_index(out: Path, index: int) -> dict[str, Any] | None:
    """Shard `index`'s JSON index, or None when it is missing or unreadable (the shard is then redone)."""
    path = Path(out) / f"{shard_name(index)}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not (Path(out) / f"{shard_name(index)}.npy").is_file():
        return None
    if doc.get("format") != FORMAT:  # an older layout is never read as this one: the shard is redone
        log.warning("%s is format %r, not %r: it will be rewritten", path.name, doc.get("format"), FORMAT)
        return None
    return doc


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class TokenDataset(Dataset):
    """Token shards -> one dict per item: id, tokens (LongTensor, pattern applied), shape, text, metadata, facts.

        ds = TokenDataset("shards/")                    # the manifest's pattern
        item = ds[0]                                    # {"id", "tokens", "shape": (Q, *S), "amount", "unit", ...}
        media = ds.detokenize(item["tokens"], codec, item["shape"])

    `shape` is the item's raw code grid (Q, *S): (Q, frames), (Q, h, w) or (Q, d, h, w). `pattern` None gives
    those raw codes; 'flat' | 'delay' | 'parallel' applies that pattern over the positions, grids read in raster
    order (default: the pattern the shards were made for). Token arrays are memory-mapped, so workers share
    pages. `verify` checks every shard against the manifest's sha256 first.
    """

    def __init__(self, root: str | Path, pattern: PatternName | None | str = "manifest", verify: bool = False) -> None:
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: tokenize the dataset first (or let an interrupted run finish)")
        self.manifest = json.loads(path.read_text(encoding="utf-8"))
        if self.manifest.get("format") != FORMAT:
            raise ValueError(f"{path} is format {self.manifest.get('format')!r}, expected {FORMAT!r}: "
                             "re-tokenize the dataset with this version of mediatok")
        model = self.manifest["model"]
        self.num_codebooks, self.codebook_size = int(model["num_codebooks"]), int(model["codebook_size"])
        name = self.manifest["pattern"] if pattern == "manifest" else pattern
        self.pattern: Pattern | None = None if name is None else get_pattern(name, self.num_codebooks, self.codebook_size)
        self._items: list[tuple[int, dict[str, Any]]] = []
        for shard in self.manifest["shards"]:
            if verify and sha256_file(self.root / f"{shard['name']}.npy") != shard["sha256"]:
                raise ValueError(f"{self.root / shard['name']}.npy does not match the sha256 in {path}: re-tokenize it")
            index = json.loads((self.root / f"{shard['name']}.json").read_text(encoding="utf-8"))
            self._items += [(shard["index"], rec) for rec in index["items"]]
        self._arrays: dict[int, np.ndarray] = {}

    @property
    def vocab_size(self) -> int:
        """Size of the id space the returned tokens live in."""
        return self.pattern.vocab_size if self.pattern is not None else self.codebook_size

    @property
    def ids(self) -> list[str]:
        """Item ids, in dataset order."""
        return [rec["id"] for _, rec in self._items]

    def __len__(self) -> int:
        return len(self._items)

    def shape(self, i: int) -> tuple[int, ...]:
        """Item `i`'s raw code shape (Q, *S)."""
        return tuple(int(n) for n in self._items[i][1]["shape"])

    def codes(self, i: int) -> Tensor:
        """Raw codes of item `i`: LongTensor (Q, *S)."""
        shard, rec = self._items[i]
        if shard not in self._arrays:  # opened lazily so that DataLoader workers map their own copies
            self._arrays[shard] = np.load(self.root / f"{shard_name(shard)}.npy", mmap_mode="r", allow_pickle=False)
        shape = self.shape(i)
        flat = self._arrays[shard][rec["offset"] : rec["offset"] + math.prod(shape)]
        return torch.from_numpy(flat.astype(np.int64)).view(shape)  # (Q, *S), C order as written

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} items")
        i %= len(self)
        codes = self.codes(i)
        rec = dict(self._items[i][1])
        rec.pop("offset")
        rec["shape"] = tuple(codes.shape)
        rec["tokens"] = codes if self.pattern is None else self.pattern.apply(codes, grid_ndim=codes.ndim - 1)
        return rec

    def detokenize(self, tokens: Tensor, codec: Any, shape: tuple[int, ...] | None = None) -> Any:
        """Pattern-applied tokens -> the codec's reconstruction (`codec.detokenize` of the exact inverse).

        `shape` is the item's (Q, *S) (`item["shape"]`); a grid needs it to be restored, frames do not.
        """
        grid = None if shape is None else tuple(shape)[1:]
        if self.pattern is None:
            codes = tokens if grid is None else tokens.reshape(tokens.shape[0], *grid)
        else:
            codes = self.pattern.invert(tokens, grid=grid)
        return codec.detokenize(codes)
