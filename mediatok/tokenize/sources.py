"""Which items to tokenize: a folder, a glob or a CSV/JSONL manifest -> a deterministic list of `Item`s."""
from __future__ import annotations

import csv
import glob
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_SUFFIXES = (".csv", ".jsonl")
_RESERVED = ("id", "path", "text", "metadata")


@dataclass(frozen=True)
class Item:
    """One media file to tokenize. `id` is unique in a dataset; `path` is as the user named it (relative)."""

    id: str
    path: str
    file: str  # where to read it from on this machine; never written into shards
    text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def _glob_root(pattern: str) -> Path:
    """The longest folder prefix of `pattern` without wildcards: ids are relative to it."""
    parts = Path(pattern).parts
    keep = []
    for part in parts:
        if _is_glob(part):
            break
        keep.append(part)
    return Path(*keep) if keep else Path(".")


def _from_files(files: Sequence[Path], root: Path, extensions: Sequence[str]) -> list[Item]:
    exts = {e.lower() for e in extensions}
    items = []
    for f in files:
        if f.is_file() and (not exts or f.suffix.lower() in exts):
            rel = f.relative_to(root).as_posix()
            items.append(Item(id=rel, path=rel, file=str(f)))
    return sorted(items, key=lambda it: it.id)  # sorted path order: shard assignment never depends on the file system


def _manifest_row(row: dict[str, Any], base: Path, where: str) -> Item:
    path = row.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError(f"{where}: every manifest row needs a non-empty 'path', got {row!r}")
    text = row.get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{where}: 'text' must be a string, got {type(text).__name__}")
    if not isinstance(row.get("metadata") or {}, dict):
        raise ValueError(f"{where}: 'metadata' must be an object, got {row['metadata']!r}")
    metadata = dict(row.get("metadata") or {})
    metadata.update({k: v for k, v in row.items() if k not in _RESERVED})
    try:
        json.dumps(metadata, allow_nan=False)
    except ValueError as e:  # NaN / Infinity: shard indexes are strict JSON
        raise ValueError(f"{where}: metadata must be plain JSON ({e})") from None
    file = Path(path) if Path(path).is_absolute() else base / path
    return Item(id=str(row.get("id") or path), path=path, file=str(file), text=text or None, metadata=metadata)


def read_manifest(manifest: str | Path) -> list[Item]:
    """Items of a CSV (header with a `path` column) or JSONL manifest, in the manifest's order.

    Columns/keys other than id, path, text become metadata; relative paths are relative to the manifest's folder.
    """
    manifest = Path(manifest)
    base = manifest.parent
    items = []
    if manifest.suffix.lower() == ".csv":
        with open(manifest, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise ValueError(f"{manifest}: a CSV manifest needs a header row with a 'path' column, "
                                 f"got {reader.fieldnames}")
            for i, row in enumerate(reader, start=2):
                row = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
                items.append(_manifest_row(row, base, f"{manifest}:{i}"))
    elif manifest.suffix.lower() == ".jsonl":
        with open(manifest, encoding="utf-8") as f:
            for i, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{manifest}:{i}: not valid JSON ({e})") from None
                    if not isinstance(row, dict):
                        raise ValueError(f"{manifest}:{i}: each line must be a JSON object, got {row!r}")
                    items.append(_manifest_row(row, base, f"{manifest}:{i}"))
    else:
        raise ValueError(f"manifest must end in {MANIFEST_SUFFIXES}, got {manifest.name!r}")
    return items


def discover(data: str | Path, extensions: Sequence[str] = ()) -> list[Item]:
    """Items named by `data`: a manifest (.csv/.jsonl), a folder (searched recursively) or a glob.

    Folder and glob items are sorted by path and filtered to `extensions`; ids are paths relative to the
    folder (or to the glob's fixed prefix), so moving the dataset does not change the shards.
    """
    s = os.fspath(data)
    p = Path(s)
    if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES:
        items = read_manifest(p)
    elif p.is_dir():
        items = _from_files(sorted(p.rglob("*")), p, extensions)
    elif _is_glob(s):
        items = _from_files([Path(f) for f in glob.glob(s, recursive=True)], _glob_root(s), extensions)
    elif p.is_file():
        items = _from_files([p], p.parent, ())
    else:
        raise FileNotFoundError(f"data must be a folder, a glob or a {'/'.join(MANIFEST_SUFFIXES)} manifest; {s!r} is none")
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise ValueError(f"duplicate item id {it.id!r} in {s}; give manifest rows unique 'id's")
        seen.add(it.id)
    return items
