"""What every family's evaluation shares for its figures (RD plots, grids, code-use curves)."""
from __future__ import annotations

from typing import Any

NOT_DRAWN = "not drawn: pip install matplotlib"


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or None when matplotlib is not installed.

    Why here: matplotlib is an optional dependency, and a figure is a by-product of an evaluation, never a reason
    for it to fail; each writer returns NOT_DRAWN in place of the figure's path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt
