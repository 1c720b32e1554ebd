"""Shape training: losses, symmetric data, and the shipped recipe (shrunk) trained, exported with its prior."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from mediatok.cli import main
from mediatok.codecs.volume import ShapeCodec
from mediatok.entropy import MarkovPrior
from mediatok.train.export import export
from mediatok.train.shape import ShapeGridDataModule, ShapeLosses, SymmetricGrids, symmetry, voxel_iou

ROOT = Path(__file__).resolve().parents[3]
RECIPE = ROOT / "configs" / "shape" / "shape-sdf-cpu.yaml"
sys.path.insert(0, str(ROOT / "tests" / "codecs" / "volume"))
from shape_helpers import sphere_sdf, torus  # noqa: E402


def _out(reconstruction, target):
    return SimpleNamespace(reconstruction=reconstruction, target=target, commit_loss=torch.tensor(0.5))


def test_losses_weigh_the_band_and_only_shortfalls_beyond_it():
    losses = ShapeLosses(surface=4.0)
    losses.truncation = 2.0
    t = torch.tensor([[-1.0, -0.2, 0.3, 0.9, 1.0, 1.0]])
    exact = losses(t, _out(t.clone(), t))
    assert exact["band"] == 0 and exact["beyond"] == 0 and exact["commit"] == 0.5
    further_out = losses(t, _out(torch.tensor([[-3.0, -0.2, 0.3, 0.9, 5.0, 2.0]]), t))
    assert further_out["band"] == 0 and further_out["beyond"] == 0  # beyond the band, further out is as right
    short = losses(t, _out(torch.tensor([[0.0, -0.2, 0.3, 0.9, 1.0, 1.0]]), t))
    assert short["beyond"] == pytest.approx(1 / 3)  # one of three beyond-band cells fell short by 1
    near = losses(t, _out(t + torch.tensor([[0, 0.1, 0, 0, 0, 0]]), t))  # |t| < 1/2: within a cell of the surface
    far = losses(t, _out(t + torch.tensor([[0, 0, 0, 0.1, 0, 0]]), t))
    assert near["band"] == pytest.approx(5 * far["band"])


def test_symmetries_keep_the_sdf_values_and_the_data_module_batches(tmp_path):
    grid = np.random.default_rng(0).normal(size=(8, 8, 8)).astype(np.float16)
    seen = set()
    rng = np.random.default_rng(1)
    for _ in range(2000):
        g = symmetry(grid, rng)
        assert np.array_equal(np.sort(g, axis=None), np.sort(grid, axis=None))
        seen.add(g.tobytes())
    assert len(seen) == 48
    np.save(tmp_path / "train.npy", np.stack([sphere_sdf(16, 0.5)] * 3).astype(np.float16))
    np.save(tmp_path / "val.npy", np.stack([sphere_sdf(16, 0.4)]).astype(np.float16))
    dm = ShapeGridDataModule(str(tmp_path), batch_size=2, epoch_size=4)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (2, 16, 16, 16) and batch.dtype == torch.float32
    assert next(iter(dm.val_dataloader())).shape == (1, 16, 16, 16)
    with pytest.raises(ValueError, match="no training grids"):
        SymmetricGrids(np.zeros((0, 4, 4, 4)), 4)
    with pytest.raises(FileNotFoundError, match="prepare_shapes"):
        ShapeGridDataModule(str(tmp_path / "missing")).setup()


def test_voxel_iou():
    a = torch.from_numpy(sphere_sdf(16, 0.5))[None]
    assert voxel_iou(a, a).item() == 1.0
    assert voxel_iou(a, -a).item() == 0.0
    assert 0.3 < voxel_iou(torch.from_numpy(sphere_sdf(16, 0.4))[None], a).item() < 0.7


@pytest.mark.slow
def test_the_shipped_recipe_trains_and_exports_with_a_prior(tmp_path):
    data = tmp_path / "shapes"
    data.mkdir()
    radii = (0.3, 0.45, 0.6, 0.75)
    np.save(data / "train.npy", np.stack([sphere_sdf(32, r) for r in radii]).astype(np.float16))
    np.save(data / "val.npy", np.stack([sphere_sdf(32, 0.5)]).astype(np.float16))
    cfg = yaml.safe_load(RECIPE.read_text().replace("runs/shape-sdf", str(tmp_path / "run")))
    cfg["trainer"].update(max_steps=6, val_check_interval=3, log_every_n_steps=1)
    cfg["model"]["codec"]["init_args"]["cfg"].update(resolution=32, widths=[8], blocks=1, codebook_size=16)
    cfg["model"].update(warmup_steps=1)
    cfg["data"]["init_args"].update(root=str(data), batch_size=2)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "fit", "--config", str(tmp_path / "tiny.yaml")]) == 0
    metrics = (next((tmp_path / "run" / "logs").glob("version_*")) / "metrics.csv").read_text().splitlines()[0]
    assert {"val/iou", "train/band", "train/beyond", "vq/utilization"} <= set(metrics.split(","))
    codec = export(tmp_path / "run" / "checkpoints" / "last.ckpt", tmp_path / "exported", "shape-tiny", "st",
                   prior_data=data)
    assert isinstance(codec, ShapeCodec) and isinstance(codec.entropy_model, MarkovPrior)
    assert codec.resolution == 32
    blob = codec.encode(torus())
    assert len(blob) < 8**3 * 4 / 8 + 100  # 512 tokens coded below log2(16) bits each, plus the container
    assert hasattr(codec.decode(blob), "faces")
