"""The shipped shape-sdf model: the bundled mesh through the CLI and the API, about 2 KB, back in its own frame."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

import mediatok
from mediatok.cli import main
from mediatok.codecs.volume.evaluate import measure, occupancy
from mediatok.codecs.volume.io import as_mesh_arrays
from mediatok.codecs.volume.sdf import frame_of

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "wheel.obj"
pytestmark = pytest.mark.skipif(not (ROOT / "pretrained" / "shape-sdf" / "config.json").exists(),
                                reason="pretrained/shape-sdf not present")


def test_cli_round_trip_keeps_the_shape_in_its_frame(tmp_path, capsys):
    assert main(["encode", str(EXAMPLE), "-o", str(tmp_path / "w.mtk")]) == 0  # the .obj suffix picks shape-sdf
    blob = (tmp_path / "w.mtk").read_bytes()
    assert len(blob) < 2100  # >= 500x smaller than a float32 64^3 SDF grid (1 MiB)
    assert main(["decode", str(tmp_path / "w.mtk"), "-o", str(tmp_path / "w.obj")]) == 0
    assert main(["info", str(tmp_path / "w.mtk")]) == 0
    assert "shape-sdf" in capsys.readouterr().out
    original = trimesh.load(EXAMPLE, process=False)
    decoded = trimesh.load(tmp_path / "w.obj", process=False)
    assert np.abs(decoded.bounds - original.bounds).max() < 0.05 * original.extents.max()
    assert np.isclose(decoded.volume, original.volume, rtol=0.1)


def test_api_round_trip_quality_and_tokens():
    codec = mediatok.load("shape-sdf")
    assert codec.modality == "volume" and codec.num_threads == 1
    blob = codec.encode(EXAMPLE)
    mesh = mediatok.decode(blob)  # the model is found from the header's short id
    original = as_mesh_arrays(EXAMPLE)
    frame = frame_of(original[0])
    truth = {r: occupancy(original, frame, r) for r in (64, 128)}
    m = measure(original, truth, (np.asarray(mesh.vertices), np.asarray(mesh.faces)), frame)
    assert m["iou64"] > 0.9 and m["chamfer"] < 0.01
    tokens = codec.tokenize(EXAMPLE)
    assert tokens.shape == (1, 16, 16, 16)
    again = codec.detokenize(tokens)  # in [-1, 1]^3: the frame is not in the tokens
    assert np.abs(again.bounds).max() <= 1.0
    assert np.isclose(again.volume * frame.scale**3, mesh.volume, rtol=1e-3)
