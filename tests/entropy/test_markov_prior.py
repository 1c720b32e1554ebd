"""MarkovPrior: order-1 context tables for VQ indices (fit, code, save, refuse bad input)."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mediatok import BitstreamError
from mediatok.entropy import FrequencyPrior, MarkovPrior, pack, prior_from_state_dict, unpack


def _markov_clips(num: int, frames: int, k: int, seed: int, q: int = 2) -> list[torch.Tensor]:
    """Clips (Q, T) of sticky random walks: each token stays near the previous one, as speech tokens do."""
    g = np.random.default_rng(seed)
    clips = []
    for _ in range(num):
        steps = g.integers(-3, 4, size=(q, frames))
        start = g.integers(0, k, size=(q, 1))
        clips.append(torch.from_numpy((start + np.cumsum(steps, axis=1)) % k))
    return clips


def test_markov_prior_roundtrip_beats_frequency_tables() -> None:
    train, test = _markov_clips(40, 400, 64, 0), _markov_clips(5, 300, 64, 1)
    markov = MarkovPrior.fit(train, codebook_sizes=64, num_classes=64)
    order0 = FrequencyPrior.fit(torch.cat(train, dim=1), codebook_sizes=64)
    markov_bytes = order0_bytes = 0
    for tokens in test:
        blob = markov.encode(tokens)
        assert len(blob) <= markov.bits(tokens) / 8 * 1.001 + 8
        header, chunks = unpack(pack({"model": "t", "frames": tokens.shape[1]}, [blob]))
        out = markov.decode(chunks[0], header["frames"])
        assert out.dtype == torch.int64 and torch.equal(out, tokens)
        markov_bytes += len(blob)
        order0_bytes += len(order0.encode(tokens))
    # 7 equally likely steps: ~2.8 bits per token with the context, ~6 bits without
    assert markov_bytes < 0.6 * order0_bytes, (markov_bytes, order0_bytes)
    torch.testing.assert_close(markov.codebook_bits(test[0]).sum().item(), markov.bits(test[0]))


def test_markov_prior_contexts_do_not_cross_clips_and_start_context() -> None:
    # Every clip starts at token 5 and then counts up by one: only the start context predicts 5.
    clips = [torch.arange(5, 5 + n).reshape(1, n) % 32 for n in range(10, 70)]
    prior = MarkovPrior.fit(clips, codebook_sizes=32, num_classes=33)
    first = torch.tensor([[5, 6, 7]])
    assert prior.bits(first) < 0.5  # all three tokens near-certain under their contexts (uniform: 15 bits)
    # A batch (B, Q, T) is B clips, never one long sequence: 1 -> 2 happens only across the clip boundary.
    a, b = torch.ones(1, 4, dtype=torch.long), torch.full((1, 4), 2)
    batch = MarkovPrior.fit(torch.stack([a, b]), codebook_sizes=4, num_classes=5, smoothing=0.01)
    joined = MarkovPrior.fit(torch.cat([a, b], dim=1), codebook_sizes=4, num_classes=5, smoothing=0.01)
    step = torch.tensor([[1, 2]])
    assert batch.bits(step) > joined.bits(step) + 4


def test_markov_prior_state_dict_through_safetensors_and_loader(tmp_path) -> None:
    clips = _markov_clips(10, 200, 64, 2, q=3)
    prior = MarkovPrior.fit(clips, codebook_sizes=[64, 64, 64], num_classes=[8, 4, 16], precision=14)
    save_file({f"prior.{k}": v for k, v in prior.state_dict().items()}, tmp_path / "model.safetensors")
    loaded = {k.split(".", 1)[1]: v for k, v in load_file(tmp_path / "model.safetensors").items()}
    again = prior_from_state_dict(loaded)
    assert isinstance(again, MarkovPrior)
    tokens = _markov_clips(1, 50, 64, 3, q=3)[0]
    assert prior.encode(tokens) == again.encode(tokens)
    assert torch.equal(again.decode(prior.encode(tokens), 50), tokens)
    assert isinstance(prior_from_state_dict(FrequencyPrior.fit(tokens, 64).state_dict()), FrequencyPrior)
    for key, edit, match in [
        ("cdf", lambda s: s["cdf"].__setitem__((0, 5), 0), "valid"),
        ("rows", lambda s: s["rows"].__setitem__((0, 0), 10_000), "index"),
        ("rows", lambda s: s["rows"].__setitem__((1, 0), int(s["rows"][0, 0])), "another codebook"),
        ("row_codebook", lambda s: s["row_codebook"].__setitem__(0, 7), "codebook"),
    ]:
        broken = {k: v.clone() for k, v in prior.state_dict().items()}
        edit(broken)
        with pytest.raises(ValueError, match=match):
            MarkovPrior.from_state_dict(broken)
    with pytest.raises(ValueError, match="missing"):
        MarkovPrior.from_state_dict({"cdf": prior.cdf})


def test_markov_prior_bad_input_and_corrupt_streams() -> None:
    prior = MarkovPrior.fit(_markov_clips(10, 200, 128, 4), 128, num_classes=16)
    tokens = _markov_clips(1, 120, 128, 5)[0]
    blob = prior.encode(tokens)
    with pytest.raises(ValueError, match="codebook_size"):
        prior.encode(torch.tensor([[128, 0], [0, 0]]))
    with pytest.raises(ValueError, match="Q=2"):
        prior.encode(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes"):
        MarkovPrior.fit(_markov_clips(1, 10, 8, 0), 8, num_classes=0)
    with pytest.raises(ValueError, match="codebooks"):
        MarkovPrior.fit([torch.zeros(2, 5, dtype=torch.long), torch.zeros(3, 5, dtype=torch.long)], 8)
    assert prior.decode(prior.encode(torch.zeros(2, 0, dtype=torch.long)), 0).shape == (2, 0)
    with pytest.raises(BitstreamError, match="cannot hold"):
        prior.decode(blob, 10**12)
    with pytest.raises(BitstreamError):
        prior.decode(blob[:-3], 120)  # truncated
    with pytest.raises(BitstreamError):
        prior.decode(blob + b"\x00\x00\x00\x01", 120)  # trailing words
    rng = random.Random(0)
    for _ in range(300):  # flipped bytes either decode to something or raise BitstreamError, nothing else
        bad = bytearray(blob)
        bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
        try:
            out = prior.decode(bytes(bad), 120)
        except BitstreamError:
            continue
        assert out.shape == (2, 120) and int(out.min()) >= 0 and int(out.max()) < 128
