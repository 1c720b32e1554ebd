"""Mesh files in and out (OBJ, PLY, OFF, STL, GLB through trimesh), with bounds checked before anything big is read.

Face counts are read from the header of OFF, PLY and binary STL files before the file is parsed, and every
other file is bounded by its size, so a 10M-face mesh is refused in milliseconds instead of filling memory
(MAX_FACES; the codec samples a 64^3 grid, so a mesh beyond it gains nothing but time). Meshes with holes,
several components or flipped faces are fine: the SDF's sign comes from generalised winding numbers.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

READ_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb")
WRITE_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb")
MAX_FACES = 2_000_000
MAX_FILE_BYTES = 256 << 20  # 2M faces as ASCII OBJ take about 100 MB


def peek_faces(path: Path) -> int | None:
    """The face count a file's header declares (OFF, PLY, binary STL), None when the format has no such header."""
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        head = f.read(4096)
    if suffix == ".stl" and not head.lstrip().lower().startswith(b"solid") and len(head) >= 84:
        return struct.unpack("<I", head[80:84])[0]
    if suffix == ".off":
        words = [w for line in head.split(b"\n") for w in line.split(b"#")[0].split()]
        if words and words[0].upper().endswith(b"OFF"):
            words = words[1:]
        if len(words) >= 2 and words[1].isdigit():
            return int(words[1])
    if suffix == ".ply":
        for line in head.split(b"\n"):
            parts = line.split()
            if parts[:2] == [b"element", b"face"] and len(parts) == 3 and parts[2].isdigit():
                return int(parts[2])
            if parts[:1] == [b"end_header"]:
                break
    return None


def read_mesh(path: str | Path) -> Any:
    """A mesh file -> trimesh.Trimesh (all parts of a scene merged); ValueError naming the file for anything that is
    not a bounded, non-empty triangle mesh."""
    import trimesh

    path = Path(path)
    if path.suffix.lower() not in READ_SUFFIXES:
        raise ValueError(f"{path}: not a mesh file the shape codec reads (expected {', '.join(READ_SUFFIXES)})")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: {size / 2**20:.0f} MB is more than the codec reads ({MAX_FILE_BYTES >> 20} MB); "
                         "decimate the mesh first (e.g. trimesh's simplify_quadric_decimation)")
    faces = peek_faces(path)
    if faces is not None and faces > MAX_FACES:
        raise ValueError(f"{path}: {faces:,} faces is more than the codec reads ({MAX_FACES:,}); decimate the mesh "
                         "first: a 64^3 grid cannot tell the difference")
    try:
        loaded = trimesh.load(path, process=False)
    except Exception as e:  # noqa: BLE001 - trimesh raises many types for files it cannot parse
        loaded = _read_with_igl(path)  # libigl parses some OFF variants trimesh refuses (polygons, comments)
        if loaded is None:
            raise ValueError(f"{path}: could not read it as a {path.suffix} mesh ({type(e).__name__}: {e})") from e
    return as_trimesh(loaded, str(path))


def _read_with_igl(path: Path) -> Any:
    """libigl's reader as a fallback (polygons triangulated), or None when it cannot read the file either."""
    import trimesh

    try:
        import igl

        v, f = igl.read_triangle_mesh(str(path))
    except Exception:  # noqa: BLE001 - the caller reports trimesh's error, the more informative one
        return None
    return trimesh.Trimesh(v, f, process=False) if len(f) else None


def as_trimesh(x: Any, what: str = "input") -> Any:
    """A trimesh Trimesh / Scene / PointCloud -> one Trimesh with faces; ValueError saying what was wrong."""
    import trimesh

    if isinstance(x, trimesh.Scene):
        meshes = [g for g in x.geometry.values() if isinstance(g, trimesh.Trimesh)]
        if not meshes:
            kinds = sorted({type(g).__name__ for g in x.geometry.values()}) or ["nothing"]
            raise ValueError(f"{what}: holds {', '.join(kinds)}, no triangle mesh")
        x = trimesh.util.concatenate(x.dump()) if len(meshes) > 1 else meshes[0]
    if isinstance(x, trimesh.PointCloud):
        raise ValueError(f"{what}: is a point cloud ({len(x.vertices)} points), not a mesh; reconstruct a surface "
                         "first (e.g. Poisson reconstruction)")
    if not isinstance(x, trimesh.Trimesh):
        raise TypeError(f"{what}: expected a mesh, got {type(x).__name__}")
    return x


def as_mesh_arrays(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """A mesh path, trimesh object or (vertices (N, 3), faces (M, 3)) pair -> checked float64 / int64 arrays."""
    import trimesh

    if isinstance(x, (str, Path)):
        x = read_mesh(x)
    if isinstance(x, (trimesh.Trimesh, trimesh.Scene, trimesh.PointCloud)):
        x = as_trimesh(x)
        vertices, faces = x.vertices, x.faces
    elif isinstance(x, (tuple, list)) and len(x) == 2:
        vertices, faces = x
    else:
        raise TypeError(f"expected a mesh (file path, trimesh.Trimesh or (vertices, faces)) or an SDF grid (R, R, R), "
                        f"got {type(x).__name__}")
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"expected vertices of shape (N, 3), got {v.shape}")
    if f.size == 0:
        raise ValueError(f"mesh has no faces ({len(v)} vertices): nothing to encode; a point cloud needs a surface "
                         "reconstruction first")
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"expected integer triangle faces of shape (M, 3), got {f.dtype} {f.shape}")
    if len(f) > MAX_FACES:
        raise ValueError(f"mesh has {len(f):,} faces, more than the codec reads ({MAX_FACES:,}); decimate it first")
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"faces index vertices outside [0, {len(v)})")
    if not np.isfinite(v).all():
        raise ValueError("mesh vertices contain NaN or infinite coordinates")
    used = v[np.unique(f)]
    spread = np.linalg.svd(used - used.mean(axis=0), compute_uv=False) if len(used) > 1 else np.zeros(3)
    dims = int(np.count_nonzero(spread > 1e-9 * max(float(spread.max(initial=0.0)), 1e-300)))
    if dims < 3 or spread.max(initial=0.0) == 0:
        kind = ("a point", "a line", "flat (a plane)")[min(dims, 2)]
        raise ValueError(f"mesh is degenerate: its faces lie in {kind}, which has no inside to encode")
    return v, f.astype(np.int64)


def read_for_codec(path: Path) -> tuple[Any, dict[str, Any]]:
    """MediaIO.read: the mesh and no extra encode arguments."""
    return read_mesh(path), {}


def write_mesh(path: str | Path, mesh: Any) -> None:
    """Write a decoded mesh; the format is chosen by the suffix."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise ValueError(f"{path}: cannot write {path.suffix or 'suffix-less'} meshes; use one of "
                         f"{', '.join(WRITE_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)


def voxels(x: Any, kwargs: dict[str, Any]) -> tuple[float, str]:
    """MediaIO.amount: a shape is one 64^3 grid of voxels (the codec's resolution)."""
    return float(64**3), "vox"


__all__ = ["MAX_FACES", "READ_SUFFIXES", "WRITE_SUFFIXES", "as_mesh_arrays", "as_trimesh", "peek_faces",
           "read_for_codec", "read_mesh", "voxels", "write_mesh"]
