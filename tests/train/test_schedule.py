"""The learning-rate schedule and the loss weights are plain, checkable functions."""
from __future__ import annotations

import math

import pytest
import torch

from mediatok.train.audio import AudioLossWeights
from mediatok.train.schedule import WarmupCosine


def test_schedule_warms_up_holds_then_decays_to_the_floor():
    s = WarmupCosine(warmup_steps=10, decay_start=100, decay_steps=50, min_lr_ratio=0.1)
    assert s(0) == pytest.approx(0.1) and s(9) == 1.0
    assert s(10) == s(99) == 1.0
    assert s(125) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert s(150) == s(10_000) == pytest.approx(0.1)
    assert all(s(k) >= s(k + 1) for k in range(10, 200))  # monotone after warm-up: resuming never jumps up


def test_schedule_refuses_impossible_settings():
    with pytest.raises(ValueError, match="decay_steps"):
        WarmupCosine(decay_steps=0)


def test_weights_sum_every_term_and_refuse_unweighted_ones():
    w = AudioLossWeights(mel=2.0, adversarial=0.5)
    terms = {"mel": torch.tensor(1.0), "commit": torch.tensor(3.0), "adversarial": torch.tensor(4.0)}
    assert float(w.total(terms)) == 2.0 + 3.0 + 2.0
    with pytest.raises(ValueError, match=r"\['l1'\] have no weight in AudioLossWeights"):
        w.total({"l1": torch.tensor(1.0)})
