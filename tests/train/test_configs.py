"""The shipped training configs parse, build what they say, and keep the speech-16k recipe's hyper-parameters."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

import mediatok
from mediatok.codecs.audio import AudioCodec, SpeechCodec
from mediatok.codecs.image import ImageVQConfig
from mediatok.train.audio import AudioDataModule, AudioLosses
from mediatok.train.cli import train_main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
SHIPPED = ROOT / "pretrained" / "speech-16k"
SHIPPED_V1 = ROOT / "pretrained" / "speech-16k-v1"  # what the tokenizer and v2 recipes start from


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_:
        train_main(["fit", "--config", str(config), "--print_config"])
    assert exit_.value.code in (0, None)
    resolved = yaml.safe_load(capsys.readouterr().out)
    codec, losses = resolved["model"]["codec"], resolved["model"]["losses"]
    if config.parent.name == "audio":
        assert codec["class_path"] == "mediatok.codecs.audio.AudioCodec"
        rate = codec["init_args"]["cfg"]["sample_rate"]
        assert losses["init_args"]["sample_rate"] == rate  # the mel filters match the codec
    elif config.parent.name == "image":
        assert codec["class_path"] == "mediatok.codecs.image.ImageVQ"
        assert losses["class_path"] == "mediatok.train.image.ImageLosses"
        ImageVQConfig.from_dict(codec["init_args"]["cfg"])  # every network setting is a known, valid one
    else:  # any other family: the network it names belongs to a registered family, which can export it
        from importlib import import_module

        from mediatok.train.module import network_family

        module, _, name = codec["class_path"].rpartition(".")
        network_class = getattr(import_module(module), name)
        family = mediatok.codecs.families()[network_family(network_class.__new__(network_class))]
        network = family.codec_class.build_model(codec["init_args"]["cfg"])  # every setting known and valid
        assert isinstance(network, network_class)


def test_speech_16k_recipe_builds_the_shipped_network_from_the_shipped_weights():
    cli = train_main(["--config", str(ROOT / "configs/audio/speech-16k-cpu.yaml"), "--model.init_from", str(SHIPPED),
                      "--trainer.devices", "1", "--trainer.strategy", "auto", "--trainer.logger", "false"], run=False)
    module, data = cli.model, cli.datamodule
    assert isinstance(module.codec, AudioCodec) and isinstance(module.losses, AudioLosses)
    assert module.discriminator is None
    assert module.codec.cfg.to_dict() == json.loads((SHIPPED / "config.json").read_text())["model"]
    shipped = SpeechCodec.load(SHIPPED).model.state_dict()
    assert all(torch.equal(v, shipped[k]) for k, v in module.codec.state_dict().items())
    h = module.hparams
    assert (h.lr, h.warmup_steps, h.decay_start, h.decay_steps, h.min_lr_ratio, h.grad_clip) == (
        0.0015, 200, 1400, 2200, 0.05, 10.0)
    assert module.losses.stft.resolutions == (320, 1024)
    w = module.losses.weights
    assert (w.mel, w.stft, w.phase, w.commit) == (1.0, 1.0, 1.0, 1.0)
    assert isinstance(data, AudioDataModule)
    data_args = {k: v for k, v in data.hparams.items() if not k.startswith("_")}
    assert data_args == dict(root="data/speech16k", segment=16000, batch_size=6, epoch_size=16000, val_segment=48000,
                             val_clips=24, val_batch_size=8, num_workers=0, seed=0)


@pytest.mark.parametrize("recipe, shipped", [("image-vq-cpu.yaml", "image-vq-v1"),
                                             ("image-vq-v2-cpu.yaml", "image-vq-v2"),
                                             ("image-vq-v3-cpu.yaml", "image-vq")])
def test_image_vq_recipes_build_the_shipped_networks_from_the_shipped_weights(recipe, shipped):
    """Each recipe continued from the weights it shipped (v2's names v1 in init_from, v3's v2): the same network
    settings as the shipped config, the shipped tensors, no second warm-up."""
    from mediatok.codecs.image import ImageCodec, ImageVQ
    from mediatok.train.image import ImageFolderDataModule, ImageLosses

    folder = ROOT / "pretrained" / shipped
    cli = train_main(["--config", str(ROOT / "configs/image" / recipe), "--model.init_from", str(folder),
                      "--trainer.devices", "1", "--trainer.strategy", "auto", "--trainer.logger", "false"], run=False)
    module = cli.model
    assert isinstance(module.codec, ImageVQ) and isinstance(module.losses, ImageLosses)
    assert isinstance(cli.datamodule, ImageFolderDataModule) and module.discriminator is None
    assert module.codec.cfg.to_dict() == json.loads((folder / "config.json").read_text())["model"]
    weights = ImageCodec.load(folder).model.state_dict()
    assert all(torch.equal(v, weights[k]) for k, v in module.codec.state_dict().items())
    assert int(module.codec.warmup_left) == 0  # continuing from shipped weights does not warm up again


@pytest.mark.parametrize("recipe, start", [("image-vq-v2-cpu.yaml", "image-vq-v1"),
                                           ("image-vq-v3-cpu.yaml", "image-vq-v2")])
def test_later_image_vq_recipes_train_on_upscaled_crops_from_the_previous_version(recipe, start):
    cli = train_main(["--config", str(ROOT / "configs/image" / recipe), "--trainer.devices", "1",
                      "--trainer.strategy", "auto", "--trainer.logger", "false"], run=False)
    assert cli.model.hparams.init_from == f"pretrained/{start}"
    assert cli.datamodule.hparams.max_upscale == 2.0


TOKENIZER_CONFIG = ROOT / "configs/audio/speech-tok-16k-cpu.yaml"
TOKENIZER_SHIPPED = ROOT / "pretrained" / "speech-tok-16k"


def _tokenizer_cli(*extra: str):
    return train_main(["--config", str(TOKENIZER_CONFIG), "--trainer.logger", "false", *extra], run=False)


def test_speech_tok_16k_recipe_starts_from_speech_16k_with_a_fresh_single_codebook():
    from mediatok.quantizers import LCQuantizer

    module = _tokenizer_cli().model
    codec = module.codec
    assert isinstance(codec.quantizer, LCQuantizer)
    assert (codec.num_codebooks, codec.quantizer.codebook_size, codec.cfg.frame_rate, codec.bitrate) == (1, 4096, 50.0, 600.0)
    assert not bool(codec.quantizer.codebook.initialized)  # CodebookFromLatents seeds it when the run starts
    shipped = SpeechCodec.load(SHIPPED_V1).model.state_dict()
    for key, value in codec.state_dict().items():
        if not key.startswith("quantizer."):
            assert torch.equal(value, shipped[key]), key


def test_speech_16k_v2_recipe_starts_from_v1_with_the_stoi_term_on_the_wide_set():
    cli = train_main(["--config", str(ROOT / "configs/audio/speech-16k-v2-cpu.yaml"), "--trainer.devices", "1",
                      "--trainer.strategy", "auto", "--trainer.logger", "false"], run=False)
    module, data = cli.model, cli.datamodule
    assert module.losses.weights.stoi == 10.0 and module.discriminator is None
    assert data.hparams.root == "data/speech16k/wide" and data.augment is not None
    v1 = SpeechCodec.load(SHIPPED_V1).model.state_dict()
    assert all(torch.equal(v, v1[k]) for k, v in module.codec.state_dict().items())
    # v2 is that network, retrained: same settings as the shipped speech-16k
    assert module.codec.cfg.to_dict() == json.loads((SHIPPED / "config.json").read_text())["model"]


@pytest.mark.skipif(not (TOKENIZER_SHIPPED / "config.json").exists(), reason="pretrained/speech-tok-16k not present")
def test_speech_tok_16k_recipe_builds_the_shipped_tokenizer_strictly():
    module = _tokenizer_cli("--model.init_from", str(TOKENIZER_SHIPPED), "--model.init_skip", "[]").model
    assert module.codec.cfg.to_dict() == json.loads((TOKENIZER_SHIPPED / "config.json").read_text())["model"]
    shipped = SpeechCodec.load(TOKENIZER_SHIPPED).model.state_dict()
    state = module.codec.state_dict()
    assert state.keys() == shipped.keys()
    assert all(torch.equal(v, shipped[k]) for k, v in state.items())
