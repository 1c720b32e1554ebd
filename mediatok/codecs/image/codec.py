"""The user-facing image codec: images in any common form <-> tokens (1, h, w) <-> .mtk bytes, and back.

    uint8 (H, W, 3) | uint8 (H, W) | float (3, H, W) in [0, 1] | PIL image | path
        --prepare: to float (3, H, W) in [0, 1], optionally shrink by `downscale`, replicate-pad to multiples of f
        --> (3, H', W')
        --tiles of `tile` tokens with `margin` tokens of context--> ImageVQ.encode_latents --> tokens (1, H'/f, W'/f)
        --entropy model (or raw indices)--> payload --pack(header: height, width, format)--> .mtk bytes
    .mtk --check_facts--> tokens (1, ceil(H/f), ceil(W/f)) --tiles--> (3, H', W') --crop, (grow back), convert back
        --> same kind at the encoded size

`downscale=2` is a lower operating point of the same model: the image is shrunk 2x (antialiased bicubic) before
encoding and the decoded picture is grown back (bicubic), so one token covers 2f x 2f pixels, a quarter of the
bits. The header keeps the original size and the factor, so decode returns the size that was encoded.

Large images are processed tile by tile: a tile's encoder or decoder input reaches `margin` tokens beyond
it on every side and only the tile's own part is kept, so memory is bounded by the tile size and seams
fall where the network saw context on both sides. With `attention=False` and a margin beyond the network's
receptive field, tiled tokens equal one pass's exactly (a test checks it); with attention (global at the
lowest resolution) tiles differ from one pass slightly, as an image twice the tile size would.
"""
from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mediatok.codecs.base import Codec, Prepared, header_int
from mediatok.codecs.image.io import MAX_PIXELS, ImageConversionWarning, read_image, to_rgb_array
from mediatok.codecs.image.model import ImageVQ, ImageVQConfig
from mediatok.errors import BitstreamError

# Input kinds, stored in the header's "format" field so that decode returns what was encoded.
UINT8_RGB, FLOAT_TENSOR, PIL_RGB, UINT8_GRAY, PIL_GRAY = range(5)
MAX_SIDE = 1 << 16
# Shrink factors `encode(..., downscale=)` accepts, and so the header's "downscale" field.
DOWNSCALES = (1, 2, 4)


