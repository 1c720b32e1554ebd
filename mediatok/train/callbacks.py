"""Training callbacks for any codec: codebook usage and rate logging, and a wall-clock step timer.

Media-specific callbacks (audio samples, speech quality) live with their media: `mediatok.train.audio`.
"""
from __future__ import annotations

import time

import lightning as L
import torch


class CodebookStats(L.Callback):
    """Every `every` steps: utilisation and perplexity per codebook since the last log, and the code rate.

    bits per position (entropy) = sum over codebooks of log2(perplexity): what an ideal order-0 entropy coder
    would spend per token position with the current code usage. Codecs with a `cfg.frame_rate` (audio) log it
    as bits/s, with `vq/bits_per_second_nominal` = the codec's `bitrate`.
    """

    def __init__(self, every: int = 200) -> None:
        self.every = every

    def _codebooks(self, pl_module: L.LightningModule) -> list[torch.nn.Module]:
        from mediatok.quantizers import Codebook

        return [m for m in pl_module.codec.modules() if isinstance(m, Codebook)]

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        step = int(pl_module.steps)
        if step % self.every:
            return
        bits, util = 0.0, []
        for i, cb in enumerate(self._codebooks(pl_module)):
            counts = cb.usage_counts.double()
            p = counts / counts.sum().clamp_min(1)
            entropy = float(-(p * torch.log2(p.clamp_min(1e-12))).sum())
            bits += entropy
            util.append(float((counts > 0).double().mean()))
            pl_module.log(f"vq/utilization_window/{i}", util[-1])
            pl_module.log(f"vq/perplexity_window/{i}", 2**entropy)
            cb.reset_usage()
        frame_rate = getattr(getattr(pl_module.codec, "cfg", None), "frame_rate", None)
        if frame_rate is not None:
            pl_module.log("vq/bits_per_second_entropy", bits * frame_rate)
            pl_module.log("vq/bits_per_second_nominal", float(pl_module.codec.bitrate))
        else:
            pl_module.log("vq/bits_per_position_entropy", bits)
        if util:
            pl_module.log("vq/utilization_window", sum(util) / len(util), prog_bar=True)


class StepTimer(L.Callback):
    """Logs seconds per training step (wall clock), averaged over `every` steps."""

    def __init__(self, every: int = 50) -> None:
        self.every, self.start, self.count = every, time.monotonic(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.count += 1
        if self.count == self.every:
            pl_module.log("train/sec_per_step", (time.monotonic() - self.start) / self.count, prog_bar=True)
            self.start, self.count = time.monotonic(), 0
