"""Golden sha256s of entropy-coded bytes and integer tables, recorded before the grid/sparse/numba rework.

The shipped speech-16k-v1 bitstreams, fitted priors and quantize_pmf's CDFs must stay bit-identical.
Regenerate on purpose only: `.venv/bin/python tests/entropy/test_golden_bytes.py --write`.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mediatok.entropy import (FrequencyPrior, MarkovPrior, encode_categorical, gaussian_tables, prior_from_state_dict,
                              quantize_pmf)

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = ROOT / "tests" / "expected" / "entropy_golden.json"
SHIPPED = ROOT / "pretrained" / "speech-16k-v1" / "model.safetensors"  # the model the digests were recorded with


def _sha(x: bytes | torch.Tensor) -> str:
    raw = x if isinstance(x, bytes) else x.contiguous().numpy().tobytes()
    return hashlib.sha256(raw).hexdigest()


def _walks(num: int, frames: int, k: int, seed: int, q: int) -> list[torch.Tensor]:
    """Sticky random walks (Q, T), like speech tokens."""
    g = np.random.default_rng(seed)
    out = []
    for _ in range(num):
        steps = g.integers(-3, 4, size=(q, frames))
        start = g.integers(0, k, size=(q, 1))
        out.append(torch.from_numpy((start + np.cumsum(steps, axis=1)) % k))
    return out


def _zipf(q: int, n: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = 1.0 / torch.arange(1, k + 1).double()
    return torch.multinomial(p / p.sum(), q * n, replacement=True, generator=g).reshape(q, n)  # (Q, N)


def golden() -> dict[str, str]:
    """Every digest this file pins, computed with the current code."""
    out: dict[str, str] = {}
    # shipped model: its prior and the bytes it writes for fixed tokens
    state = {k[len("prior."):]: v for k, v in load_file(str(SHIPPED)).items() if k.startswith("prior.")}
    shipped = prior_from_state_dict(state)
    q = shipped.num_codebooks
    for i, tokens in enumerate(_walks(3, 150, 1024, 10, q) + [_zipf(q, 75, 1024, 11), torch.zeros(q, 1).long()]):
        out[f"shipped_encode_{i}"] = _sha(shipped.encode(tokens))
    # fitted priors: tables and bytes
    freq = FrequencyPrior.fit(_zipf(4, 5000, 17, 1), [300, 256, 300, 17], precision=14)
    out["frequency_cdf"] = _sha(freq.cdf)
    out["frequency_encode"] = _sha(freq.encode(_zipf(4, 60, 17, 2)))
    for k, classes in ((64, 16), (256, 32), (40, 41)):
        markov = MarkovPrior.fit(_walks(20, 300, k, k, 2), k, num_classes=classes)
        out[f"markov_{k}_rows"] = _sha(markov.rows)
        out[f"markov_{k}_cdf"] = _sha(markov.cdf)
        out[f"markov_{k}_encode"] = _sha(markov.encode(_walks(1, 200, k, k + 1, 2)[0]))
    # quantize_pmf: plain, low precision, leaky fallback, ragged, float64, single symbol
    g = torch.Generator().manual_seed(3)
    cases = {
        "pmf_softmax_1024": (torch.softmax(torch.randn(300, 1024, generator=g) * 3, -1), 16, None),
        "pmf_tiny_257_p12": (torch.rand(50, 257, generator=g) ** 12, 12, None),
        "pmf_leaky_4000_p12": (torch.rand(20, 4000, generator=g) ** 8 + 1e-9, 12, None),
        "pmf_ragged_f64": (torch.rand(40, 33, generator=g, dtype=torch.float64) ** 4, 16,
                           torch.randint(1, 34, (40,), generator=g)),
        "pmf_p24_f64": (torch.softmax(torch.randn(30, 100, generator=g, dtype=torch.float64) * 6, -1), 24, None),
        "pmf_one_symbol": (torch.rand(5, 1, generator=g), 16, None),
    }
    for name, (pmf, precision, lengths) in cases.items():
        out[name] = _sha(quantize_pmf(pmf, precision, lengths=lengths))
    out["gaussian_tables"] = _sha(torch.cat([t.reshape(-1) for t in gaussian_tables(torch.tensor([0.2, 1.0, 9.0]))]))
    pmf = torch.softmax(torch.randn(2000, 1024, generator=g) * 2.5, -1)
    sym = torch.multinomial(pmf, 1, generator=g)[:, 0]
    out["categorical_1024"] = _sha(encode_categorical(sym, pmf))
    out["categorical_1024_lanes4"] = _sha(encode_categorical(sym, pmf, lanes=4))
    return out


def test_golden_bytes_unchanged() -> None:
    want = json.loads(EXPECTED.read_text())
    got = golden()
    assert set(got) == set(want)
    changed = sorted(k for k in got if got[k] != want[k])
    assert not changed, f"entropy output changed for {changed}"


if __name__ == "__main__":
    if "--write" not in sys.argv:
        pytest.main([__file__, "-q"])
    else:
        EXPECTED.write_text(json.dumps(golden(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {EXPECTED}")
