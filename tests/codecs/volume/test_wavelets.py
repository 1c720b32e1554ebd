"""The 3-D DWT reconstructs perfectly (any wavelet, odd sizes) and the tree packing is a re-arrangement."""
from __future__ import annotations

import pytest
import torch

from mediatok.codecs.volume.wavelets import dwt3, idwt3, pack_tree, tree_channels, unpack_tree


@pytest.mark.parametrize("wavelet", ["haar", "db2", "bior2.2"])
@pytest.mark.parametrize("shape", [(2, 16, 16, 16), (1, 7, 10, 13), (1, 5, 5, 5), (1, 1, 2, 3)])
def test_perfect_reconstruction(wavelet, shape):
    if wavelet != "haar":
        pytest.importorskip("pywt")
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    c = dwt3(x, wavelet, levels=2)
    assert torch.allclose(idwt3(c, wavelet), x, atol=1e-10)


def test_haar_is_orthonormal_and_coarse_is_a_scaled_mean():
    x = torch.randn(2, 8, 8, 8, dtype=torch.float64)
    c = dwt3(x, "haar", levels=1)
    energy = c.coarse.square().sum() + c.details[0].square().sum()
    assert torch.allclose(energy, x.square().sum())
    means = x.reshape(2, 4, 2, 4, 2, 4, 2).mean(dim=(2, 4, 6))  # (2, 4, 4, 4) 2x2x2 block means
    assert torch.allclose(c.coarse, means * 2**1.5)


def test_tree_packing_is_lossless_with_every_level_and_drops_fine_details_otherwise():
    x = torch.randn(1, 32, 32, 32, dtype=torch.float64)
    c = dwt3(x, "haar", levels=3)
    packed = pack_tree(c, keep=3)
    assert packed.shape == (1, tree_channels(3), 4, 4, 4) == (1, 512, 4, 4, 4)
    assert torch.allclose(idwt3(unpack_tree(packed, c, keep=3)), x, atol=1e-10)
    coarse_only = unpack_tree(pack_tree(c, keep=1), c, keep=1)
    assert torch.equal(coarse_only.details[0], c.details[0])  # the coarsest details are kept
    assert not coarse_only.details[1].any() and not coarse_only.details[2].any()
    # dropping details costs exactly their energy (orthonormal transform)
    err = (idwt3(coarse_only) - x).square().sum()
    assert torch.allclose(err, c.details[1].square().sum() + c.details[2].square().sum())


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="levels"):
        dwt3(torch.zeros(1, 4, 4, 4), levels=0)
    with pytest.raises(ValueError, match=r"volumes \(B, D, H, W\)"):
        dwt3(torch.zeros(4, 4, 4))
    with pytest.raises(ValueError, match="keep"):
        pack_tree(dwt3(torch.zeros(1, 8, 8, 8), levels=1), keep=2)
