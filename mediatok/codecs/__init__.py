"""Codecs: media <-> tokens <-> bytes. The registry of families and models, and the checkpoint-folder convention.

    pretrained/<name>/{config.json, model.safetensors, CARD.md}
    config.json: {"codec": "<family>", "name": "<name>", "short_id": "<id>", "model": {...family config}}

A family (audio, image, volume, wavelet, or one a user adds) registers once with `register_family`: how to
load its checkpoint folders, its modality, its media I/O (read a file, write one by suffix) and `evaluate`.
`load(name)` resolves a registered model name, a folder under `pretrained/` (or $MEDIATOK_PRETRAINED), or a
checkpoint-folder path given by the user. A bitstream names its model by short id, which `load_by_id`
resolves through registered and shipped models only, never as a path. No class path is ever read from a file.
Third-party packages add families through the `mediatok.families` entry-point group (the module registers
on import).
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediatok.errors import ModelNotFoundError

Loader = Callable[[Path], Any]


@dataclass(frozen=True)
class MediaIO:
    """How a modality's files are read and written.

    read(path) -> (x, kwargs): codec input and keyword arguments for codec.encode / tokenize,
                  e.g. (wav (channels, samples), {"sample_rate": sr}) for audio, (image, {}) for images
    write(path, media) writes what codec.decode returned, the format chosen by the path's suffix
    amount(x, kwargs) -> (how much media, unit) of what read returned: (seconds, "s"), (pixels, "px"),
                  (voxels, "vox"); rates are reported per unit (kbps, bpp, bits per voxel)
    """

    read_suffixes: tuple[str, ...]
    write_suffixes: tuple[str, ...]
    read: Callable[[Path], tuple[Any, dict[str, Any]]]
    write: Callable[[Path, Any], None]
    amount: Callable[[Any, dict[str, Any]], tuple[float, str]]


@dataclass(frozen=True)
class Family:
    """A registered codec family: everything the CLI and the tokenizer need, without knowing its internals."""

    name: str
    loader: Loader
    codec_class: type | None  # the family's `Codec` subclass, when it registered one (export builds it)
    modality: str
    io: MediaIO | None
    evaluate: Callable[..., list[dict[str, Any]]] | None  # evaluate(codec, folder, **options) -> rows
    format_table: Callable[[list[dict[str, Any]]], str] | None
    default_model: str | None
    module: str  # who registered it (for duplicate errors)


_FAMILIES: dict[str, Family] = {}
_MODELS: dict[str, tuple[Callable[[], Any], str]] = {}


def _caller_module() -> str:
    return sys._getframe(2).f_globals.get("__name__", "<unknown>")


def register_family(family: str, codec: type | Loader, modality: str = "audio", io: MediaIO | None = None,
                    evaluate: Callable[..., list[dict[str, Any]]] | None = None,
                    format_table: Callable[[list[dict[str, Any]]], str] | None = None,
                    default_model: str | None = None) -> Family:
    """Register a family: its `Codec` subclass (or a bare folder loader), modality, media I/O, evaluation and
    default model. Checkpoint folders whose config.json says `"codec": family` load through it. Refuses
    duplicates, naming the module that registered the family first."""
    if family in _FAMILIES:
        raise ValueError(f"codec family {family!r} is already registered by {_FAMILIES[family].module}")
    codec_class = codec if isinstance(codec, type) else None
    loader = codec.load if codec_class is not None else codec
    entry = Family(family, loader, codec_class, modality, io, evaluate, format_table, default_model, _caller_module())
    _FAMILIES[family] = entry
    return entry


def unregister_family(family: str) -> None:
    """Remove a family (for tests and interactive sessions that re-register a changed one)."""
    _FAMILIES.pop(family, None)


def register_codec(name: str, factory: Callable[[], Any]) -> None:
    """Register a model name with a zero-argument factory; refuses names already taken."""
    if name in _MODELS:
        raise ValueError(f"codec {name!r} is already registered by {_MODELS[name][1]}")
    _MODELS[name] = (factory, _caller_module())


def families() -> dict[str, Family]:
    """The registered families by name (the built-in ones are imported first)."""
    _load_families()
    return dict(_FAMILIES)


def family_of(codec: Any) -> Family:
    """The registered family of a codec object (by its `family` attribute)."""
    name = getattr(codec, "family", None)
    found = families().get(name) if isinstance(name, str) else None
    if found is None:
        raise ValueError(f"{type(codec).__name__} belongs to no registered codec family (family={name!r}); "
                         f"known: {sorted(_FAMILIES)}")
    return found


def family_for_modality(modality: str) -> Family:
    """The first registered family of a modality that has media I/O (the one the CLI and tokenizer use)."""
    for fam in families().values():
        if fam.modality == modality and fam.io is not None:
            return fam
    known = sorted({f.modality for f in _FAMILIES.values() if f.io is not None})
    raise ValueError(f"no codec family handles modality {modality!r}; known modalities: {known}")


def family_for_file(path: str | Path) -> Family:
    """The family whose media I/O reads files with this suffix (used to pick a default model)."""
    suffix = Path(path).suffix.lower()
    for fam in families().values():
        if fam.io is not None and suffix in fam.io.read_suffixes:
            return fam
    readable = sorted({s for f in _FAMILIES.values() if f.io is not None for s in f.io.read_suffixes})
    raise ValueError(f"no codec reads {suffix or 'suffix-less'} files ({path}); readable: {', '.join(readable)}")


def pretrained_root() -> Path:
    """Folder of shipped checkpoints: $MEDIATOK_PRETRAINED or the repository's pretrained/."""
    env = os.environ.get("MEDIATOK_PRETRAINED")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "pretrained"


