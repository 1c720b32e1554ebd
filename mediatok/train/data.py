"""What every media family's training data shares: the random generator of one dataset item."""
from __future__ import annotations

import numpy as np
import torch


def item_rng(seed: int, k: int) -> np.random.Generator:
    """The generator for item k of an endless-style random dataset.

    Workers get a fresh torch seed every epoch; in-process loading draws from torch's seeded global RNG. Either
    way a run is reproducible from its seed and item k differs between epochs.
    """
    worker = torch.utils.data.get_worker_info()
    fresh = torch.initial_seed() if worker is not None else int(torch.randint(2**62, ()))
    return np.random.default_rng((seed, k, fresh % 2**63))
