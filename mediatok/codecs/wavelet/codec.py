"""The wavelet codecs: images or audio <-> continuous latents (N, *s) <-> entropy-coded .mtk bytes, at several rates.

    image | audio --prepare (the image / audio family's checks, pad to the stride)--> x
        --tiles or chunks with context--> WaveletAutoencoder.encode_latents(x, rate) --> y_r (N, *s)
        --BottleneckModel of rate r (round around the medians, integer CDF tables)--> payload
        --pack(header: the media's facts + "rate" unless the default)--> .mtk bytes
    .mtk --check_facts--> (N, *s) --BottleneckModel.decode (bounded by the payload)--> y_r_hat --decode_latents-->
        --restore (crop, convert back)--> the encoded kind at its size

`latent(x)` / `from_latent(z)` give the dequantized latents a downstream model learns on (what the file stores);
`tokenize(x)` gives the same values as integer symbols (rounded around the entropy model's medians), for models
that want discrete inputs. Each rate has its own integer tables, fixed at export and stored in model.safetensors
("prior.*" for the default rate, "prior@<r>.*" for the others), so decoding never depends on float math being
the same on two machines. An image model's tables are a ContextBottleneckModel fitted on training latents (each
value's table chosen by its coded neighbours: 36-39 % fewer bits than the bottleneck's one table per channel);
the bottleneck's own tables (BottleneckModel) serve audio and a network fresh from training.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mediatok.codecs.audio.codec import SpeechCodec, chunked
from mediatok.codecs.base import Codec, Prepared, header_int
from mediatok.codecs.image.codec import UINT8_RGB, image_facts, image_to_tensor, restore_image, tiles
from mediatok.codecs.wavelet.model import WaveletAutoencoder, WaveletAutoencoderConfig, round_latents
from mediatok.entropy.bottleneck import MAX_SYMBOLS, BottleneckModel
from mediatok.entropy.context import ContextBottleneckModel

MAX_SYMBOL = 1 << 20  # |integer latent symbol| accepted by detokenize / from_latent


class WaveletImageAutoencoder(WaveletAutoencoder):
    """The image wavelet network (2-D packets over RGB); a class of its own so that training knows its family."""

    def __init__(self, cfg: WaveletAutoencoderConfig | None = None) -> None:
        cfg = cfg or WaveletAutoencoderConfig()
        if cfg.dims != 2:
            raise ValueError(f"an image wavelet network has dims=2, got {cfg.dims}")
        super().__init__(cfg)


class WaveletAudioAutoencoder(WaveletAutoencoder):
    """The audio wavelet network (1-D packets over mono waveforms at cfg.sample_rate)."""

    def __init__(self, cfg: WaveletAutoencoderConfig | None = None) -> None:
        cfg = cfg or WaveletAutoencoderConfig(dims=1, channels=1, levels=5, latent_channels=8, offset=0.0,
                                              sample_rate=16000)
        if cfg.dims != 1 or cfg.channels != 1 or cfg.sample_rate < 1:
            raise ValueError(f"an audio wavelet network has dims=1, channels=1 and a sample_rate, got {cfg}")
        super().__init__(cfg)


def bottleneck_models(model: WaveletAutoencoder, fit_quantiles: bool = False) -> dict[int, BottleneckModel]:
    """Integer tables of every rate's entropy bottleneck, derived from the network's current weights; with
    `fit_quantiles` (export does it), each bottleneck's quantiles are first fitted to its learnt density."""
    out = {}
    for r, eb in enumerate(model.bottlenecks):
        if fit_quantiles:
            fit_bottleneck_quantiles(eb)
        eb.update(force=True)
        out[r] = BottleneckModel.from_module(eb)
    return out


