"""Codecs: media <-> tokens <-> bytes. A registry of loaders and the checkpoint-folder convention.

    pretrained/<name>/{config.json, model.safetensors, CARD.md}
    config.json: {"codec": "<family>", "name": "<name>", ...family-specific fields}

`load(name)` resolves a registered name, a folder under `pretrained/` (or $MEDIATOK_PRETRAINED), or a path
to a checkpoint folder. The family in config.json picks a registered family loader; no class path is ever
read from a file.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mediatok.errors import ModelNotFoundError

Loader = Callable[[Path], Any]

_FAMILIES: dict[str, tuple[Loader, str]] = {}
_MODELS: dict[str, tuple[Callable[[], Any], str]] = {}


def _caller_module() -> str:
    return sys._getframe(2).f_globals.get("__name__", "<unknown>")


def register_family(family: str, loader: Loader) -> None:
    """Register how to load a checkpoint folder whose config.json says `"codec": family`."""
    if family in _FAMILIES:
        raise ValueError(f"codec family {family!r} is already registered by {_FAMILIES[family][1]}")
    _FAMILIES[family] = (loader, _caller_module())


def register_codec(name: str, factory: Callable[[], Any]) -> None:
    """Register a model name with a zero-argument factory; refuses names already taken."""
    if name in _MODELS:
        raise ValueError(f"codec {name!r} is already registered by {_MODELS[name][1]}")
    _MODELS[name] = (factory, _caller_module())


def pretrained_root() -> Path:
    """Folder of shipped checkpoints: $MEDIATOK_PRETRAINED or the repository's pretrained/."""
    env = os.environ.get("MEDIATOK_PRETRAINED")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "pretrained"


def list_models() -> list[str]:
    """Names of registered models and of checkpoint folders under `pretrained_root()`."""
    root = pretrained_root()
    shipped = [p.name for p in root.iterdir() if (p / "config.json").exists()] if root.is_dir() else []
    return sorted(set(_MODELS) | set(shipped))


def load_folder(path: str | Path) -> Any:
    """Load a checkpoint folder (config.json + model.safetensors) through its family's loader."""
    path = Path(path)
    config = path / "config.json"
    if not config.exists():
        raise ModelNotFoundError(f"{path} is not a checkpoint folder: it has no config.json")
    family = json.loads(config.read_text()).get("codec")
    _load_families()
    if family not in _FAMILIES:
        raise ModelNotFoundError(f"{config} names codec family {family!r}; known families: {sorted(_FAMILIES)}")
    return _FAMILIES[family][0](path)


def load(name: str | Path) -> Any:
    """A codec by registered name, shipped name, or checkpoint-folder path."""
    _load_families()
    if isinstance(name, str) and name in _MODELS:
        return _MODELS[name][0]()
    if isinstance(name, str) and (pretrained_root() / name / "config.json").exists():
        return load_folder(pretrained_root() / name)
    if Path(name).is_dir():
        return load_folder(name)
    by_id = _short_ids().get(str(name))
    if by_id is not None:
        return load_folder(by_id)
    raise ModelNotFoundError(f"no model named {str(name)!r}; available: {', '.join(list_models()) or 'none'}")


def _short_ids() -> dict[str, Path]:
    """Shipped folders by the short id their config.json declares (bitstream headers name models by it)."""
    root = pretrained_root()
    ids: dict[str, Path] = {}
    for config in sorted(root.glob("*/config.json")) if root.is_dir() else []:
        short = json.loads(config.read_text()).get("short_id")
        if isinstance(short, str):
            ids.setdefault(short, config.parent)
    return ids


def _load_families() -> None:
    """Import the built-in families so that they register themselves (once)."""
    import mediatok.codecs.audio  # noqa: F401
