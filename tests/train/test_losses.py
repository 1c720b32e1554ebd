"""Losses, discriminators and the framed STFT pair behave as their definitions say."""
from __future__ import annotations

import pytest
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


def _example_speech() -> torch.Tensor:
    import soundfile as sf
    from pathlib import Path

    y, sr = sf.read(Path(__file__).parents[2] / "examples" / "speech.wav", dtype="float32")
    assert sr == 16000 and y.ndim == 1
    return torch.from_numpy(y)[None, None]


def test_intelligibility_loss_tracks_pystoi_on_real_speech():
    """The differentiable STOI agrees with pystoi (the evaluation's measure) on noisy copies of a real recording."""
    pystoi = pytest.importorskip("pystoi")
    from mediatok.train.audio.losses import IntelligibilityLoss

    y = _example_speech()
    g = torch.Generator().manual_seed(0)
    loss = IntelligibilityLoss(16000)
    ours = []
    for snr_db in (20.0, 5.0, -5.0):
        noise = torch.randn(y.shape, generator=g)
        x = y + noise * (y.square().mean() / 10 ** (snr_db / 10)).sqrt()
        ours.append(float(loss.score(x, y)))
        reference = pystoi.stoi(y[0, 0].numpy(), x[0, 0].numpy(), 16000)
        assert abs(ours[-1] - reference) < 0.04, (snr_db, ours[-1], reference)
    assert ours[0] > ours[1] > ours[2]
    assert float(loss(y, y)) < 1e-4


def test_intelligibility_loss_gradient_raises_the_score():
    from mediatok.train.audio.losses import IntelligibilityLoss

    y = _example_speech()[..., :16000]
    g = torch.Generator().manual_seed(1)
    x = (y + 0.3 * y.abs().max() * torch.randn(y.shape, generator=g)).requires_grad_(True)
    loss = IntelligibilityLoss(16000)
    opt = torch.optim.Adam([x], lr=1e-3)
    with torch.no_grad():
        first = float(loss(x, y))
    for _ in range(20):
        opt.zero_grad()
        value = loss(x, y)
        value.backward()
        assert torch.isfinite(x.grad).all()
        opt.step()
    with torch.no_grad():
        assert float(loss(x, y)) < first - 0.02


def test_intelligibility_term_only_when_weighted_and_not_in_checkpoints():
    from types import SimpleNamespace

    from mediatok.train.audio import AudioLosses, AudioLossWeights

    y = _example_speech()[..., :16000]
    out = SimpleNamespace(reconstruction=y + 0.01 * torch.randn_like(y), commit_loss=torch.zeros(()))
    plain = AudioLosses(16000, (320,))
    assert "stoi" not in plain(y, out)
    weighted = AudioLosses(16000, (320,), weights=AudioLossWeights(stoi=0.5))
    terms = weighted(y, out)
    assert 0 < float(terms["stoi"]) < 0.2
    assert set(plain.state_dict()) == set(weighted.state_dict())  # old checkpoints load into runs with the term
    with pytest.raises(ValueError, match="at least 30 frames"):
        weighted(y[..., :4000], SimpleNamespace(reconstruction=y[..., :4000], commit_loss=torch.zeros(())))
