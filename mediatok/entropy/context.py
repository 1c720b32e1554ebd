"""ContextBottleneckModel: continuous latents (C, H, W) coded with tables chosen by their coded neighbours.

    y (C, H, W) --round(y - median_c)--> symbols s --in predicted channels, s minus its spatial prediction--> t
        --table (c, context(t's coded neighbours))--> rANS payload
    payload --decode symbol by symbol, each context from the values decoded before it--> t
        --add the predictions back, in raster order--> s + median_c

A factorized entropy model (CompressAI's EntropyBottleneck) gives every value of channel c one distribution,
fixed for all images and places: a flat sky pays nearly as much per zero as a textured field. Here the table
also depends on how active the already-coded neighbourhood is (the values to the left, above, above-left,
above-right, two to the left, two above, and the same place in the three previous channels, weighted; in 24
half-octave classes; `_kernels.neighbour_context`), a backward-adaptive context as in JPEG 2000's or ECECOW's
coefficient coders. Nothing is sent for it and no network runs to decode it: the tables are integer counts fitted
on training latents (`fit`) and shipped with the model, so decoding is bit-exact on every machine. Measured on 11
held-out 512 px crops (3-level CDF 9/7 packets, full-rank PCA, step 64): 0.539 bit/pixel with one table per
channel, 0.361 with 12 whole-octave contexts of the four nearest neighbours and one channel. The wider
neighbourhood and half octaves took a further 8 % (step 48) and 5 % (step 16) off image-wavelet's bits.

Channels of low frequencies are small thumbnails of the image, and their values follow their neighbours'. In
those channels the coder codes the residual of JPEG-LS's median edge predictor (from the left, top and top-left
values; `_kernels.predict_residuals`), and the contexts are those of the residuals. `fit` chooses the channels:
those whose training latents cost fewer bits predicted. With image-wavelet v2's latents and contexts, at the same
PSNR the payloads went from 0.508 bit/pixel to 0.349 at step 48, and from 1.229 to 1.027 at step 16 (11 held-out
crops; channels 0-3 chosen, and one or two more). Most of the gain was in the first three channels, which had
cost 41 % of the bits.

Coding order: channel by channel, raster order inside a channel, one rANS lane. Values outside a channel's table
range go out as escapes (bypass bits), as in CompressAI's layout.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from mediatok.entropy import _kernels as K
from mediatok.entropy._checks import check_keys, state_float, state_int
from mediatok.entropy.bottleneck import MAX_SYMBOLS
from mediatok.entropy.cdf import quantize_pmf
from mediatok.entropy.coder import _as_data, _check_precision, _decode_status, check_cdf, encode_indexed
from mediatok.errors import BitstreamError

MAX_CONTEXTS = 32
MAX_TABLE_VALUES = 1024  # values per channel's table (centred on zero); the rest are escapes
# The escape symbol keeps at least this share of every table, so that no symbol is nearly free (>= 0.0014 bits):
# a floor under the bound on how many values a payload can declare (see max_symbols), at a cost of at most
# about 0.004 bit/pixel on the flattest images (3 latent values per pixel).
MIN_ESCAPE_SHARE = 2.0**-10


def symbols_of(y: Tensor, medians: Tensor) -> np.ndarray:
    """Latents (C, H, W) -> int64 symbols round(y - median_c), as CompressAI's EntropyBottleneck rounds them."""
    out = y.detach().cpu().clone()
    out -= medians.to(out.dtype).reshape(-1, 1, 1)
    return torch.round(out).long().numpy()


