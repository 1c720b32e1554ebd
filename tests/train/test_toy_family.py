"""A second media family, living only here, trains and exports through the same CodecModule and export.

It checks the contract in `mediatok.train.module`'s docstring, with nothing audio about it: the network returns
an output with `reconstruction` and `stats`, its loss set returns unweighted terms and a LossWeights dataclass,
the discriminator returns [(score, features)], and the family registers a `Codec` whose `build_model` says
which network it builds.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from mediatok.codecs import register_family, unregister_family
from mediatok.codecs.base import Codec
from mediatok.quantizers import VectorQuantizer
from mediatok.train.export import export
from mediatok.train.losses import LossSet, LossWeights
from mediatok.train.module import CodecModule, network_family


@dataclass
class ToyConfig:
    dim: int = 8
    codebook_size: int = 16

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ToyOutput:
    reconstruction: Tensor  # (B, 3, H, W)
    commit_loss: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)


class ToyImageNet(nn.Module):
    """(B, 3, H, W) -> 2x2 patches -> VQ -> back."""

    def __init__(self, cfg: ToyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.enc = nn.Conv2d(3, cfg.dim, 2, stride=2)
        self.quantizer = VectorQuantizer(cfg.dim, cfg.codebook_size)
        self.dec = nn.ConvTranspose2d(cfg.dim, 3, 2, stride=2)

    def forward(self, x: Tensor) -> ToyOutput:
        q = self.quantizer(self.enc(x))
        return ToyOutput(self.dec(q.quantized), q.loss, q.stats)


class ToyImageCodec(Codec):
    family = "toy-image"
    modality = "image"

    @classmethod
    def build_model(cls, config: dict) -> ToyImageNet:
        return ToyImageNet(ToyConfig(**config))


@dataclass
class ToyWeights(LossWeights):
    l1: float = 1.0
    commit: float = 1.0


class ToyLosses(LossSet):
    def __init__(self) -> None:
        super().__init__()
        self.weights = ToyWeights()

    def forward(self, batch: Tensor, out: ToyOutput) -> dict[str, Tensor]:
        return {"l1": F.l1_loss(out.reconstruction, batch), "commit": out.commit_loss}


class PatchDiscriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.post = nn.Conv2d(4, 1, 1)

    def forward(self, x: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        h = F.leaky_relu(self.conv(x), 0.1)
        return [(self.post(h), [h])]


class Images(L.LightningDataModule):
    def setup(self, stage: str | None = None) -> None:
        self.images = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.images, batch_size=4)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.images, batch_size=4)


@pytest.fixture
def toy_family():
    register_family("toy-image", ToyImageCodec, modality="image")
    try:
        yield
    finally:
        unregister_family("toy-image")


def test_a_toy_image_family_trains_with_a_gan_phase_and_exports(tmp_path, toy_family):
    torch.manual_seed(0)
    net = ToyImageNet(ToyConfig())
    assert network_family(net) == "toy-image"
    module = CodecModule(net, ToyLosses(), PatchDiscriminator(), lr=1e-2, warmup_steps=1, disc_start=2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trainer = L.Trainer(accelerator="cpu", max_steps=6, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1,
                        val_check_interval=2, num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=Images())
    # 2 generator steps, then 2 x (discriminator + generator): Lightning counts 6 optimizer steps
    assert int(module.steps) == 4
    assert not torch.equal(before["enc.weight"], net.state_dict()["enc.weight"])
    assert {"train/l1", "train/commit", "train/adversarial", "train/feature", "train/disc", "val/l1"} <= set(
        trainer.callback_metrics)
    trainer.save_checkpoint(tmp_path / "toy.ckpt")
    codec = export(tmp_path / "toy.ckpt", tmp_path / "toy", "toy", "ty")
    assert isinstance(codec, ToyImageCodec) and codec.short_id == "ty" and codec.entropy_model is None
    for key, value in codec.model.state_dict().items():  # the exported weights are the trained ones, in fp16
        assert torch.equal(value, net.state_dict()[key].half().float()), key


def test_export_names_what_is_missing(tmp_path, toy_family):
    module = CodecModule(ToyImageNet(ToyConfig()), ToyLosses())
    trainer = L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, datamodule=Images())
    trainer.save_checkpoint(tmp_path / "toy.ckpt")
    with pytest.raises(ValueError, match="'toy-image' registered no entropy fit"):
        export(tmp_path / "toy.ckpt", tmp_path / "toy", "toy", prior_data=tmp_path)
