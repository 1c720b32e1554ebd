"""CompressAI EntropyBottleneck / GaussianConditional latents in .mtk containers, both backends."""
from __future__ import annotations

import pytest
import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional

from mediatok import BitstreamError
from mediatok.entropy.compressai_adapter import compress_entropy_model, decompress_entropy_model


@pytest.mark.parametrize("backend", ["mediatok", "compressai"])
def test_entropy_bottleneck_matches_compressai(backend: str) -> None:
    torch.manual_seed(0)
    eb = EntropyBottleneck(8).eval()
    eb.update(force=True)
    y = torch.randn(2, 8, 6, 5) * 3
    y[0, 0, 0, 0] = 500.0  # far in the tail: an escape
    blob = compress_entropy_model(eb, y, backend=backend, header={"model": "toy"})
    ref = eb.decompress(eb.compress(y), y.shape[2:])
    assert torch.equal(decompress_entropy_model(eb, blob), ref)
    with pytest.raises(BitstreamError):
        decompress_entropy_model(eb, blob[:-3])


@pytest.mark.parametrize("backend", ["mediatok", "compressai"])
def test_gaussian_conditional_matches_compressai(backend: str) -> None:
    torch.manual_seed(1)
    gc = GaussianConditional(None).eval()
    gc.update_scale_table(torch.exp(torch.linspace(-2, 3, 32)))
    gc.update()
    scales = torch.rand(2, 4, 6, 5) * 5 + 0.2
    means = torch.randn(2, 4, 6, 5)
    y = torch.randn(2, 4, 6, 5) * scales + means
    idx = gc.build_indexes(scales)
    blob = compress_entropy_model(gc, y, idx, means, backend=backend)
    ref = gc.decompress(gc.compress(y, idx, means), idx, means=means)
    assert torch.equal(decompress_entropy_model(gc, blob, idx, means), ref)
