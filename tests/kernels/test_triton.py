"""Triton nearest-codeword kernel under TRITON_INTERPRET=1 (CPU) against the float64 oracle; GPU tests skip.

The interpreter must be chosen before ``triton.language`` is first imported. On a machine without CUDA, when
nothing has imported triton yet, this module sets TRITON_INTERPRET=1 for the session (there is no compiled
Triton without a GPU anyway) and runs the kernel in process; otherwise (a GPU machine, or triton already
imported by another test) one test reruns this file in a subprocess with the variable set.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch

_IN_PROCESS = os.environ.get("TRITON_INTERPRET") == "1" or (
    "triton" not in sys.modules and not torch.cuda.is_available()
)
if _IN_PROCESS:
    os.environ["TRITON_INTERPRET"] = "1"

pytest.importorskip("triton")

from mediatok.kernels import nearest_codeword

interpreted = pytest.mark.skipif(not _IN_PROCESS, reason="runs in the subprocess of test_interpreter_subprocess")


@pytest.fixture(scope="module")
def tnn():
    from mediatok.kernels import triton_nn

    assert triton_nn.INTERPRET, "triton_nn was imported before TRITON_INTERPRET=1 was set"
    return triton_nn


@pytest.mark.skipif(_IN_PROCESS, reason="the interpreter tests run in this process")
def test_interpreter_subprocess(tmp_path):
    env = dict(os.environ, TRITON_INTERPRET="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "not gpu"]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@interpreted
@pytest.mark.parametrize(
    "n,d,k,dtype,splits",
    [
        (50, 20, 37, torch.float32, 1),  # partial tiles in every dimension, D across two BLOCK_D chunks
        (33, 5, 70, torch.float32, 3),  # split-K, D below BLOCK_D
        (20, 40, 45, torch.float16, 1),
        (20, 24, 45, torch.bfloat16, 2),
        (17, 1, 19, torch.float32, 1),  # D = 1
        (9, 8, 1, torch.float32, 1),  # K = 1
    ],
)
def test_matches_oracle(tnn, check_exact, n, d, k, dtype, splits):
    g = _gen(n * k + d)
    x, c = torch.randn(n, d, generator=g).to(dtype), torch.randn(k, d, generator=g).to(dtype)
    idx, dist = tnn.nearest_codeword_triton(x, c, splits=splits)
    check_exact(x, c, idx, dist)
    cpu_idx, _ = nearest_codeword(x, c)
    assert (idx == cpu_idx).float().mean() >= 0.95


@interpreted
@pytest.mark.parametrize("splits", [1, 4])
def test_duplicates_and_exact_ties(tnn, splits):
    g = _gen(1)
    base = torch.randn(9, 4, generator=g)
    c = torch.cat([base, base, base])  # copies 9 and 18 apart: in other code tiles (BLOCK_K = 16) and splits
    x = base[torch.randint(0, 9, (30,), generator=g)] + 0.01 * torch.randn(30, 4, generator=g)
    idx, _ = tnn.nearest_codeword_triton(x, c, splits=splits)
    assert (idx < 9).all(), idx
    c = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    idx, dist = tnn.nearest_codeword_triton(torch.zeros(3, 2), c, splits=splits)
    assert idx.tolist() == [1, 1, 1] and dist.tolist() == [1.0, 1.0, 1.0]


@interpreted
def test_huge_norms_and_non_contiguous(tnn, check_exact):
    g = _gen(2)
    c = 1e4 + torch.randn(40, 16, generator=g)
    x = c[torch.randint(0, 40, (20,), generator=g)] + 0.1 * torch.randn(20, 16, generator=g)
    idx, dist = tnn.nearest_codeword_triton(x, c)
    check_exact(x, c, idx, dist)
    assert dist.max() < 1.0
    xs = torch.randn(20, 32, generator=g)[:, ::2]
    cs = torch.randn(16, 30, generator=g).t()
    check_exact(xs, cs, *tnn.nearest_codeword_triton(xs, cs))


@interpreted
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # numpy inside the interpreter
@pytest.mark.parametrize("splits", [1, 2])
def test_nan_policy_matches_cpu(tnn, splits):
    g = _gen(3)
    x, c = torch.randn(6, 3, generator=g), torch.randn(8, 3, generator=g)
    c[2, 1] = math.nan
    c[5, 0] = math.inf
    x[1, 2] = math.nan
    x[4, 0] = -math.inf
    idx, dist = tnn.nearest_codeword_triton(x, c, splits=splits)
    ref_idx, ref_dist = nearest_codeword(x, c)
    assert torch.equal(idx, ref_idx)
    assert torch.allclose(dist, ref_dist, rtol=1e-5) and dist[1] == math.inf and dist[4] == math.inf
    idx, dist = tnn.nearest_codeword_triton(x, torch.full((4, 3), math.nan), splits=splits)
    assert (idx == 0).all() and (dist == math.inf).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("n,d,k", [(4096, 64, 1024), (8, 256, 100_000), (1000, 8, 16384), (513, 33, 1000)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_gpu_matches_cpu(n, d, k, dtype):
    g = _gen(n + k)
    x, c = torch.randn(n, d, generator=g).to(dtype), torch.randn(k, d, generator=g).to(dtype)
    idx, dist = nearest_codeword(x.cuda(), c.cuda())  # dispatches to Triton (split-K for n = 8)
    assert idx.device.type == "cuda"
    cpu_idx, cpu_dist = nearest_codeword(x, c)
    xd, cd = x.double(), c.double()
    chosen = (xd - cd[idx.cpu()]).pow(2).sum(1)
    best = (xd - cd[cpu_idx]).pow(2).sum(1)
    scale = xd.pow(2).sum(1) + cd.pow(2).sum(1).max()
    assert ((chosen - best).abs() <= 64 * 1.2e-7 * scale).all()
    assert torch.allclose(dist.cpu(), cpu_dist, rtol=1e-5, atol=1e-6)
