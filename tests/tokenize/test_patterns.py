"""Flattening patterns: the documented layouts, exact inverses, and refusal of malformed sequences."""
from __future__ import annotations

import math

import pytest
import torch

from mediatok.tokenize import PATTERNS, get_pattern


def test_documented_layouts():
    codes = torch.tensor([[1, 2], [3, 4], [5, 6]])  # (Q=3, T=2), K=10
    assert get_pattern("flat", 3, 10).apply(codes).tolist() == [1, 13, 25, 2, 14, 26]
    assert get_pattern("delay", 3, 10).apply(codes).tolist() == [[1, 2, 10, 10], [10, 3, 4, 10], [10, 10, 5, 6]]
    assert torch.equal(get_pattern("parallel", 3, 10).apply(codes), codes)
    assert [get_pattern(p, 3, 10).vocab_size for p in PATTERNS] == [30, 11, 10]
    assert get_pattern("delay", 3, 10).pad_id == 10 and get_pattern("flat", 3, 10).pad_id is None


@pytest.mark.parametrize("name", PATTERNS)
@pytest.mark.parametrize("shape", [(4, 0), (4, 1), (4, 37), (2, 3, 4, 9)])
def test_exact_inverse(name: str, shape: tuple[int, ...]):
    codes = torch.randint(0, 1024, shape, generator=torch.Generator().manual_seed(0))
    p = get_pattern(name, 4, 1024)
    seq = p.apply(codes)
    assert seq.numel() == 0 or (0 <= int(seq.min()) and int(seq.max()) < p.vocab_size)
    assert torch.equal(p.invert(seq), codes)
    assert torch.equal(p.invert(seq.to(torch.int32)), codes)  # uint16 shards read back as any integer dtype


@pytest.mark.parametrize("name", PATTERNS)
def test_single_codebook_is_plain(name: str):
    codes = torch.randint(0, 7, (1, 5))
    assert torch.equal(get_pattern(name, 1, 7).apply(codes).reshape(-1), codes.reshape(-1))


def test_bad_input_is_refused():
    flat, delay, par = (get_pattern(n, 2, 8) for n in PATTERNS)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, frames\)"):
        par.apply(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        flat.apply(torch.full((2, 3), 8))
    with pytest.raises(ValueError, match="integer"):
        delay.apply(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="divisible by 2"):
        flat.invert(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="out of place"):
        flat.invert(torch.tensor([9, 1]))  # codebook-1 id where codebook 0 belongs
    seq = delay.apply(torch.tensor([[1, 2], [3, 4]]))
    seq[1, 0] = 5  # a code where the pad belongs
    with pytest.raises(ValueError, match="pad id 8"):
        delay.invert(seq)
    with pytest.raises(ValueError, match="pattern must be one of"):
        get_pattern("zigzag", 2, 8)


def test_image_grid_is_read_in_raster_order():
    codes = torch.tensor([[[1, 2], [3, 4]], [[5, 6], [7, 8]]])  # (Q=2, h=2, w=2), K=10: row 0 then row 1
    flat = get_pattern("flat", 2, 10)
    assert flat.apply(codes, grid_ndim=2).tolist() == [1, 15, 2, 16, 3, 17, 4, 18]
    delay = get_pattern("delay", 2, 10)
    assert delay.apply(codes, grid_ndim=2).tolist() == [[1, 2, 3, 4, 10], [10, 5, 6, 7, 8]]
    assert torch.equal(flat.invert(flat.apply(codes, grid_ndim=2), grid=(2, 2)), codes)


@pytest.mark.parametrize("name", PATTERNS)
@pytest.mark.parametrize(("shape", "grid_ndim"), [
    ((4, 3, 5), 2), ((4, 1, 1), 2), ((4, 0, 3), 2),  # images (Q, h, w)
    ((4, 2, 3, 4), 3), ((4, 1, 2, 1), 3),            # volumes (Q, d, h, w)
    ((2, 4, 3, 5), 2),                               # a batch of images (B, Q, h, w)
])
def test_grids_2d_and_3d_invert_exactly(name: str, shape: tuple[int, ...], grid_ndim: int):
    codes = torch.randint(0, 100, shape, generator=torch.Generator().manual_seed(1))
    p = get_pattern(name, 4, 100)
    seq = p.apply(codes, grid_ndim=grid_ndim)
    grid = shape[-grid_ndim:]
    lead = shape[: len(shape) - grid_ndim]
    assert torch.equal(seq, p.apply(codes.reshape(*lead, math.prod(grid))))  # the pattern over raster positions
    assert torch.equal(p.invert(seq, grid=grid), codes)
    assert p.invert(seq).shape == (*lead, math.prod(grid))  # without the grid: positions in raster order


def test_grid_errors_name_the_layout():
    p = get_pattern("flat", 2, 8)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, h, w\)"):
        p.apply(torch.zeros(3, 4, 4, dtype=torch.long), grid_ndim=2)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, d, h, w\)"):
        p.apply(torch.zeros(2, 4, 4, dtype=torch.long), grid_ndim=3)
    with pytest.raises(ValueError, match=r"grid \(3, 3\) does not hold the 8 positions"):
        p.invert(p.apply(torch.zeros(2, 2, 4, dtype=torch.long), grid_ndim=2), grid=(3, 3))
