"""The test-only image family (tests/tiny_image_family.py) trains and exports through CodecModule and export.

It checks the contract in `mediatok.train.module`'s docstring, with nothing audio about it: the network returns
an output with `reconstruction` and `stats`, its loss set returns unweighted terms and a LossWeights dataclass,
the discriminator returns [(score, features)], and the family registers a `Codec` whose `model_class` says
which network it builds. (Its CLI path, `mediatok train fit --config`, is in tests/codecs/test_second_family.py.)
"""
from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

import tiny_image_family as tif
from mediatok.train.export import export
from mediatok.train.module import CodecModule, network_family
from tiny_image_family import PatchDiscriminator, TinyImageLosses, TinyImageNet


class Images(L.LightningDataModule):
    def setup(self, stage: str | None = None) -> None:
        self.images = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.images, batch_size=4)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.images, batch_size=4)


@pytest.fixture
def toy_family():
    tif.register()
    try:
        yield
    finally:
        tif.unregister()


def test_a_toy_image_family_trains_with_a_gan_phase_and_exports(tmp_path, toy_family):
    torch.manual_seed(0)
    net = TinyImageNet()
    assert network_family(net) == "tiny-image"
    module = CodecModule(net, TinyImageLosses(), PatchDiscriminator(), lr=1e-2, warmup_steps=1, disc_start=2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trainer = L.Trainer(accelerator="cpu", max_steps=6, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1,
                        val_check_interval=2, num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=Images())
    # 2 generator steps, then 2 x (discriminator + generator): Lightning counts 6 optimizer steps
    assert int(module.steps) == 4
    assert not torch.equal(before["encoder.0.weight"], net.state_dict()["encoder.0.weight"])
    assert {"train/l1", "train/commit", "train/adversarial", "train/feature", "train/disc", "val/l1"} <= set(
        trainer.callback_metrics)
    trainer.save_checkpoint(tmp_path / "toy.ckpt")
    codec = export(tmp_path / "toy.ckpt", tmp_path / "toy", "toy", "ty")
    assert isinstance(codec, tif.TinyImageCodec) and codec.short_id == "ty" and codec.entropy_model is None
    for key, value in codec.model.state_dict().items():  # the exported weights are the trained ones, in fp16
        assert torch.equal(value, net.state_dict()[key].half().float()), key


def test_export_names_what_is_missing(tmp_path, toy_family):
    module = CodecModule(TinyImageNet(), TinyImageLosses())
    trainer = L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, datamodule=Images())
    trainer.save_checkpoint(tmp_path / "toy.ckpt")
    with pytest.raises(ValueError, match="'tiny-image' registered no entropy fit"):
        export(tmp_path / "toy.ckpt", tmp_path / "toy", "toy", prior_data=tmp_path)
