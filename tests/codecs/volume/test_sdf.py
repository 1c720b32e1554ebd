"""Mesh -> SDF (winding-number sign, padded unit cube) and SDF -> mesh (marching cubes, the input's frame)."""
from __future__ import annotations

import numpy as np
import trimesh

from mediatok.codecs.volume.sdf import PAD, frame_of, mesh_sdf, sdf_to_mesh
from shape_helpers import sphere_sdf, torus


def test_sphere_sdf_matches_the_analytic_distance():
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=2.0)
    frame = frame_of(mesh.vertices)
    assert np.isclose(frame.scale, 2.0 / (1 - PAD), rtol=1e-3)
    sdf = mesh_sdf(frame.to_unit(mesh.vertices), mesh.faces, 32)
    expected = sphere_sdf(32, radius=1 - PAD)
    assert np.abs(sdf - expected).max() < 0.01  # the icosphere's facets are within 0.5 % of the sphere
    assert (sdf < 0).sum() == (expected < 0).sum() or abs(int((sdf < 0).sum()) - int((expected < 0).sum())) < 20


def test_sign_survives_holes_and_inward_faces():
    mesh = trimesh.creation.icosphere(subdivisions=3)
    frame = frame_of(mesh.vertices)
    closed = mesh_sdf(frame.to_unit(mesh.vertices), mesh.faces, 24) < 0
    assert 0.2 < closed.mean() < 0.4
    holed = mesh.faces[np.arange(len(mesh.faces)) % 17 != 0]  # drop every 17th face
    for faces in (holed, holed[:, ::-1]):
        broken = mesh_sdf(frame.to_unit(mesh.vertices), faces, 24) < 0
        assert (broken & closed).sum() / (broken | closed).sum() > 0.97


def test_marching_cubes_returns_an_outward_mesh_in_the_world_frame():
    mesh = torus()
    frame = frame_of(mesh.vertices)
    sdf = mesh_sdf(frame.to_unit(mesh.vertices), mesh.faces, 64)
    v, f = sdf_to_mesh(sdf, frame)
    out = trimesh.Trimesh(v, f, process=False)
    assert np.abs(out.bounds - mesh.bounds).max() < 0.1 * frame.scale  # within a few cells of the original box
    assert out.volume > 0 and np.isclose(out.volume, mesh.volume, rtol=0.05)  # outward faces: positive volume


def test_no_surface_gives_an_empty_mesh():
    v, f = sdf_to_mesh(np.ones((8, 8, 8), np.float32))
    assert v.shape == (0, 3) and f.shape == (0, 3)
