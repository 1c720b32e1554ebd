"""`mediatok train ...`: LightningCLI over `CodecModule`, with codec, losses, discriminator and data by class path.

    mediatok train fit --config configs/audio/speech-16k-cpu.yaml [--ckpt_path runs/.../last.ckpt]

    model:
      codec: {class_path: mediatok.codecs.audio.AudioCodec, init_args: {cfg: {...}}}
      losses: {class_path: mediatok.train.audio.AudioLosses, init_args: {...}}
      discriminator: {class_path: mediatok.train.audio.MultiDiscriminator, init_args: {...}}   # optional
      lr: ...                                                                                   # CodecModule's own
    data: {class_path: mediatok.train.audio.AudioDataModule, init_args: {...}}
"""
from __future__ import annotations

import warnings

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI

from mediatok.train.module import CodecModule


def train_main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Run LightningCLI with `args` (sys.argv[1:] when None); process-wide settings are restored afterwards.

    run=False only builds the trainer, module and data module from args without a subcommand (for checks).
    """
    precision = torch.get_float32_matmul_precision()
    with warnings.catch_warnings():
        # `mediatok train ...` passes args explicitly while sys.argv still holds the full command, which Lightning's
        # DDP launcher needs to start the other ranks; LightningCLI's warning about that is expected here.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        torch.set_float32_matmul_precision("high")  # TF32 matmuls on GPUs that have them: ~2x, quality unchanged
        try:
            return LightningCLI(CodecModule, L.LightningDataModule, subclass_mode_data=True, args=args, run=run,
                                save_config_kwargs={"overwrite": True})
        finally:
            torch.set_float32_matmul_precision(precision)


if __name__ == "__main__":
    train_main()
