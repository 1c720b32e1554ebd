"""Nearest-codeword search: queries/s and extra peak memory, mediatok vs faiss, torch.cdist, vector-quantize-pytorch.

    python benchmarks/nearest_codeword.py [--threads 2] [--repeat 2] [--sizes 65536,64,16384 ...]

Every (method, size) runs in a fresh subprocess with the same thread count, so that the peak resident memory
(VmHWM, reset through /proc/self/clear_refs after the inputs and the index exist) belongs to that one search.
Methods whose full N x K matrix would not fit in half the available memory are skipped ("n/f").
Needs the `bench` extra (faiss-cpu, vector-quantize-pytorch).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SIZES = [(65536, 8, 16384), (65536, 64, 1024), (65536, 64, 16384), (16384, 256, 100_000)]
METHODS = ["mediatok", "faiss", "cdist", "vqtorch"]
# Bytes per N x K element a method materialises: torch.cdist keeps one float matrix; vector-quantize-pytorch's
# cdist (x2 + y2 - 2xy, clamp, sqrt) holds about three at once.
_MATRIX_BYTES = {"cdist": 4, "vqtorch": 12}


def _mem_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _run_one(method: str, n: int, d: int, k: int, threads: int, repeat: int) -> dict:
    """Time one method on one size inside this (fresh) process; returns seconds and extra peak MB."""
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    codebook = torch.randn(k, d, generator=g)
    if method == "mediatok":
        from mediatok.kernels import nearest_codeword

        def search():
            return nearest_codeword(x, codebook)[0]
    elif method == "faiss":
        import faiss

        faiss.omp_set_num_threads(threads)
        index = faiss.IndexFlatL2(d)
        index.add(codebook.numpy())

        def search():
            return torch.from_numpy(index.search(x.numpy(), 1)[1][:, 0])
    elif method == "cdist":

        def search():
            return torch.cdist(x, codebook).argmin(1)
    elif method == "vqtorch":
        from vector_quantize_pytorch.vector_quantize_pytorch import cdist as vq_cdist

        def search():
            # EuclideanCodebook's search: dist = -cdist(flatten, embed), then the argmax
            return (-vq_cdist(x[None], codebook[None]))[0].argmax(-1)
    else:
        raise ValueError(f"unknown method {method!r}")
    with torch.no_grad():
        # warm-up on a slice (numba compilation, BLAS buffers), then reset the peak
        x_full = x
        x = x_full[:256]
        search()
        x = x_full
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _mem_kb("VmRSS")
        times, result = [], None
        for _ in range(repeat):
            t = time.perf_counter()
            result = search()
            times.append(time.perf_counter() - t)
        peak = _mem_kb("VmHWM")
    return {"seconds": min(times), "extra_mb": (peak - base) / 1024, "checksum": int(result[:1000].sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per cell; the best is reported")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--sizes", nargs="*", help="N,D,K triples (default: the four of issue 3)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, n, d, k = args.child.split(",")
        print(json.dumps(_run_one(method, int(n), int(d), int(k), args.threads, args.repeat)))
        return
    sizes = [tuple(int(v) for v in s.split(",")) for s in args.sizes] if args.sizes else SIZES
    methods = args.methods.split(",")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    print(f"threads={args.threads} repeat={args.repeat} cpu={os.cpu_count()} cores, best of {args.repeat}")
    print("| N, D, K | method | queries/s | seconds | extra peak MB |")
    print("|---|---|---:|---:|---:|")
    for n, d, k in sizes:
        checks = {}
        for method in methods:
            need = _MATRIX_BYTES.get(method, 0) * n * k
            if need and need > 0.5 * _available_bytes():
                print(f"| {n}, {d}, {k} | {method} | n/f | n/f | needs ~{need / 2**30:.1f} GB |", flush=True)
                continue
            # -P: keep benchmarks/ off sys.path (its scripts would shadow stdlib modules such as tokenize)
            cmd = [sys.executable, "-P", __file__, "--child", f"{method},{n},{d},{k}", "--threads", str(args.threads)]
            cmd += ["--repeat", str(args.repeat)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(f"| {n}, {d}, {k} | {method} | failed | | {proc.stderr.strip()[-200:]!r} |", flush=True)
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            checks[method] = r["checksum"]
            print(
                f"| {n}, {d}, {k} | {method} | {n / r['seconds']:,.0f} | {r['seconds']:.3f} | {r['extra_mb']:.1f} |",
                flush=True,
            )
        if len(set(checks.values())) > 1:
            print(f"  note: index checksums differ between methods at {n},{d},{k}: {checks}", flush=True)


if __name__ == "__main__":
    main()
