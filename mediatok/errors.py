"""Exceptions shared by every room of mediatok."""
from __future__ import annotations


class MediatokError(Exception):
    """Base class for errors raised by mediatok on purpose."""


class BitstreamError(MediatokError, ValueError):
    """A bitstream or container is truncated, corrupted, foreign or oversized."""


class ModelNotFoundError(MediatokError, KeyError):
    """A model name is neither registered nor a checkpoint folder."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
