"""Wavelet training end to end: the rate-distortion losses, `mediatok train fit` on the shipped recipes (shrunk),
export (tables per rate + measured rates), and eval tables against the classical codecs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mediatok.cli import main
from mediatok.codecs.wavelet import WaveletAudioCodec, WaveletImageCodec
from mediatok.codecs.wavelet.evaluate import evaluate_image, format_image_table
from mediatok.train.export import export
from mediatok.train.wavelet import RateDistortionLosses

ROOT = Path(__file__).resolve().parents[3]


def test_losses_weigh_distortion_by_the_drawn_rate():
    from tests.codecs.wavelet.conftest import small_image_network

    net = small_image_network().train()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    losses = RateDistortionLosses()
    for r in range(2):
        out = net(x, rate=r)
        terms = losses(x, out)
        mse = (out.reconstruction - x).square().mean()
        assert torch.isclose(terms["distortion"], net.cfg.lambdas[r] * 255**2 * mse)
        bits = -torch.log2(out.likelihoods).sum() / (2 * 32 * 32)
        assert torch.isclose(terms["rate"], bits) and float(terms["rate"]) > 0
        assert float(terms["aux"]) > 0
    drawn = {net(x).rate for _ in range(20)}  # training draws every rate
    assert drawn == {0, 1}


def _shrunk(recipe: str, tmp_path: Path, data: Path, **network) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / "wavelet" / recipe).read_text().replace(
        f"runs/{recipe.removesuffix('-cpu.yaml')}", str(tmp_path / "run")))
    cfg["trainer"].update(max_steps=4, val_check_interval=2, log_every_n_steps=1)
    cfg["model"]["codec"]["init_args"]["cfg"].update(decoder_width=8, decoder_blocks=1, **network)
    cfg["model"].update(warmup_steps=1)
    cfg["data"]["init_args"].update(root=str(data), batch_size=2, val_batch_size=2)
    path = tmp_path / recipe
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_image_recipe_trains_exports_and_evaluates(tmp_path, photo_folder):
    config = _shrunk("image-wavelet-cpu.yaml", tmp_path, photo_folder, latent_channels=8)
    main(["train", "fit", "--config", str(config), "--data.init_args.crop", "64", "--data.init_args.val_crop", "64"])
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    codec = export(ckpt, tmp_path / "exported", "tiny-iw", "tiw", prior_data=photo_folder)
    assert isinstance(codec, WaveletImageCodec) and codec.model.cfg.latent_channels == 8
    rates = codec.model.cfg.measured_rate
    assert len(rates) == 3 and all(r > 0 for r in rates) and codec.bitrate == rates[-1]
    val = sorted((photo_folder / "val").iterdir())
    rows = evaluate_image(codec, photo_folder / "val", compare=None, out_dir=tmp_path / "eval")
    assert [r["system"] for r in rows[:3]] == ["tiny-iw rate 0 (ours)", "jpeg at tiny-iw rate 0's size",
                                               "webp at tiny-iw rate 0's size"]
    assert len(rows) == 9 and all(r["images"] == len(val) for r in rows)
    ours = rows[0]
    assert abs(ours["bpp"] - rates[0]) < 0.02 * rates[0]  # export measured these files (header ids differ)
    assert 0 < rows[1]["bpp"] < 2 * ours["bpp"] + 0.5 and rows[1]["psnr"] > 10
    assert (tmp_path / "eval" / "grid.png").exists()
    assert not (tmp_path / "eval" / "use.png").exists() and "use_plot" not in ours  # no tokens: no code-use curve
    assert "| tiny-iw rate 2 (ours) |" in format_image_table(rows)
    # export --set replaces config fields the weights do not depend on (the recipe's deadzone here)
    from mediatok.train.export import main as export_main, network_from_checkpoint

    assert codec.model.cfg.deadzone == (0.1, 0.1, 0.1)
    _, net = network_from_checkpoint(ckpt, overrides={"deadzone": [0.3, 0.0, 0.2]})
    assert net.cfg.deadzone == (0.3, 0.0, 0.2)
    for bad in ("deadzone", "deadzone=[0.1,", "=1"):
        with pytest.raises(SystemExit):
            export_main([str(ckpt), str(tmp_path / "never"), "--prior-data", "", "--set", bad])
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_audio_recipe_trains_and_exports(tmp_path, speech_folder):
    config = _shrunk("audio-wavelet-cpu.yaml", tmp_path, speech_folder, latent_channels=4, levels=4)
    main(["train", "fit", "--config", str(config), "--data.init_args.segment", "4000",
          "--data.init_args.val_segment", "4000", "--data.init_args.val_clips", "2"])
    codec = export(tmp_path / "run" / "checkpoints" / "last.ckpt", tmp_path / "aw", "tiny-aw", "taw",
                   prior_data=speech_folder, minutes=0.1)
    assert isinstance(codec, WaveletAudioCodec) and codec.bitrate > 0
    wav = torch.from_numpy(np.load(speech_folder / "val.npy")[:8000])[None]
    y, sr = codec.decode(codec.encode(wav, sample_rate=16000, rate=0))
    assert sr == 16000 and y.shape == wav.shape


def test_quantiles_are_kept_out_of_clipping_and_weight_decay():
    from mediatok.train.module import CodecModule
    from tests.codecs.wavelet.conftest import small_image_network

    net = small_image_network().train()
    module = CodecModule(net, RateDistortionLosses(), grad_clip=1e-3)
    opt = module.configure_optimizers()
    main_group, aux_group = opt.param_groups
    assert {id(p) for p in aux_group["params"]} == {id(eb.quantiles) for eb in net.bottlenecks}
    assert aux_group["weight_decay"] == 0.0 and main_group["weight_decay"] > 0
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    terms = module.losses(x, net(x))
    sum(terms.values()).backward()
    torch.nn.utils.clip_grad_norm_(main_group["params"], 1e-3)
    norm = torch.sqrt(sum(p.grad.square().sum() for p in main_group["params"] if p.grad is not None))
    assert float(norm) <= 1e-3 * 1.01
    assert float(torch.sqrt(sum(p.grad.square().sum() for p in aux_group["params"]))) > 1e-2  # the aux term's own
