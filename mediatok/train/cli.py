"""`mediatok train ...`: LightningCLI over the audio codec module and data module.

    mediatok train fit --config configs/audio/speech-16k-cpu.yaml [--ckpt_path runs/.../last.ckpt]
"""
from __future__ import annotations

import warnings

import torch
from lightning.pytorch.cli import LightningCLI

from mediatok.train.data import AudioDataModule
from mediatok.train.module import AudioCodecModule


def train_main(args: list[str] | None = None) -> LightningCLI:
    """Run LightningCLI with `args` (sys.argv[1:] when None)."""
    torch.set_float32_matmul_precision("high")
    # `mediatok train ...` passes args explicitly while sys.argv still holds the full command, which Lightning's
    # DDP launcher needs to start the other ranks; LightningCLI's warning about that is expected here.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    return LightningCLI(
        AudioCodecModule,
        AudioDataModule,
        args=args,
        save_config_kwargs={"overwrite": True},
    )


if __name__ == "__main__":
    train_main()
