"""Shape evaluation: bytes, compression ratios, volumetric IoU and Chamfer distance, beside two classical baselines.

For each mesh file in a folder (meshes never trained on, e.g. data/shapes/test from scripts/prepare_shapes.py):

    ours        codec.encode(path) -> .mtk bytes (container, frame and entropy-coded tokens) -> codec.decode -> mesh
    draco-qN    Google Draco (PyPI DracoPy) at N-bit position quantisation, N in DRACO_BITS (connectivity kept)
    occ-R+lzma  the R^3 occupancy grid (winding number > 1/2 at the cell centres), bit-packed, lzma at preset 9e,
                plus 16 bytes for the frame (centre and scale); decoded by marching cubes at level 1/2

Every system is measured the same way, in the original mesh's padded unit cube (mediatok.codecs.volume.sdf):
  IoU@R     insides (generalised winding number > 1/2) of the original and the decoded mesh at the R^3 cell centres
            (R = 64 and 128); a decoded mesh with no faces has IoU 0
  chamfer   mean of the two directed mean nearest-neighbour distances between CHAMFER_POINTS surface samples of each
            mesh, as a fraction of the original's longest bounding-box side (so 0.01 = 1 % of the shape's size)
  x SDF     4 * 64^3 bytes (a float32 64^3 SDF grid) / bytes;  x mesh  the mesh file's size / bytes

Rows are means over the files; `--out` adds a bytes-vs-IoU plot (rd.png) and renders of the originals beside each
system's reconstruction (shapes.png).
"""
from __future__ import annotations

import lzma
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mediatok.codecs.figures import NOT_DRAWN, pyplot
from mediatok.codecs.volume.io import READ_SUFFIXES, as_mesh_arrays, read_mesh
from mediatok.codecs.volume.sdf import Frame, frame_of, grid_points, sdf_to_mesh, winding_inside

DRACO_BITS = (8, 9, 10, 11)
OCC_RESOLUTIONS = (64, 128)
IOU_RESOLUTIONS = (64, 128)
CHAMFER_POINTS = 10_000
SDF_BYTES = 4 * 64**3

Mesh = tuple[np.ndarray, np.ndarray]  # (vertices (N, 3), faces (M, 3)) in world coordinates


def have_draco() -> bool:
    """Whether DracoPy is installed (pip install DracoPy; the bench extra has it)."""
    try:
        import DracoPy  # noqa: F401
    except ImportError:
        return False
    return True


def draco(mesh: Mesh, bits: int) -> tuple[Mesh, int]:
    """Encode and decode with Draco at `bits`-bit quantisation: (decoded mesh, bytes)."""
    import DracoPy

    blob = DracoPy.encode(mesh[0].astype(np.float32), mesh[1].astype(np.uint32), quantization_bits=bits,
                          compression_level=10)
    dec = DracoPy.decode(blob)
    return (np.asarray(dec.points, np.float64).reshape(-1, 3), np.asarray(dec.faces, np.int64).reshape(-1, 3)), len(blob)


def occupancy(mesh: Mesh, frame: Frame, resolution: int) -> np.ndarray:
    """Bool (R, R, R): cell centres of the frame's unit cube inside the mesh (winding number > 1/2)."""
    if len(mesh[1]) == 0:
        return np.zeros((resolution,) * 3, bool)
    inside = winding_inside(frame.to_unit(mesh[0]), mesh[1], grid_points(resolution))
    return inside.reshape((resolution,) * 3)


def occupancy_lzma(occ: np.ndarray, frame: Frame) -> tuple[Mesh, int]:
    """The occupancy-grid baseline: (marching-cubes mesh of the grid in world coordinates, bytes incl. 16 for the frame)."""
    blob = lzma.compress(np.packbits(occ.reshape(-1)).tobytes(), preset=9 | lzma.PRESET_EXTREME)
    decoded = np.unpackbits(np.frombuffer(lzma.decompress(blob), np.uint8))[: occ.size].reshape(occ.shape)
    # Level 0 of (1/2 - occupancy): the surface passes half-way between inside and outside cell centres.
    return sdf_to_mesh(0.5 - decoded.astype(np.float32), frame), len(blob) + 16


