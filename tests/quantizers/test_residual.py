"""Residual VQ's quantizer dropout: depths from a shared seed and a step counter, not from process-global RNGs."""
from __future__ import annotations

import random

import torch

from mediatok.quantizers import GroupedResidualVQ, ResidualVQ

DIM = 4


def _depths(rvq: ResidualVQ | GroupedResidualVQ, steps: int, per_level: int = 1) -> list[int]:
    """Depth each of `steps` training forwards used (indices per position / levels per group)."""
    rvq.train()
    x = torch.randn(1, rvq.dim, 16, generator=torch.Generator().manual_seed(0))
    return [rvq(x).indices.shape[1] // per_level for _ in range(steps)]


def _rvq(**kwargs) -> ResidualVQ:
    return ResidualVQ(DIM, 8, num_quantizers=4, quantizer_dropout=0.5, kmeans_init=False, **kwargs)


def test_same_seed_draws_the_same_depths_whatever_the_global_rngs():
    torch.manual_seed(0)
    random.seed(0)
    a = _depths(_rvq(dropout_seed=7), 60)
    torch.manual_seed(1)  # what two DDP ranks typically differ in
    random.seed(1)
    b = _depths(_rvq(dropout_seed=7), 60)
    assert a == b
    assert set(a) == {1, 2, 3, 4}
    # p = 0.5: full depth on about 1/2 + 1/2 * 1/4 of the steps
    assert 0.45 < a.count(4) / len(a) < 0.8, a
    assert _depths(_rvq(dropout_seed=8), 60) != a


def test_resumed_run_continues_the_sequence():
    torch.manual_seed(0)
    whole = _depths(_rvq(), 40)
    first = _rvq()
    _depths(first, 25)
    assert int(first.dropout_step) == 25
    resumed = _rvq()
    resumed.load_state_dict(first.state_dict())
    assert _depths(resumed, 15) == whole[25:]


def test_eval_and_explicit_depth_do_not_advance_the_sequence():
    rvq = _rvq()
    x = torch.randn(1, DIM, 16)
    rvq.train()
    rvq(x, num_quantizers=2)
    rvq.eval()
    assert rvq(x).indices.shape[1] == 4
    assert int(rvq.dropout_step) == 0


def test_checkpoint_without_the_step_counter_loads_strictly():
    old = {k: v for k, v in _rvq().state_dict().items() if k != "dropout_step"}
    rvq = _rvq()
    rvq.dropout_step.fill_(5)
    rvq.load_state_dict(old, strict=True)
    assert int(rvq.dropout_step) == 0


def test_grouped_rvq_groups_share_one_depth_per_step():
    torch.manual_seed(0)
    make = lambda: GroupedResidualVQ(DIM, 8, num_groups=2, num_quantizers=3, quantizer_dropout=1.0, kmeans_init=False)  # noqa: E731
    a = _depths(make(), 30, per_level=2)
    torch.manual_seed(1)
    assert _depths(make(), 30, per_level=2) == a and set(a) == {1, 2, 3}
