"""Image codecs: the network (`model`), the user-facing codec (`codec`), files (`io`) and evaluation (`evaluate`)."""
from __future__ import annotations

from mediatok.codecs import MediaIO, register_family
from mediatok.codecs.image.codec import ImageCodec
from mediatok.codecs.image.evaluate import evaluate, format_table  # noqa: E402
from mediatok.codecs.image.io import (READ_SUFFIXES, WRITE_SUFFIXES, ImageConversionWarning, pixels, read_for_codec,
                                      read_image, write_image)
from mediatok.codecs.image.model import ImageVQ, ImageVQConfig, ImageVQOutput

IMAGE_IO = MediaIO(READ_SUFFIXES, WRITE_SUFFIXES, read_for_codec, write_image, pixels)
register_family("image", ImageCodec, modality="image", io=IMAGE_IO, evaluate=evaluate, format_table=format_table,
                default_model="image-vq")

__all__ = ["IMAGE_IO", "ImageCodec", "ImageConversionWarning", "ImageVQ", "ImageVQConfig", "ImageVQOutput",
           "read_image", "write_image"]