def chamfer(a: Mesh, b: Mesh, frame: Frame, points: int = CHAMFER_POINTS, seed: int = 0) -> float:
    """Symmetric mean Chamfer-L1 distance between the surfaces of a and b, as a fraction of a's longest bounding-box
    side (computed in the frame's unit cube); inf when either has no faces."""
    import trimesh
    from scipy.spatial import cKDTree

    if len(a[1]) == 0 or len(b[1]) == 0:
        return float("inf")
    samples = []
    for v, f in (a, b):
        m = trimesh.Trimesh(frame.to_unit(v), f, process=False)
        samples.append(trimesh.sample.sample_surface(m, points, seed=seed)[0])
    d_ab = cKDTree(samples[1]).query(samples[0])[0].mean()
    d_ba = cKDTree(samples[0]).query(samples[1])[0].mean()
    side = float((a[0].max(0) - a[0].min(0)).max()) / frame.scale  # the longest side in unit-cube units
    return float((d_ab + d_ba) / 2 / side)


def measure(original: Mesh, truth: dict[int, np.ndarray], decoded: Mesh, frame: Frame) -> dict[str, float]:
    """IoU at every IOU_RESOLUTIONS and the Chamfer distance of a decoded mesh against the original."""
    out: dict[str, float] = {}
    for key, r in zip(("iou64", "iou128"), IOU_RESOLUTIONS):  # keys name the shipped resolutions
        pred = occupancy(decoded, frame, r)
        union = (pred | truth[r]).sum()
        out[key] = float((pred & truth[r]).sum() / union) if union else 1.0
    out["chamfer"] = chamfer(original, decoded, frame)
    return out


def mesh_files(folder: str | Path) -> list[Path]:
    """Mesh files under folder (recursively), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (for the held-out meshes run scripts/prepare_shapes.py and "
                                "pass data/shapes/test)")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in READ_SUFFIXES)


def evaluate(codec: Any, folder: str | Path, *, limit: int | None = None, with_baselines: bool = True,
             progress: Callable | None = None, out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per system over the meshes in folder (see the module docstring); a row's "note" says what was skipped."""
    files = mesh_files(folder)
    if limit is not None and 0 < limit < len(files):
        files = [files[round(i * (len(files) - 1) / max(1, limit - 1))] for i in range(limit)]
    if not files:
        raise ValueError(f"no mesh files ({', '.join(READ_SUFFIXES)}) under {folder}")
    systems: dict[str, list[dict[str, float]]] = {}
    samples: list[dict[str, Any]] = []
    skipped: list[str] = []
    draco_ok = with_baselines and have_draco()
    ours = f"{codec.name} (ours)"
    for path in (progress(files) if progress else files):
        try:
            original = as_mesh_arrays(read_mesh(path))
        except ValueError as e:
            skipped.append(f"{path.name}: {e}")
            continue
        frame = frame_of(original[0])
        truth = {r: occupancy(original, frame, r) for r in set(IOU_RESOLUTIONS) | set(OCC_RESOLUTIONS)}
        t0 = time.perf_counter()
        blob = codec.encode(path)
        t1 = time.perf_counter()
        mesh = codec.decode(blob)
        t2 = time.perf_counter()
        decoded = {ours: ((np.asarray(mesh.vertices), np.asarray(mesh.faces)), len(blob))}
        times = {"enc_s": t1 - t0, "dec_s": t2 - t1}
        if with_baselines:
            for r in OCC_RESOLUTIONS:
                decoded[f"occupancy {r}^3 + lzma"] = occupancy_lzma(truth[r], frame)
            if draco_ok:
                for bits in DRACO_BITS:
                    decoded[f"draco q{bits}"] = draco(original, bits)
        sample = {"name": path.name, "original": original, "frame": frame}
        file_bytes = path.stat().st_size
        for system, (dec, size) in decoded.items():
            m = measure(original, truth, dec, frame)
            m.update(bytes=size, x_sdf=SDF_BYTES / size, x_mesh=file_bytes / size)
            if system == ours:
                m.update(times)
            systems.setdefault(system, []).append(m)
            sample[system] = dec
        samples.append(sample)
    rows = [summary_row(system, ms) for system, ms in systems.items()]
    notes = []
    if with_baselines and not draco_ok:
        notes.append("Draco rows skipped: DracoPy is not installed (pip install DracoPy)")
    if skipped:
        notes.append(f"{len(skipped)} file(s) not readable as meshes: " + "; ".join(skipped)[:500])
    if notes and rows:
        rows[0]["note"] = " | ".join(notes)
    if out_dir is not None and rows:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows[0]["rd_plot"] = write_rd_plot(rows, out / "rd.png")
        rows[0]["renders"] = write_renders(samples, [r["system"] for r in rows], out / "shapes.png")
    return rows


