"""3D shapes: mesh <-> signed distance grids (`sdf`), the 3-D wavelet transform and tree packing (`wavelets`), the
network (`model`), the user-facing codec (`codec`), mesh files (`io`) and evaluation (`evaluate`)."""
from __future__ import annotations

from mediatok.codecs import MediaIO, register_family
from mediatok.codecs.volume.codec import ShapeCodec
from mediatok.codecs.volume.evaluate import evaluate, format_table
from mediatok.codecs.volume.io import READ_SUFFIXES, WRITE_SUFFIXES, read_for_codec, read_mesh, voxels, write_mesh
from mediatok.codecs.volume.model import ShapeVQ, ShapeVQConfig, ShapeVQOutput

SHAPE_IO = MediaIO(READ_SUFFIXES, WRITE_SUFFIXES, read_for_codec, write_mesh, voxels)
register_family("shape", ShapeCodec, modality="volume", io=SHAPE_IO, evaluate=evaluate, format_table=format_table,
                default_model="shape-sdf")

__all__ = ["SHAPE_IO", "ShapeCodec", "ShapeVQ", "ShapeVQConfig", "ShapeVQOutput", "read_mesh", "write_mesh"]