def residuals_of(symbols: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Symbols (C, H, W) with the channels where predicted[c] replaced by their spatial prediction residuals."""
    s = np.ascontiguousarray(symbols, dtype=np.int64)
    if not predicted.any():
        return s
    out = np.empty_like(s)
    K.predict_residuals(s, np.ascontiguousarray(predicted, dtype=np.bool_), out)
    return out


def contexts_of(symbols: np.ndarray, num_contexts: int) -> np.ndarray:
    """Table index c * num_contexts + context of every symbol of (C, H, W), flattened in coding order (int32).
    The encoder knows every symbol up front, so it computes them in one pass (`_kernels.context_indexes`); the
    decoder computes the same contexts symbol by symbol (`_kernels.neighbour_context`)."""
    s = np.ascontiguousarray(symbols, dtype=np.int64)
    out = np.empty(s.size, np.int32)
    K.context_indexes(s, num_contexts, out)
    return out


class ContextBottleneckModel:
    """Chunk-level entropy model for float latents (C, H, W): per-channel medians, C x num_contexts integer tables.

    model = ContextBottleneckModel.fit(latents, medians)        # latents: (C, H, W) tensors of training images
    blob = model.encode(y); y_hat = model.decode(blob, tuple(y.shape))
    """

    kind = "context"

    def __init__(self, cdf: Tensor, cdf_lengths: Tensor, offsets: Tensor, medians: Tensor, num_contexts: int,
                 precision: int = 16, predicted: Tensor | None = None) -> None:
        self.precision = _check_precision(int(precision))
        if isinstance(num_contexts, bool) or not 1 <= int(num_contexts) <= MAX_CONTEXTS:
            raise ValueError(f"num_contexts must be an int in [1, {MAX_CONTEXTS}], got {num_contexts!r}")
        self.num_contexts = int(num_contexts)
        self.medians = torch.as_tensor(medians).detach().cpu().reshape(-1)
        if not self.medians.is_floating_point() or not torch.isfinite(self.medians).all():
            raise ValueError("ContextBottleneckModel 'medians' must be finite floats (C,)")
        c = self.medians.shape[0]
        predicted = torch.zeros(c, dtype=torch.bool) if predicted is None else torch.as_tensor(predicted)
        if predicted.shape != (c,) or predicted.is_floating_point():
            raise ValueError(f"ContextBottleneckModel 'predicted' must be ({c},) booleans, got {predicted.dtype} "
                             f"of shape {tuple(predicted.shape)}")
        self.predicted = predicted.bool()
        self.cdf = torch.as_tensor(cdf).to(torch.int32).contiguous()  # (C * num_contexts, Lmax)
        self.cdf_lengths = torch.as_tensor(cdf_lengths).to(torch.int32).reshape(-1)
        self.offsets = torch.as_tensor(offsets).to(torch.int32).reshape(-1)
        t = c * self.num_contexts
        if self.cdf.ndim != 2 or self.cdf.shape[0] != t or self.cdf_lengths.shape[0] != t or self.offsets.shape[0] != t:
            raise ValueError(f"ContextBottleneckModel expects 'cdf' ({t}, L), 'cdf_lengths' ({t},) and 'offsets' "
                             f"({t},) for {c} channels x {self.num_contexts} contexts; got {tuple(self.cdf.shape)}, "
                             f"{tuple(self.cdf_lengths.shape)}, {tuple(self.offsets.shape)}")
        if int(self.cdf_lengths.min()) < 3 or int(self.cdf_lengths.max()) > self.cdf.shape[1]:
            raise ValueError(f"ContextBottleneckModel 'cdf_lengths' must lie in [3, {self.cdf.shape[1]}]")
        check_cdf(self.cdf.numpy(), self.precision, self.cdf_lengths.numpy(), "ContextBottleneckModel 'cdf'")
        freq = (self.cdf[:, 1:] - self.cdf[:, :-1]).double()
        inside = torch.arange(freq.shape[1]) < (self.cdf_lengths - 1)[:, None].long()
        top = torch.where(inside, freq, torch.zeros(())).max(1).values
        cheapest = (self.precision - top.log2()).clamp_min(0).reshape(-1, self.num_contexts)  # (C, contexts)
        # every position holds one value of each channel: the fewest bits a position can cost (the broad low
        # channels dominate it, which bounds a hostile shape far tighter than the cheapest symbol of all)
        self._cheapest_position = float(cheapest.min(1).values.sum())
        self._lut = None  # the decoder's slot lookup, built on first decode

    @property
    def num_channels(self) -> int:
        return int(self.medians.shape[0])

    @classmethod
    def fit(cls, latents: list[Tensor], medians: Tensor, num_contexts: int = 24, precision: int = 16,
            prior_weight: float = 4.0, predict: bool | Tensor = True) -> ContextBottleneckModel:
        """Tables from training latents, each (C, H, W) (one per image, rounded here as the coder rounds them).

        Each channel's table covers the values its symbols took (at most MAX_TABLE_VALUES, centred on zero);
        a context's counts are smoothed towards the channel's overall distribution with `prior_weight`
        pseudo-counts, so rare contexts fall back on the channel's statistics. `predict`: True chooses the
        channels coded as prediction residuals (those that cost fewer bits so on these latents), False none,
        or a (C,) boolean mask."""
        medians = torch.as_tensor(medians).detach().float().cpu().reshape(-1)
        c = medians.shape[0]
        if not latents:
            raise ValueError("fit needs at least one latent array")
        syms = []
        for y in latents:
            if y.ndim != 3 or y.shape[0] != c:
                raise ValueError(f"latents must be (C={c}, H, W), got {tuple(y.shape)}")
            syms.append(symbols_of(y, medians))

        def fit_tables(mask: Tensor) -> ContextBottleneckModel:
            return cls._fit_tables(syms, medians, mask, num_contexts, precision, prior_weight)

        if not isinstance(predict, bool):
            return fit_tables(torch.as_tensor(predict))
        if not predict:
            return fit_tables(torch.zeros(c, dtype=torch.bool))
        plain, predicted = fit_tables(torch.zeros(c, dtype=torch.bool)), fit_tables(torch.ones(c, dtype=torch.bool))
        return fit_tables(torch.from_numpy(predicted.channel_bits(syms) < plain.channel_bits(syms)))

    @classmethod
    def _fit_tables(cls, syms: list[np.ndarray], medians: Tensor, predicted: Tensor, num_contexts: int,
                    precision: int, prior_weight: float) -> ContextBottleneckModel:
        """fit's tables for symbols (C, H, W) with the given channels predicted."""
        c = medians.shape[0]
        if predicted.shape != (c,) or predicted.is_floating_point():
            raise ValueError(f"predict must be True, False or ({c},) booleans, got shape {tuple(predicted.shape)}")
        mask = predicted.bool().numpy()
        syms = [residuals_of(s, mask) for s in syms]
        lo = np.min([s.reshape(c, -1).min(1) for s in syms], 0)
        hi = np.max([s.reshape(c, -1).max(1) for s in syms], 0)
        half = MAX_TABLE_VALUES // 2
        lo, hi = np.maximum(lo, -half), np.minimum(hi, half - 1)
        n = hi - lo + 1  # (C,) values per table of the channel
        width = int(n.max())
        counts = np.zeros(c * num_contexts * (width + 1))  # (C, contexts, values + the escape column), flat
        for s in syms:
            idx = contexts_of(s, num_contexts).astype(np.int64)  # c * num_contexts + context
            ch = idx // num_contexts
            v = s.reshape(-1) - lo[ch]
            v = np.where((v < 0) | (v >= n[ch]), width, v)
            counts += np.bincount(idx * (width + 1) + v, minlength=counts.shape[0])
        counts = counts.reshape(c, num_contexts, width + 1)
        valid = np.arange(width + 1)[None] < n[:, None]  # (C, W+1) the escape column is added below
        channel = counts.sum(1)  # (C, W+1)
        channel_pmf = (channel[:, :width] + 0.5 * valid[:, :width]) / (channel[:, :width] + 0.5 * valid[:, :width]).sum(
            1, keepdims=True)
        pmf = counts[:, :, :width] + prior_weight * channel_pmf[:, None]  # (C, X, W)
        pmf = pmf * valid[:, None, :width]
        body = pmf.sum(2, keepdims=True)
        escape = np.maximum(counts[:, :, width:] + 0.5, MIN_ESCAPE_SHARE / (1 - MIN_ESCAPE_SHARE) * body)
        table = np.zeros((c, num_contexts, width + 1))
        col = np.arange(width + 1)
        table[:, :, :width] = pmf
        # the escape goes right after each channel's n values (CompressAI's layout: values, escape, end)
        table = np.where(col[None, None] == n[:, None, None], escape, table)
        flat = torch.from_numpy(table.reshape(c * num_contexts, width + 1))
        lengths = torch.from_numpy(np.repeat(n + 1, num_contexts))
        cdf = quantize_pmf(flat, precision, lengths=lengths)  # (T, W+2)
        offsets = torch.from_numpy(np.repeat(lo, num_contexts)).to(torch.int32)
        return cls(cdf, (lengths + 1).to(torch.int32), offsets, medians, num_contexts, precision, predicted)

    def channel_bits(self, symbols: list[np.ndarray]) -> np.ndarray:
        """Ideal code length in bits of each channel (C,), summed over symbol arrays (C, H, W) as `symbols_of`
        gives them (escapes counted by their table symbol, without their bypass bits)."""
        total = np.zeros(self.num_channels)
        cdf, offsets, lengths = self.cdf.numpy().astype(np.int64), self.offsets.numpy(), self.cdf_lengths.numpy()
        for s in symbols:
            t = residuals_of(s, self.predicted.numpy())
            table = contexts_of(t, self.num_contexts)
            v = t.reshape(-1) - offsets[table]
            n = lengths[table] - 2  # values in the table; the escape symbol comes next
            v = np.where((v < 0) | (v >= n), n, v)
            freq = cdf[table, v + 1] - cdf[table, v]
            total += (self.precision - np.log2(freq)).reshape(t.shape).sum((1, 2))
        return total

    # ---- coding -------------------------------------------------------------------------------------------
    def _check_latent_shape(self, shape: tuple[int, ...], error: type[Exception]) -> None:
        if len(shape) != 3 or shape[0] != self.num_channels:
            raise error(f"latents must be (C={self.num_channels}, H, W), got shape {shape}")

    def encode(self, y: Tensor) -> bytes:
        """Latents y (C, H, W) -> payload bytes."""
        y = torch.as_tensor(y)
        if not y.is_floating_point():
            raise ValueError(f"latents must be a float tensor, got {y.dtype}")
        self._check_latent_shape(tuple(y.shape), ValueError)
        t = residuals_of(symbols_of(y, self.medians), self.predicted.numpy())
        return encode_indexed(t.reshape(-1), contexts_of(t, self.num_contexts), self.cdf, self.cdf_lengths,
                              self.offsets, self.precision)

    def max_symbols(self, num_bytes: int) -> int:
        """Most values a valid num_bytes payload can hold: each position (one value per channel) costs at least
        the sum over channels of their cheapest symbol's bits."""
        budget = 8 * num_bytes + 2 * self.precision + 64
        if self._cheapest_position <= 0:
            return MAX_SYMBOLS
        return min(MAX_SYMBOLS, (int(budget / self._cheapest_position) + 1) * self.num_channels)

    def check_shape(self, num_bytes: int, shape: object) -> tuple[int, ...]:
        """The shape as a tuple, or BitstreamError if it is malformed or holds more than num_bytes can."""
        if not isinstance(shape, (tuple, list, torch.Size)) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise BitstreamError(f"latent shape must be (C, H, W) non-negative ints, got {shape!r}")
        shape = tuple(shape)
        self._check_latent_shape(shape, BitstreamError)
        limit = self.max_symbols(num_bytes)
        if math.prod(shape) > limit:
            raise BitstreamError(f"{num_bytes} payload bytes cannot hold {math.prod(shape)} latent values of shape "
                                 f"{shape} (at most {limit}): the shape or the stream is corrupt")
        return shape

    def decode(self, data: bytes, shape: tuple[int, ...]) -> Tensor:
        """Inverse of encode: dequantized latents (C, H, W) in the medians' dtype. BitstreamError before
        allocating if the payload cannot hold `shape`, or if the stream is truncated or corrupt."""
        shape = self.check_shape(len(data), shape)
        if self._lut is None:
            self._lut = K.slot_lut(self.cdf.numpy(), self.cdf_lengths.numpy(), self.precision)
        out = np.zeros(shape, np.int64)
        _decode_status(K.decode_context(_as_data(data), self.cdf.numpy(), self.cdf_lengths.numpy(),
                                        self.offsets.numpy(), self._lut, self.precision, self.num_contexts, out))
        K.restore_predicted(out, self.predicted.numpy())
        values = torch.from_numpy(out).to(self.medians.dtype)
        values += self.medians.reshape(-1, 1, 1)
        return values

    # ---- state --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        """Integer tables (rows concatenated without their padding: channels' ranges differ by 100x), offsets,
        medians, context count, precision and the predicted channels: safe for safetensors."""
        inside = torch.arange(self.cdf.shape[1])[None] < self.cdf_lengths[:, None]
        return {"cdf": self.cdf[inside].clone(), "cdf_lengths": self.cdf_lengths.clone(),
                "offsets": self.offsets.clone(), "medians": self.medians.clone(),
                "contexts": torch.tensor(self.num_contexts, dtype=torch.int32),
                "precision": torch.tensor(self.precision, dtype=torch.int32),
                "predicted": self.predicted.to(torch.int32)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> ContextBottleneckModel:
        """Rebuild from state_dict() output (untrusted: ValueError naming the bad key)."""
        owner = "ContextBottleneckModel"
        # 'predicted' is required: a state without it was fitted for the narrower contexts of mediatok before
        # prediction existed, and its files would decode to other values under today's contexts
        if isinstance(state, dict) and "contexts" in state and "predicted" not in state:
            raise ValueError(f"{owner} state has no 'predicted': its tables were fitted for an older context "
                             "definition; refit them (ContextBottleneckModel.fit) or re-export the model")
        check_keys(state, {"cdf", "cdf_lengths", "offsets", "medians", "contexts", "precision", "predicted"}, owner)
        flat, lengths = state_int(state, "cdf", 1, owner), state_int(state, "cdf_lengths", 1, owner)
        if lengths.numel() == 0 or int(lengths.min()) < 3 or int(lengths.max()) > MAX_TABLE_VALUES + 2 \
                or int(lengths.long().sum()) != flat.numel():
            raise ValueError(f"{owner} state 'cdf_lengths' must lie in [3, {MAX_TABLE_VALUES + 2}] and sum to the "
                             f"{flat.numel()} entries of 'cdf'")
        precision = int(state_int(state, "precision", 0, owner))
        cdf = torch.full((lengths.numel(), int(lengths.max())), 1 << min(max(precision, 0), 24), dtype=torch.int32)
        cdf[torch.arange(cdf.shape[1])[None] < lengths[:, None].long()] = flat.to(torch.int32)
        predicted = state_int(state, "predicted", 1, owner)
        if predicted.numel() and (int(predicted.min()) < 0 or int(predicted.max()) > 1):
            raise ValueError(f"{owner} state 'predicted' must hold 0 or 1 per channel")
        return cls(cdf, lengths, state_int(state, "offsets", 1, owner), state_float(state, "medians", 1, owner),
                   int(state_int(state, "contexts", 0, owner)), precision, predicted.bool())


__all__ = ["ContextBottleneckModel", "contexts_of", "residuals_of", "symbols_of"]
