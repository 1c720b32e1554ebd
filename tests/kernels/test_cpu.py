"""CPU nearest-codeword search against a float64 oracle: random and adversarial inputs, ties, NaN policy."""
from __future__ import annotations

import math
import threading

import pytest
import torch

from mediatok.kernels import codebook_sq_norms, cpu, nearest_codeword
from mediatok.kernels.cpu import nearest_codeword_cpu

# Small tiles force several row and code tiles, partial ones included, on small inputs.
TINY_TILE = (7, 5)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("n,d,k", [(200, 8, 300), (300, 64, 1100), (129, 3, 2049), (64, 1, 50), (50, 17, 1), (33, 256, 40)])
def test_random_matches_oracle(n, d, k, check_exact):
    g = _gen(n + d + k)
    x, c = torch.randn(n, d, generator=g), torch.randn(k, d, generator=g)
    idx, dist = nearest_codeword(x, c)
    check_exact(x, c, idx, dist)
    oracle = torch.cdist(x.double(), c.double()).argmin(1)
    assert (idx == oracle).float().mean() >= 0.99


@pytest.mark.parametrize("tile", [TINY_TILE, (1, 1), (64, 3)])
def test_tiled_matches_oracle(tile, check_exact):
    g = _gen(1)
    x, c = torch.randn(45, 6, generator=g), torch.randn(23, 6, generator=g)
    idx, dist = nearest_codeword_cpu(x, c, tile=tile)
    check_exact(x, c, idx, dist)
    assert torch.equal(idx, nearest_codeword(x, c)[0])


def test_torch_update_fallback_without_numba(monkeypatch, check_exact):
    g = _gen(2)
    x, c = torch.randn(40, 5, generator=g), torch.randn(31, 5, generator=g)
    c[20] = c[3]  # a tie across code tiles
    fast = nearest_codeword_cpu(x, c, tile=TINY_TILE)
    monkeypatch.setattr(cpu, "njit", None)
    slow = nearest_codeword_cpu(x, c, tile=TINY_TILE)
    check_exact(x, c, *slow)
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])


@pytest.mark.parametrize("tile", [None, TINY_TILE])
def test_duplicate_codewords_pick_lowest_index(tile):
    g = _gen(3)
    base = torch.randn(9, 4, generator=g)
    c = torch.cat([base, base, base])  # (27, 4): copies 9 and 18 apart, across tiles for TINY_TILE
    x = base[torch.randint(0, 9, (50,), generator=g)] + 0.01 * torch.randn(50, 4, generator=g)
    idx, _ = nearest_codeword_cpu(x, c, tile=tile)
    assert (idx < 9).all(), idx


def test_exact_ties_pick_lowest_index():
    # x = 0 is at distance 1 of +-e_i; x = 0.5 is halfway between 0 and 1: exact ties in float32 arithmetic
    c = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    idx, dist = nearest_codeword(torch.zeros(3, 2), c)
    assert idx.tolist() == [1, 1, 1] and dist.tolist() == [1.0, 1.0, 1.0]
    idx, _ = nearest_codeword(torch.tensor([[0.5]]), torch.tensor([[3.0], [1.0], [0.0]]))
    assert idx.tolist() == [1]
    idx, _ = nearest_codeword_cpu(torch.tensor([[0.5]]), torch.tensor([[3.0], [1.0], [0.0]]), tile=(1, 1))
    assert idx.tolist() == [1]


def test_huge_norms_and_close_codewords(check_exact):
    # Cancellation stress: ||x||^2 ~ 1e10 while neighbours differ by ~1; sq_dist must still be exact (direct form)
    g = _gen(4)
    c = 1e4 + torch.randn(500, 16, generator=g)
    x = c[torch.randint(0, 500, (100,), generator=g)] + 0.1 * torch.randn(100, 16, generator=g)
    idx, dist = nearest_codeword(x, c)
    check_exact(x, c, idx, dist)
    assert dist.max() < 1.0  # the expansion alone would be off by ~1e10 * 6e-8 = 600


def test_far_from_origin_and_overflowing_norms():
    # ||c||^2 ~ 1e37 next to ||c||^2 = 2: centring at the codebook mean keeps every score well inside float32
    c = torch.tensor([[3e18, 0.0], [1.0, 1.0]])
    x = torch.tensor([[1.0, 1.0], [2e18, 0.0]])
    idx, dist = nearest_codeword(x, c)
    assert idx.tolist() == [1, 0] and dist[0] == 0.0 and math.isclose(dist[1].item(), 1e36, rel_tol=1e-5)
    # caller-supplied norms are used as given (no centring): an overflowing ||c||^2 makes c0 never chosen
    c[0, 0] = 3e19
    idx, dist = nearest_codeword(x[:1], c, codebook_sq_norms=c.pow(2).sum(1))
    assert idx.tolist() == [1] and dist.tolist() == [0.0]


