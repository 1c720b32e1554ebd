"""VQGAN-LC's codebook without CLIP: from the encoder's own latents after the warm-up, or from a user's features."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mediatok.codecs.image.model import ImageVQ, ImageVQConfig
from mediatok.train.image import CodebookFromFeatures, load_features


def _lc(codebook_dim: int, warmup: int = 0) -> ImageVQ:
    return ImageVQ(ImageVQConfig(widths=(8, 8, 8, 8), blocks=1, quantizer="lc", codebook_size=32,
                                 codebook_dim=codebook_dim, quantizer_warmup=warmup, warmup_sample=256))


def test_lc_warmup_seeds_the_frozen_codebook_with_the_encoders_latents(photo):
    torch.manual_seed(0)
    model = _lc(codebook_dim=8, warmup=2).train()
    x = torch.from_numpy(photo[:64, :128].copy()).permute(2, 0, 1)[None].float() / 255
    out = model(x)
    out.commit_loss.backward()  # zero, but every projector parameter gets a gradient (DDP needs one for each)
    assert all(p.grad is not None for p in model.quantizer.parameters() if p.requires_grad)
    model(x)  # warm-up done: k-means of 256 latents, projector fitted from them to themselves
    with torch.no_grad():
        z = model.encode(x).permute(0, 2, 3, 1).reshape(-1, 8)
        codes = model.quantizer.codebook.codes()  # projected frozen entries (32, 8)
    nearest = torch.cdist(codes, z).min(1).values
    assert float(nearest.median()) < 0.25 * float(z.std(0).norm())  # every code sits among the latents
    with torch.no_grad():  # the projector starts as (nearly) the identity on the latents it was fitted on
        error = (model.quantizer.codebook.projector(z) - z).norm(dim=1)
    assert float(error.mean()) < 0.05 * float(z.std(0).norm())
    assert bool(model.quantizer.codebook.initialized)


def test_codebook_from_a_users_feature_file(tmp_path):
    torch.manual_seed(0)
    features = torch.randn(200, 16) * 3 + 5
    np.save(tmp_path / "f.npy", features.numpy())
    save_file({"features": features, "other": torch.zeros(1)}, str(tmp_path / "f.safetensors"))
    assert torch.equal(load_features(tmp_path / "f.safetensors"), features)
    model = _lc(codebook_dim=16)
    module = SimpleNamespace(codec=model, steps=torch.tensor(0), device=torch.device("cpu"))
    CodebookFromFeatures(str(tmp_path / "f.npy")).on_fit_start(None, module)
    base = model.quantizer.codebook.base
    assert float(base.mean()) == pytest.approx(5.0, abs=0.5)  # k-means centres of the features, not randn
    assert float(torch.cdist(base, features).min(1).values.max()) < float(torch.cdist(features, features).max())
    assert not bool(model.quantizer.codebook.initialized)  # the projector still matches itself to the first batch


def test_feature_files_are_checked(tmp_path):
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=False"):  # never unpickled
        load_features(tmp_path / "pickled.npy")
    np.save(tmp_path / "few.npy", np.zeros((3, 16), dtype=np.float32))
    (tmp_path / "f.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match=".npy or .safetensors"):
        load_features(tmp_path / "f.pt")
    module = SimpleNamespace(codec=_lc(16), steps=torch.tensor(0), device=torch.device("cpu"))
    with pytest.raises(ValueError, match="3 features cannot seed 32 codes"):
        CodebookFromFeatures(str(tmp_path / "few.npy")).on_fit_start(None, module)
    vq = SimpleNamespace(codec=ImageVQ(ImageVQConfig(widths=(8, 8, 8, 8), codebook_size=32)), steps=torch.tensor(0))
    with pytest.raises(ValueError, match="initialises an LC quantizer"):
        CodebookFromFeatures(str(tmp_path / "few.npy")).on_fit_start(None, vq)
