"""WaveletAutoencoder's start: the first training batch sets the linear maps to its principal components and fits
the entropy models to the latents they give, so training starts from the best linear code and a true rate."""
from __future__ import annotations

import numpy as np
import torch

from mediatok.codecs.image.io import read_image
from mediatok.codecs.wavelet import WaveletAutoencoder, WaveletAutoencoderConfig


def crops(n: int = 4, size: int = 64) -> torch.Tensor:
    img = read_image("examples/chelsea.png")
    out = [img[r : r + size, c : c + size] for r, c in ((0, 0), (100, 150), (200, 40), (230, 380))[:n]]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def network(latent_channels: int) -> WaveletAutoencoder:
    torch.manual_seed(0)
    cfg = WaveletAutoencoderConfig(levels=2, latent_channels=latent_channels, decoder_width=8, decoder_blocks=1,
                                   lambdas=(0.01, 0.05))
    return WaveletAutoencoder(cfg)


def test_full_rank_start_is_an_exact_linear_code():
    """With as many latents as packet coefficients, the start reconstructs its batch exactly before rounding."""
    x = crops()
    net = network(48)  # 3 colours x 4^2 packet channels
    net.init_from_packets(x)
    assert bool(net.pca_initialized)
    w = net.analysis.weight.flatten(1).double()
    assert torch.allclose(w @ w.T, torch.eye(48, dtype=torch.float64), atol=1e-4)  # orthonormal components
    with torch.no_grad():
        y = net.encode_latents(x, rate=1)
        assert torch.allclose(net.decode_latents(y, rate=1), x, atol=1e-4)


def test_entropy_models_start_fitted_to_the_latents():
    """A fresh bottleneck spreads each channel over +-10; after the start its rate estimate is far lower."""
    x = crops()
    fresh, started = network(24), network(24)
    started.init_from_packets(x)
    # the same linear maps for both, only the entropy models differ
    fresh.load_state_dict({k: v for k, v in started.state_dict().items() if not k.startswith("bottlenecks")},
                          strict=False)
    fresh.train(), started.train()
    with torch.no_grad():
        bits = [float(-n(x, rate=0).likelihoods.log2().sum()) / (x.shape[0] * 64 * 64) for n in (fresh, started)]
    assert bits[1] < 0.5 * bits[0]


def test_a_fixed_encoder_trains_the_decoder_on_rounded_latents():
    """With train_encoder False, a training pass decodes the latents a file holds (rounded around the medians, with
    the rate's deadzone); a learnt encoder still gets the noisy ones it needs for gradients."""
    import dataclasses

    x = crops()
    torch.manual_seed(0)
    cfg = dataclasses.replace(network(24).cfg, train_encoder=False, deadzone=(0.3, 0.0))
    fixed = WaveletAutoencoder(cfg)
    fixed.init_from_packets(x)
    fixed.train()
    with torch.no_grad():
        y = fixed.encode_latents(x, 0)
        medians = fixed.bottlenecks[0]._get_medians().reshape(1, -1, 1, 1)
        d = y - medians
        expected = torch.sign(d) * torch.floor(d.abs() + 0.2) + medians  # 0.5 - deadzone
        assert not torch.equal(expected, torch.round(d) + medians)  # the deadzone moves some values
        assert torch.allclose(fixed(x, rate=0).reconstruction, fixed.decode_latents(expected, 0), atol=1e-6)
        learnt = WaveletAutoencoder(dataclasses.replace(cfg, train_encoder=True))
        learnt.load_state_dict(fixed.state_dict())
        learnt.train()
        torch.manual_seed(1)
        noisy = learnt(x, rate=0).reconstruction
        assert not torch.allclose(noisy, fixed.decode_latents(expected, 0), atol=1e-4)