def test_nan_policy():
    g = _gen(5)
    x, c = torch.randn(6, 3, generator=g), torch.randn(8, 3, generator=g)
    c[2, 1] = math.nan
    c[5, 0] = math.inf
    x[1, 2] = math.nan
    x[4, 0] = -math.inf
    idx, dist = nearest_codeword(x, c)
    for row in (1, 4):
        assert idx[row] == 0 and dist[row] == math.inf
    ok = [0, 2, 3, 5]
    good = torch.tensor([0, 1, 3, 4, 6, 7])
    ref_idx, ref_dist = nearest_codeword(x[ok], c[good])
    assert torch.equal(idx[ok], good[ref_idx]) and torch.allclose(dist[ok], ref_dist)
    idx, dist = nearest_codeword(x, torch.full((4, 3), math.nan))
    assert (idx == 0).all() and (dist == math.inf).all()


def test_edge_shapes(check_exact):
    g = _gen(6)
    idx, dist = nearest_codeword(torch.empty(0, 4), torch.randn(3, 4, generator=g))
    assert idx.shape == (0,) and idx.dtype == torch.int64 and dist.dtype == torch.float32
    x = torch.randn(20, 4, generator=g)
    idx, dist = nearest_codeword(x, torch.randn(1, 4, generator=g))
    assert (idx == 0).all()
    x1, c1 = torch.randn(30, 1, generator=g), torch.randn(7, 1, generator=g)
    check_exact(x1, c1, *nearest_codeword(x1, c1))


def test_non_contiguous_and_half_inputs(check_exact):
    g = _gen(7)
    x = torch.randn(40, 24, generator=g)[:, ::2]  # (40, 12) strided
    c = torch.randn(12, 30, generator=g).t()  # (30, 12) transposed
    check_exact(x, c, *nearest_codeword(x, c))
    for dtype in (torch.float16, torch.bfloat16):
        xh, ch = x.to(dtype), c.to(dtype)
        check_exact(xh, ch, *nearest_codeword(xh, ch))


def test_requires_grad_and_norm_cache(check_exact):
    g = _gen(8)
    x = torch.randn(25, 8, generator=g, requires_grad=True)
    c = torch.nn.Parameter(torch.randn(40, 8, generator=g))
    norms = codebook_sq_norms(c)
    idx, dist = nearest_codeword(x, c, codebook_sq_norms=norms)
    assert not dist.requires_grad
    check_exact(x, c, idx, dist)
    assert torch.equal(idx, nearest_codeword(x, c)[0])


def test_cosine_metric(check_exact):
    g = _gen(9)
    x, c = torch.randn(30, 5, generator=g) * 7, torch.randn(20, 5, generator=g) * 0.1
    idx, dist = nearest_codeword(x, c, metric="cosine")
    xn, cn = torch.nn.functional.normalize(x, dim=1), torch.nn.functional.normalize(c, dim=1)
    check_exact(xn, cn, idx, dist)
    assert torch.equal(idx, (xn @ cn.t()).argmax(1))


def test_buffer_is_bounded():
    for n, k, d in [(10**7, 10**6, 64), (1, 10**6, 8), (10**6, 1, 256), (10**6, 10**6, 4)]:
        tn, tk = cpu._tile_shape(n, k, d, 64 << 20)
        assert tn * tk * 4 <= 4 << 20
    tn, tk = cpu._tile_shape(10**6, 10**6, 64, 1 << 16)
    assert tn * tk * 4 <= 1 << 16


