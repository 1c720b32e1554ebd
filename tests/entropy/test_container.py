"""The .mtk container: round trips, overhead, and a fuzz test that only ever sees BitstreamError."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediatok import BitstreamError
from mediatok.entropy import (AdaptivePrior, FrequencyPrior, decode_categorical, decode_indexed, describe,
                              gaussian_tables, pack, unpack)

AUDIO_HEADER = {"model": "s16", "sample_rate": 16000, "num_samples": 16000, "codebooks": 8, "frames": 50}


def test_roundtrip_every_value_type() -> None:
    header = {"model": "speech-16k", "model_hash": b"\x01\x02\x03\x04", "sample_rate": 24000, "shape": [1, -2, 3],
              "scale": 0.125, "custom key": -7, "flag": True, "empty": "", "big": 2**63, "neg": -(2**40)}
    chunks = [b"", b"abc", bytes(range(256)) * 300]
    h, c = unpack(pack(header, chunks))
    assert c == chunks
    assert h == {**header, "shape": (1, -2, 3)}


def test_one_chunk_audio_file_overhead_is_under_32_bytes() -> None:
    payload = bytes(190)
    assert len(pack(AUDIO_HEADER, [payload])) - len(payload) < 32
    assert len(pack({}, [payload])) - len(payload) <= 13


def test_describe_prints_the_header() -> None:
    text = describe(pack(AUDIO_HEADER, [b"x" * 10]))
    assert "sample_rate" in text and "16000" in text and "chunk 0: 10 bytes" in text


def test_pack_rejects_unsupported_values() -> None:
    with pytest.raises(ValueError, match="header value"):
        pack({"x": object()}, [])
    with pytest.raises(ValueError, match="list of bytes"):
        pack({}, b"abc")


@pytest.mark.parametrize("data, match", [
    (b"", "magic"), (b"RIFF\x01\x00\x00", "not an .mtk"), (b"MTOK\x09\x00\x00", "version"),
    (b"MTOK\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "remain"),  # a huge chunk count
    (b"MTOK\x01\x00\x01\xff\xff\xff\xff\x0f" + b"\0" * 8, "remain"),  # a huge chunk length
    (b"MTOK\x01\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "varint"),
    (b"MTOK\x01\x3f\x00", "tag"),
])
def test_malformed_containers_raise_bitstream_error(data: bytes, match: str) -> None:
    with pytest.raises(BitstreamError, match=match):
        unpack(data)


def test_every_truncation_and_bit_flip_is_detected() -> None:
    good = pack(AUDIO_HEADER, [b"payload" * 5, b"second"])
    for n in range(len(good)):
        with pytest.raises(BitstreamError):
            unpack(good[:n])
    for i in range(len(good)):
        for bit in range(8):
            bad = bytearray(good)
            bad[i] ^= 1 << bit
            with pytest.raises(BitstreamError):
                unpack(bytes(bad))
    with pytest.raises(BitstreamError, match="max_size"):
        unpack(good, max_size=10)


def _seeds() -> list[bytes]:
    g = torch.Generator().manual_seed(0)
    prior = FrequencyPrior.fit(torch.randint(0, 64, (4, 2000), generator=g), 64)
    tokens = torch.randint(0, 64, (4, 30), generator=g)
    return [pack({**AUDIO_HEADER, "frames": 30, "codebooks": 4}, [prior.encode(tokens)]),
            pack({"shape": [2, 3], "blob": b"\x00\x01", "x": 1.5, "ok": False}, [b"a", b"", b"bc" * 40]),
            pack({}, [])]


SEEDS = _seeds()
PRIOR = FrequencyPrior.fit(torch.randint(0, 64, (4, 2000), generator=torch.Generator().manual_seed(0)), 64)
OPS = ("flip", "set", "insert", "delete", "truncate", "splice", "crc")


def _mutate(rng: np.random.Generator) -> bytes:
    data = bytearray(SEEDS[int(rng.integers(len(SEEDS)))])
    for _ in range(int(rng.integers(1, 5))):
        op, i, val = OPS[int(rng.integers(len(OPS)))], int(rng.integers(len(data) + 1)), int(rng.integers(256))
        if op == "flip" and data:
            data[i % len(data)] ^= 1 << (val % 8)
        elif op == "set" and data:
            data[i % len(data)] = val
        elif op == "insert":
            data[i:i] = bytes([val]) * (1 + val % 9)
        elif op == "delete":
            del data[i:i + 1 + val % 5]
        elif op == "truncate":
            del data[i:]
        elif op == "splice":
            data[i:i] = SEEDS[val % len(SEEDS)][:val]
        elif op == "crc":  # corrupt the token payload and re-seal the CRC: fuzzes the rANS decoder behind it
            body = bytearray(SEEDS[0][:-4])
            body[-(1 + val % 20)] ^= 1 + i % 255
            data = body + struct.pack("<I", zlib.crc32(body))
    return bytes(data)


@settings(max_examples=1000, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_mutated_containers_only_raise_bitstream_error(seed: int) -> None:
    """1,000 hypothesis examples x 10 mutated containers = 10,000; any exception but BitstreamError fails."""
    rng = np.random.default_rng(seed)
    for _ in range(10):
        try:
            header, chunks = unpack(_mutate(rng))
            if header.get("codebooks") == 4 and isinstance(header.get("frames"), int) and len(chunks) == 1:
                PRIOR.decode(chunks[0], min(header["frames"], 10_000))
        except BitstreamError:
            pass


def test_fuzz_random_bytes_to_every_payload_decoder() -> None:
    """Garbage streams into each raw decoder (escapes, lanes, categorical): BitstreamError or a result."""
    rng = np.random.default_rng(0)
    tables, lengths, offsets = gaussian_tables(torch.tensor([0.3, 2.0, 40.0]))
    pmf = torch.softmax(torch.randn(40, 300, generator=torch.Generator().manual_seed(1)), -1)
    decoders = [
        lambda b, n: PRIOR.decode(b, n),
        lambda b, n: decode_indexed(b, torch.full((n,), n % 3, dtype=torch.int32), tables, lengths, offsets),
        lambda b, n: decode_indexed(b, torch.zeros(n, dtype=torch.int32), tables, lengths, offsets, lanes=2),
        lambda b, n: decode_categorical(b, pmf[:n], lanes=1 + n % 3),
        lambda b, n: AdaptivePrior(50).decode(b, n),
    ]
    for i in range(3000):
        blob = rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
        try:
            decoders[i % len(decoders)](blob, int(rng.integers(0, 40)))
        except BitstreamError:
            pass
