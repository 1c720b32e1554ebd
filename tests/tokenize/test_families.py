"""Any registered media family tokenizes: a fake image family (2-d grids) and a fake volume family (3-d grids),
registered here with a small `Codec` subclass and a MediaIO that reads .npy files, go through `tokenize_dataset`
and `TokenDataset` like audio; the loader comes from the codec's modality; devices and threads are respected."""
from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mediatok.codecs import MediaIO, register_family, unregister_family
from mediatok.codecs.base import Codec, Prepared
from mediatok.tokenize import TokenDataset, tokenize_dataset

Q, K = 3, 16


class GridModel(nn.Module):
    """Q codebooks of K codes on a grid pooled 2x along every axis; exact in float32 for inputs on a 1/64 grid."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([1.0, 1.5, 2.0]))  # (Q,)
        self.num_codebooks, self.quantizer, self.bitrate = Q, SimpleNamespace(codebook_size=K), 4.0


class GridCodec(Codec):
    """Media (C, *S) float in [0, 1) -> tokens (Q, *S/2); detokenize returns the codes (enough for the test)."""

    devices_seen: list[torch.device] = []

    def prepare(self, x: np.ndarray, **kwargs) -> Prepared:
        return Prepared(torch.from_numpy(np.asarray(x, dtype=np.float32)), {})

    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        GridCodec.devices_seen.append(x.device)
        pool = F.avg_pool2d if x.ndim == 3 else F.avg_pool3d
        pooled = pool(x.mean(0, keepdim=True), 2)[0]  # (*S/2)
        scale = self.model.scale.view(-1, *[1] * pooled.ndim)  # (Q, 1, ...)
        return (pooled[None] * scale * K).long() % K  # (Q, *S/2)

    def detokenize(self, tokens):
        return self.check_tokens(tokens)


def _read(path: Path) -> tuple[np.ndarray, dict]:
    return np.load(path, allow_pickle=False), {}


def _write(path: Path, media) -> None:
    np.save(path, np.asarray(media), allow_pickle=False)


FAMILIES = {2: ("test-image", "px"), 3: ("test-volume", "vox")}


@pytest.fixture(params=[2, 3], ids=["image-2d", "volume-3d"])
def grid(request, tmp_path: Path):
    """(codec, data folder, ndim) for a fake family registered for the test only (then unregistered)."""
    ndim = request.param
    modality, unit = FAMILIES[ndim]
    cls = type(f"Fake{modality.title()}Codec", (GridCodec,), {"family": modality, "modality": modality})
    io = MediaIO((".npy",), (".npy",), _read, _write, lambda x, kw: (float(np.prod(x.shape[1:])), unit))
    register_family(modality, cls, modality=modality, io=io)
    try:
        torch.manual_seed(0)
        data = tmp_path / "data"
        data.mkdir()
        rng = np.random.default_rng(ndim)
        sizes = [(8, 12), (4, 4), (16, 6), (2, 2), (6, 10)] if ndim == 2 else [(4, 4, 6), (2, 2, 2), (6, 4, 2)]
        for i, s in enumerate(sizes):
            np.save(data / f"item{i}.npy", rng.integers(0, 64, (2, *s)).astype(np.float32) / 64)
        (data / "broken.npy").write_bytes(b"not numpy")
        (data / "readme.txt").write_text("not media\n")
        GridCodec.devices_seen.clear()
        yield cls(GridModel(), name=f"tiny-{modality}"), data, ndim
    finally:
        unregister_family(modality)


def test_grid_family_round_trips_through_shards(tmp_path: Path, grid):
    codec, data, ndim = grid
    out = tmp_path / "out"
    summary = tokenize_dataset(data, out, codec, shard_size=2, pattern="delay", progress=False)
    files = sorted(data.glob("item*.npy"))
    assert summary.num_items == len(files) and [f["path"] for f in summary.failures] == ["broken.npy"]
    assert summary.unit == FAMILIES[ndim][1]
    assert summary.amount == sum(np.prod(np.load(f).shape[1:]) for f in files)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["modality"] == FAMILIES[ndim][0] and manifest["model"]["sample_rate"] is None

    raw = TokenDataset(out, pattern=None)
    for i, f in enumerate(files):
        item = raw[i]
        expected = codec.tokenize(np.load(f))
        assert expected.ndim == ndim + 1 and item["shape"] == tuple(expected.shape)  # (Q, h, w) | (Q, d, h, w)
        assert torch.equal(item["tokens"], expected), item["id"]
        assert item["unit"] == FAMILIES[ndim][1] and item["amount"] == np.prod(np.load(f).shape[1:])
    assert summary.num_tokens == sum(math.prod(raw.shape(i)) for i in range(len(raw)))

    for name in ("flat", "delay", "parallel"):
        ds = TokenDataset(out, pattern=name)
        item = ds[0]
        positions = math.prod(item["shape"][1:])
        assert item["tokens"].shape == {"flat": (Q * positions,), "delay": (Q, positions + Q - 1),
                                        "parallel": (Q, positions)}[name]
        assert torch.equal(ds.detokenize(item["tokens"], codec, item["shape"]), raw[0]["tokens"])


def test_grid_shards_are_the_same_bytes_from_any_runner(tmp_path: Path, grid, tree_bytes):
    codec, data, _ = grid
    tokenize_dataset(data, tmp_path / "one", codec, shard_size=2, progress=False)
    tokenize_dataset(data, tmp_path / "two", codec, shard_size=2, workers=2, progress=False)
    tokenize_dataset(data, tmp_path / "lightning", codec, shard_size=2, devices=1, accelerator="cpu")
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two") == tree_bytes(tmp_path / "lightning")


def test_no_run_changes_torch_threads(tmp_path: Path, grid):
    codec, data, _ = grid
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        tokenize_dataset(data, tmp_path / "a", codec, shard_size=2, progress=False)
        assert torch.get_num_threads() == 3
        tokenize_dataset(data, tmp_path / "b", codec, shard_size=2, workers=2, progress=False)
        assert torch.get_num_threads() == 3
        tokenize_dataset(data, tmp_path / "c", codec, shard_size=2, devices=1, accelerator="cpu")
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_unknown_modality_and_bare_modules_are_refused(tmp_path: Path, codec):
    class Odd(GridCodec):
        family = modality = "smell"

    with pytest.raises(ValueError, match=r"no codec family handles modality 'smell'; known modalities: \[.*'audio'"):
        tokenize_dataset(tmp_path, tmp_path / "out", Odd(GridModel()), progress=False)
    with pytest.raises(TypeError, match=r"codec object with tokenize.*got AudioCodec.*SpeechCodec\(module\)"):
        tokenize_dataset(tmp_path, tmp_path / "out", codec.model, progress=False)
    with pytest.raises(TypeError, match="lacks modality"):
        tokenize_dataset(tmp_path, tmp_path / "out", SimpleNamespace(tokenize=lambda x: x, num_codebooks=1,
                                                                     codebook_size=2), progress=False)


def test_gpu_accelerator_without_devices_moves_the_codec(tmp_path: Path, grid, monkeypatch):
    """The wiring, on any machine: accelerator='gpu' asks for cuda and gives the codec back where it was."""
    codec, data, _ = grid
    moves = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(codec, "to", lambda device: moves.append(torch.device(device)) or codec)
    tokenize_dataset(data, tmp_path / "out", codec, shard_size=2, accelerator="gpu", progress=False)
    assert moves == [torch.device("cuda"), torch.device("cpu")]


def test_gpu_accelerator_without_cuda_is_a_clear_error(tmp_path: Path, grid, monkeypatch):
    codec, data, _ = grid
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"accelerator='gpu' needs CUDA, but torch.cuda.is_available\(\) is False"):
        tokenize_dataset(data, tmp_path / "out", codec, accelerator="gpu", progress=False)
    with pytest.raises(ValueError, match=r"device='cuda:1' needs CUDA"):
        tokenize_dataset(data, tmp_path / "out", codec, device="cuda:1", progress=False)
    with pytest.raises(ValueError, match="accelerator must be one of"):
        tokenize_dataset(data, tmp_path / "out", codec, accelerator="tpu-v9", progress=False)
    assert not (tmp_path / "out").exists()


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("how", ["device", "accelerator", "lightning"])
def test_codec_runs_on_the_gpu(tmp_path: Path, grid, tree_bytes, how: str):
    codec, data, _ = grid
    tokenize_dataset(data, tmp_path / "cpu", codec, shard_size=2, progress=False)
    GridCodec.devices_seen.clear()
    kw = {"device": dict(device="cuda"), "accelerator": dict(accelerator="gpu"),
          "lightning": dict(devices=1, accelerator="gpu")}[how]
    tokenize_dataset(data, tmp_path / "gpu", codec, shard_size=2, progress=False, **kw)
    assert GridCodec.devices_seen and all(d.type == "cuda" for d in GridCodec.devices_seen)
    assert codec.device.type == "cpu"  # the caller's codec is given back where it was
    assert tree_bytes(tmp_path / "gpu") == tree_bytes(tmp_path / "cpu")  # exact arithmetic: the same tokens


@pytest.mark.gpu
@needs_cuda
def test_speech_codec_on_the_gpu_matches_the_cpu_mostly(tmp_path: Path, codec, speech_dir: Path):
    tokenize_dataset(speech_dir, tmp_path / "cpu", codec, shard_size=4, progress=False)
    summary = tokenize_dataset(speech_dir, tmp_path / "gpu", codec, shard_size=4, accelerator="gpu", progress=False)
    assert summary.num_items == 10 and codec.device.type == "cpu"
    cpu, gpu = TokenDataset(tmp_path / "cpu", pattern=None), TokenDataset(tmp_path / "gpu", pattern=None)
    agree = [float((cpu[i]["tokens"] == gpu[i]["tokens"]).float().mean()) for i in range(len(cpu))]
    assert min(agree) > 0.9, agree  # float kernels differ between devices; near-ties may pick another code


def test_distributed_and_pipeline_do_not_import_each_other():
    root = Path(__file__).resolve().parents[2] / "mediatok" / "tokenize"

    def imports(name: str) -> set[str]:
        tree = ast.parse((root / f"{name}.py").read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    assert "mediatok.tokenize.pipeline" not in imports("distributed")
    assert "mediatok.tokenize.distributed" not in imports("jobs") | imports("media") | imports("shards")
