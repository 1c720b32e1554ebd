"""ImageVQ: config checks, shapes for f8/f16 and every quantizer, tokens -> images equals forward, bf16 + channels-last."""
from __future__ import annotations

import math

import pytest
import torch

from mediatok.codecs.image import ImageVQ, ImageVQConfig


def test_config_round_trip_and_refuses_unknown_keys():
    cfg = ImageVQConfig(downsample=16, widths=(8, 8, 16, 16, 32), quantizer="simvq")
    assert ImageVQConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown ImageVQConfig keys \\['widht'\\]"):
        ImageVQConfig.from_dict({**cfg.to_dict(), "widht": 3})


@pytest.mark.parametrize("bad, match", [
    (dict(downsample=12), "power of two"),
    (dict(downsample=8, widths=(8, 16)), "needs log2\\(downsample\\) \\+ 1 = 4 entries"),
    (dict(quantizer="rvq"), "quantizer must be"),
    (dict(quantizer="lc"), "needs codebook_dim"),
    (dict(codebook_size=0), "codebook_size must be >= 1"),
])
def test_config_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        ImageVQConfig(**bad)


@pytest.mark.parametrize("f, widths", [(8, (8, 8, 16, 16)), (16, (8, 8, 16, 16, 16))])
@pytest.mark.parametrize("quantizer, extra", [("vq-ema", {}), ("simvq", {}), ("lc", {"codebook_dim": 6})])
def test_shapes_and_tokens_reproduce_forward(f, widths, quantizer, extra):
    torch.manual_seed(0)
    model = ImageVQ(ImageVQConfig(downsample=f, widths=widths, latent_dim=4, codebook_size=32, quantizer=quantizer, **extra))
    x = torch.rand(2, 3, 2 * f, 3 * f)
    model.train()
    out = model(x)
    assert out.reconstruction.shape == x.shape and out.indices.shape == (2, 1, 2, 3)
    assert out.indices.dtype == torch.int64 and out.commit_loss.ndim == 0 and "utilization" in out.stats
    out.reconstruction.mean().backward()  # gradients reach the encoder through the estimator
    assert model.encoder.conv_in.weight.grad is not None
    model.eval()
    with torch.no_grad():
        ref = model(x)
        tokens = model.encode_latents(x)
        assert torch.equal(tokens, ref.indices)
        torch.testing.assert_close(model.decode_latents(tokens), ref.reconstruction)
    assert model.bitrate == pytest.approx(math.log2(32) / f**2) and model.num_codebooks == 1


def test_sizes_must_be_multiples_of_the_stride():
    model = ImageVQ(ImageVQConfig(widths=(4, 4, 4, 4), latent_dim=2, codebook_size=8))
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.rand(1, 3, 12, 16))
    with pytest.raises(ValueError, match=r"expected images \(B, 3, H, W\)"):
        model(torch.rand(1, 1, 16, 16))


def test_bf16_autocast_channels_last_training_step():
    torch.manual_seed(0)
    model = ImageVQ(ImageVQConfig(widths=(8, 8, 16, 16), latent_dim=4, codebook_size=64)).to(memory_format=torch.channels_last)
    model.train()
    x = torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    loss = (out.reconstruction.float() - x).abs().mean() + out.commit_loss
    loss.backward()
    assert torch.isfinite(loss) and out.indices.dtype == torch.int64
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