def fit_bottleneck_quantiles(eb: Any, steps: int = 3000, lr: float = 0.1) -> float:
    """Fit an EntropyBottleneck's quantiles (median and tails, which fix its tables' range) to its density by
    minimising CompressAI's aux loss alone; returns the final loss.

    Training moves the quantiles at the codec's learning rate, far too slowly for a short run: after 6000 steps
    they still bounded values to +-11 where the latents reach +-200, so most symbols were escapes (slow, and 30 %
    more bits). The density is fixed here, so this is a small, fast problem (about 5 s for 48 channels)."""
    q = eb.quantiles
    opt = torch.optim.Adam([q], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            loss = eb.loss()
            loss.backward()
            opt.step()
    return float(loss.detach())


class _RateCoding:
    """What both wavelet codecs share: a rate index in the header, one BottleneckModel per rate, float latents,
    integer symbols for `tokenize`. Mixed in before the media's `Codec` subclass."""

    model: WaveletAutoencoder

    def _init_rates(self, entropy_model: Any, rate_priors: dict[int, Any] | None) -> None:
        r_default = self.model.rate_index(None)
        priors = {int(r): p for r, p in (rate_priors or {}).items()}
        if entropy_model is not None:
            priors[r_default] = entropy_model
        bad = sorted(set(priors) - set(range(self.model.cfg.num_rates)))
        if bad:
            raise ValueError(f"entropy models given for rates {bad}; this model has {self.model.cfg.num_rates}")
        if len(priors) < self.model.cfg.num_rates:  # a network fresh from training: tables from its bottlenecks
            derived = bottleneck_models(self.model)
            priors = {**derived, **priors}
        n = self.model.cfg.latent_channels
        for r, p in priors.items():
            if isinstance(p, ContextBottleneckModel):  # contexts over (C, H, W) grids: images only
                fits = self.model.cfg.dims == 2 and p.num_channels == n
            else:
                fits = isinstance(p, BottleneckModel) and p.num_tables == n
            if not fits:
                kinds = "a BottleneckModel or ContextBottleneckModel" if self.model.cfg.dims == 2 else "a BottleneckModel"
                raise ValueError(f"rate {r} needs {kinds} over {n} latent channels, got {type(p).__name__}")
        self.rate_priors = priors
        self.entropy_model = priors[r_default]

    @property
    def num_rates(self) -> int:
        return self.model.cfg.num_rates

    @property
    def codebook_size(self) -> int:
        raise AttributeError(f"{type(self).__name__} codes continuous latents: it has no codebook (see latent())")

    def _rate_fact(self, rate: int | None) -> dict[str, int]:
        r = self.model.rate_index(rate)
        return {} if r == self.model.rate_index(None) else {"rate": r}

    def _rate_from_header(self, header: dict[str, Any]) -> dict[str, int]:
        if "rate" not in header:
            return {}
        return {"rate": header_int(header, "rate", None, 0, self.model.cfg.num_rates - 1)}

    def code_options(self, facts: dict[str, Any]) -> dict[str, Any]:
        return {"rate": facts.get("rate", self.model.rate_index(None))}

    def _coder(self, rate: int | None = None) -> BottleneckModel:
        return self.rate_priors[self.model.rate_index(rate)]

    def max_positions(self, payload_bytes: int, **options: Any) -> int:
        # A run of near-certain zeros costs far less than a bit per position, so the bound is the coder's own:
        # BottleneckModel.decode checks the declared shape against the payload before allocating anything.
        return MAX_SYMBOLS

    def entropy_state(self) -> dict[str, Tensor]:
        r_default = self.model.rate_index(None)
        state = {f"prior.{k}": v for k, v in self.rate_priors[r_default].state_dict().items()}
        for r, prior in self.rate_priors.items():
            if r != r_default:
                state.update({f"prior@{r}.{k}": v for k, v in prior.state_dict().items()})
        return state

    def load_extra_priors(self, states: dict[str, Any]) -> None:
        for tag, prior in states.items():
            if not tag.isdigit() or int(tag) >= self.model.cfg.num_rates:
                raise ValueError(f"checkpoint holds an entropy model for rate {tag!r}; this model has rates "
                                 f"0..{self.model.cfg.num_rates - 1}")
            self.rate_priors[int(tag)] = prior

    # ---- latents for learning -----------------------------------------------------------------------------
    def latent(self, x: Any, rate: int | None = None, **kwargs: Any) -> Tensor:
        """Media -> the dequantized latents (N, *s) that the bitstream at `rate` stores (float32)."""
        r = self.model.rate_index(rate)
        prepared = self.prepare(x, rate=r, **kwargs)
        with self._threads(), torch.no_grad():
            y = self.encode_latents(prepared.x.to(self.device), rate=r).cpu()
        return self._round(y, r).float()

    def from_latent(self, z: Tensor, rate: int | None = None) -> Any:
        """Latents (N, *s) as `latent` returns them (any float values; they are rounded as a file's would be) -> media."""
        r = self.model.rate_index(rate)
        z = torch.as_tensor(z)
        if not z.is_floating_point() or z.ndim < 2 or z.shape[0] != self.model.cfg.latent_channels:
            raise ValueError(f"expected float latents ({self.model.cfg.latent_channels}, {self.token_layout}), "
                             f"got {z.dtype} {tuple(z.shape)}")
        if not torch.isfinite(z).all() or float(z.abs().max()) > MAX_SYMBOL:
            raise ValueError(f"latents must be finite and within +-{MAX_SYMBOL}")
        y = self._round(z.float().cpu(), r)
        return self._reconstruct(y, {**self.default_facts(y), **self._rate_fact(r)})

    def _round(self, y: Tensor, r: int) -> Tensor:
        """Latents (N, *s) -> the values a file stores at rate r: integers around the medians, and the rate's
        deadzone (`WaveletAutoencoderConfig.deadzone`) in the channels its coder does not predict. Predicted
        channels are thumbnails whose values are not centred on zero: a deadzone there would only bias them."""
        shape = (-1, *([1] * (y.ndim - 1)))
        prior = self.rate_priors[r]
        predicted = getattr(prior, "predicted", None)
        return round_latents(y, prior.medians.float().reshape(shape), self.model.deadzone(r),
                             None if predicted is None else predicted.to(y.device).reshape(shape))

    def tokenize(self, x: Any, rate: int | None = None, **kwargs: Any) -> Tensor:
        """Media -> int64 symbols (N, *s): the latents rounded around the rate's medians (what the file codes)."""
        r = self.model.rate_index(rate)
        y = self.latent(x, r, **kwargs)
        medians = self.rate_priors[r].medians.float().reshape(-1, *([1] * (y.ndim - 1)))
        return torch.round(y - medians).long()

    def detokenize(self, tokens: Any, rate: int | None = None) -> Any:
        """int symbols (N, *s) from `tokenize` -> media."""
        tokens = self.check_tokens(tokens)
        r = self.model.rate_index(rate)
        medians = self.rate_priors[r].medians.float().reshape(-1, *([1] * (tokens.ndim - 1)))
        y = tokens.float() + medians
        return self._reconstruct(y, {**self.default_facts(y), **self._rate_fact(r)})

    def check_tokens(self, tokens: Any, codebook_size: int | None = None) -> Tensor:
        """Integer symbols (N, *s) with N latent channels and |values| <= MAX_SYMBOL, as int64."""
        tokens = torch.as_tensor(tokens)
        n = self.model.cfg.latent_channels
        if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
            raise TypeError(f"tokens must be integers, got {tokens.dtype}")
        if tokens.ndim != self.model.cfg.dims + 1 or tokens.shape[0] != n or 0 in tokens.shape:
            raise ValueError(f"expected tokens of shape ({n}, {self.token_layout}), got {tuple(tokens.shape)}")
        if int(tokens.abs().max()) > MAX_SYMBOL:
            raise ValueError(f"tokens must lie within +-{MAX_SYMBOL}")
        return tokens.long().cpu()


class WaveletImageCodec(_RateCoding, Codec):
    """Images <-> latents (N, H / 8, W / 8) <-> .mtk bytes, at one of the network's rates (`rate=`, default the
    highest). Inputs and outputs as the image family's: uint8 (H, W, 3) / (H, W), float (3, H, W), PIL, path."""

    family = "image-wavelet"
    modality = "image"
    model_class = WaveletImageAutoencoder
    token_layout = "h, w"

    def __init__(self, model: WaveletImageAutoencoder, entropy_model: Any = None, *, name: str = "image-wavelet",
                 short_id: str | None = None, model_hash: bytes = b"", num_threads: int | None = None,
                 rate_priors: dict[int, Any] | None = None, tile: int = 64, encode_tile: int = 256,
                 margin: int = 8) -> None:
        super().__init__(model, None, name=name, short_id=short_id, model_hash=model_hash, num_threads=num_threads)
        if min(tile, encode_tile) < 1 or margin < 0:
            raise ValueError(f"tiles must be >= 1 and margin >= 0 latent positions, got tile={tile}, "
                             f"encode_tile={encode_tile}, margin={margin}")
        # The near-linear encoder holds a few copies of its tile (2048 px a side: ~150 MB); the deep decoder's
        # activations are 8x wider than the latents, so it decodes smaller tiles.
        self.tile, self.encode_tile, self.margin = int(tile), int(encode_tile), int(margin)
        self._init_rates(entropy_model, rate_priors)

    @classmethod
    def build_model(cls, config: dict[str, Any]) -> WaveletImageAutoencoder:
        return WaveletImageAutoencoder(WaveletAutoencoderConfig.from_dict(config))

    @property
    def stride(self) -> int:
        return self.model.cfg.stride

    def prepare(self, x: Any, rate: int | None = None) -> Prepared:
        """Any supported image -> float (3, H', W') in [0, 1], replicate-padded to multiples of the stride."""
        facts_rate = self._rate_fact(rate)  # ValueError for a bad rate before any pixel is touched
        kind, img = image_to_tensor(x)
        h, w = img.shape[1:]
        f = self.stride
        if h % f or w % f:
            img = F.pad(img[None], (0, -w % f, 0, -h % f), mode="replicate")[0]
        facts: dict[str, Any] = {"height": h, "width": w}
        if kind != UINT8_RGB:
            facts["format"] = kind
        return Prepared(img.contiguous(), {**facts, **facts_rate})

    def check_facts(self, header: dict[str, Any]) -> dict[str, Any]:
        return {**image_facts(header), **self._rate_from_header(header)}

    def latent_shape(self, facts: dict[str, Any]) -> tuple[int, ...]:
        f = self.stride
        return (self.model.cfg.latent_channels, -(-facts["height"] // f), -(-facts["width"] // f))

    def default_facts(self, tokens: Tensor) -> dict[str, Any]:
        return {"height": tokens.shape[1] * self.stride, "width": tokens.shape[2] * self.stride, "format": UINT8_RGB}

    def restore(self, y: Tensor, facts: dict[str, Any]) -> Any:
        return restore_image(y, facts)

    def encode_latents(self, x: Tensor, rate: int | None = None) -> Tensor:
        """x (3, H', W') -> latents (N, H'/f, W'/f) as the file stores them (`latents_before_rounding`, rounded)."""
        return self._round(self.latents_before_rounding(x, rate), self.model.rate_index(rate))

    def latents_before_rounding(self, x: Tensor, rate: int | None = None) -> Tensor:
        """x (3, H', W') -> the rate's float latents (N, H'/f, W'/f), tile by tile with `margin` positions of context.

        The image is extended periodically by BORDER latent positions on every side, so that each tile sees what
        one periodic pass over the whole image would, and the decoder can extend the latents the same way: the
        periodic packet transform shifts with the image by whole latent positions, so the decoder's wrapped
        latents are exactly the encoder's. (A mirrored image has no mirrored latents: a mirror here cost 1-3.5 dB
        within 28 px of the edges, measured.) The border is coded nowhere."""
        f, n, b = self.stride, self.model.cfg.latent_channels, BORDER
        h, w = x.shape[1] // f, x.shape[2] // f
        xp = _wrap(x, b * f)
        out = torch.empty(n, h, w, device=x.device)
        for (t0, t1, l0, l1), (c0, c1, d0, d1) in tiles(h, w, self.encode_tile, self.margin):
            y = self.model.encode_latents(xp[None, :, c0 * f : (c1 + 2 * b) * f, d0 * f : (d1 + 2 * b) * f], rate)[0]
            out[:, t0:t1, l0:l1] = y[:, t0 - c0 + b : t1 - c0 + b, l0 - d0 + b : l1 - d0 + b]
        return out

    def decode_latents(self, y_hat: Tensor, rate: int | None = None) -> Tensor:
        """Latents (N, h, w) -> image (3, h f, w f), tile by tile with `margin` positions of context (the latents
        extended periodically by BORDER positions, as the encoder's input was)."""
        f, b = self.stride, BORDER
        h, w = y_hat.shape[1:]
        yp = _wrap(y_hat.float(), b)
        out = torch.empty(3, h * f, w * f, device=y_hat.device)
        for (t0, t1, l0, l1), (c0, c1, d0, d1) in tiles(h, w, self.tile, self.margin):
            y = self.model.decode_latents(yp[None, :, c0 : c1 + 2 * b, d0 : d1 + 2 * b], rate)[0]
            out[:, t0 * f : t1 * f, l0 * f : l1 * f] = y[:, (t0 - c0 + b) * f : (t1 - c0 + b) * f,
                                                         (l0 - d0 + b) * f : (l1 - d0 + b) * f]
        return out

    def encode(self, x: Any, rate: int | None = None) -> bytes:
        """Image -> .mtk bytes at `rate` (an index into the network's rates; default the highest quality)."""
        return Codec.encode(self, x, rate=rate)

    def decode(self, blob: bytes) -> Any:
        """.mtk bytes -> the encoded image's kind at its size."""
        return Codec.decode(self, blob)


class WaveletAudioCodec(_RateCoding, SpeechCodec):
    """Mono audio <-> latents (N, T / 2^L) <-> .mtk bytes, at one of the network's rates. Inputs and outputs as
    the audio family's (waveform + sample_rate, or a path; resampled to the model's rate with a notice)."""

    family = "audio-wavelet"
    modality = "audio"
    model_class = WaveletAudioAutoencoder
    token_layout = "frames"

    def __init__(self, model: WaveletAudioAutoencoder, entropy_model: Any = None, *, name: str = "audio-wavelet",
                 short_id: str | None = None, model_hash: bytes = b"", num_threads: int | None = None,
                 rate_priors: dict[int, Any] | None = None, chunk_seconds: float = 20.0, margin: int = 64) -> None:
        SpeechCodec.__init__(self, model, None, name=name, model_hash=model_hash, short_id=short_id,
                             chunk_seconds=chunk_seconds, margin=margin, num_threads=num_threads)
        self._init_rates(entropy_model, rate_priors)

    @classmethod
    def build_model(cls, config: dict[str, Any]) -> WaveletAudioAutoencoder:
        return WaveletAudioAutoencoder(WaveletAutoencoderConfig.from_dict(config))

    @property
    def sample_rate(self) -> int:
        return self.model.cfg.sample_rate

    @property
    def hop(self) -> int:
        return self.model.cfg.stride

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    @property
    def bitrate(self) -> float:
        """The default rate's bit/s measured at export (NaN before)."""
        return float(self.model.bitrate)

    def prepare(self, x: Any, sample_rate: int | None = None, rate: int | None = None) -> Prepared:
        facts_rate = self._rate_fact(rate)
        prepared = SpeechCodec.prepare(self, x, sample_rate)
        return Prepared(prepared.x, {**prepared.facts, **facts_rate})

    def check_facts(self, header: dict[str, Any]) -> dict[str, Any]:
        return {**SpeechCodec.check_facts(self, header), **self._rate_from_header(header)}

    def latent_shape(self, facts: dict[str, Any]) -> tuple[int, ...]:
        return (self.model.cfg.latent_channels, self.frames_for(facts["num_samples"], facts["sample_rate"]))

    def encode_latents(self, wav: Tensor, rate: int | None = None) -> Tensor:
        """wav (1, T) -> latents (N, ceil(T / hop)), chunk by chunk with context margins."""
        n = math.ceil(wav.shape[1] / self.hop)
        wav = F.pad(wav, (0, n * self.hop - wav.shape[1]))
        return chunked(n, self.chunk_frames, self.margin, 1,
                       lambda lo, hi: self.model.encode_latents(wav[None, :, lo * self.hop : hi * self.hop], rate)[0])

    def decode_latents(self, y_hat: Tensor, rate: int | None = None) -> Tensor:
        """latents (N, n) -> wav (1, n * hop), chunk by chunk with context margins."""
        return chunked(y_hat.shape[1], self.chunk_frames, self.margin, self.hop,
                       lambda lo, hi: self.model.decode_latents(y_hat[None, :, lo:hi].float(), rate)[0])

    def encode(self, x: Any, sample_rate: int | None = None, rate: int | None = None) -> bytes:
        """Audio (samples,) | (channels, samples) | path -> .mtk bytes at `rate` (default the highest quality)."""
        return Codec.encode(self, x, sample_rate=sample_rate, rate=rate)

    def decode(self, blob: bytes) -> tuple[Tensor, int]:
        """.mtk bytes -> (waveform of the encoded input's shape, its sample rate)."""
        return Codec.decode(self, blob)

    def tokenize(self, x: Any, sample_rate: int | None = None, rate: int | None = None) -> Tensor:
        """Audio -> int64 symbols (N, frames) at `frame_rate` Hz."""
        return _RateCoding.tokenize(self, x, rate, sample_rate=sample_rate)

    def detokenize(self, tokens: Any, rate: int | None = None) -> tuple[Tensor, int]:
        return _RateCoding.detokenize(self, tokens, rate)


BORDER = 4  # latent positions wrapped around an image: 32 px at f = 8, beyond the 3-level filters' 28 px reach


def _wrap(x: Tensor, pad: int) -> Tensor:
    """(C, H, W) extended periodically by `pad` on every side (any pad, even beyond the sides)."""
    rows = torch.arange(-pad, x.shape[1] + pad, device=x.device) % x.shape[1]
    cols = torch.arange(-pad, x.shape[2] + pad, device=x.device) % x.shape[2]
    return x[:, rows][:, :, cols]


__all__ = ["WaveletAudioAutoencoder", "WaveletAudioCodec", "WaveletImageAutoencoder", "WaveletImageCodec",
           "bottleneck_models"]
