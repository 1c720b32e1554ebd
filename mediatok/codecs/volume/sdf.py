"""Meshes <-> signed distance grids: normalisation to a padded unit cube, winding-number SDFs, marching cubes.

    mesh (V, F) in any frame --normalise: centre of the bounding box to 0, longest half-side to 1 - pad-->
        vertices in [-(1 - pad), 1 - pad]^3 + Frame(center, scale)
        --signed distance at the R^3 cell centres of [-1, 1]^3 (negative inside)--> sdf (R, R, R), indexed [x, y, z]
    sdf --marching cubes at level 0--> vertices in [-1, 1]^3 --Frame.to_world--> mesh in the input's frame

The sign comes from libigl's fast generalised winding number (Jacobson et al. 2013, Barnes-Hut approximation by
Barill et al. 2018): inside where the winding number exceeds 1/2, which stays meaningful for meshes with holes,
duplicated faces and several components, unlike a pseudo-normal test, and (taking |w|) for meshes whose faces all
point inwards. Inconsistently oriented faces still confuse it, as they confuse any notion of inside. 64^3 takes 0.6-2 s on one core
for meshes of 5k-75k faces (../shared/DATA.md lists the alternatives that were timed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD = 0.1  # the normalised mesh spans [-(1 - PAD), 1 - PAD]: 3 cells of margin at 64^3 for marching cubes to close it


@dataclass(frozen=True)
class Frame:
    """Where the unit cube sits in the mesh's own coordinates: world = center + scale * unit."""

    center: tuple[float, float, float]
    scale: float

    def to_unit(self, v: np.ndarray) -> np.ndarray:
        """World vertices (N, 3) -> unit-cube vertices."""
        return (np.asarray(v, np.float64) - np.asarray(self.center)) / self.scale

    def to_world(self, v: np.ndarray) -> np.ndarray:
        """Unit-cube vertices (N, 3) -> world vertices."""
        return np.asarray(v, np.float64) * self.scale + np.asarray(self.center)


def frame_of(vertices: np.ndarray, pad: float = PAD) -> Frame:
    """The frame that maps the bounding box of vertices (N, 3) into [-(1 - pad), 1 - pad]^3, centred, aspect kept."""
    v = np.asarray(vertices, np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    half = float((hi - lo).max()) / 2
    if not np.isfinite(half) or half <= 0:
        raise ValueError(f"mesh is degenerate: its bounding box has extent {(hi - lo).tolist()}")
    return Frame(tuple(float(c) for c in (hi + lo) / 2), half / (1 - pad))


def grid_points(resolution: int) -> np.ndarray:
    """Cell centres of an R^3 grid over [-1, 1]^3 -> (R^3, 3), x slowest (matches sdf[x, y, z])."""
    g = (np.arange(resolution, dtype=np.float64) + 0.5) / resolution * 2 - 1
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)


def winding_inside(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bool (N,): points inside the mesh by the fast generalised winding number (> 1/2)."""
    import igl

    w = igl.fast_winding_number(np.ascontiguousarray(vertices, np.float64), np.ascontiguousarray(faces, np.int64),
                                np.ascontiguousarray(points, np.float64))
    return np.abs(np.asarray(w)) > 0.5  # |w|: a mesh whose faces all point inwards still has an inside


def mesh_sdf(vertices: np.ndarray, faces: np.ndarray, resolution: int = 64) -> np.ndarray:
    """Signed distance (float32, negative inside) of a mesh already in unit-cube coordinates at the R^3 cell
    centres of [-1, 1]^3 -> (R, R, R), in unit-cube units (one cell is 2 / R)."""
    import igl

    v = np.ascontiguousarray(vertices, np.float64)
    f = np.ascontiguousarray(faces, np.int64)
    points = grid_points(resolution)
    distance = np.abs(np.asarray(igl.signed_distance(points, v, f, sign_type=igl.SIGNED_DISTANCE_TYPE_UNSIGNED)[0]))
    sdf = np.where(winding_inside(v, f, points), -distance, distance)
    return sdf.astype(np.float32).reshape(resolution, resolution, resolution)


def sdf_to_mesh(sdf: np.ndarray, frame: Frame | None = None, level: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes at `level` on an (R, R, R) SDF over [-1, 1]^3 -> (vertices (N, 3) in the frame's world
    coordinates (unit cube without one), faces (M, 3) outward-facing); empty arrays when no surface crosses it."""
    from skimage.measure import marching_cubes

    sdf = np.asarray(sdf, np.float32)
    r = sdf.shape[0]
    if not (sdf.min() < level < sdf.max()):
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    # Pad with "outside" so that shapes touching the grid's border still close.
    padded = np.pad(sdf, 1, mode="constant", constant_values=max(float(sdf.max()), level + 1e-3))
    verts, faces, _, _ = marching_cubes(padded, level=level)
    verts = (verts - 1 + 0.5) / r * 2 - 1  # padded index -> cell centre in [-1, 1]
    if frame is not None:
        verts = frame.to_world(verts)
    return verts, np.ascontiguousarray(faces, np.int64)
