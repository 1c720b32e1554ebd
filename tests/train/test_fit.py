"""End-to-end training: LightningCLI fit of a tiny codec, resume, export to a checkpoint folder, and 2-process DDP."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import mediatok
from mediatok.train.audio import prepare_folder

TINY_CODEC = dict(latent_dim=16, enc_dim=32, enc_depth=1, dec_dim=32, dec_depth=1, up_dim=32, up_depth=1, codebook_size=16)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """A prepared folder of a few synthetic voiced clips (train and val)."""
    root = tmp_path_factory.mktemp("data")
    src = root / "src"
    src.mkdir()
    for i in range(4):
        t = np.arange(16000 + 3000 * i) / 16000
        f0 = 110 + 20 * i
        x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8)) * 0.1
        sf.write(str(src / f"c{i}.wav"), x.astype(np.float32), 16000)
    prepare_folder(src, root / "prepared", "train", 16000)
    prepare_folder(src, root / "prepared", "val", 16000)
    return root / "prepared"


def _config(tmp_path: Path, data_root: Path, **trainer) -> Path:
    cfg = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu", "devices": 1, "max_steps": 4, "log_every_n_steps": 1, "val_check_interval": 2,
            "check_val_every_n_epoch": None, "num_sanity_val_steps": 0, "enable_progress_bar": False,
            "default_root_dir": str(tmp_path / "run"), "logger": False,
            "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                           "init_args": {"dirpath": str(tmp_path / "ckpt"), "save_last": True}}],
            **trainer,
        },
        "model": {
            "codec": {"class_path": "mediatok.codecs.audio.AudioCodec", "init_args": {"cfg": TINY_CODEC}},
            "losses": {"class_path": "mediatok.train.audio.AudioLosses", "init_args": {"sample_rate": 16000}},
            "discriminator": {"class_path": "mediatok.train.audio.MultiDiscriminator",
                              "init_args": {"periods": [2, 3], "resolutions": [256], "channels": 4}},
            "lr": 1e-3, "warmup_steps": 2, "disc_start": 2,
        },
        "data": {"class_path": "mediatok.train.audio.AudioDataModule",
                 "init_args": {"root": str(data_root), "segment": 3200, "batch_size": 2, "epoch_size": 64,
                               "val_segment": 3200, "val_clips": 2, "val_batch_size": 2, "num_workers": 0}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_reconstruction_losses_fall_on_a_fixed_batch():
    """A few optimizer steps of the module's losses on one batch: the codec starts to fit it."""
    from mediatok.codecs.audio import AudioCodec, AudioCodecConfig
    from mediatok.train.audio import AudioLosses
    from mediatok.train.module import CodecModule

    torch.manual_seed(0)
    module = CodecModule(AudioCodec(AudioCodecConfig(**TINY_CODEC)), AudioLosses(16000))
    t = torch.arange(6400) / 16000
    batch = (0.1 * sum(torch.sin(2 * torch.pi * k * 140 * t) / k for k in range(1, 8)))[None, None].repeat(2, 1, 1)
    opt = torch.optim.AdamW(module.codec.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = module.losses.weights.total(module.losses(batch, module.codec(batch)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]
    assert module.lr_factor(0) < module.lr_factor(10_000) == 1.0  # warm-up, then the full rate


@pytest.mark.slow
def test_fit_resume_and_export(tmp_path, data_root):
    from mediatok.cli import main
    from mediatok.codecs.audio import AudioCodecConfig
    from mediatok.train.export import main as export_main

    config = _config(tmp_path, data_root)
    torch.set_num_threads(1)
    main(["train", "fit", "--config", str(config)])
    last = tmp_path / "ckpt" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    # max_steps counts optimizer steps (Lightning, manual optimisation): 1 per step before disc_start, 2 after;
    # last.ckpt is written at the last validation (every 2 batches).
    first = int(ckpt["state_dict"]["steps"])
    assert first >= 2
    assert any(k.startswith("discriminator.") for k in ckpt["state_dict"])
    assert ckpt["codec"] == {"family": "audio", "model": AudioCodecConfig(**TINY_CODEC).to_dict()}
    main(["train", "fit", "--config", str(config), "--trainer.max_steps", "12", "--ckpt_path", str(last)])
    resumed = torch.load(last, map_location="cpu", weights_only=False)
    assert int(resumed["state_dict"]["steps"]) >= first + 2
    export_main([str(last), str(tmp_path / "exported"), "--name", "tiny-fit", "--short-id", "tf",
                 "--prior-data", str(data_root), "--prior-minutes", "0.05"])  # python -m mediatok.train.export
    codec = mediatok.load(tmp_path / "exported")
    assert (codec.name, codec.short_id, type(codec.prior).__name__) == ("tiny-fit", "tf", "MarkovPrior")
    assert sorted(p.name for p in (tmp_path / "exported").iterdir()) == ["config.json", "model.safetensors"]
    x = torch.from_numpy(np.load(data_root / "val.npy")[:8000].copy())
    y, sr = mediatok.load(tmp_path / "exported").decode(codec.encode(x, 16000))
    assert y.shape == x.shape and sr == 16000


@pytest.mark.slow
def test_two_process_ddp_fit(tmp_path, data_root):
    """Two CPU processes (gloo): Lightning's DDP launcher re-runs this command for rank 1."""
    config = _config(tmp_path, data_root, devices=2, strategy="ddp_find_unused_parameters_true")  # disc idle at first
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "mediatok.cli", "train", "fit", "--config", str(config)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in proc.stderr + proc.stdout
    ckpt = torch.load(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)
    assert int(ckpt["state_dict"]["steps"]) >= 2


def test_train_main_leaves_process_settings_as_they_were(tmp_path, data_root, monkeypatch):
    """Matmul precision is "high" during the run only, and warning filters come back unchanged."""
    import warnings

    from mediatok.train.cli import train_main

    set_precision, calls = torch.set_float32_matmul_precision, []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", lambda p: (calls.append(p), set_precision(p))[1])
    set_precision("highest")
    filters = list(warnings.filters)
    torch.set_num_threads(1)
    train_main(["fit", "--config", str(_config(tmp_path, data_root, max_steps=1))])
    assert calls == ["high", "highest"]
    assert torch.get_float32_matmul_precision() == "highest"
    assert warnings.filters == filters


def test_export_reads_codebook_sizes_or_says_what_is_wrong(capsys):
    import argparse

    from mediatok.train.export import main as export_main, parse_sizes

    assert parse_sizes("4096, 1024,256") == (4096, 1024, 256) and parse_sizes("") == ()
    for bad in ("4k", "1024,1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_sizes(bad)
    with pytest.raises(SystemExit) as stop:  # refused while parsing, before the checkpoint is opened
        export_main(["no-such.ckpt", "out", "--nested-sizes", "4096,x"])
    assert stop.value.code == 2 and "expected sizes like 4096,1024,256, got '4096,x'" in capsys.readouterr().err
