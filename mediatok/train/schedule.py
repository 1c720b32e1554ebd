"""The learning-rate schedule: linear warm-up, constant, then cosine decay to a floor.

    factor
    1.0 |    ________________
        |   /                \_
        |  /                   \__
    min | /                       \________
        +--warmup----decay_start----+decay_steps----> step

A pure function of the step count, so resuming from any checkpoint continues the schedule where it was.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WarmupCosine:
    """Multiplier of the base learning rate at a given optimiser step."""

    warmup_steps: int = 200
    decay_start: int = 1_000_000
    decay_steps: int = 1
    min_lr_ratio: float = 0.05

    def __post_init__(self) -> None:
        if self.warmup_steps < 0 or self.decay_steps < 1 or not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError("schedule needs warmup_steps >= 0, decay_steps >= 1 and 0 <= min_lr_ratio <= 1, "
                             f"got {self}")

    def __call__(self, step: int) -> float:
        """Warm-up to 1 over warmup_steps, 1 until decay_start, cosine to min_lr_ratio over decay_steps."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if step < self.decay_start:
            return 1.0
        t = min(1.0, (step - self.decay_start) / self.decay_steps)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
