"""`evaluate` on a folder of generated meshes: every system measured the same way, baselines beside ours."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import trimesh

from mediatok.codecs.volume.evaluate import chamfer, evaluate, format_table, have_draco, occupancy, occupancy_lzma
from mediatok.codecs.volume.sdf import frame_of
from shape_helpers import tiny_codec, torus


def test_metrics_are_zero_for_identical_meshes_and_grow_with_distance():
    mesh = torus()
    m = (np.asarray(mesh.vertices), np.asarray(mesh.faces))
    frame = frame_of(m[0])
    assert chamfer(m, m, frame) < 1e-2 * 0.2  # two samplings of one surface: well under a cell
    shifted = (m[0] + 0.1 * mesh.extents.max(), m[1])
    assert chamfer(m, shifted, frame) > 0.05
    occ = occupancy(m, frame, 32)
    decoded, size = occupancy_lzma(occ, frame)
    assert np.array_equal(occupancy(decoded, frame, 32), occ)  # marching cubes of the grid keeps every cell's side
    assert 16 < size < 32**3 // 8


@pytest.mark.slow  # about 10 s: seven systems, two shapes, figures
def test_evaluate_folder_rows_plot_and_renders(tmp_path, monkeypatch):
    ev = importlib.import_module("mediatok.codecs.volume.evaluate")  # the package exports a function of that name

    monkeypatch.setattr(ev, "IOU_RESOLUTIONS", (32, 48))  # the keys stay iou64 / iou128 only in name: fast test
    monkeypatch.setattr(ev, "OCC_RESOLUTIONS", (32, 48))
    monkeypatch.setattr(ev, "CHAMFER_POINTS", 2000)
    torus().export(tmp_path / "torus.obj")
    trimesh.creation.box(extents=(1, 2, 3)).export(tmp_path / "box.off")
    (tmp_path / "broken.stl").write_bytes(b"garbage")
    codec = tiny_codec()
    last = codec.model.decoder[-1]  # an untrained decoder's noise would make huge meshes: make it say "no surface"
    last.weight.data.zero_()
    last.bias.data.fill_(0.0)
    last.bias.data[0] = 8.0  # a constant coarse band: tsdf = 1 everywhere (outside)
    rows = ev.evaluate(codec, tmp_path, out_dir=tmp_path / "figs")
    systems = [r["system"] for r in rows]
    assert systems[0] == "tiny-shape (ours)"
    assert "occupancy 32^3 + lzma" in systems and "occupancy 48^3 + lzma" in systems
    assert ("draco q8" in systems) == have_draco()
    by = {r["system"]: r for r in rows}
    assert all(r["shapes"] == 2 for r in rows)
    ours = by["tiny-shape (ours)"]
    assert ours["iou64"] == 0 and ours["empty"] == 2 and 200 < ours["bytes"] < 3000
    assert by["occupancy 32^3 + lzma"]["iou64"] == pytest.approx(1.0)
    assert by["occupancy 48^3 + lzma"]["iou128"] == pytest.approx(1.0)
    if have_draco():
        assert by["draco q11"]["iou64"] > 0.98 and by["draco q11"]["bytes"] > by["draco q8"]["bytes"]
    assert "broken.stl" in rows[0]["note"]
    assert (tmp_path / "figs" / "rd.png").stat().st_size > 1000
    assert (tmp_path / "figs" / "shapes.png").stat().st_size > 1000
    table = format_table(rows)
    assert "| tiny-shape (ours) | 2 |" in table and "rd_plot" in table


def test_evaluate_refuses_a_folder_without_meshes(tmp_path):
    with pytest.raises(ValueError, match="no mesh files"):
        evaluate(tiny_codec(), tmp_path)
    with pytest.raises(FileNotFoundError, match="prepare_shapes"):
        evaluate(tiny_codec(), tmp_path / "missing")
