"""The .mtk container: magic, version, a compact varint header, then chunks with length and CRC32.

    b"MTOK" | version (1 byte) | fields ... | 0x00 | chunk count (varint) | { length (varint) | payload | crc32 }

A field is one tag byte `type << 5 | key` followed by its value. key 1..31 are the known keys of
`KNOWN_KEYS` (append-only: a key's number is part of the format); key 0 means the key's name follows as a
varint-length UTF-8 string. Types: 1 unsigned varint, 2 zigzag varint, 3 str, 4 bytes, 5 float64,
6 tuple of ints (count, then zigzag varints), 7 bool. Lists and tuples of ints come back as tuples.

CRCs chain so every byte is covered: chunk i's CRC is crc32(payload_i, crc of what precedes it), starting
from the CRC of everything before the first chunk; a file without chunks ends with that CRC alone.
A one-chunk file with a typical audio header ({"model": "s16", "sample_rate": 16000, "num_samples": ...,
"codebooks": 8, "frames": 50}) spends about 28 bytes on the container.

unpack never trusts a length: every count and size is checked against the bytes that remain before any
allocation, so truncated, corrupted, foreign or oversized input raises mediatok.BitstreamError.
"""
from __future__ import annotations

import struct
import zlib
from typing import Any

from mediatok.errors import BitstreamError

MAGIC = b"MTOK"
VERSION = 1
MAX_SIZE = 1 << 31  # refuse containers beyond 2 GiB unless the caller raises the limit
KNOWN_KEYS = (  # key number = position + 1; append only
    "model", "model_hash", "modality", "sample_rate", "num_samples", "channels", "codebooks", "frames",
    "codebook_size", "precision", "lanes", "shape", "height", "width", "depth", "prior", "bitrate",
    "coder", "stride", "dtype", "scale", "offset", "backend", "format", "rate",
)
_KEY_ID = {k: i + 1 for i, k in enumerate(KNOWN_KEYS)}
_UINT, _SINT, _STR, _BYTES, _FLOAT, _INTS, _BOOL = range(1, 8)
_TYPE_NAMES = {_UINT: "uint", _SINT: "int", _STR: "str", _BYTES: "bytes", _FLOAT: "float", _INTS: "ints",
               _BOOL: "bool"}
_MAX_KEY = 255


def _varint(n: int, out: bytearray) -> None:
    if n < 0 or n >= 1 << 64:
        raise ValueError(f"varint out of range [0, 2^64): {n}")
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(n: int) -> int:
    return 2 * n if n >= 0 else -2 * n - 1


