"""Entropy coding for mediatok: a numba rANS coder over integer CDFs, priors for indices, the .mtk container.

    indices (Q, *S) --model.encode--> payload bytes --pack(header, [payload])--> .mtk bytes
    .mtk bytes --unpack--> (header, [payload]) --model.decode(payload, (Q, *S))--> indices (Q, *S)

Entropy models (`models.py`): one interface a Codec calls, EntropyModel (kind, encode(x) -> bytes,
decode(bytes, shape) -> Tensor, state_dict()); FrequencyPrior / MarkovPrior (token grids), RawIndices
(fixed-width packing, no prior), BottleneckModel (`bottleneck.py`, float latents with CompressAI tables);
entropy_model_from_state_dict(state) rebuilds any of them from an untrusted safetensors state.

Coder (`coder.py`, kernels in `_kernels.py`): rANS, 64-bit state, 32-bit words, precision 12..24 bits
(default 16); numba-compiled with an on-disk cache; numpy arrays and CPU tensors go in without copies.
  encode_cdf(symbols[N], cdf[N, L+1]) / decode_cdf(data, cdf)           one CDF row per symbol
  encode_categorical(symbols[N], pmf[N, K]) / decode_categorical       = encode_cdf(s, quantize_pmf(pmf)), fused
  encode_indexed(symbols, indexes, cdf_tables, cdf_lengths, offsets)    CompressAI semantics, escapes
  RangeEncoder / RangeDecoder.decode_next(cdf_row)                      step API for autoregressive priors
  `lanes=k` interleaves k rANS states in one stream (faster on long streams, ~6 bytes more per lane);
  encoder and decoder must use the same `lanes` and `precision`.

CDFs (`cdf.py`): quantize_pmf(pmf) -> int32 CDF (every frequency >= 1, sums to 2^precision, validated);
counts_to_cdf (integer only); gaussian_tables (indexed tables for a scale grid).
Determinism rule: the decoder must derive its CDFs through exactly the encoder's code path: either
integer tables fixed once and shipped (FrequencyPrior, CompressAI `_quantized_cdf`), or quantize_pmf of a
PMF that the decoder recomputes identically (same code, weights, dtype and batch shapes). quantize_pmf is
row-wise and runs on the CPU in fixed-order float64, so it adds no nondeterminism of its own.

Priors (`priors.py`): FrequencyPrior (per-codebook static tables, fit + state_dict for safetensors),
MarkovPrior (tables chosen by the previous frame's symbol through fitted context classes), AdaptivePrior (adaptive counts), ContextPrior protocol + encode_with_context / decode_with_context.

Container (`container.py`): pack(header, chunks) -> bytes, unpack(bytes) -> (header, chunks),
describe(bytes) -> str (for `mediatok info`). mediatok.BitstreamError on any malformed input.

Continuous latents: BottleneckModel (`bottleneck.py`: CompressAI's tables, one per channel) and
ContextBottleneckModel (`context.py`: tables chosen by the magnitudes of already-coded neighbours, fitted counts).

CompressAI (`compressai_adapter.py`): compress_entropy_model / decompress_entropy_model put an
EntropyBottleneck's or GaussianConditional's symbols into the same container.
"""
from __future__ import annotations

from mediatok.entropy.cdf import counts_to_cdf, gaussian_tables, quantize_pmf
from mediatok.entropy.coder import (RangeDecoder, RangeEncoder, decode_categorical, decode_cdf, decode_indexed,
                                    encode_categorical, encode_cdf, encode_indexed)
from mediatok.entropy.container import describe, pack, unpack
from mediatok.entropy.models import (BottleneckModel, ContextBottleneckModel, EntropyModel, RawIndices,
                                     entropy_model_from_state_dict)
from mediatok.entropy.priors import (AdaptivePrior, ContextPrior, FrequencyPrior, MarkovPrior, decode_with_context,
                                     encode_with_context, prior_from_state_dict)

__all__ = [
    "AdaptivePrior", "BottleneckModel", "ContextBottleneckModel", "ContextPrior", "EntropyModel", "FrequencyPrior", "MarkovPrior",
    "RangeDecoder", "RangeEncoder", "RawIndices", "counts_to_cdf", "entropy_model_from_state_dict",
    "decode_categorical", "decode_cdf", "decode_indexed", "decode_with_context", "describe",
    "encode_categorical", "encode_cdf", "encode_indexed", "encode_with_context", "gaussian_tables", "pack",
    "prior_from_state_dict", "quantize_pmf", "unpack",
]