def _shipped() -> dict[str, dict[str, Any]]:
    """config.json of every folder under pretrained_root(), by folder name."""
    root = pretrained_root()
    found: dict[str, dict[str, Any]] = {}
    for config in sorted(root.glob("*/config.json")) if root.is_dir() else []:
        try:
            found[config.parent.name] = json.loads(config.read_text())
        except (OSError, ValueError):
            continue  # a broken folder must not hide the others; loading it by name says what is wrong
    return found


def list_models() -> list[str]:
    """Names of registered models and of checkpoint folders under `pretrained_root()`."""
    return sorted(set(_MODELS) | set(_shipped()))


def load_folder(path: str | Path) -> Any:
    """Load a checkpoint folder (config.json + model.safetensors) through its family's loader."""
    path = Path(path)
    config = path / "config.json"
    if not config.exists():
        raise ModelNotFoundError(f"{path} is not a checkpoint folder: it has no config.json")
    try:
        family = json.loads(config.read_text()).get("codec")
    except ValueError as e:
        raise ModelNotFoundError(f"{config} is not valid JSON: {e}") from e
    fams = families()
    if family not in fams:
        raise ModelNotFoundError(f"{config} names codec family {family!r}; known families: {sorted(fams)}")
    return fams[family].loader(path)


def load(name: str | Path) -> Any:
    """A codec by registered name, shipped name, shipped short id, or checkpoint-folder path."""
    _load_families()
    if isinstance(name, str) and name in _MODELS:
        return _MODELS[name][0]()
    if isinstance(name, str) and name in _shipped():
        return load_folder(pretrained_root() / name)
    if Path(name).is_dir():
        return load_folder(name)
    by_id = _shipped_by_id().get(str(name))
    if by_id is not None:
        return load_folder(pretrained_root() / by_id)
    raise ModelNotFoundError(f"no model named {str(name)!r}; available: {', '.join(list_models()) or 'none'}")


def load_by_id(model_id: str) -> Any:
    """The model a bitstream header names: a registered name, a shipped short id or a shipped name; never a path."""
    _load_families()
    if model_id in _MODELS:
        return _MODELS[model_id][0]()
    folder = _shipped_by_id().get(model_id) or (model_id if model_id in _shipped() else None)
    if folder is None:
        shown = model_id[:40] + ("..." if len(model_id) > 40 else "")
        raise ModelNotFoundError(f"the bitstream names model {shown!r}, which is neither registered nor shipped; "
                                 "pass the model to decode with (mediatok.decode(blob, model=...))")
    return load_folder(pretrained_root() / folder)


def _shipped_by_id() -> dict[str, str]:
    """Shipped folder names by the short id their config.json declares (bitstream headers name models by it)."""
    ids: dict[str, str] = {}
    for folder, config in _shipped().items():
        short = config.get("short_id")
        if isinstance(short, str):
            ids.setdefault(short, folder)
    return ids


def model_summaries() -> Iterable[dict[str, Any]]:
    """One row per model for `mediatok models`: name, modality, nominal rate, parameters, size on disk."""
    root = pretrained_root()
    for name in list_models():
        row: dict[str, Any] = {"name": name}
        try:
            codec = load(name)
            row.update(modality=getattr(codec, "modality", "?"), bitrate=float(codec.bitrate),
                       parameters=int(getattr(codec, "num_parameters", 0)))
        except Exception as e:  # noqa: BLE001 - one broken model must not hide the list
            row["error"] = f"{type(e).__name__}: {e}"
        weights = root / name / "model.safetensors"
        row["bytes"] = weights.stat().st_size if weights.exists() else None
        yield row


_BUILTIN_LOADED = False


def _load_families() -> None:
    """Import the built-in families (and entry-point plug-ins) so that they register themselves, once."""
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    import mediatok.codecs.audio  # noqa: F401
    import mediatok.codecs.image  # noqa: F401
    import mediatok.codecs.volume  # noqa: F401
    import mediatok.codecs.wavelet  # noqa: F401

    from importlib.metadata import entry_points

    for ep in entry_points(group="mediatok.families"):
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plug-in must not break the built-in families
            print(f"mediatok: could not load codec family plug-in {ep.name!r}: {e}", file=sys.stderr)
