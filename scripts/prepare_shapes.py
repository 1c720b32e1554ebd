"""Data recipe for the 3D shape codec: the CGAL demo meshes as signed distance grids, computed once and cached.

Source (../shared/DATA.md; train on it, commit none of its files):

    libcgal-demo   usr/share/doc/libcgal-dev/data.tar.gz -> data/meshes/*.off|*.ply|*.stl   (~140 files)

Licence: the package's copyright file (/usr/share/doc/libcgal-dev/copyright, which libcgal-demo's doc folder links
to) says CGAL's files are GPL-3+ / LGPL-3+ where a file carries a notice, and "All other files that do not have an
explicit copyright notice (e.g., all examples and some demos) are licensed under the Creative Commons CC0 1.0
license". The mesh files carry no notice; several are classic scans of other origin (the Stanford bunny and
armadillo, AIM@SHAPE models), so the shipped weights are trained on them but none of them is redistributed here.

Run from the repository root (one core, about 10 minutes)::

    OMP_NUM_THREADS=1 python scripts/prepare_shapes.py          # -> data/shapes/
    python scripts/prepare_shapes.py --resolution 256 --out data/shapes256   # for configs/shape/wala-256.yaml

Output::

    data/shapes/{train,val,test}/<name>.<ext>    the kept mesh files as shipped (eval reads these: mediatok eval DIR)
    data/shapes/{train,val,test}.npy             float16 (N, 64, 64, 64) SDF grids, negative inside, unit-cube units
    data/shapes/{train,val,test}.txt             one line per grid: name, copy (0 = as shipped), rotation, scales
    data/shapes/SOURCES.tsv / REJECTED.tsv       what was kept (faces, split) and what was left out and why

Which meshes (decided on each file, identically for every split):
  1. the codec's reader (trimesh, libigl as a fallback) loads it as a triangle mesh with at least MIN_FACES (12)
     faces (single triangles and tetrahedra out).
  2. it has an inside: its winding-number occupancy at 32^3 fills between 0.5 % and 70 % of the padded cube, and
     at most 5 % of the cube has an ambiguous winding number (|w| in (0.1, 0.9)). Open patches, height fields and
     meshes that are mostly holes (boeing, three_peaks, mech-holes-shark, ...) have no inside and are left out;
     a few holes are fine (elephant-with-holes: 3.4 %).
  3. no near-duplicates: a mesh whose 32^3 occupancy has IoU > 0.9 with one already kept (sorted by name) under
     any of the 48 symmetries of the cube (the training augmentation) is left out (sphere.off / sphere.ply /
     geosphere, pinion / pinion_small, ...), and so is a file with the stem of one already kept (pig.off and
     pig.stl are one pig at two resolutions, in poses no symmetry maps onto each other), so no test shape has a
     twin in training.

Fixed split, by name: split = test if sha256(name) mod 20 < 3, val if it is 3, else train (about 15 / 5 / 80 %).
It depends only on the file name, so adding or removing meshes never moves another between splits.

Training copies: each train mesh as shipped plus COPIES (5) seeded variants: a uniformly random rotation and
independent scales in [0.7, 1.3] per axis, then normalised to the padded cube again (as the codec does with any
input). Val and test grids are the meshes as shipped. The 48 symmetries of the cube are applied at training
time on top (mediatok.train.shape.data).
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from debian import unpack_packages  # scripts/debian.py, beside this script  # noqa: E402

from mediatok.codecs.volume.io import read_mesh  # noqa: E402
from mediatok.codecs.volume.sdf import frame_of, grid_points, mesh_sdf  # noqa: E402

PACKAGE = "libcgal-demo"
TARBALL = "usr/share/doc/libcgal-dev/data.tar.gz"
MESH_DIR = "data/meshes/"
SUFFIXES = (".off", ".ply", ".stl", ".obj")
MIN_FACES = 12
AMBIGUOUS = 0.05
FILL = (0.005, 0.70)
DUPLICATE_IOU = 0.9
COPIES = 5
RESOLUTION = 64


def split_of(name: str) -> str:
    """The fixed split of a mesh file name (see the module docstring)."""
    h = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 20
    return "test" if h < 3 else "val" if h == 3 else "train"


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3x3 rotation (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def max_iou(a: np.ndarray, b: np.ndarray) -> float:
    """The highest IoU of occupancy grids a and b over the 48 symmetries of the cube applied to b."""
    from itertools import permutations, product

    best = 0.0
    for perm in permutations(range(3)):
        t = np.transpose(b, perm)
        for flips in product((False, True), repeat=3):
            u = np.flip(t, [i for i in range(3) if flips[i]]) if any(flips) else t
            best = max(best, float((a & u).sum() / max(1, (a | u).sum())))
    return best


def extract_meshes(raw: Path, out: Path) -> list[Path]:
    """The mesh files of the package's data tarball, extracted into out."""
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(raw / TARBALL) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith(MESH_DIR) and member.name.endswith(SUFFIXES):
                member.name = Path(member.name).name  # flat, and nothing can escape out
                tar.extract(member, out, filter="data")
    return sorted(p for p in out.iterdir() if p.suffix in SUFFIXES)


