"""MarkovPrior.fit counts sparsely: same tables as the dense K x K computation, memory linear in tokens."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from mediatok.entropy import MarkovPrior, quantize_pmf


def _dense_reference(clips: list[np.ndarray], k: int, num_classes: int, smoothing: float = 0.1,
                     iterations: int = 20, precision: int = 16) -> tuple[np.ndarray, torch.Tensor]:
    """The fit as it was (one codebook, dense (K+1, K) counts and dense KL k-means): (rows, cdf)."""
    counts = np.zeros((k + 1, k))  # (previous symbol or start, symbol)
    for c in clips:
        if c.shape[1]:
            np.add.at(counts, (np.concatenate([[k], c[0, :-1]]), c[0]), 1.0)
    num_classes = min(num_classes, k + 1)
    order = np.argsort(-counts.sum(1), kind="stable")
    seeds = counts[order[:num_classes]]
    logp = np.log((seeds + 0.5) / (seeds + 0.5).sum(1, keepdims=True))
    label = np.full(k + 1, -1)
    for _ in range(iterations):
        new = (counts @ logp.T).argmax(1)
        if np.array_equal(new, label):
            break
        label = new
        pooled = np.zeros((num_classes, k))
        np.add.at(pooled, label, counts)
        logp = np.log((pooled + 0.5) / (pooled + 0.5).sum(1, keepdims=True))
    _, label = np.unique(label, return_inverse=True)
    pooled = np.zeros((int(label.max()) + 1, k))
    np.add.at(pooled, label.reshape(-1), counts)
    return label.reshape(-1), quantize_pmf(torch.from_numpy(pooled + smoothing), precision)


@pytest.mark.parametrize("k, classes, seed", [(16, 4, 0), (64, 16, 1), (200, 32, 2), (50, 51, 3)])
def test_sparse_fit_equals_the_dense_reference(k: int, classes: int, seed: int) -> None:
    g = np.random.default_rng(seed)
    clips = []
    for n in g.integers(0, 300, size=12):  # sticky walks plus some jumps; an empty clip too
        steps = np.where(g.random(n) < 0.1, g.integers(0, k, n), g.integers(-2, 3, n))
        clips.append(((g.integers(0, k) + np.cumsum(steps)) % k).reshape(1, -1))
    clips.append(np.zeros((1, 0), np.int64))
    prior = MarkovPrior.fit([torch.from_numpy(c) for c in clips], k, num_classes=classes)
    rows, cdf = _dense_reference(clips, k, classes)
    assert np.array_equal(prior.rows[0].numpy(), rows)
    assert torch.equal(prior.cdf, cdf)


def test_fit_with_a_100k_codebook_stays_small() -> None:
    """K = 100_000 on 200k tokens: dense counts would need 80 GB; the fit must stay well under 1 GB."""
    script = textwrap.dedent("""
        import resource, numpy as np, torch
        from mediatok.entropy import MarkovPrior
        g = np.random.default_rng(0)
        k = 100_000
        clips = [torch.from_numpy(((g.integers(0, k) + np.cumsum(g.integers(-40, 41, (2, 5_000)), 1)) % k))
                 for _ in range(20)]  # (2, 5000) each: 200k tokens in all
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        prior = MarkovPrior.fit(clips, k, num_classes=8, precision=20)  # 2^20 slots hold 100k codes
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        test = clips[0][:, :500]
        assert torch.equal(prior.decode(prior.encode(test), tuple(test.shape)), test)
        assert prior.bits(test) < test.numel() * np.log2(k), prior.bits(test)
        print(grown // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    grown_mib = int(out.stdout.split()[-1])
    assert grown_mib < 600, f"fit grew the process by {grown_mib} MiB"
    print(f"K = 100k fit grew the process by {grown_mib} MiB")
