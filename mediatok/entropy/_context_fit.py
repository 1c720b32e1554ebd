"""Fitting MarkovPrior's context classes from sparse (previous, next) counts.

Image and LC-VQ codebooks hold 16k..262k codes, where a dense K x K count table would need 2..550 GB.
Here memory is linear in the tokens seen: each codebook's pairs are counted with np.unique over
prev * K + next, and KL k-means scores contexts against C class distributions from those pairs alone.
The result equals the dense computation (same seeds, same integer counts; the likelihood sums only skip
zero terms), which tests check against a dense reference.
"""
from __future__ import annotations

import numpy as np


def pair_counts(clips: list[np.ndarray], codebook: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse counts of (previous symbol or start = k, symbol) in codebook `codebook` of every clip (contexts
    never cross clips): (context, symbol, count) arrays sorted by context, then symbol."""
    keys = [np.concatenate([[k], c[codebook, :-1]]) * k + c[codebook] for c in clips if c.shape[1]]
    if not keys:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    pairs, counts = np.unique(np.concatenate(keys), return_counts=True)  # (nnz,) sorted
    return pairs // k, pairs % k, counts.astype(np.float64)


def _log_tables(pooled: np.ndarray) -> np.ndarray:
    return np.log((pooled + 0.5) / (pooled + 0.5).sum(1, keepdims=True))  # (C, K)


def kl_kmeans(ctx: np.ndarray, sym: np.ndarray, cnt: np.ndarray, num_contexts: int, k: int, num_classes: int,
              iterations: int) -> np.ndarray:
    """Cluster the contexts (rows of the sparse count matrix) into num_classes groups, each context joining
    the group whose pooled distribution gives its counts the highest likelihood. Returns compact labels
    (num_contexts,)."""
    mass = np.bincount(ctx, weights=cnt, minlength=num_contexts)  # (R,) exact: integer-valued sums
    order = np.argsort(-mass, kind="stable")
    slot = np.full(num_contexts, -1, np.int64)
    slot[order[:num_classes]] = np.arange(min(num_classes, num_contexts))
    seeds = np.zeros((num_classes, k))  # groups start from the heaviest contexts' own distributions
    own = slot[ctx] >= 0
    seeds[slot[ctx[own]], sym[own]] = cnt[own]
    logp = _log_tables(seeds)
    rows, starts = np.unique(ctx, return_index=True)  # contexts that were seen, and where their pairs start
    label = np.full(num_contexts, -1, np.int64)
    for _ in range(iterations):
        # unseen contexts (no counts) tie everywhere and join group 0, the one seeded by the heaviest context
        scores = np.zeros((num_contexts, num_classes))
        if rows.size:
            scores[rows] = np.add.reduceat(cnt[:, None] * logp[:, sym].T, starts, axis=0)  # (seen, C)
        new = scores.argmax(1)
        if np.array_equal(new, label):
            break
        label = new
        pooled = np.zeros((num_classes, k))
        np.add.at(pooled, (label[ctx], sym), cnt)
        logp = _log_tables(pooled)
    _, compact = np.unique(label, return_inverse=True)
    return compact.reshape(-1)


def class_counts(ctx: np.ndarray, sym: np.ndarray, cnt: np.ndarray, label: np.ndarray, k: int) -> np.ndarray:
    """Pooled next-symbol counts (num_labels, K) of each context class."""
    pooled = np.zeros((int(label.max()) + 1, k))
    np.add.at(pooled, (label[ctx], sym), cnt)
    return pooled
