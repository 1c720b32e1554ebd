"""Header-field fuzzing of real bitstreams: every decode either succeeds or raises BitstreamError, fast, small.

    python tests/codecs/fuzz_headers.py MODEL [--memory-mb 1024]   # prints one JSON line of counts

Time is measured as wall and as CPU seconds of this (one-thread) process; the CPU figure does not depend on
what else the machine runs. Run as a subprocess by test_header_fuzz.py: after the model is loaded and warmed up, the process's address
space is capped at what it uses plus --memory-mb, so a header that makes the decoder ask for gigabytes fails
the run (MemoryError) instead of passing by luck on a big machine.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_INTS = (0, 1, 2, 3, 7, 255, 999_983, 44_101, 65_535, 2**31 - 1, 2**31, 2**40, 2**63 - 1, 2**64 - 1)
HOSTILE_OTHER: tuple[Any, ...] = (-1, -(2**40), "16000", b"\x00" * 3, 1.5, float("nan"), (1, 2, 3), (), True)
HOSTILE_IDS = ("", "../../etc/passwd", "/tmp", ".", "pretrained/speech-16k", "x" * 300, "speech-16k\x00", "s16 ")
EXTRA_KEYS = ("sample_rate", "channels", "num_samples", "height", "width", "depth", "shape", "codebooks",
              "frames", "coder", "prior", "format", "scale", "codebook_size", "rate", "downscale", "unknown-key")


def example_for(codec: Any) -> Path:
    """A bundled example file this model's family reads."""
    from mediatok.codecs import family_of

    suffixes = family_of(codec).io.read_suffixes
    found = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix.lower() in suffixes)
    if not found:
        raise FileNotFoundError(f"no example under examples/ with a suffix in {suffixes}")
    return found[0]


def mutations(header: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, mutated header) for every field: removed, hostile values, wrong types; plus added fields."""
    for key in header:
        yield f"drop {key}", {k: v for k, v in header.items() if k != key}
        values = HOSTILE_IDS if key == "model" else HOSTILE_INTS + HOSTILE_OTHER
        for value in values:
            yield f"{key}={value!r:.40}", {**header, key: value}
    for key in EXTRA_KEYS:
        if key not in header:
            for value in (0, 1, 2**31, 2**40, -1, "raw", (2**20, 2**20)):
                yield f"add {key}={value!r}", {**header, key: value}


def run(model: str, memory_mb: int) -> dict[str, Any]:
    import mediatok
    from mediatok.codecs import family_of
    from mediatok.entropy import pack, unpack

    warnings.simplefilter("ignore")
    codec = mediatok.load(model)
    x, kwargs = family_of(codec).io.read(example_for(codec))
    if "sample_rate" in kwargs:  # a 2 s clip: "within a second" is about the header, not a long file's decode
        x = x[..., : 2 * kwargs["sample_rate"]]
    blob = codec.encode(x, **kwargs)
    header, chunks = unpack(blob)
    codec.decode(blob)  # warm up (numba, allocator) before the cap
    mediatok.decode(blob)
    if memory_mb > 0:
        used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
        cap = used + memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    counts = {"files": 0, "decoded": 0, "rejected": 0, "max_seconds": 0.0, "max_cpu_seconds": 0.0}
    failures = []
    cases = list(mutations(header))
    for label, mutated in cases:
        data = pack(mutated, chunks)
        for decode in (codec.decode, mediatok.decode):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                decode(data)
                counts["decoded"] += 1
            except mediatok.BitstreamError:
                counts["rejected"] += 1
            except BaseException as e:  # noqa: BLE001 - anything else is a finding
                failures.append(f"{label}: {type(e).__name__}: {str(e)[:200]}")
            counts["files"] += 1
            counts["max_seconds"] = max(counts["max_seconds"], time.perf_counter() - t0)
            counts["max_cpu_seconds"] = max(counts["max_cpu_seconds"], time.process_time() - c0)
    counts["failures"] = failures
    return counts


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("model")
    p.add_argument("--memory-mb", type=int, default=1024, help="address space allowed above the loaded model")
    a = p.parse_args()
    print(json.dumps(run(a.model, a.memory_mb)))
    sys.stdout.flush()
