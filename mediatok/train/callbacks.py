"""Training callbacks for any codec: codebook usage and rate logging, and a wall-clock step timer.

Media-specific callbacks (audio samples, speech quality) live with their media: `mediatok.train.audio`.
"""
from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch


def samples_root(trainer: L.Trainer, batch_idx: int) -> Path | None:
    """<log_dir>/samples on rank 0 for the first validation batch outside the sanity check, else None.

    Every rank must call it: asking for the log dir is a collective under DDP."""
    if batch_idx != 0 or trainer.sanity_checking:
        return None
    log_dir = trainer.log_dir
    if not trainer.is_global_zero:
        return None
    return Path(log_dir or trainer.default_root_dir) / "samples"


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


class EMAWeights(L.Callback):
    """An exponential moving average of the codec's parameters, used for validation and by `export`.

    shadow <- d * shadow + (1 - d) * weights after every training step, d = min(decay, (1 + t) / (10 + t)) at
    step t (a short memory at first, so the average does not drag the random initialisation along). Buffers
    (an EMA codebook, usage statistics) are not averaged: they are already running estimates. Validation runs
    with the averaged weights (swapped in and back), so the metrics a checkpoint is chosen by are those of
    the network that is exported; the checkpoint holds the average under "codec_ema".
    """

    def __init__(self, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.shadow: dict[str, torch.Tensor] = {}
        self._live: dict[str, torch.Tensor] = {}

    def _params(self, pl_module: L.LightningModule) -> dict[str, torch.Tensor]:
        return {n: p for n, p in pl_module.codec.named_parameters() if p.is_floating_point()}

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        params = self._params(pl_module)
        if set(self.shadow) != set(params):
            self.shadow = {n: p.detach().clone() for n, p in params.items()}
            return
        t = int(pl_module.steps)
        d = min(self.decay, (1 + t) / (10 + t))
        torch._foreach_lerp_([self.shadow[n] for n in params], [p.detach() for p in params.values()], 1.0 - d)

    @torch.no_grad()
    def on_validation_start(self, trainer, pl_module) -> None:
        params = self._params(pl_module)
        if set(self.shadow) != set(params):
            return  # nothing averaged yet (validation before the first step)
        self._live = {n: p.detach().clone() for n, p in params.items()}
        for n, p in params.items():
            p.copy_(self.shadow[n])

    @torch.no_grad()
    def on_validation_end(self, trainer, pl_module) -> None:
        for n, p in self._params(pl_module).items():
            if n in self._live:
                p.copy_(self._live[n])
        self._live = {}

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self.shadow:
            checkpoint["codec_ema"] = {n: t.detach().cpu().clone() for n, t in self.shadow.items()}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        saved = checkpoint.get("codec_ema")
        if saved:
            device = next(pl_module.codec.parameters()).device
            self.shadow = {n: t.to(device) for n, t in saved.items()}
