"""Entropy coder benchmark: mediatok vs constriction 0.5 (range, ANS), torchac and CompressAI's rANS.

One process, one thread, end to end from torch tensors: each timing includes building that coder's CDFs
from the float model (tables, per-symbol PMFs) and converting inputs the way the library expects them.
    A  1M symbols, 64 indexed Gaussian tables (scales 0.11..20), CompressAI GaussianConditional layout
    B  per-symbol categorical PMFs, K = 1024 (100k symbols) and 4096; plus quantize_pmf alone (the CDFs
       encode_cdf/decode_cdf need), in rows/s, next to constriction's decode of the same PMFs
    C  low entropy, ~0.05 bits/symbol, one static table, 1M symbols
Columns: encode / decode Msymbols/s (best of --repeat), % over the ideal size under the float model
(includes quantising the model to integer CDFs) and, for mediatok, % over the information content
under the integer CDFs it actually coded with (the coder's own overhead).
Usage: .venv/bin/python benchmarks/entropy.py [--repeat 3] [--quick]   (needs the `bench` extra)
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mediatok.entropy import (decode_categorical, decode_cdf, decode_indexed, encode_categorical,  # noqa: E402
                              encode_cdf, encode_indexed, gaussian_tables, quantize_pmf)

torch.set_num_threads(1)
ROWS: list[tuple[str, str, float, float, float, float | None]] = []


def model_bits(symbols: torch.Tensor, cdf: torch.Tensor, precision: int) -> float:
    """Information content of symbols under the integer CDF rows actually coded (per-symbol rows (N, K+1))."""
    freq = (cdf[:, 1:] - cdf[:, :-1]).double()  # (N, K)
    return float(-(freq.gather(1, symbols[:, None].long()).log2() - precision).sum())


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def record(case: str, coder: str, n: int, ideal_bits: float, enc: Callable[[], object],
           dec: Callable[[object], torch.Tensor], size: Callable[[object], int], expect: torch.Tensor,
           repeat: int, coded_bits: float | None = None) -> None:
    try:
        dec(enc())  # warm-up: numba cache loads, torchac/constriction first-call costs
        t_enc, blob = best(enc, repeat)
        t_dec, out = best(lambda: dec(blob), repeat)
    except Exception as e:  # a peer that cannot run is reported, not fatal
        print(f"  {case} {coder}: failed: {type(e).__name__}: {e}")
        return
    ok = torch.equal(torch.as_tensor(np.asarray(out)).reshape(-1).long(), expect.reshape(-1).long())
    over = (8 * size(blob) - ideal_bits) / ideal_bits * 100
    coder_over = None if coded_bits is None else (8 * size(blob) - coded_bits) / coded_bits * 100
    ROWS.append((case, coder + ("" if ok else " (MISMATCH)"), n / t_enc / 1e6, n / t_dec / 1e6, over, coder_over))
    print(f"  {case:<14} {coder:<26} enc {n / t_enc / 1e6:8.3g}  dec {n / t_dec / 1e6:8.3g}  {over:+.3f}%", flush=True)


def _constriction():
    try:
        import constriction
        return constriction
    except ImportError:
        print("constriction not installed: pip install constriction")
        return None


def _torchac():
    try:
        import torchac
        return torchac
    except Exception as e:  # torchac compiles its extension on import
        print(f"torchac unavailable: {type(e).__name__}: {e}")
        return None


def _compressai_ans():
    try:
        from compressai import ans
        return ans
    except Exception as e:
        print(f"compressai.ans unavailable: {e}")
        return None


# ---------------------------------------------------------------------------------------------- A
def case_a(n: int, repeat: int) -> None:
    g = torch.Generator().manual_seed(0)
    scales = torch.exp(torch.linspace(math.log(0.11), math.log(20.0), 64))  # (64,)
    idx = torch.randint(0, 64, (n,), generator=g, dtype=torch.int32)  # (N,) table per symbol
    y = torch.round(torch.randn(n, generator=g) * scales[idx.long()]).long()  # (N,)
    s = scales[idx.long()].double()
    normal = torch.distributions.Normal(0.0, 1.0)
    p = normal.cdf((y + 0.5) / s) - normal.cdf((y - 0.5) / s)
    ideal = float(-p.log2().sum())
    case = "A gauss64 1M"
    print(f"A: {n} symbols, {ideal / n:.3f} bits/symbol ideal")

    for lanes in (1, 4):
        def enc(lanes=lanes):
            tables, lengths, offsets = gaussian_tables(scales)
            return encode_indexed(y, idx, tables, lengths, offsets, lanes=lanes)

        def dec(blob, lanes=lanes):
            tables, lengths, offsets = gaussian_tables(scales)
            return decode_indexed(blob, idx, tables, lengths, offsets, lanes=lanes)

        tables, lengths, offsets = gaussian_tables(scales)
        values = (y - offsets[idx.long()]).clamp(min=0)  # (N,) escapes are rare enough to ignore here
        values = torch.minimum(values, (lengths[idx.long()] - 2).long())
        coded = model_bits(values, tables[idx.long()], 16)
        record(case, f"mediatok lanes={lanes}", n, ideal, enc, dec, len, y, repeat, coded)

    cst = _constriction()
    if cst is not None:
        family = cst.stream.model.QuantizedGaussian(-512, 511)
        means = np.zeros(n)
        sym = y.clamp(-512, 511).to(torch.int32)

        def c_range_enc():
            e = cst.stream.queue.RangeEncoder()
            e.encode(sym.numpy(), family, means, scales[idx.long()].double().numpy())
            return e.get_compressed()

        def c_range_dec(words):
            return cst.stream.queue.RangeDecoder(words).decode(family, means, scales[idx.long()].double().numpy())

        def c_ans_enc():
            e = cst.stream.stack.AnsCoder()
            e.encode_reverse(sym.numpy(), family, means, scales[idx.long()].double().numpy())
            return e.get_compressed()

        def c_ans_dec(words):
            return cst.stream.stack.AnsCoder(words).decode(family, means, scales[idx.long()].double().numpy())

        record(case, "constriction range", n, ideal, c_range_enc, c_range_dec, lambda w: w.nbytes, y, repeat)
        record(case, "constriction ANS", n, ideal, c_ans_enc, c_ans_dec, lambda w: w.nbytes, y, repeat)

    tac = _torchac()
    if tac is not None:
        r = 128
        chunk = 1 << 18  # per-symbol float CDFs of 1M x 258 would need 1 GB: code in 4 chunks

        def tac_cdfs():
            grid = torch.arange(-r, r + 2, dtype=torch.float32) - 0.5  # (Lp,) bin edges
            tab = normal.cdf(grid[None] / scales[:, None])  # (64, Lp)
            return (tab - tab[:, :1]) / (tab[:, -1:] - tab[:, :1])

        def t_enc():
            tab = tac_cdfs()
            sym = (y.clamp(-r, r) + r).to(torch.int16)
            return [tac.encode_float_cdf(tab[idx[i:i + chunk].long()], sym[i:i + chunk]) for i in range(0, n, chunk)]

        def t_dec(blobs):
            tab = tac_cdfs()
            out = [tac.decode_float_cdf(tab[idx[i:i + chunk].long()], b) for i, b in zip(range(0, n, chunk), blobs)]
            return torch.cat(out).long() - r

        record(case, "torchac", n, ideal, t_enc, t_dec, lambda bs: sum(len(b) for b in bs), y, repeat)

    ans = _compressai_ans()
    if ans is not None:
        from compressai.entropy_models import GaussianConditional

        def ca_tables():
            gc = GaussianConditional(scales.tolist())
            gc.update()
            return gc._quantized_cdf.tolist(), gc._cdf_length.tolist(), gc._offset.tolist()

        def ca_enc():
            cdfs, lengths, offsets = ca_tables()
            return ans.RansEncoder().encode_with_indexes(y.tolist(), idx.tolist(), cdfs, lengths, offsets)

        def ca_dec(blob):
            cdfs, lengths, offsets = ca_tables()
            return torch.tensor(ans.RansDecoder().decode_with_indexes(blob, idx.tolist(), cdfs, lengths, offsets))

        record(case, "compressai rANS", n, ideal, ca_enc, ca_dec, len, y, max(1, repeat - 1))


# ---------------------------------------------------------------------------------------------- B
def case_b(k: int, n: int, repeat: int) -> None:
    g = torch.Generator().manual_seed(k)
    pmf = torch.softmax(torch.randn(n, k, generator=g) * 2.5, -1)  # (N, K) float32
    sym = torch.multinomial(pmf, 1, generator=g)[:, 0]  # (N,)
    ideal = float(-pmf.double().gather(1, sym[:, None]).log2().sum())
    case = f"B categ K={k}"
    print(f"B: K={k}, {n} symbols, {ideal / n:.3f} bits/symbol ideal")

    record(case, "mediatok (fused)", n, ideal, lambda: encode_categorical(sym, pmf),
           lambda b: decode_categorical(b, pmf), len, sym, repeat, model_bits(sym, quantize_pmf(pmf), 16))
    record(case, "mediatok P=24 (fused)", n, ideal, lambda: encode_categorical(sym, pmf, 24),
           lambda b: decode_categorical(b, pmf, 24), len, sym, repeat, model_bits(sym, quantize_pmf(pmf, 24), 24))
    record(case, "mediatok quantize_pmf+cdf", n, ideal, lambda: encode_cdf(sym, quantize_pmf(pmf)),
           lambda b: decode_cdf(b, quantize_pmf(pmf)), len, sym, repeat)
    quantize_pmf(pmf[:10])  # warm-up
    t_q, _ = best(lambda: quantize_pmf(pmf), repeat)
    print(f"  {case:<14} {'quantize_pmf alone':<26} {n / t_q / 1e6:8.3g} Mrows/s ({t_q * 1e3:.0f} ms)", flush=True)
    ROWS.append((case, "mediatok quantize_pmf alone (Mrows/s)", n / t_q / 1e6, float("nan"), float("nan"), None))

    cst = _constriction()
    if cst is not None:
        family = cst.stream.model.Categorical(perfect=False)
        s32 = sym.to(torch.int32)

        def r_enc():
            e = cst.stream.queue.RangeEncoder()
            e.encode(s32.numpy(), family, pmf.numpy())
            return e.get_compressed()

        def a_enc():
            e = cst.stream.stack.AnsCoder()
            e.encode_reverse(s32.numpy(), family, pmf.numpy())
            return e.get_compressed()

        record(case, "constriction range", n, ideal, r_enc,
               lambda w: cst.stream.queue.RangeDecoder(w).decode(family, pmf.numpy()), lambda w: w.nbytes, sym, repeat)
        record(case, "constriction ANS", n, ideal, a_enc,
               lambda w: cst.stream.stack.AnsCoder(w).decode(family, pmf.numpy()), lambda w: w.nbytes, sym, repeat)

    tac = _torchac()
    if tac is not None:
        def cdf_float():
            return torch.nn.functional.pad(torch.cumsum(pmf, -1), (1, 0)).clamp_(max=1.0)  # (N, K+1)

        record(case, "torchac", n, ideal, lambda: tac.encode_float_cdf(cdf_float(), sym.to(torch.int16)),
               lambda b: tac.decode_float_cdf(cdf_float(), b), len, sym, repeat)

    ans = _compressai_ans()
    if ans is not None:
        m = min(n, 2000)  # per-symbol tables as Python lists: run on a prefix to bound memory

        def ca_enc():
            cdfs = quantize_pmf(pmf[:m]).tolist()
            return ans.RansEncoder().encode_with_indexes(sym[:m].tolist(), list(range(m)), cdfs, [k + 1] * m, [0] * m)

        def ca_dec(blob):
            cdfs = quantize_pmf(pmf[:m]).tolist()
            return torch.tensor(ans.RansDecoder().decode_with_indexes(blob, list(range(m)), cdfs, [k + 1] * m, [0] * m))

        ideal_m = float(-pmf[:m].double().gather(1, sym[:m, None]).log2().sum())
        record(case, f"compressai rANS ({m} sym)", m, ideal_m, ca_enc, ca_dec, len, sym[:m], repeat)


# ---------------------------------------------------------------------------------------------- C
def case_c(n: int, repeat: int) -> None:
    g = torch.Generator().manual_seed(3)
    probs = torch.tensor([0.995, 0.003, 0.0015, 0.0005])
    sym = torch.multinomial(probs, n, replacement=True, generator=g)  # (N,)
    ideal = float(-probs.double()[sym].log2().sum())
    case = "C low-entropy"
    print(f"C: {n} symbols, {ideal / n:.4f} bits/symbol ideal")

    record(case, "mediatok", n, ideal, lambda: encode_cdf(sym, quantize_pmf(probs)),
           lambda b: decode_cdf(b, quantize_pmf(probs), n=n), len, sym, repeat,
           model_bits(sym, quantize_pmf(probs)[None].expand(n, 5), 16))

    cst = _constriction()
    if cst is not None:
        s32 = sym.to(torch.int32)

        def model():
            return cst.stream.model.Categorical(probs.double().numpy(), perfect=False)

        def r_enc():
            e = cst.stream.queue.RangeEncoder()
            e.encode(s32.numpy(), model())
            return e.get_compressed()

        def a_enc():
            e = cst.stream.stack.AnsCoder()
            e.encode_reverse(s32.numpy(), model())
            return e.get_compressed()

        record(case, "constriction range", n, ideal, r_enc,
               lambda w: cst.stream.queue.RangeDecoder(w).decode(model(), n), lambda w: w.nbytes, sym, repeat)
        record(case, "constriction ANS", n, ideal, a_enc,
               lambda w: cst.stream.stack.AnsCoder(w).decode(model(), n), lambda w: w.nbytes, sym, repeat)

    tac = _torchac()
    if tac is not None:
        def cdf_float():
            return torch.nn.functional.pad(torch.cumsum(probs, 0), (1, 0)).clamp_(max=1.0).expand(n, 5).contiguous()

        record(case, "torchac", n, ideal, lambda: tac.encode_float_cdf(cdf_float(), sym.to(torch.int16)),
               lambda b: tac.decode_float_cdf(cdf_float(), b), len, sym, repeat)

    ans = _compressai_ans()
    if ans is not None:
        def tables():
            return [torch.cat([quantize_pmf(probs), torch.tensor([1 << 16], dtype=torch.int32)]).tolist()]

        # CompressAI's layout needs an escape symbol: the table above gives it frequency 0 (never used)
        def ca_enc():
            t = quantize_pmf(torch.cat([probs, torch.tensor([1e-9])]))
            return ans.RansEncoder().encode_with_indexes(sym.tolist(), [0] * n, [t.tolist()], [6], [0])

        def ca_dec(blob):
            t = quantize_pmf(torch.cat([probs, torch.tensor([1e-9])]))
            return torch.tensor(ans.RansDecoder().decode_with_indexes(blob, [0] * n, [t.tolist()], [6], [0]))

        record(case, "compressai rANS", n, ideal, ca_enc, ca_dec, len, sym, max(1, repeat - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timings are the best of this many runs")
    parser.add_argument("--quick", action="store_true", help="10x fewer symbols (smoke test)")
    parser.add_argument("--cases", default="ABC", help="which cases to run, e.g. B")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    encode_indexed(torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.int32), *gaussian_tables([1.0]))
    if "A" in args.cases:
        case_a(1_000_000 // scale, args.repeat)
    if "B" in args.cases:
        case_b(1024, 100_000 // scale, args.repeat)
        case_b(4096, 5_000 // scale, args.repeat)
    if "C" in args.cases:
        case_c(1_000_000 // scale, args.repeat)
    print("\n| case | coder | encode Msym/s | decode Msym/s | % over ideal (float model) | % over coded model |"
          "\n|---|---|---:|---:|---:|---:|")
    for case, coder, e, d, o, c in ROWS:
        dec, over = ("", "") if math.isnan(d) else (f"{d:.3g}", f"{o:+.3f}")  # quantize_pmf rows: one figure
        print(f"| {case} | {coder} | {e:.3g} | {dec} | {over} | {'' if c is None else f'{c:+.3f}'} |")


if __name__ == "__main__":
    main()
