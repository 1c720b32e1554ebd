"""Losses, discriminators and the framed STFT pair behave as their definitions say."""
from __future__ import annotations

import torch

from mediatok.codecs.blocks import FramedISTFT, FramedSTFT
from mediatok.train.audio import MultiDiscriminator, MultiResolutionSTFTLoss, MultiScaleMelLoss
from mediatok.train.gan import discriminator_loss, generator_losses


def _voiced(seconds: float = 0.5, f0: float = 150.0, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    return (0.1 * sum(torch.sin(2 * torch.pi * k * f0 * t) / k for k in range(1, 8)))[None, None].float()


def test_framed_stft_istft_reconstruct_exactly():
    torch.manual_seed(0)
    x = torch.randn(2, 160 * 40)
    stft, istft = FramedSTFT(640, 160), FramedISTFT(640, 160)
    spec = stft(x)
    assert spec.shape == (2, 321, 40)
    torch.testing.assert_close(istft(spec), x, atol=1e-5, rtol=1e-4)


def test_losses_vanish_on_identical_signals_and_grow_with_distortion():
    x = _voiced()
    mel, stft = MultiScaleMelLoss(16000), MultiResolutionSTFTLoss((320, 1024))
    assert mel(x, x) < 1e-6
    mag, phase = stft(x, x)
    # The phase terms use z / sqrt(|z|^2 + floor): identical inputs give 1 - |u|^4, small but not zero.
    assert mag < 1e-5 and phase < 0.02
    noisy = x + 0.02 * torch.randn_like(x)
    assert mel(noisy, x) > mel(x + 0.002 * torch.randn_like(x), x) > 0


def test_phase_loss_sees_phase_that_magnitude_losses_miss():
    """Same magnitudes, scrambled phase: the magnitude-only loss is small, the phase loss is large."""
    x = _voiced(1.0)
    stft, istft = FramedSTFT(1024, 256), FramedISTFT(1024, 256)
    spec = stft(x[:, 0, : 256 * 62])
    torch.manual_seed(0)
    scrambled = istft(torch.polar(spec.abs(), 2 * torch.pi * torch.rand(spec.shape)))[:, None]
    ref = x[..., : 256 * 62]
    loss = MultiResolutionSTFTLoss((1024,))
    _, phase_same = loss(ref, ref)
    _, phase_scrambled = loss(scrambled, ref)
    assert phase_scrambled > 0.5 > 0.02 > phase_same


def test_discriminator_losses_have_the_least_squares_optimum():
    torch.manual_seed(0)
    disc = MultiDiscriminator(periods=(2, 3), resolutions=(256,), channels=4)
    x = _voiced(0.25)
    real, fake = disc(x), disc(x + 0.1 * torch.randn_like(x))
    assert len(real) == 3 and all(len(f) == 4 for _, f in real)
    d = discriminator_loss(real, fake)
    adv, fm = generator_losses(real, disc(x))
    assert d > 0 and adv >= 0 and fm < 1e-6  # identical input: features match exactly
