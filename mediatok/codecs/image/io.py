"""Image files in and out, through Pillow: any common file -> uint8 (H, W, 3) RGB, and back by suffix.

Reading turns whatever a file holds into the codec's input, saying so when it changes the picture's content:
  grayscale (L, 1, I, I;16, F)   -> replicated to RGB; 16-bit and 32-bit samples scaled to 8 bits (a note)
  palette (P, PA), RGBA, LA      -> RGB; transparent pixels composited on white (a note)
  CMYK, YCbCr, LAB, HSV          -> RGB by Pillow's conversion, without colour management (a note)
  EXIF orientation               -> applied, so the pixels are as a viewer shows them
  more than MAX_PIXELS pixels    -> ValueError before any pixel is decoded (the header alone gives the size)
  truncated or corrupted files   -> ValueError naming the file
Notes are `ImageConversionWarning`s (a UserWarning), so callers may filter or escalate them.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
WRITE_SUFFIXES = (".png", ".jpg", ".webp")
MAX_PIXELS = 64 * 1024 * 1024  # 64 MP (8192 x 8192): a 50 MP camera photo passes, a decompression bomb does not
WRITE_OPTIONS = {".png": {"format": "PNG"}, ".jpg": {"format": "JPEG", "quality": 95},
                 ".jpeg": {"format": "JPEG", "quality": 95}, ".webp": {"format": "WEBP", "quality": 95}}


class ImageConversionWarning(UserWarning):
    """An input image was changed to fit the codec (mode conversion, alpha composited, bit depth reduced)."""


def _note(message: str) -> None:
    warnings.warn(message, ImageConversionWarning, stacklevel=3)


def open_image(path: str | Path, *, max_pixels: int = MAX_PIXELS):
    """Open an image file with Pillow, checking its size before decoding; ValueError for anything unreadable."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except UnidentifiedImageError as e:
        raise ValueError(f"{path} is not an image file Pillow can read ({e})") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(f"{path} is too large to read safely: {e}") from e
    except OSError as e:
        raise ValueError(f"could not read {path}: {e}") from e
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise ValueError(f"{path} is {w} x {h} = {w * h / 1e6:.1f} MP, more than the limit of {max_pixels / 1e6:.1f} MP; "
                         "downscale it first or pass a larger max_pixels")
    try:
        im.load()
    except Exception as e:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError... on broken data
        im.close()
        raise ValueError(f"{path} is truncated or corrupted: {type(e).__name__}: {e}") from e
    return im


def to_rgb_array(im: Any, source: str = "image") -> np.ndarray:
    """A PIL image (any mode; EXIF orientation applied) -> uint8 (H, W, 3), with a note for lossy conversions."""
    from PIL import Image, ImageOps

    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - a malformed EXIF block must not make a readable picture unreadable
        _note(f"{source}: ignored an unreadable EXIF orientation")
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        if mode == "F":
            scale = 1.0 if a.size and float(np.nanmax(a)) <= 1.0 else 255.0
            _note(f"{source}: 32-bit float grayscale read as values in [0, {scale:g}], replicated to RGB")
        else:
            scale = 65535.0 if a.size and float(a.max()) > 255 or mode.startswith("I;16") else 255.0
            _note(f"{source}: {'16' if scale > 255 else '8'}-bit grayscale ({mode}) reduced to 8 bits, replicated to RGB")
        g = np.clip(np.nan_to_num(a) / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            _note(f"{source}: {mode} image with transparency composited on white")
            rgba = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        return np.asarray(rgba.convert("RGB"), dtype=np.uint8).copy()
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        _note(f"{source}: {mode} image converted to RGB without colour management")
    elif mode not in ("L", "1", "P"):
        _note(f"{source}: {mode} image converted to RGB")
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def read_image(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file -> uint8 (H, W, 3) RGB as a viewer shows it (see the module docstring for conversions)."""
    with open_image(path, max_pixels=max_pixels) as im:
        return to_rgb_array(im, str(path))


def read_for_codec(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """MediaIO.read: (uint8 (H, W, 3), {}) — images need no keyword arguments."""
    return read_image(path), {}


def as_uint8(image: Any) -> np.ndarray:
    """uint8 (H, W, 3) / (H, W) arrays, float (3, H, W) tensors in [0, 1] or PIL images -> uint8 (H, W[, 3])."""
    if isinstance(image, Tensor):
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"expected an image tensor (3, H, W), got {tuple(image.shape)}")
        a = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return a[..., 0] if a.shape[2] == 1 else a
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"expected a uint8 (H, W, 3) or (H, W) array, got {image.dtype} {image.shape}")
        return image
    if hasattr(image, "mode") and hasattr(image, "size"):  # a PIL image
        return np.asarray(image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode))
    raise TypeError(f"expected an image array, tensor or PIL image, got {type(image).__name__}")


def write_image(path: str | Path, image: Any) -> None:
    """Write an image (array, tensor or PIL image) in the format of the path's suffix: .png, .jpg or .webp."""
    from PIL import Image

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_OPTIONS:
        raise ValueError(f"cannot write {suffix or 'suffix-less'} images ({path}); use one of {', '.join(WRITE_SUFFIXES)}")
    Image.fromarray(as_uint8(image)).save(path, **WRITE_OPTIONS[suffix])


def pixels(x: Any, kwargs: dict[str, Any]) -> tuple[float, str]:
    """MediaIO.amount: the number of pixels of what `read_for_codec` returned."""
    a = as_uint8(x)
    return float(a.shape[0] * a.shape[1]), "px"