class _Reader:
    """Bounds-checked reader over untrusted bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.left():
            raise BitstreamError(f"truncated .mtk: {what} needs {n} bytes, {self.left()} left")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str) -> int:
        n = shift = 0
        for _ in range(10):
            b = self.byte(what)
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                if n >= 1 << 64:
                    break
                return n
            shift += 7
        raise BitstreamError(f"corrupted .mtk: {what} is not a valid varint")

    def length(self, what: str, unit: int = 1) -> int:
        n = self.varint(what)
        if n * unit > self.left():
            raise BitstreamError(f"corrupted .mtk: {what} says {n} but only {self.left()} bytes remain")
        return n


def _unzigzag(n: int) -> int:
    return (n >> 1) if not n & 1 else -((n + 1) >> 1)


def _encode_field(key: Any, value: Any, out: bytearray) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"header keys must be non-empty strings, got {key!r}")
    if isinstance(value, bool):
        kind, body = _BOOL, bytes([value])
    elif isinstance(value, int):
        kind, body = (_UINT, value) if value >= 0 else (_SINT, _zigzag(value))
        buf = bytearray()
        _varint(body, buf)
        body = bytes(buf)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        buf = bytearray()
        _varint(len(raw), buf)
        kind, body = _STR, bytes(buf) + raw
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        buf = bytearray()
        _varint(len(raw), buf)
        kind, body = _BYTES, bytes(buf) + raw
    elif isinstance(value, float):
        kind, body = _FLOAT, struct.pack("<d", value)
    elif isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        buf = bytearray()
        _varint(len(value), buf)
        for v in value:
            _varint(_zigzag(v), buf)
        kind, body = _INTS, bytes(buf)
    else:
        raise ValueError(f"header value for {key!r} must be int, bool, str, bytes, float or a list of ints, "
                         f"got {type(value).__name__}")
    kid = _KEY_ID.get(key, 0)
    out.append(kind << 5 | kid)
    if kid == 0:
        raw = key.encode("utf-8")
        if len(raw) > _MAX_KEY:
            raise ValueError(f"header key {key[:20]!r}... is longer than {_MAX_KEY} bytes")
        _varint(len(raw), out)
        out += raw
    out += body


def pack(header: dict[str, Any], chunks: list[bytes]) -> bytes:
    """Serialize a header dict and byte chunks into an .mtk container."""
    if not isinstance(header, dict):
        raise ValueError(f"header must be a dict, got {type(header).__name__}")
    if isinstance(chunks, (bytes, bytearray)):
        raise ValueError("chunks must be a list of bytes objects; wrap a single payload as [payload]")
    out = bytearray(MAGIC)
    out.append(VERSION)
    for key, value in header.items():
        _encode_field(key, value, out)
    out.append(0)
    _varint(len(chunks), out)
    crc = zlib.crc32(out)
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise ValueError(f"chunk {i} must be bytes, got {type(chunk).__name__}")
        start = len(out)
        _varint(len(chunk), out)
        out += chunk
        crc = zlib.crc32(memoryview(out)[start:], crc)  # covers the length and the payload
        out += struct.pack("<I", crc)
    if not chunks:
        out += struct.pack("<I", crc)
    return bytes(out)


def _read_header(r: _Reader) -> dict[str, Any]:
    if r.take(4, "magic") != MAGIC:
        raise BitstreamError("not an .mtk container (missing MTOK magic)")
    version = r.byte("version")
    if version != VERSION:
        raise BitstreamError(f"unsupported .mtk version {version}; this mediatok reads version {VERSION}")
    header: dict[str, Any] = {}
    while True:
        tag = r.byte("header field")
        if tag == 0:
            return header
        kind, kid = tag >> 5, tag & 31
        if kind == 0 or kid > len(KNOWN_KEYS):
            raise BitstreamError(f"corrupted .mtk header: unknown field tag 0x{tag:02x}")
        if kid:
            key = KNOWN_KEYS[kid - 1]
        else:
            n = r.length("header key length")
            if not 0 < n <= _MAX_KEY:
                raise BitstreamError(f"corrupted .mtk header: key length {n}")
            try:
                key = r.take(n, "header key").decode("utf-8")
            except UnicodeDecodeError:
                raise BitstreamError("corrupted .mtk header: key is not UTF-8") from None
        if key in header:
            raise BitstreamError(f"corrupted .mtk header: duplicate key {key!r}")
        if kind == _UINT:
            value: Any = r.varint(key)
        elif kind == _SINT:
            value = _unzigzag(r.varint(key))
        elif kind == _STR:
            try:
                value = r.take(r.length(key), key).decode("utf-8")
            except UnicodeDecodeError:
                raise BitstreamError(f"corrupted .mtk header: {key!r} is not UTF-8") from None
        elif kind == _BYTES:
            value = r.take(r.length(key), key)
        elif kind == _FLOAT:
            value = struct.unpack("<d", r.take(8, key))[0]
        elif kind == _INTS:
            value = tuple(_unzigzag(r.varint(key)) for _ in range(r.length(key)))
        else:
            b = r.byte(key)
            if b > 1:
                raise BitstreamError(f"corrupted .mtk header: bool {key!r} = {b}")
            value = bool(b)
        header[key] = value


def unpack(data: bytes, max_size: int = MAX_SIZE) -> tuple[dict[str, Any], list[bytes]]:
    """Parse an .mtk container into (header, chunks); BitstreamError on anything malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected .mtk bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_size:
        raise BitstreamError(f".mtk container of {len(data)} bytes exceeds max_size={max_size}")
    r = _Reader(data)
    header = _read_header(r)
    count = r.length("chunk count", unit=5)  # each chunk takes >= 1 length byte + 4 CRC bytes
    crc = zlib.crc32(data[:r.pos])
    chunks = []
    for i in range(count):
        start = r.pos
        n = r.length(f"chunk {i} length")
        chunk = r.take(n, f"chunk {i}")
        crc = zlib.crc32(data[start:r.pos], crc)
        if struct.unpack("<I", r.take(4, f"chunk {i} CRC32"))[0] != crc:
            raise BitstreamError(f"corrupted .mtk: CRC32 mismatch in chunk {i}")
        chunks.append(chunk)
    if not count and struct.unpack("<I", r.take(4, "header CRC32"))[0] != crc:
        raise BitstreamError("corrupted .mtk: CRC32 mismatch in header")
    if r.left():
        raise BitstreamError(f"corrupted .mtk: {r.left()} unexpected bytes after the last chunk")
    return header, chunks


def describe(data: bytes) -> str:
    """Human-readable summary of an .mtk container (what `mediatok info FILE` prints)."""
    header, chunks = unpack(data)
    overhead = len(data) - sum(len(c) for c in chunks)
    lines = [f"mediatok container v{VERSION}: {len(data)} bytes, {len(chunks)} chunk(s), "
             f"{overhead} bytes of container overhead"]
    width = max((len(k) for k in header), default=0)
    for key, value in header.items():
        shown = value.hex() if isinstance(value, bytes) else value
        lines.append(f"  {key:<{width}} : {shown}")
    for i, c in enumerate(chunks):
        lines.append(f"  chunk {i}: {len(c)} bytes")
    return "\n".join(lines)
