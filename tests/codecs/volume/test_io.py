"""Mesh files in and out, and every kind of bad input refused with a message naming what was wrong."""
from __future__ import annotations

import time

import numpy as np
import pytest
import trimesh

from mediatok.codecs.volume.io import MAX_FACES, as_mesh_arrays, peek_faces, read_mesh, write_mesh
from shape_helpers import torus


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".off", ".stl"])
def test_write_then_read_keeps_the_geometry(tmp_path, suffix):
    mesh = torus()
    path = tmp_path / f"torus{suffix}"
    write_mesh(path, mesh)
    back = read_mesh(path)
    assert np.isclose(back.volume, mesh.volume, rtol=1e-3)
    assert np.allclose(back.bounds, mesh.bounds, atol=1e-4)


def test_header_face_counts_are_read_without_parsing(tmp_path):
    mesh = torus()
    for suffix in (".off", ".ply", ".stl"):
        write_mesh(tmp_path / f"m{suffix}", mesh)
        assert peek_faces(tmp_path / f"m{suffix}") == len(mesh.faces)
    assert peek_faces(tmp_path / "m.ply") == len(mesh.faces)


def test_huge_meshes_are_refused_before_loading(tmp_path):
    path = tmp_path / "huge.off"
    path.write_text(f"OFF\n30000000 10000000 0\n0 0 0\n")  # a header claiming 10M faces, and nothing behind it
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="10,000,000 faces"):
        read_mesh(path)
    assert time.perf_counter() - t0 < 0.5
    stl = tmp_path / "huge.stl"
    stl.write_bytes(b"\0" * 80 + (10_000_000).to_bytes(4, "little"))
    with pytest.raises(ValueError, match="faces is more than"):
        read_mesh(stl)
    v = np.zeros((3, 3))
    with pytest.raises(ValueError, match="faces, more than"):
        as_mesh_arrays((v, np.zeros((MAX_FACES + 1, 3), np.int64)))


def test_bad_files_and_objects_get_clear_errors(tmp_path):
    (tmp_path / "notes.obj").write_bytes(b"\x00\xff\x10 binary junk \x00" * 20)
    (tmp_path / "empty.off").write_text("")
    (tmp_path / "x.txt").write_text("hello")
    for name in ("notes.obj", "empty.off"):
        with pytest.raises(ValueError, match=name):
            as_mesh_arrays(tmp_path / name)
    with pytest.raises(ValueError, match="not a mesh file"):
        read_mesh(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError):
        read_mesh(tmp_path / "missing.obj")
    cloud = trimesh.PointCloud(np.random.default_rng(0).normal(size=(100, 3)))
    cloud.export(tmp_path / "cloud.ply")
    with pytest.raises(ValueError, match="point cloud"):
        as_mesh_arrays(tmp_path / "cloud.ply")
    with pytest.raises(ValueError, match="point cloud"):
        as_mesh_arrays(cloud)
    with pytest.raises(ValueError, match="no faces"):
        as_mesh_arrays((np.zeros((4, 3)), np.zeros((0, 3), np.int64)))
    line = (np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2.0]]), np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="degenerate: its faces lie in a line"):
        as_mesh_arrays(line)
    with pytest.raises(ValueError, match="flat"):
        as_mesh_arrays((np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.0]]), np.array([[0, 1, 2], [1, 3, 2]])))
    with pytest.raises(ValueError, match="NaN"):
        as_mesh_arrays((np.array([[0, 0, 0], [1, 0, 0], [0, np.nan, 0.0]]), np.array([[0, 1, 2]])))
    with pytest.raises(ValueError, match="outside"):
        as_mesh_arrays((np.eye(3), np.array([[0, 1, 5]])))
    with pytest.raises(TypeError, match="expected a mesh"):
        as_mesh_arrays(42)
    with pytest.raises(ValueError, match="cannot write"):
        write_mesh(tmp_path / "out.xyz", torus())


def test_open_meshes_are_read(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    mesh.update_faces(np.arange(len(mesh.faces)) % 9 != 0)  # holes: not watertight
    assert not mesh.is_watertight
    write_mesh(tmp_path / "holed.obj", mesh)
    v, f = as_mesh_arrays(tmp_path / "holed.obj")
    assert len(f) == len(mesh.faces)