def summary_row(system: str, ms: list[dict[str, float]]) -> dict[str, Any]:
    """Means over the shapes (Chamfer over shapes with a surface; `empty` counts decodes without one)."""
    row: dict[str, Any] = {"system": system, "shapes": len(ms)}
    for key in ("bytes", "x_sdf", "x_mesh", "iou64", "iou128", "enc_s", "dec_s"):
        values = [m[key] for m in ms if key in m]
        if values:
            row[key] = float(np.mean(values))
    row["min_iou64"] = float(min(m["iou64"] for m in ms))
    finite = [m["chamfer"] for m in ms if np.isfinite(m["chamfer"])]
    row["chamfer"] = float(np.mean(finite)) if finite else float("inf")
    row["empty"] = len(ms) - len(finite)
    # The ratio of mean sizes (what a folder of such shapes compresses by), beside the mean of the ratios.
    row["x_sdf_total"] = SDF_BYTES / row["bytes"]
    return row


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of evaluate's rows (ours first)."""
    lines = ["| system | shapes | bytes/shape | x SDF64 f32 | x mesh file | IoU@64 | min IoU@64 | IoU@128 | Chamfer |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['system']} | {r['shapes']} | {r['bytes']:.0f} | {r['x_sdf_total']:.0f} | {r['x_mesh']:.1f} | "
                     f"{r['iou64']:.4f} | {r['min_iou64']:.4f} | {r['iou128']:.4f} | {r['chamfer']:.5f} |")
    extra = []
    for r in rows:
        if "enc_s" in r:
            extra.append(f"{r['system']}: encode {r['enc_s']:.2f} s, decode {r['dec_s']:.2f} s per shape (mean)")
        for key in ("note", "rd_plot", "renders"):
            if key in r:
                extra.append(f"{key}: {r[key]}")
    return "\n".join(lines + ([""] + extra if extra else []))


def write_rd_plot(rows: list[dict[str, Any]], path: Path) -> str:
    """Mean bytes per shape against mean IoU at 64^3 and 128^3, one marker per system; returns the path or why not."""
    plt = pyplot()
    if plt is None:
        return NOT_DRAWN
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key in zip(axes, ("iou64", "iou128")):
        draco_rows = [r for r in rows if r["system"].startswith("draco")]
        if draco_rows:
            ax.plot([r["bytes"] for r in draco_rows], [r[key] for r in draco_rows], "s-", color="tab:orange",
                    label="Draco q8-q11")
        for r in rows:
            if r["system"].startswith("draco"):
                continue
            style = ("o", "tab:blue") if "ours" in r["system"] else ("^", "tab:green")
            ax.plot([r["bytes"]], [r[key]], style[0], color=style[1], ms=9, label=r["system"])
        ax.set_xscale("log")
        ax.set_xlabel("bytes per shape (mean)")
        ax.set_ylabel(f"volumetric IoU at {key[3:]}^3 (mean)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("held-out meshes: bytes vs IoU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def write_renders(samples: list[dict[str, Any]], systems: list[str], path: Path, max_shapes: int = 8) -> str:
    """A grid of shaded renders: one row per shape, the original then each system's reconstruction (matplotlib)."""
    plt = pyplot()
    if plt is None:
        return NOT_DRAWN
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # ships with matplotlib
    shown = [s for s in systems if not s.startswith("draco") or s == "draco q8"]
    samples = samples[:max_shapes]
    cols = 1 + len(shown)
    fig = plt.figure(figsize=(2.4 * cols, 2.4 * len(samples)))
    light = np.array([0.4, -0.5, 0.77])
    for i, s in enumerate(samples):
        for j, (title, mesh) in enumerate([("original", s["original"])] + [(k, s[k]) for k in shown]):
            ax = fig.add_subplot(len(samples), cols, i * cols + j + 1, projection="3d")
            ax.set_axis_off()
            ax.set_xlim(-1, 1), ax.set_ylim(-1, 1), ax.set_zlim(-1, 1)
            if i == 0:
                ax.set_title(title, fontsize=8)
            if j == 0:
                ax.text2D(0.0, 0.0, s["name"], transform=ax.transAxes, fontsize=7)
            v, f = mesh
            if len(f) == 0:
                continue
            tri = s["frame"].to_unit(v)[f]  # (M, 3, 3)
            if len(tri) > 20000:  # renders need no more than this
                tri = tri[np.random.default_rng(0).choice(len(tri), 20000, replace=False)]
            n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            n /= np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)
            shade = 0.25 + 0.75 * np.abs(n @ light)
            ax.add_collection3d(Poly3DCollection(tri, facecolors=plt.cm.Greys(0.2 + 0.6 * shade), linewidths=0))
            ax.view_init(elev=20, azim=35)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
