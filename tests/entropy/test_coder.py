"""Round trips, size against the ideal information content, bad input, and the step API of the rANS coder."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mediatok import BitstreamError
from mediatok.entropy import (RangeDecoder, RangeEncoder, decode_categorical, decode_cdf, decode_indexed,
                              encode_categorical, encode_cdf, encode_indexed, gaussian_tables, quantize_pmf)


def _random_cdf(rng: np.random.Generator, n: int, k: int, precision: int, alpha: float = 0.5) -> torch.Tensor:
    return quantize_pmf(torch.from_numpy(rng.dirichlet(np.full(k, alpha), size=n)), precision)  # (n, k+1)


def _ideal_bits(symbols: torch.Tensor, cdf: torch.Tensor, precision: int) -> float:
    freq = (cdf[:, 1:] - cdf[:, :-1]).double()  # (N, K)
    return float(-(torch.gather(freq, 1, symbols[:, None].long()).log2() - precision).sum())


def _sample(rng: np.random.Generator, cdf: torch.Tensor, precision: int) -> torch.Tensor:
    u = torch.from_numpy(rng.integers(0, 1 << precision, cdf.shape[0]))
    return (torch.searchsorted(cdf[:, 1:].long(), u[:, None], right=True)[:, 0]).long()  # (N,)


@pytest.mark.parametrize("precision", [12, 16, 24])
@pytest.mark.parametrize("lanes", [1, 2, 5])
def test_roundtrip_random(precision: int, lanes: int) -> None:
    rng = np.random.default_rng(precision * 10 + lanes)
    cdf = _random_cdf(rng, 3000, 37, precision)
    sym = _sample(rng, cdf, precision)
    data = encode_cdf(sym, cdf, precision, lanes=lanes)
    out = decode_cdf(data, cdf, precision, lanes=lanes)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.int64
    assert torch.equal(out, sym)


def test_numpy_in_numpy_out_and_shared_cdf() -> None:
    rng = np.random.default_rng(1)
    cdf = _random_cdf(rng, 1, 300, 16)[0].numpy()  # (301,) one table for every symbol
    sym = rng.integers(0, 300, 5000)
    data = encode_cdf(sym, cdf)
    out = decode_cdf(data, cdf, n=5000)
    assert isinstance(out, np.ndarray) and np.array_equal(out, sym)


@pytest.mark.parametrize("lanes", [1, 3])
def test_empty_input(lanes: int) -> None:
    cdf = torch.zeros(0, 5, dtype=torch.int32)
    data = encode_cdf(torch.zeros(0, dtype=torch.long), cdf, lanes=lanes)
    assert len(data) == (0 if lanes == 1 else 8 * lanes)
    assert decode_cdf(data, cdf, lanes=lanes).numel() == 0


def test_all_one_symbol_is_nearly_free() -> None:
    certain = torch.tensor([[0, 0, 1 << 16, 1 << 16]] * 10_000, dtype=torch.int32)  # symbol 1 has p = 1
    sym = torch.ones(10_000, dtype=torch.long)
    assert encode_cdf(sym, certain) == b""
    assert torch.equal(decode_cdf(b"", certain), sym)
    peaked = quantize_pmf(torch.tensor([1e-9, 1.0, 1e-9]).expand(10_000, 3), 16)
    data = encode_cdf(sym, peaked)  # one lane starts from state 0: at most `precision` bits + 1 byte extra
    assert len(data) <= _ideal_bits(sym, peaked, 16) / 8 + 3
    assert torch.equal(decode_cdf(data, peaked), sym)


def test_alphabet_of_2_16_minus_1_symbols() -> None:
    rng = np.random.default_rng(2)
    k = (1 << 16) - 1
    cdf = quantize_pmf(torch.from_numpy(rng.random((1, k))), 16)
    assert int((cdf[0, 1:] - cdf[0, :-1]).min()) == 1
    sym = torch.from_numpy(rng.integers(0, k, 4000))
    data = encode_cdf(sym, cdf[0], 16)
    assert torch.equal(decode_cdf(data, cdf[0], 16, n=4000), sym)
    cdf24 = quantize_pmf(torch.from_numpy(rng.random((8, k))), 24)  # large alphabet at the top precision
    sym = _sample(rng, cdf24, 24)
    assert torch.equal(decode_cdf(encode_cdf(sym, cdf24, 24), cdf24, 24), sym)


@pytest.mark.parametrize("alpha", [0.05, 0.5, 5.0])
def test_size_within_0_1_percent_plus_8_bytes_of_ideal(alpha: float) -> None:
    rng = np.random.default_rng(3)
    cdf = _random_cdf(rng, 20_000, 64, 16, alpha)
    sym = _sample(rng, cdf, 16)
    ideal = _ideal_bits(sym, cdf, 16) / 8
    size = len(encode_cdf(sym, cdf, 16))
    assert size <= ideal * 1.001 + 8, (size, ideal)


def test_low_entropy_size() -> None:
    rng = np.random.default_rng(4)
    cdf = quantize_pmf(torch.tensor([0.997, 0.002, 0.001]).expand(200_000, 3).contiguous(), 16)
    sym = _sample(rng, cdf, 16)
    ideal = _ideal_bits(sym, cdf, 16) / 8
    assert len(encode_cdf(sym, cdf, 16)) <= ideal * 1.001 + 8


def test_indexed_gaussian_roundtrip_and_escapes() -> None:
    g = torch.Generator().manual_seed(5)
    scales = torch.exp(torch.linspace(-2, 3, 16))
    tables, lengths, offsets = gaussian_tables(scales)
    idx = torch.randint(0, 16, (20_000,), generator=g, dtype=torch.int32)
    y = torch.round(torch.randn(20_000, generator=g) * scales[idx.long()]).long()
    y[::997] = torch.tensor([10**6, -(10**6), 2**60, -(2**60), 0] * 5)[: y[::997].numel()]  # far outside
    data = encode_indexed(y, idx, tables, lengths, offsets)
    assert torch.equal(decode_indexed(data, idx, tables, lengths, offsets), y)
    data4 = encode_indexed(y, idx, tables, lengths, offsets, lanes=4)
    assert torch.equal(decode_indexed(data4, idx, tables, lengths, offsets, lanes=4), y)


def test_every_value_escapes_with_one_symbol_table() -> None:
    tables = torch.tensor([[0, 1 << 16]], dtype=torch.int32)  # only the escape symbol
    vals = torch.tensor([0, 1, -1, 7, -123456, 2**61, -(2**61)])
    idx = torch.zeros(7, dtype=torch.int32)
    data = encode_indexed(vals, idx, tables, [2], [0])
    assert torch.equal(decode_indexed(data, idx, tables, [2], [0]), vals)


def test_bad_input_raises_clear_errors() -> None:
    cdf = quantize_pmf(torch.ones(4, 3), 16)
    with pytest.raises(ValueError, match="precision"):
        encode_cdf(torch.zeros(4, dtype=torch.long), cdf, 11)
    with pytest.raises(ValueError, match="symbol"):
        encode_cdf(torch.tensor([0, 1, 3, 0]), cdf)
    with pytest.raises(ValueError, match="not an integer CDF"):
        encode_cdf(torch.zeros(4, dtype=torch.long), cdf.flip(-1))
    zero = torch.tensor([[0, 0, 1 << 16]] * 4, dtype=torch.int32)
    with pytest.raises(ValueError, match="zero frequency"):
        encode_cdf(torch.zeros(4, dtype=torch.long), zero)
    with pytest.raises(ValueError, match="escape|outside"):
        encode_indexed(torch.tensor([5]), torch.tensor([0]), cdf[:1], [4], [0], escape=False)
    with pytest.raises(ValueError, match="index"):
        encode_indexed(torch.tensor([0]), torch.tensor([1]), cdf[:1], [4], [0])


def test_truncated_and_corrupted_streams_never_raise_anything_else() -> None:
    """Multi-lane streams detect every truncation; a one-lane stream (no redundancy at all) detects most,
    and otherwise decodes to wrong symbols: integrity is the container's CRC32's job."""
    rng = np.random.default_rng(6)
    cdf = _random_cdf(rng, 2000, 16, 16)
    sym = _sample(rng, cdf, 16)
    for lanes in (1, 2):
        data = encode_cdf(sym, cdf, lanes=lanes)
        bad = bytearray(data)
        bad[len(bad) // 2] ^= 0x5A
        for broken in [data[:-cut] for cut in (1, 3, 4, 5, len(data) // 2)] + [data + b"\0" * 4, bytes(bad)]:
            try:
                out = decode_cdf(broken, cdf, lanes=lanes)
            except BitstreamError:
                continue
            assert lanes == 1 and not torch.equal(out, sym)


def test_step_api_matches_batch_stream() -> None:
    rng = np.random.default_rng(7)
    cdf = _random_cdf(rng, 300, 9, 16)
    sym = _sample(rng, cdf, 16)
    enc = RangeEncoder(16)
    for s, row in zip(sym.tolist(), cdf):
        enc.encode_next(s, row)
    data = enc.finish()
    assert data == encode_cdf(sym, cdf, 16)
    dec = RangeDecoder(data, 16)
    assert [dec.decode_next(row) for row in cdf] == sym.tolist()
    dec.finish()
    dec = RangeDecoder(data[:-2], 16)
    for row in cdf:
        dec.decode_next(row)
    with pytest.raises(BitstreamError):
        dec.finish()


@pytest.mark.parametrize("k, precision", [(1, 16), (5, 12), (37, 16), (64, 16), (65, 16), (129, 12), (1000, 16),
                                          (4096, 16), (3000, 12), (300, 24)])
def test_categorical_is_encode_cdf_of_quantize_pmf_bit_for_bit(k: int, precision: int) -> None:
    """The fused kernels and quantize_pmf share one arithmetic: same CDFs, same bytes."""
    g = torch.Generator().manual_seed(k)
    pmf = torch.softmax(torch.randn(300, k, generator=g) * 4, -1)  # (300, K), many tiny entries
    pmf[0] = 1.0  # unnormalised and flat
    if k > 1:
        pmf[1, 1:] = 0.0  # one certain symbol
    sym = torch.multinomial(pmf + 1e-12, 1, generator=g)[:, 0]
    for p in (pmf, pmf.double()):
        data = encode_categorical(sym, p, precision)
        assert data == encode_cdf(sym, quantize_pmf(p, precision), precision)
        assert torch.equal(decode_categorical(data, p, precision), sym)
    data = encode_categorical(sym, pmf, precision, lanes=3)
    assert torch.equal(decode_categorical(data, pmf, precision, lanes=3), sym)


def test_categorical_rejects_bad_pmfs() -> None:
    pmf = torch.rand(4, 6)
    for bad in (float("nan"), -1.0, float("inf")):
        broken = pmf.clone()
        broken[2, 3] = bad
        with pytest.raises(ValueError, match="pmf"):
            encode_categorical(torch.zeros(4, dtype=torch.long), broken)
    with pytest.raises(ValueError, match="pmf"):
        decode_categorical(encode_categorical(torch.zeros(4, dtype=torch.long), pmf), torch.zeros(4, 6))