def main(argv: list[str] | None = None) -> None:
    """Fetch, select, split and precompute the SDF grids."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/shapes")
    p.add_argument("--copies", type=int, default=COPIES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resolution", type=int, default=RESOLUTION,
                   help="SDF grid side (64 for shape-sdf; 256 for configs/shape/wala-256.yaml, ~16x the time a grid)")
    a = p.parse_args(argv)
    import igl

    out = Path(a.out)
    raw = out / "raw"
    if not (raw / TARBALL).exists():
        unpack_packages([PACKAGE], raw)
    files = extract_meshes(raw, out / "meshes")
    coarse = grid_points(32)
    kept, rejected, occupancies = [], [], []
    for path in files:
        try:
            mesh = read_mesh(path)
        except ValueError as e:  # a file the codec cannot read is reported, not fatal
            rejected.append((path.name, f"unreadable: {e}"[:160]))
            continue
        if len(mesh.faces) < MIN_FACES:
            rejected.append((path.name, f"{len(mesh.faces)} faces < {MIN_FACES}"))
            continue
        frame = frame_of(mesh.vertices)
        w = np.abs(np.asarray(igl.fast_winding_number(frame.to_unit(mesh.vertices), np.asarray(mesh.faces, np.int64),
                                                      coarse))).reshape(32, 32, 32)
        occ, ambiguous = w > 0.5, float(((w > 0.1) & (w < 0.9)).mean())
        if not FILL[0] <= occ.mean() <= FILL[1] or ambiguous > AMBIGUOUS:
            rejected.append((path.name, f"fills {occ.mean():.1%} of the cube, {ambiguous:.1%} ambiguous: no inside"))
            continue
        twin = next((n for n, o in occupancies if Path(n).stem == path.stem or max_iou(occ, o) > DUPLICATE_IOU), None)
        if twin is not None:
            rejected.append((path.name, f"near-duplicate of {twin}"))
            continue
        occupancies.append((path.name, occ))
        kept.append((path, mesh))
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    grids: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    sources = ["name\tsplit\tfaces\tvertices\twatertight"]
    for path, mesh in kept:
        split = split_of(path.name)
        (out / split).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / split / path.name)
        sources.append(f"{path.name}\t{split}\t{len(mesh.faces)}\t{len(mesh.vertices)}\t{mesh.is_watertight}")
        mesh_faces = np.asarray(mesh.faces, np.int64)
        variants = [(np.eye(3), np.ones(3))]
        if split == "train":
            variants += [(random_rotation(rng), rng.uniform(0.7, 1.3, 3)) for _ in range(a.copies)]
        for copy, (rot, scales) in enumerate(variants):
            v = np.asarray(mesh.vertices, np.float64) @ rot.T * scales
            sdf = mesh_sdf(frame_of(v).to_unit(v), mesh_faces, a.resolution)
            grids[split].append(sdf.astype(np.float16))
            lines[split].append(f"{path.name}\t{copy}\t{' '.join(f'{x:.5f}' for x in rot.ravel())}\t"
                                f"{' '.join(f'{s:.4f}' for s in scales)}")
        print(f"{path.name:32s} {split:5s} {len(mesh.faces):7d} faces  {len(variants)} grid(s)  "
              f"{time.time() - t0:6.0f} s", flush=True)
    for split, g in grids.items():
        np.save(out / f"{split}.npy", np.stack(g) if g else np.zeros((0,) + (a.resolution,) * 3, np.float16))
        (out / f"{split}.txt").write_text("".join(f"{line}\n" for line in lines[split]))
    (out / "SOURCES.tsv").write_text("\n".join(sources) + "\n")
    (out / "REJECTED.tsv").write_text("".join(f"{n}\t{why}\n" for n, why in rejected))
    counts = {s: sum(1 for path, _ in kept if split_of(path.name) == s) for s in grids}
    print(f"kept {len(kept)} meshes {counts}, rejected {len(rejected)}; grids "
          f"{ {s: len(g) for s, g in grids.items()} } in {time.time() - t0:.0f} s -> {out}")


if __name__ == "__main__":
    main()
