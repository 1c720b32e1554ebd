"""Priors for VQ indices: FrequencyPrior (fit, code, save), AdaptivePrior, ContextPrior."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from mediatok import BitstreamError
from mediatok.entropy import (AdaptivePrior, FrequencyPrior, decode_with_context, encode_with_context, pack,
                              quantize_pmf, unpack)


def _zipf_indices(q: int, n: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = 1.0 / torch.arange(1, k + 1).double()
    return torch.multinomial(p / p.sum(), q * n, replacement=True, generator=g).reshape(q, n)  # (Q, N)


def test_frequency_prior_roundtrip_size_and_container() -> None:
    train = _zipf_indices(8, 20_000, 1024, 0)
    prior = FrequencyPrior.fit(train, codebook_sizes=1024)
    tokens = _zipf_indices(8, 75, 1024, 1)  # (Q, T): 1.5 s at 50 Hz
    blob = prior.encode(tokens)
    assert len(blob) <= prior.bits(tokens) / 8 * 1.001 + 8
    assert len(blob) < 8 * 75 * 10 / 8 * 0.8  # beats 10 bits/token by a wide margin on Zipf data
    header, chunks = unpack(pack({"model": "s16", "codebooks": 8, "frames": 75}, [blob]))
    out = prior.decode(chunks[0], header["frames"])
    assert out.dtype == torch.int64 and torch.equal(out, tokens)


def test_frequency_prior_state_dict_through_safetensors(tmp_path) -> None:
    prior = FrequencyPrior.fit(_zipf_indices(3, 5000, 256, 2).reshape(1, 3, 5000), [300, 256, 300], precision=14)
    save_file({f"prior.{k}": v for k, v in prior.state_dict().items()}, tmp_path / "model.safetensors")
    loaded = load_file(tmp_path / "model.safetensors")
    again = FrequencyPrior.from_state_dict({k.split(".", 1)[1]: v for k, v in loaded.items()})
    tokens = _zipf_indices(3, 40, 256, 3)
    assert prior.encode(tokens) == again.encode(tokens)
    assert torch.equal(again.decode(prior.encode(tokens), 40), tokens)
    broken = prior.state_dict()
    broken["cdf"][0, 5] = 0
    with pytest.raises(ValueError, match="valid"):
        FrequencyPrior.from_state_dict(broken)


def test_frequency_prior_unseen_codes_and_bad_input() -> None:
    prior = FrequencyPrior.fit(torch.zeros(2, 100, dtype=torch.long), 16)  # only code 0 seen
    tokens = torch.tensor([[15, 0, 3], [0, 0, 0]])
    assert torch.equal(prior.decode(prior.encode(tokens), 3), tokens)
    with pytest.raises(ValueError):
        prior.encode(torch.tensor([[16, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="Q=2"):
        prior.encode(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="codebook_size"):
        FrequencyPrior.fit(torch.full((2, 5), 20), 16)
    assert prior.decode(prior.encode(torch.zeros(2, 0, dtype=torch.long)), 0).shape == (2, 0)
    with pytest.raises(BitstreamError):
        prior.decode(prior.encode(tokens) + b"\xff" * 4, 3)


def test_frequency_prior_refuses_frame_counts_the_bytes_cannot_hold() -> None:
    prior = FrequencyPrior.fit(_zipf_indices(4, 5000, 64, 7), 64)
    tokens = _zipf_indices(4, 50, 64, 8)
    blob = prior.encode(tokens)
    assert prior.max_frames(len(blob)) >= 50
    with pytest.raises(BitstreamError, match="cannot hold"):
        prior.decode(blob, 10**12)


def test_adaptive_prior_learns_the_distribution() -> None:
    symbols = _zipf_indices(1, 20_000, 256, 4)[0]
    prior = AdaptivePrior(256)
    blob = prior.encode(symbols)
    assert torch.equal(prior.decode(blob, symbols.numel()), symbols)
    p = torch.bincount(symbols, minlength=256).double() / symbols.numel()
    entropy = float(-(p[p > 0] * p[p > 0].log2()).sum())
    assert len(blob) * 8 / symbols.numel() < entropy * 1.03
    with pytest.raises(ValueError):
        prior.encode(torch.tensor([256]))
    with pytest.raises(BitstreamError, match="cannot hold"):
        prior.decode(blob, 10**10)


class _BigramPrior:
    """A toy context model: the next symbol's PMF depends on the previous symbol."""

    precision = 16

    def __init__(self, k: int) -> None:
        g = torch.Generator().manual_seed(5)
        self.tables = quantize_pmf(torch.rand(k + 1, k, generator=g) ** 4, 16)  # (K+1, K+1), row K: start

    def cdf(self, history: torch.Tensor) -> torch.Tensor:
        return self.tables[int(history[-1]) if history.numel() else -1]


def test_context_prior_roundtrip() -> None:
    prior = _BigramPrior(12)
    symbols = torch.randint(0, 12, (200,), generator=torch.Generator().manual_seed(6))
    blob = encode_with_context(prior, symbols)
    assert torch.equal(decode_with_context(prior, blob, 200), symbols)