class ImageCodec(Codec):
    """A trained `ImageVQ` with its entropy model: images <-> tokens (1, h, w) <-> .mtk bytes.

    codec.encode(img) for img a uint8 (H, W, 3) or (H, W) array, a float (3, H, W) tensor in [0, 1], a PIL image
    or a file path; codec.decode(blob) gives back the same kind at the same size (paths decode to uint8 arrays).
    """

    family = "image"
    modality = "image"
    token_layout = "h, w"
    model_class = ImageVQ
    downscales = DOWNSCALES

    def __init__(self, model: ImageVQ, entropy_model: Any = None, *, name: str = "image", short_id: str | None = None,
                 model_hash: bytes = b"", num_threads: int | None = None, tile: int = 64, margin: int = 8,
                 nested_priors: dict[int, Any] | None = None) -> None:
        super().__init__(model, entropy_model, name=name, short_id=short_id, model_hash=model_hash,
                         num_threads=num_threads)
        # Entropy models of the nested codebooks, by size (a size without one codes raw indices).
        self.nested_priors: dict[int, Any] = {}
        for size, prior in (nested_priors or {}).items():
            self.model.nested_codebook(size)  # ValueError for a size the model does not have
            self.nested_priors[int(size)] = prior
        if tile < 1 or margin < 0:
            raise ValueError(f"tile must be >= 1 and margin >= 0 tokens, got tile={tile}, margin={margin}")
        self.tile, self.margin = int(tile), int(margin)

    @classmethod
    def build_model(cls, config: dict[str, Any]) -> ImageVQ:
        return ImageVQ(ImageVQConfig.from_dict(config))

    @property
    def stride(self) -> int:
        """Pixels per token along each side (f)."""
        return self.model.cfg.downsample

    # ---- family hooks -------------------------------------------------------------------------------------
    def prepare(self, x: Any, codebook_size: int | None = None, downscale: int = 1) -> Prepared:
        """Any supported image -> float (3, H', W') in [0, 1], shrunk by `downscale` and replicate-padded to
        multiples of f; facts height and width (the input's), (unless a uint8 RGB array) format, (unless the main
        one) codebook_size and (unless 1) downscale."""
        self.check_options(codebook_size, downscale)
        sizes, downscale = self.model.codebook_sizes, int(downscale)
        kind, img = image_to_tensor(x)
        h, w = img.shape[1:]
        if downscale > 1:
            img = shrink_image(img, downscale)
        f = self.stride
        hs, ws = img.shape[1:]
        if hs % f or ws % f:  # replicate: a border of copies adds no edge for the encoder to spend tokens on
            img = F.pad(img[None], (0, -ws % f, 0, -hs % f), mode="replicate")[0]
        facts: dict[str, Any] = {"height": h, "width": w}
        if kind != UINT8_RGB:
            facts["format"] = kind
        if codebook_size is not None and codebook_size != sizes[0]:
            facts["codebook_size"] = int(codebook_size)
        if downscale > 1:
            facts["downscale"] = downscale
        return Prepared(img.contiguous(), facts)

    def check_options(self, codebook_size: int | None = None, downscale: int = 1) -> None:
        """ValueError unless codebook_size is None or one of the model's sizes and downscale one of DOWNSCALES
        (also what `mediatok tokenize` checks before it reads a file)."""
        sizes = self.model.codebook_sizes
        if codebook_size is not None and codebook_size not in sizes:
            raise ValueError(f"codebook_size must be one of this model's {list(sizes)}, got {codebook_size}")
        if not isinstance(downscale, numbers.Integral) or isinstance(downscale, bool) or downscale not in DOWNSCALES:
            raise ValueError(f"downscale must be one of {list(DOWNSCALES)}, got {downscale!r}")

    def check_facts(self, header: dict[str, Any]) -> dict[str, Any]:
        """height and width in [1, 65536] with at most MAX_PIXELS pixels; format one of the five kinds;
        codebook_size one of the model's; downscale one of DOWNSCALES."""
        facts = image_facts(header)
        if "downscale" in header:
            factor = header_int(header, "downscale", None, 1, DOWNSCALES[-1])
            if factor not in DOWNSCALES:
                raise BitstreamError(f"bitstream header field 'downscale' = {factor} is not one of {list(DOWNSCALES)}")
            if factor > 1:
                facts["downscale"] = factor
        if "codebook_size" in header:
            size = header_int(header, "codebook_size", None, 2, self.model.cfg.codebook_size)
            if size not in self.model.cfg.nested_sizes:
                raise BitstreamError(f"bitstream uses a codebook of {size} entries; this model has "
                                     f"{list(self.model.codebook_sizes)}")
            facts["codebook_size"] = size
        return facts

    def code_options(self, facts: dict[str, Any]) -> dict[str, Any]:
        """The nested codebook the facts select, if any."""
        return {"codebook_size": facts["codebook_size"]} if "codebook_size" in facts else {}

    def _coder(self, codebook_size: int | None = None) -> Any:
        if codebook_size is None or codebook_size == self.model.cfg.codebook_size:
            return super()._coder()
        prior = self.nested_priors.get(codebook_size)
        if prior is not None:
            return prior
        from mediatok.entropy import RawIndices

        return RawIndices(codebook_size)

    def entropy_state(self) -> dict[str, Tensor]:
        """The main prior as "prior.*", each nested codebook's as "prior@<size>.*"."""
        state = super().entropy_state()
        for size, prior in self.nested_priors.items():
            state.update({f"prior@{size}.{k}": v for k, v in prior.state_dict().items()})
        return state

    def load_extra_priors(self, states: dict[str, Any]) -> None:
        for tag, prior in states.items():
            if not tag.isdigit() or int(tag) not in self.model.cfg.nested_sizes:
                raise ValueError(f"checkpoint holds an entropy model for codebook size {tag!r}; this model has "
                                 f"{list(self.model.codebook_sizes)}")
            self.nested_priors[int(tag)] = prior

    def latent_shape(self, facts: dict[str, Any]) -> tuple[int, ...]:
        f = self.stride
        hs, ws = shrunk_size(facts["height"], facts["width"], facts.get("downscale", 1))
        return (1, -(-hs // f), -(-ws // f))

    def default_facts(self, tokens: Tensor) -> dict[str, Any]:
        """Detokenized images are uint8 (h * f, w * f, 3) arrays."""
        return {"height": tokens.shape[1] * self.stride, "width": tokens.shape[2] * self.stride, "format": UINT8_RGB}

    def restore(self, y: Tensor, facts: dict[str, Any]) -> Any:
        """(3, H', W') -> the encoded kind at the encoded size (grown back first if it was shrunk)."""
        factor = facts.get("downscale", 1)
        if factor > 1:
            hs, ws = shrunk_size(facts["height"], facts["width"], factor)
            y = grow_image(y[:, :hs, :ws], facts["height"], facts["width"])
        return restore_image(y, facts)

    # ---- tiling: bounded memory for any size ------------------------------------------------------------------
    def encode_latents(self, x: Tensor, codebook_size: int | None = None) -> Tensor:
        """x (3, H', W') -> tokens (1, H'/f, W'/f), tile by tile with `margin` tokens of context."""
        f = self.stride
        h, w = x.shape[1] // f, x.shape[2] // f
        out = torch.empty(1, h, w, dtype=torch.long, device=x.device)
        for (t0, t1, l0, l1), (c0, c1, d0, d1) in tiles(h, w, self.tile, self.margin):
            crop = x[None, :, c0 * f : c1 * f, d0 * f : d1 * f]
            idx = self.model.encode_latents(crop, codebook_size)[0]  # (1, c1 - c0, d1 - d0)
            out[:, t0:t1, l0:l1] = idx[:, t0 - c0 : t1 - c0, l0 - d0 : l1 - d0]
        return out

    def decode_latents(self, tokens: Tensor, codebook_size: int | None = None) -> Tensor:
        """tokens (1, h, w) -> images (3, h * f, w * f), tile by tile with `margin` tokens of context."""
        f = self.stride
        h, w = tokens.shape[1:]
        out = torch.empty(3, h * f, w * f, device=tokens.device)
        for (t0, t1, l0, l1), (c0, c1, d0, d1) in tiles(h, w, self.tile, self.margin):
            y = self.model.decode_latents(tokens[None, :, c0:c1, d0:d1], codebook_size)[0].float()  # (3, (c1-c0) f, (d1-d0) f)
            out[:, t0 * f : t1 * f, l0 * f : l1 * f] = y[:, (t0 - c0) * f : (t1 - c0) * f, (l0 - d0) * f : (l1 - d0) * f]
        return out

    # ---- public signatures ----------------------------------------------------------------------------------
    def tokenize(self, x: Any, codebook_size: int | None = None, downscale: int = 1) -> Tensor:
        """Image -> LongTensor (1, ceil(H / f), ceil(W / f)), no entropy coding; indices into the main codebook or
        the nested one of `codebook_size` entries. With `downscale` d, the tokens of the image shrunk d times
        (ceil(ceil(H / d) / f) rows); `detokenize` then gives the shrunk picture."""
        return super().tokenize(x, codebook_size=codebook_size, downscale=downscale)

    def check_tokens(self, tokens: Any, codebook_size: int | None = None) -> Tensor:
        """The base check, and a grid: (1, h, w)."""
        tokens = super().check_tokens(tokens, codebook_size)
        if tokens.ndim != 3:
            raise ValueError(f"expected tokens of shape (1, h, w), got {tuple(tokens.shape)}")
        return tokens

    def detokenize(self, tokens: Tensor, codebook_size: int | None = None) -> np.ndarray:
        """LongTensor (1, h, w) -> uint8 (h * f, w * f, 3); `codebook_size` as given to `tokenize`."""
        if codebook_size is None or codebook_size == self.codebook_size:
            return super().detokenize(tokens)
        self.model.nested_codebook(codebook_size)  # ValueError for a size the model does not have
        tokens = self.check_tokens(tokens, codebook_size)
        return self._reconstruct(tokens, {**self.default_facts(tokens), "codebook_size": codebook_size})

    def encode(self, x: Any, codebook_size: int | None = None, downscale: int = 1) -> bytes:
        """Image (uint8 (H, W, 3) | (H, W), float (3, H, W) in [0, 1], PIL image, path) -> .mtk bytes; with
        `codebook_size` (one of `model.codebook_sizes`), a lower rate from a nested codebook; with `downscale` 2 or
        4, the image is coded shrunk that many times and grown back on decode (a quarter or a sixteenth of the
        tokens). The header says which, so decode needs neither."""
        return super().encode(x, codebook_size=codebook_size, downscale=downscale)

    def decode(self, blob: bytes) -> Any:
        """.mtk bytes -> the encoded image's kind at its size."""
        return super().decode(blob)


def image_facts(header: dict[str, Any]) -> dict[str, Any]:
    """height and width in [1, 65536] with at most MAX_PIXELS pixels, and the input kind ("format"), from a
    bitstream header; BitstreamError naming the field otherwise. Shared by every image family."""
    facts = {"height": header_int(header, "height", None, 1, MAX_SIDE),
             "width": header_int(header, "width", None, 1, MAX_SIDE),
             "format": header_int(header, "format", UINT8_RGB, UINT8_RGB, PIL_GRAY)}
    if facts["height"] * facts["width"] > MAX_PIXELS:
        raise BitstreamError(f"bitstream header claims a {facts['width']} x {facts['height']} image, more than "
                             f"the codec's limit of {MAX_PIXELS / 1e6:.0f} MP")
    return facts


def restore_image(y: Tensor, facts: dict[str, Any]) -> Any:
    """Decoded float (3, H', W') -> the kind the facts' "format" names, cropped to their height and width."""
    y = y[:, : facts["height"], : facts["width"]].clamp(0, 1)
    kind = facts.get("format", UINT8_RGB)
    if kind == FLOAT_TENSOR:
        return y.contiguous()
    rgb = (y * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (H, W, 3)
    if kind in (UINT8_GRAY, PIL_GRAY):
        gray = np.asarray(_pil().fromarray(rgb).convert("L"))
        return gray if kind == UINT8_GRAY else _pil().fromarray(gray, mode="L")
    return _pil().fromarray(rgb) if kind == PIL_RGB else np.ascontiguousarray(rgb)


def shrunk_size(h: int, w: int, factor: int) -> tuple[int, int]:
    """The size an h x w image is coded at when shrunk `factor` times (rounded up: no pixel row is dropped)."""
    return -(-h // factor), -(-w // factor)


def shrink_image(img: Tensor, factor: int) -> Tensor:
    """float (3, H, W) -> (3, ceil(H / factor), ceil(W / factor)), antialiased bicubic (a low-pass filter first,
    as image libraries' resize does, so fine texture does not alias into the small picture)."""
    hs, ws = shrunk_size(img.shape[1], img.shape[2], factor)
    return F.interpolate(img[None], size=(hs, ws), mode="bicubic", antialias=True, align_corners=False)[0].clamp(0, 1)


def grow_image(y: Tensor, h: int, w: int) -> Tensor:
    """Decoded float (3, h', w') -> (3, h, w), bicubic."""
    return F.interpolate(y[None].float(), size=(h, w), mode="bicubic", align_corners=False)[0]


def tiles(h: int, w: int, tile: int, margin: int):
    """Yield ((top, bottom, left, right) kept, (top, bottom, left, right) with context) token boxes covering h x w."""
    for t0 in range(0, h, tile):
        t1 = min(h, t0 + tile)
        for l0 in range(0, w, tile):
            l1 = min(w, l0 + tile)
            yield (t0, t1, l0, l1), (max(0, t0 - margin), min(h, t1 + margin), max(0, l0 - margin), min(w, l1 + margin))


def _pil():
    from PIL import Image

    return Image


def image_to_tensor(x: Any) -> tuple[int, Tensor]:
    """(kind, float (3, H, W) in [0, 1]) for every supported input; TypeError/ValueError saying what was expected."""
    if isinstance(x, (str, Path)):
        x = read_image(x)  # notes for converted files come from io
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8:
            raise TypeError(f"expected a uint8 image array, got {x.dtype}; convert floats in [0, 1] with "
                            "(x * 255).round().astype(np.uint8), or pass a float (3, H, W) torch tensor")
        if not (x.ndim == 2 or (x.ndim == 3 and x.shape[2] == 3)):
            hint = "; drop the alpha channel (x[..., :3]) or composite it first" if x.ndim == 3 and x.shape[2] == 4 else ""
            raise ValueError(f"expected a uint8 array of shape (H, W, 3) or (H, W), got {x.shape}{hint}")
        _check_size(x.shape[0], x.shape[1])
        kind = UINT8_GRAY if x.ndim == 2 else UINT8_RGB
        if x.ndim == 2:
            x = np.repeat(x[..., None], 3, axis=2)
        # astype copies: a read-only array (np.asarray of a PIL image) must not reach torch.from_numpy
        return kind, torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1).div_(255)
    if isinstance(x, Tensor):
        if not x.is_floating_point():
            raise TypeError(f"expected a float image tensor (3, H, W) in [0, 1], got {x.dtype}; pass x.float() / 255")
        if x.ndim == 4 and x.shape[0] == 1:
            raise ValueError(f"expected one image (3, H, W), got a batch {tuple(x.shape)}; pass x[0]")
        if x.ndim != 3 or x.shape[0] != 3:
            hint = "; it looks like (H, W, 3): pass x.permute(2, 0, 1)" if x.ndim == 3 and x.shape[2] == 3 else ""
            raise ValueError(f"expected a float image tensor of shape (3, H, W), got {tuple(x.shape)}{hint}")
        _check_size(x.shape[1], x.shape[2])
        x = x.detach().float().cpu()
        if not torch.isfinite(x).all():
            raise ValueError("image tensor contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"expected values in [0, 1], got [{lo:.3g}, {hi:.3g}]; divide 0-255 data by 255")
        return FLOAT_TENSOR, x.clamp(0, 1)
    if hasattr(x, "mode") and hasattr(x, "size") and hasattr(x, "convert"):  # PIL image
        kind = PIL_GRAY if x.mode in ("L", "1", "I", "I;16", "F") else PIL_RGB
        _check_size(x.size[1], x.size[0])
        return kind, image_to_tensor(to_rgb_array(x, "PIL image"))[1]
    raise TypeError(f"expected an image: uint8 (H, W, 3) array, float (3, H, W) tensor, PIL image or path; "
                    f"got {type(x).__name__}")


def _check_size(h: int, w: int) -> None:
    """Refuse empty images and, before any copy is made, images beyond the codec's limits."""
    if h < 1 or w < 1:
        raise ValueError(f"image is empty ({h} x {w} pixels)")
    if h * w > MAX_PIXELS or max(h, w) > MAX_SIDE:
        raise ValueError(f"image of {w} x {h} pixels is larger than the codec's limit of {MAX_PIXELS / 2**20:.0f} MP "
                         f"({MAX_SIDE} px a side); downscale it or split it first")


__all__ = ["ImageCodec", "ImageConversionWarning", "image_facts", "image_to_tensor", "restore_image", "tiles",
           "shrink_image", "grow_image", "shrunk_size", "DOWNSCALES", "UINT8_RGB",
           "FLOAT_TENSOR", "PIL_RGB", "UINT8_GRAY", "PIL_GRAY"]
