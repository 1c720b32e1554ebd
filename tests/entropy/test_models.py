"""The EntropyModel interface: every kind round-trips 1-d, 2-d and 3-d grids, saves through safetensors,
reloads through entropy_model_from_state_dict, and refuses hostile shapes and states fast."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from safetensors.torch import load_file, save_file

from mediatok import BitstreamError
from mediatok.entropy import (BottleneckModel, EntropyModel, FrequencyPrior, MarkovPrior, RawIndices,
                              entropy_model_from_state_dict, prior_from_state_dict)

SHIPPED = Path(__file__).resolve().parents[2] / "pretrained" / "speech-16k-v1" / "model.safetensors"
GRIDS = [(3, 40), (3, 6, 7), (3, 3, 4, 5)]  # (Q, T), (Q, h, w), (Q, d, h, w)


def _tokens(shape: tuple[int, ...], k: int, seed: int) -> torch.Tensor:
    g = np.random.default_rng(seed)
    walk = np.cumsum(g.integers(-2, 3, size=(shape[0], int(np.prod(shape[1:])))), axis=1)  # sticky, raster order
    return torch.from_numpy((walk + g.integers(0, k, (shape[0], 1))) % k).reshape(shape)


def _eb() -> EntropyBottleneck:
    torch.manual_seed(0)
    eb = EntropyBottleneck(3).eval()
    eb.update(force=True)
    return eb


def _models() -> dict[str, EntropyModel]:
    train = [_tokens((3, 500), 64, s) for s in range(4)]
    return {"frequency": FrequencyPrior.fit(torch.cat(train, 1), 64),
            "markov": MarkovPrior.fit(train, 64, num_classes=8),
            "raw": RawIndices(64),
            "bottleneck": BottleneckModel.from_module(_eb())}


def _sample(kind: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    if kind == "bottleneck":
        return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 4
    return _tokens(shape, 64, seed)


def _roundtrip_ref(kind: str, x: torch.Tensor) -> torch.Tensor:
    if kind != "bottleneck":
        return x
    eb = _eb()  # the reference: CompressAI's own compress/decompress of the batch of one
    return eb.decompress(eb.compress(x[None]), x.shape[1:])[0]


@pytest.mark.parametrize("kind", ["frequency", "markov", "raw", "bottleneck"])
def test_every_kind_roundtrips_grids_and_reloads_from_safetensors(kind: str, tmp_path: Path) -> None:
    model = _models()[kind]
    assert isinstance(model, EntropyModel) and model.kind == kind
    save_file(model.state_dict(), tmp_path / "m.safetensors")
    again = entropy_model_from_state_dict(load_file(tmp_path / "m.safetensors"))
    assert type(again) is type(model)
    for i, shape in enumerate(GRIDS):
        x = _sample(kind, shape, 10 + i)
        blob = model.encode(x)
        assert blob == again.encode(x)
        out = again.decode(blob, shape)
        assert out.shape == shape and torch.equal(out, _roundtrip_ref(kind, x))
        assert torch.equal(model.decode(blob, list(shape)), out)


def test_grid_bytes_are_the_flattened_sequence_bytes() -> None:
    """(Q, h, w) is coded as (Q, h*w) in raster order: (Q, T) streams keep their bytes."""
    for kind in ("frequency", "markov", "raw"):
        model = _models()[kind]
        x = _tokens((3, 4, 5), 64, 3)
        assert model.encode(x) == model.encode(x.reshape(3, 20))
    prior = _models()["markov"]
    assert torch.equal(prior.decode(prior.encode(x), 20), x.reshape(3, 20))  # an int still means (Q, T)


def test_shipped_prior_loads_the_same_through_both_loaders() -> None:
    state = {k[len("prior."):]: v for k, v in load_file(str(SHIPPED)).items() if k.startswith("prior.")}
    old, new = prior_from_state_dict(state), entropy_model_from_state_dict(state)
    assert isinstance(new, MarkovPrior) and new.kind == "markov"
    for key, value in old.state_dict().items():
        assert torch.equal(new.state_dict()[key], value), key
    tokens = _tokens((old.num_codebooks, 150), 1024, 5)
    assert new.encode(tokens) == old.encode(tokens)
    assert torch.equal(new.decode(old.encode(tokens), tuple(tokens.shape)), tokens)


@pytest.mark.parametrize("kind", ["frequency", "markov", "raw", "bottleneck"])
def test_hostile_shapes_raise_before_allocating(kind: str) -> None:
    model = _models()[kind]
    blob = model.encode(_sample(kind, (3, 6, 7), 1))
    start = time.perf_counter()
    for shape in [(3, 1 << 20, 1 << 20), (3, 1 << 40), (3, 10**6, 10**6, 10**6), (4, 6, 7) if kind != "raw" else (3, 6, 8),
                  (3, -6, 7), (3, 6.0, 7), "3x6x7"]:
        with pytest.raises(BitstreamError):
            model.decode(blob, shape)
    assert time.perf_counter() - start < 1.0


def test_raw_indices_widths_and_corruption() -> None:
    for k in (1, 2, 1000, 40_000, (1 << 31)):  # 40k codes: above what the old int16 fallback could hold
        raw = RawIndices(k)
        x = torch.randint(0, k, (2, 5, 7), generator=torch.Generator().manual_seed(k))
        blob = raw.encode(x)
        assert len(blob) == (70 * max(1, (k - 1).bit_length()) + 7) // 8
        assert torch.equal(raw.decode(blob, (2, 5, 7)), x)
    raw = RawIndices(1000)  # 10 bits
    blob = raw.encode(torch.tensor([[999, 3, 0]]))
    with pytest.raises(ValueError, match="1000"):
        raw.encode(torch.tensor([1000]))
    with pytest.raises(BitstreamError, match="needs"):
        raw.decode(blob[:-1], (1, 3))
    with pytest.raises(BitstreamError, match="codebook_size"):
        raw.decode(b"\xff\xff\x00\x00", (1, 3))  # first index 1023
    with pytest.raises(BitstreamError, match="padding"):
        raw.decode(blob[:-1] + bytes([blob[-1] | 0x80]), (1, 3))
    with pytest.raises(ValueError, match="codebook_size"):
        RawIndices(0)


def test_bottleneck_gaussian_conditional_with_indexes_and_means(tmp_path: Path) -> None:
    torch.manual_seed(1)
    gc = GaussianConditional(None).eval()
    gc.update_scale_table(torch.exp(torch.linspace(-2, 3, 32)))
    gc.update()
    model = BottleneckModel.from_module(gc)
    save_file(model.state_dict(), tmp_path / "gc.safetensors")
    again = entropy_model_from_state_dict(load_file(tmp_path / "gc.safetensors"))
    for shape in [(4, 30), (4, 6, 5), (4, 2, 3, 5)]:
        scales = torch.rand(shape) * 5 + 0.2
        means = torch.randn(shape)
        y = torch.randn(shape) * scales + means
        idx = gc.build_indexes(scales)
        blob = model.encode(y, idx, means)
        ref = gc.decompress(gc.compress(y[None], idx[None], means[None]), idx[None], means=means[None])[0]
        assert torch.equal(again.decode(blob, shape, idx, means), ref)
        assert torch.equal(again.decode(model.encode(y, idx), shape, idx),
                           gc.decompress(gc.compress(y[None], idx[None]), idx[None])[0])


def test_bad_states_name_the_key() -> None:
    models = _models()
    cases = [
        ("frequency", "cdf", lambda s: s["cdf"].float()),
        ("frequency", "precision", lambda s: torch.tensor([16, 16])),
        ("markov", "rows", lambda s: s["rows"][None]),
        ("markov", "cdf", lambda s: s["cdf"].long() + (1 << 40)),
        ("raw", "codebook_size", lambda s: torch.tensor(0)),
        ("bottleneck", "medians", lambda s: s["medians"][:2]),
        ("bottleneck", "cdf_lengths", lambda s: s["cdf_lengths"] * 1000),
        ("bottleneck", "cdf", lambda s: s["cdf"].flip(1)),
    ]
    for kind, key, edit in cases:
        state = models[kind].state_dict()
        state[key] = edit(state)
        with pytest.raises(ValueError, match=key):
            entropy_model_from_state_dict(state)
    state = models["markov"].state_dict()
    del state["row_codebook"]
    with pytest.raises(ValueError, match="row_codebook"):
        entropy_model_from_state_dict(state)
    with pytest.raises(ValueError, match="extra"):
        entropy_model_from_state_dict({**models["frequency"].state_dict(), "extra": torch.zeros(1)})
    with pytest.raises(ValueError, match="not an entropy-model state"):
        entropy_model_from_state_dict({"weight": torch.zeros(2)})
