"""Image training end to end: the quantizer warm-up, `mediatok train fit` on the shipped recipe (shrunk), EMA
weights, and export with a MarkovPrior fitted on the exported model's tokens."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from mediatok.cli import main
from mediatok.codecs.image import ImageCodec
from mediatok.codecs.image.model import ImageVQ, ImageVQConfig
from mediatok.entropy import MarkovPrior
from mediatok.train.export import export

ROOT = Path(__file__).resolve().parents[3]
RECIPE = ROOT / "configs" / "image" / "image-vq-cpu.yaml"


def test_quantizer_warmup_trains_an_autoencoder_then_initialises_the_codebook_on_its_latents(photo):
    torch.manual_seed(0)
    cfg = ImageVQConfig(widths=(8, 8, 8, 8), blocks=1, codebook_size=64, quantizer_warmup=3, warmup_sample=300)
    model = ImageVQ(cfg).train()
    x = torch.from_numpy(photo[:64, :128].copy()).permute(2, 0, 1)[None].float() / 255  # 128 latents per forward
    codebook = model.quantizer.codebook
    for left in (2, 1):
        out = model(x)
        assert int(model.warmup_left) == left and not bool(codebook.initialized)
        assert (out.indices == -1).all() and float(out.commit_loss) == 0.0
        assert out.reconstruction.shape == x.shape
    model(x)  # the last warm-up step: k-means over the 300 latents kept
    assert int(model.warmup_left) == 0 and bool(codebook.initialized)
    with torch.no_grad():
        z = model.encode(x).permute(0, 2, 3, 1).reshape(-1, 8)
    lo, hi = z.min(0).values, z.max(0).values
    span = hi - lo
    inside = ((codebook.embed >= lo - 0.5 * span) & (codebook.embed <= hi + 0.5 * span)).all(1)
    assert inside.float().mean() > 0.9  # codes sit among the encoder's latents, not where randn put them
    out = model(x)
    assert (out.indices >= 0).all() and float(out.commit_loss) > 0
    assert int(model.state_dict()["warmup_left"]) == 0  # saved: a resumed run does not warm up again
    assert (model.eval()(x).indices >= 0).all()


def _shrunk_recipe(tmp_path: Path, images: Path, gan: bool = False) -> Path:
    """configs/image/image-vq-cpu.yaml with a tiny network, 6 steps on one process, writing under tmp_path;
    with `gan`, a PatchGAN phase (hinge, adaptive weight) from step 3."""
    cfg = yaml.safe_load(RECIPE.read_text().replace("runs/image-vq", str(tmp_path / "run")))
    cfg["trainer"].update(devices=1, strategy="auto", max_steps=6, val_check_interval=3, log_every_n_steps=1)
    cfg["model"]["codec"]["init_args"]["cfg"].update(widths=[8, 8, 16, 16], blocks=1, codebook_size=64,
                                                     quantizer_warmup=2, warmup_sample=512, nested_sizes=[16, 4])
    cfg["model"].update(warmup_steps=1)
    if gan:
        cfg["model"].update(discriminator={"class_path": "mediatok.train.image.PatchDiscriminator",
                                           "init_args": {"width": 8}},
                            gan_loss="hinge", adaptive_gan_weight=True, disc_start=3)
    cfg["data"]["init_args"].update(root=str(images), crop=64, batch_size=2, val_crop=128, val_batch_size=2)
    path = tmp_path / "image-vq-tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_the_shipped_recipe_trains_and_exports_with_ema_weights_and_a_prior(tmp_path, photo_folder, photo):
    assert main(["train", "fit", "--config", str(_shrunk_recipe(tmp_path, photo_folder))]) == 0
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "last.ckpt"
    metrics = (next((run / "logs").glob("version_*")) / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"val/psnr", "val/ms_ssim", "train/frequency", "train/ms_ssim", "vq/utilization"} <= set(metrics)
    assert sorted(p.name for p in (next((run / "logs").glob("version_*")) / "samples").glob("*.png")) == [
        "step0000003.png", "step0000006.png"]
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    live = {k[len("codec."):]: v for k, v in saved["state_dict"].items() if k.startswith("codec.")}
    ema = saved["codec_ema"]
    assert set(ema) <= set(live) and any(not torch.equal(ema[k], live[k]) for k in ema)

    codec = export(ckpt, tmp_path / "exported", "image-tiny", "it", prior_data=photo_folder, nested_sizes=(16,),
                   nested_steps=3)
    assert isinstance(codec, ImageCodec) and isinstance(codec.entropy_model, MarkovPrior)
    assert codec.model.codebook_sizes == (64, 16) and isinstance(codec.nested_priors[16], MarkovPrior)
    assert codec.decode(codec.encode(photo, codebook_size=16)).shape == photo.shape
    state = codec.model.state_dict()
    for key, value in ema.items():  # the averaged weights were exported, rounded to fp16
        assert torch.equal(state[key], value.half().float()), key
    blob = codec.encode(photo)
    back = codec.decode(blob)
    assert back.shape == photo.shape and back.dtype == np.uint8
    assert len(blob) < np.prod(codec.tokenize(photo).shape) * 6 / 8 + 200  # coded below log2(64) bits a token


def test_a_gan_phase_then_export_without_ema_takes_the_live_weights(tmp_path, photo_folder):
    assert main(["train", "fit", "--config", str(_shrunk_recipe(tmp_path, photo_folder, gan=True))]) == 0
    logs = next((tmp_path / "run" / "logs").glob("version_*")) / "metrics.csv"
    rows = [dict(zip(logs.read_text().splitlines()[0].split(","), line.split(",")))
            for line in logs.read_text().splitlines()[1:]]
    gan_steps = [int(r["step"]) for r in rows if r.get("train/adaptive_gan_weight")]
    assert gan_steps and min(gan_steps) >= 3 and all(r.get("train/disc") for r in rows if r.get("train/adaptive_gan_weight"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    codec = export(ckpt, tmp_path / "exported", "image-tiny", "it", ema=False)
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in codec.model.state_dict().items():
        assert torch.equal(value, saved[f"codec.{key}"].half().float() if value.is_floating_point()
                           else saved[f"codec.{key}"]), key


def test_export_command_line_fits_the_image_prior(tmp_path, photo_folder):
    """`python -m mediatok.train.export` sees the entropy fits the families register (not a __main__ copy)."""
    assert main(["train", "fit", "--config", str(_shrunk_recipe(tmp_path, photo_folder))]) == 0
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    proc = subprocess.run([sys.executable, "-m", "mediatok.train.export", str(ckpt), str(tmp_path / "cli-export"),
                           "--short-id", "ic", "--prior-data", str(photo_folder)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "exported cli-export" in proc.stdout
    assert isinstance(ImageCodec.load(tmp_path / "cli-export").entropy_model, MarkovPrior)
