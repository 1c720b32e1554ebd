"""The shape codec's contract with a tiny untrained model: shapes, frames, headers, tokens, checkpoints."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
import trimesh

import mediatok
from mediatok.codecs.volume import ShapeCodec, ShapeVQ, ShapeVQConfig
from mediatok.entropy import FrequencyPrior, pack, unpack
from shape_helpers import sphere_sdf, tiny_codec, torus


@pytest.fixture(scope="module")
def codec() -> ShapeCodec:
    return tiny_codec()


@pytest.fixture(scope="module")
def torus_blob(codec) -> bytes:
    return codec.encode(torus())


def test_encode_decode_returns_a_mesh_in_the_input_frame(codec, torus_blob):
    mesh, blob = torus(), torus_blob
    header, chunks = unpack(blob)
    assert header["model"] == "ts" and header["coder"] == "raw"
    assert len(chunks[0]) == 16**3 * 5 // 8  # raw 5-bit indices of the 16^3 grid
    frame_center = np.array(struct.unpack("<3f", header["offset"]))
    assert np.allclose(frame_center, mesh.bounds.mean(axis=0), atol=1e-5)
    assert np.isclose(header["scale"], mesh.extents.max() / 2 / 0.9)
    out = codec.decode(blob)
    assert isinstance(out, trimesh.Trimesh)
    if len(out.faces):  # whatever the untrained network made lies in the input's frame, inside its padded cube
        assert (out.bounds[0] >= frame_center - header["scale"] - 1e-6).all()
        assert (out.bounds[1] <= frame_center + header["scale"] + 1e-6).all()


def test_an_exact_sdf_decodes_to_the_shape_when_the_network_is_bypassed(codec, monkeypatch):
    """restore() and the frame alone: marching cubes of the input's own SDF gives the input back."""
    mesh = torus()
    prepared = codec.prepare(mesh)
    out = codec.restore(codec.model.untruncate(codec.model.truncate(prepared.x)), prepared.facts)
    assert np.isclose(out.volume, mesh.volume, rtol=0.05)
    assert np.allclose(out.bounds, mesh.bounds, atol=0.05 * mesh.extents.max())


def test_inputs_of_every_kind_give_the_same_tokens(codec, tmp_path):
    mesh = torus()
    mesh.export(tmp_path / "t.obj")
    sdf = codec.prepare((mesh.vertices, mesh.faces)).x
    assert torch.allclose(codec.prepare(tmp_path / "t.obj").x, sdf, atol=1e-5)  # OBJ keeps 8 digits
    from_mesh = codec.tokenize(sdf.numpy())
    assert from_mesh.shape == (1, 16, 16, 16) and from_mesh.dtype == torch.long
    assert torch.equal(codec.tokenize(mesh), from_mesh)
    blob = codec.encode(sdf)
    assert "scale" not in unpack(blob)[0]  # an SDF grid has no frame: it decodes in [-1, 1]^3
    assert torch.equal(codec.tokenize(sphere_sdf()), codec.tokenize(torch.from_numpy(sphere_sdf())))


def test_bad_inputs_and_tokens(codec):
    with pytest.raises(ValueError, match=r"SDF grid of shape \(64, 64, 64\)"):
        codec.encode(np.zeros((32, 32, 32), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        codec.encode(np.full((64, 64, 64), np.nan, np.float32))
    with pytest.raises(TypeError, match="expected a mesh"):
        codec.encode("not a path".encode())
    with pytest.raises(ValueError, match=r"expected tokens of shape \(1, 16, 16, 16\)"):
        codec.detokenize(torch.zeros(1, 8, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 32\)"):
        codec.detokenize(torch.full((1, 16, 16, 16), 32))
    out = codec.detokenize(torch.zeros(1, 16, 16, 16, dtype=torch.long))
    assert isinstance(out, trimesh.Trimesh)


@pytest.mark.parametrize("field,value,message", [
    ("scale", 0.0, "scale"), ("scale", float("nan"), "scale"), ("scale", 3, "scale"), ("scale", 1e300, "scale"),
    ("offset", b"\x00" * 11, "offset"), ("offset", struct.pack("<3f", 0, float("inf"), 0), "offset"),
    ("offset", 7, "offset"), ("depth", 64, "does not know"),
])
def test_hostile_header_fields_are_bitstream_errors(codec, torus_blob, field, value, message):
    header, chunks = unpack(torus_blob)
    with pytest.raises(mediatok.BitstreamError, match=message):
        codec.decode(pack({**header, field: value}, chunks))


def test_save_load_round_trip_with_a_prior(codec, tmp_path):
    sdf = torch.from_numpy(sphere_sdf(radius=0.55))
    tokens = codec.tokenize(sdf)
    with_prior = ShapeCodec(codec.model, FrequencyPrior.fit(tokens.reshape(1, -1), 32), name="tiny", short_id="ts2")
    with_prior.save(tmp_path / "m")
    loaded = mediatok.load(tmp_path / "m")
    assert isinstance(loaded, ShapeCodec) and loaded.model.cfg == codec.model.cfg and loaded.short_id == "ts2"
    again = loaded.tokenize(sdf)  # fp16 weights: nearly every token the same
    assert (again == tokens).float().mean() > 0.95
    blob = loaded.encode(sdf)
    assert unpack(blob)[0].get("coder") is None  # entropy-coded with the saved prior
    assert torch.equal(loaded.tokenize(sdf), again)
    with pytest.raises(mediatok.BitstreamError, match="made by model"):
        codec.decode(blob)
    assert isinstance(loaded.decode(blob), trimesh.Trimesh)


def test_config_refuses_bad_settings():
    with pytest.raises(ValueError, match="unknown ShapeVQConfig keys"):
        ShapeVQConfig.from_dict({"resolutoin": 64})
    with pytest.raises(ValueError, match="multiple of"):
        ShapeVQConfig(resolution=62)
    with pytest.raises(ValueError, match="widths"):
        ShapeVQConfig(widths=(8, 8))
    model = ShapeVQ(ShapeVQConfig(widths=(4,), blocks=1, codebook_size=16, latent_dim=2))
    assert model.bitrate == 4 / 64  # log2(16) bits per 4^3 voxels
    with pytest.raises(ValueError, match=r"SDF grids \(B, 64, 64, 64\)"):
        model.encode(torch.zeros(1, 32, 32, 32))


def test_far_tokens_are_simplified_only_far_from_the_surface_and_within_the_tolerance():
    codec = tiny_codec(seed=1)
    sdf = torch.from_numpy(sphere_sdf(radius=0.3))
    raw = codec.model.encode_latents(sdf[None])[0]
    simplified = codec.encode_latents(sdf)
    changed = simplified != raw
    t = codec.model.truncate(sdf).reshape(16, 4, 16, 4, 16, 4).permute(0, 2, 4, 1, 3, 5).reshape(16, 16, 16, 64)
    band = (t.abs() < 1).any(-1)
    assert not changed[0][band].any()  # blocks the surface passes through keep their tokens
    assert changed.sum() > 1000  # most of the far outside
    assert simplified[changed].unique().numel() == 1  # one token per kind (the sphere's inside is all near the band)
    truth = sdf < 0
    flips = lambda tok: int(((codec.model.decode_latents(tok[None])[0] < 0) != truth).sum())  # noqa: E731
    assert flips(simplified) <= flips(raw) + max(4, 1e-3 * int(truth.sum()))
    codec.simplify_tolerance = None
    assert torch.equal(codec.encode_latents(sdf), raw)
