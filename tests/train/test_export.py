"""The generic training pieces know no media, and export reads the checkpoints of the audio-only module too."""
from __future__ import annotations

import subprocess
import sys

import torch

from mediatok.codecs.audio import AudioCodec, AudioCodecConfig
from mediatok.train.export import network_from_checkpoint

TINY = AudioCodecConfig(latent_dim=16, enc_dim=32, enc_depth=1, dec_dim=32, dec_depth=1, up_dim=32, up_depth=1,
                        codebook_size=16)


def test_generic_training_modules_import_no_media_code():
    code = ("import sys, mediatok.train.module, mediatok.train.export, mediatok.train.cli, mediatok.train.callbacks\n"
            "print(sorted(m for m in sys.modules if m.startswith(('mediatok.codecs', 'mediatok.train.audio'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_checkpoints_of_the_audio_only_module_still_export(tmp_path):
    torch.manual_seed(0)
    net = AudioCodec(TINY)
    state = {f"codec.{k}": v for k, v in net.state_dict().items()} | {"steps": torch.tensor(7), "disc.w": torch.ones(1)}
    torch.save({"state_dict": state, "codec_config": TINY.to_dict()}, tmp_path / "old.ckpt")
    family, model = network_from_checkpoint(tmp_path / "old.ckpt")
    assert family == "audio" and model.cfg == TINY
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in model.state_dict().items())
