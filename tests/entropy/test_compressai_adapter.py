"""CompressAI EntropyBottleneck / GaussianConditional latents in .mtk containers, both backends."""
from __future__ import annotations

import subprocess
import sys
import textwrap

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


def test_huge_declared_shape_is_refused_fast_and_small() -> None:
    """A container declaring 2^27 latents with a few payload bytes: BitstreamError within a second, under an
    address-space limit of 256 MiB above what the process already holds (the old code allocated 1 GiB)."""
    script = textwrap.dedent("""
        import resource, time, torch
        from compressai.entropy_models import EntropyBottleneck
        from mediatok import BitstreamError
        from mediatok.entropy import pack
        from mediatok.entropy.compressai_adapter import compress_entropy_model, decompress_entropy_model
        torch.manual_seed(0)
        eb = EntropyBottleneck(8).eval()
        eb.update(force=True)
        decompress_entropy_model(eb, compress_entropy_model(eb, torch.randn(1, 8, 4, 4)))  # warm: numba, imports
        for backend in ("mediatok", "compressai"):
            blob = pack({"coder": "eb", "backend": backend, "shape": (1, 8, 4096, 4096)}, [b"\\x01\\x02\\x03\\x04"])
            vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
            resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.RLIM_INFINITY))
            start = time.perf_counter()
            try:
                decompress_entropy_model(eb, blob)
            except BitstreamError as e:
                assert "cannot hold" in str(e), e
            else:
                raise AssertionError("no BitstreamError")
            assert time.perf_counter() - start < 1.0
            resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
