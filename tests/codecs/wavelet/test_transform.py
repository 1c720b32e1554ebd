"""CDF 9/7 transforms: perfect reconstruction on any size, pywt's bior4.4 exactly, and the three forward paths
(lifting, convolution, numba) computing one linear map."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mediatok.codecs.wavelet.transform import (analysis_filters, dwt, idwt, ipacket1d, ipacket2d, packet1d, packet2d,
                                               packet2d_numpy)


@pytest.mark.parametrize("n", [1, 2, 7, 64, 101])
def test_dwt_inverts_any_length(n):
    x = torch.randn(3, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    low, high = dwt(x)
    assert low.shape == high.shape == (3, (n + 1) // 2)
    assert torch.allclose(idwt(low, high, length=n), x, atol=1e-12)


@pytest.mark.parametrize("shape,levels", [((2, 3, 37, 53), 3), ((1, 1, 8, 8), 3), ((1, 2, 5, 1), 2), ((1, 3, 64, 48), 1)])
def test_packet2d_perfect_reconstruction(shape, levels):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    z, record = packet2d(x, levels)
    assert z.shape[:2] == (shape[0], shape[1] * 4**levels)
    assert torch.allclose(ipacket2d(z, record), x, atol=1e-12)


@pytest.mark.parametrize("length,levels", [(1001, 4), (16000, 5), (3, 2)])
def test_packet1d_perfect_reconstruction(length, levels):
    x = torch.randn(2, 1, length, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z, record = packet1d(x, levels)
    assert z.shape[1] == 2**levels
    assert torch.allclose(ipacket1d(z, record), x, atol=1e-12)


def test_even_sizes_need_no_record():
    x = torch.randn(1, 3, 32, 24, dtype=torch.float64)
    assert torch.allclose(ipacket2d(packet2d(x, 3)[0], levels=3), x, atol=1e-12)


def test_matches_pywt_bior44_periodization():
    pywt = pytest.importorskip("pywt")
    rng = np.random.default_rng(0)
    v = rng.standard_normal(64)
    a, d = pywt.dwt(v, "bior4.4", mode="periodization")
    low, high = dwt(torch.from_numpy(v))
    np.testing.assert_allclose(low.numpy(), a, atol=1e-9)
    np.testing.assert_allclose(high.numpy(), d, atol=1e-9)
    img = rng.standard_normal((32, 48))
    ca, (ch, cv, cd) = pywt.dwt2(img, "bior4.4", mode="periodization")
    z = packet2d(torch.from_numpy(img)[None, None], 1)[0][0]
    for got, want in zip(z, (ca, ch, cv, cd)):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-9)


def test_constant_goes_to_the_low_band_with_orthonormal_gain():
    low, high = dwt(torch.ones(1, 16, dtype=torch.float64))
    assert torch.allclose(low, torch.full_like(low, 2**0.5)) and high.abs().max() < 1e-12


def test_filters_are_cdf97_lengths():
    taps = analysis_filters(torch.float64)
    assert taps.shape == (2, 9)
    assert (taps[0] != 0).sum() == 9 and (taps[1] != 0).sum() == 7  # 9-tap low pass, 7-tap high pass
    assert torch.isclose(taps[0].sum(), torch.tensor(2**0.5, dtype=torch.float64))


def test_numba_path_equals_convolution_path():
    x = torch.rand(3, 96, 64, generator=torch.Generator().manual_seed(3))
    ref = packet2d(x[None], 3)[0][0]
    fast = packet2d_numpy(x.numpy(), 3)
    assert fast.shape == tuple(ref.shape)
    np.testing.assert_allclose(fast, ref.numpy(), atol=2e-5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="packet2d expects"):
        packet2d(torch.zeros(3, 8, 8), 1)
    with pytest.raises(ValueError, match="levels"):
        packet1d(torch.zeros(1, 1, 8), -1)
    with pytest.raises(TypeError, match="float"):
        dwt(torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        packet2d_numpy(np.zeros((3, 12, 16), np.float32), 3)
    with pytest.raises(ValueError, match="C \\* 64"):
        ipacket2d(torch.zeros(1, 10, 2, 2), levels=3)