@pytest.mark.parametrize(
    "x,c,kwargs,match",
    [
        (torch.zeros(3), torch.zeros(2, 3), {}, "expected x"),
        (torch.zeros(3, 4), torch.zeros(2, 3), {}, "dimension"),
        (torch.zeros(3, 4), torch.zeros(0, 4), {}, "empty"),
        (torch.zeros(3, 4), torch.zeros(2, 4), {"metric": "l1"}, "metric"),
        (torch.zeros(3, 4, dtype=torch.long), torch.zeros(2, 4), {}, "floating"),
        (torch.zeros(3, 4), torch.zeros(2, 4), {"codebook_sq_norms": torch.zeros(3)}, "codebook_sq_norms"),
    ],
)
def test_bad_input_raises(x, c, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nearest_codeword(x, c, **kwargs)


def test_worker_threads_match_single_thread(monkeypatch, check_exact):
    # The row-tile workers (one per torch thread) normally start only on large searches: force them.
    g = _gen(10)
    x, c = torch.randn(301, 12, generator=g), torch.randn(70, 12, generator=g)
    c[50] = c[2]
    single = nearest_codeword_cpu(x, c, tile=(64, 32))
    monkeypatch.setattr(cpu, "_PARALLEL_WORK", 0)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        multi = nearest_codeword_cpu(x, c, tile=(64, 32))  # 5 row tiles, the last one overlapping
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    check_exact(x, c, *multi)
    assert torch.equal(single[0], multi[0]) and torch.equal(single[1], multi[1])


@pytest.fixture
def fused_calls(monkeypatch) -> list[int]:
    """Counts calls of the fused small-D kernel, so a test knows which path it exercised."""
    calls: list[int] = []
    kernel = cpu._fused_small_d

    def counted(*args):
        calls.append(args[0].shape[0])
        return kernel(*args)

    monkeypatch.setattr(cpu, "_fused_small_d", counted)
    return calls


@pytest.mark.parametrize("n,d,k", [(300, 1, 70), (257, 3, 1300), (500, 8, 1025), (128, 16, 600), (64, 5, 1)])
def test_fused_small_d_matches_gemm_path(n, d, k, fused_calls, monkeypatch, check_exact):
    g = _gen(20 + d)
    x, c = torch.randn(n, d, generator=g), torch.randn(k, d, generator=g)
    fused = nearest_codeword_cpu(x, c)
    assert fused_calls, "the fused kernel was not used for D <= 16"
    check_exact(x, c, *fused)
    monkeypatch.setattr(cpu, "_SMALL_D", 0)  # every D now takes the tiled GEMM path
    gemm = nearest_codeword_cpu(x, c)
    assert torch.equal(fused[0], gemm[0])
    torch.testing.assert_close(fused[1], gemm[1], rtol=0, atol=0)


def test_fused_small_d_duplicates_across_blocks_and_far_codebook(fused_calls, check_exact):
    g = _gen(21)
    base = torch.randn(300, 8, generator=g)
    c = torch.cat([base, base, base, base])  # copies 300 apart: across the 512-code blocks
    x = base[torch.randint(0, 300, (400,), generator=g)] + 0.01 * torch.randn(400, 8, generator=g)
    idx, dist = nearest_codeword_cpu(x, c)
    assert (idx < 300).all() and fused_calls
    check_exact(x, c, idx, dist)
    far = c + 1000.0  # searched centred at the mean: the fused tables hold shifted codes
    idx_far, _ = nearest_codeword_cpu(x + 1000.0, far)
    assert (idx_far < 300).all()
    check_exact(x + 1000.0, far, idx_far, nearest_codeword_cpu(x + 1000.0, far)[1])


def test_fused_small_d_leaves_non_finite_tiles_to_the_policy(fused_calls, check_exact):
    g = _gen(22)
    x, c = torch.randn(9000, 4, generator=g), torch.randn(700, 4, generator=g)
    x[8500, 2] = math.nan  # only the last row tile (rows 4904-8999) is not finite: GEMM path, NaN policy
    idx, dist = nearest_codeword_cpu(x, c)
    assert len(fused_calls) == 2, fused_calls
    assert idx[8500] == 0 and dist[8500] == math.inf
    keep = torch.ones(9000, dtype=torch.bool)
    keep[8500] = False
    check_exact(x[keep], c, idx[keep], dist[keep])


def test_worker_threads_under_inference_mode(monkeypatch, check_exact):
    # Inference mode is thread-local: the row-tile workers must write the caller's inference tensors.
    g = _gen(23)
    x, c = torch.randn(300, 24, generator=g), torch.randn(90, 24, generator=g)
    monkeypatch.setattr(cpu, "_PARALLEL_WORK", 0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.inference_mode():
            idx, dist = nearest_codeword_cpu(x, c, tile=(64, 32))
    finally:
        torch.set_num_threads(before)
    check_exact(x, c, idx, dist)


@pytest.mark.parametrize("d", [8, 24], ids=["fused-workers", "gemm"])
def test_concurrent_callers_leave_the_thread_setting_alone(d, monkeypatch):
    # torch gives a thread its intra-op thread count when the thread first uses torch, from the process-wide
    # setting: a search that lowered that setting while it ran left threads started meanwhile (another
    # caller, a data loader) at 1 for good. Two callers run at once while fresh threads keep starting; all
    # must see the setting unchanged, and each caller gets the single caller's result bit for bit.
    g = _gen(30 + d)
    cases = [(torch.randn(3000, d, generator=g), torch.randn(900, d, generator=g)) for _ in range(2)]
    monkeypatch.setattr(cpu, "_PARALLEL_WORK", 0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        expected = [nearest_codeword_cpu(x, c) for x, c in cases]
        results: dict[int, list] = {0: [], 1: []}
        seen: list[int] = []
        done = threading.Event()

        def call(i: int) -> None:
            for _ in range(6):
                results[i].append(nearest_codeword_cpu(*cases[i]))
                seen.append(torch.get_num_threads())

        def spawn_observers() -> None:
            while not done.is_set():
                t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
                t.start()
                t.join()

        spawner = threading.Thread(target=spawn_observers)
        spawner.start()
        callers = [threading.Thread(target=call, args=(i,)) for i in range(2)]
        for t in callers:
            t.start()
        for t in callers:
            t.join()
        done.set()
        spawner.join()
        assert torch.get_num_threads() == 2
        assert len(seen) > 12 and set(seen) == {2}, sorted(set(seen))
    finally:
        torch.set_num_threads(before)
    for i in range(2):
        assert len(results[i]) == 6
        for idx, dist in results[i]:
            assert torch.equal(idx, expected[i][0]) and torch.equal(dist, expected[i][1])
