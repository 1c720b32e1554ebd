"""FSQ: every level of every channel is reachable, and unit-Gaussian input fills the paper's grids."""
from __future__ import annotations

import math

import pytest
import torch

from mediatok.quantizers import FSQ


@pytest.mark.parametrize("levels", [[2], [2, 2, 2], [2, 3, 4, 5], [8, 5, 5, 5], [3, 6, 7], [16, 2]])
def test_every_code_of_the_grid_is_reachable(levels):
    fsq = FSQ(levels).eval()
    k = math.prod(levels)
    codes = fsq.decode_indices(torch.arange(k).reshape(1, 1, k))  # (1, d, K) in [-1, 1]
    # Each code is the centre of its level's slice of tanh's range: (code * (L-1)/2) / (L/2) = tanh(x).
    lv = torch.tensor(levels, dtype=torch.float32)[None, :, None]
    x = torch.atanh(codes * (lv - 1) / lv)
    out = fsq(x)
    assert torch.equal(out.indices.reshape(-1), torch.arange(k))
    assert torch.equal(out.quantized, codes)
    assert codes.unique(dim=2).shape[2] == k


@pytest.mark.parametrize("levels", [[2], [2, 3], [4, 5, 6]])
def test_saturated_inputs_stay_on_the_grid(levels):
    # tanh rounds to exactly +-1 far out: the end levels, not one past them
    fsq = FSQ(levels).eval()
    x = torch.tensor([-1e4, -30.0, -9.5, 9.5, 30.0, 1e4])[None, None].expand(1, len(levels), 6)
    top = math.prod(levels) - 1  # every channel on its top level
    assert fsq(x).indices.reshape(-1).tolist() == [0, 0, 0, top, top, top]


def test_level_two_splits_at_zero_and_trains_both_codes():
    fsq = FSQ([2]).train()
    x = torch.tensor([-2.0, -0.1, 0.1, 2.0]).reshape(1, 1, 4).requires_grad_()
    out = fsq(x)
    assert out.indices.reshape(-1).tolist() == [0, 0, 1, 1]
    assert out.quantized.reshape(-1).tolist() == [-1.0, -1.0, 1.0, 1.0]
    out.quantized.sum().backward()
    assert (x.grad > 0).all()  # the straight-through gradient reaches both sides


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [8, 8, 8, 6, 5]])
def test_unit_gaussian_input_fills_the_grid(levels):
    # The benchmark normalises each channel to zero mean and unit variance before FSQ; on such input every
    # code has probability >= ~2e-5, so 2**20 vectors miss at most a handful of the 15360 codes.
    fsq = FSQ(levels).eval()
    x = torch.randn(1, len(levels), 1 << 20, generator=torch.Generator().manual_seed(0))
    used = torch.zeros(fsq.codebook_size, dtype=torch.bool)
    used[fsq(x).indices.reshape(-1)] = True
    assert used.float().mean() >= 0.99, float(used.float().mean())


def test_benchmark_code_entropy_loss_is_zero_on_a_uniform_grid_and_positive_on_a_collapsed_one():
    # The benchmark's FSQ arm adds log K - H(batch-mean soft code distribution); it must not favour any code.
    import importlib.util
    import pathlib

    pytest.importorskip("skimage")
    path = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "quantizers.py"
    spec = importlib.util.spec_from_file_location("bench_quantizers", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    q = bench.NormalizedFSQ([3, 4], entropy_weight=0.1)
    fsq = FSQ([3, 4]).eval()
    codes = fsq.decode_indices(torch.arange(12).reshape(1, 1, 12))
    lv = torch.tensor([3.0, 4.0])[None, :, None]
    h = torch.atanh(codes * (lv - 1) / lv).repeat(1, 1, 50)  # every code's centre, equally often
    assert abs(float(q.code_entropy_loss(h))) < 0.05
    assert float(q.code_entropy_loss(torch.zeros(1, 2, 600))) > 1.0
