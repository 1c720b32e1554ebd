"""Training callbacks: codebook usage and bitrate logging, audio samples, and a wall-clock step timer."""
from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import soundfile as sf
import torch


class CodebookStats(L.Callback):
    """Every `every` steps: utilisation and perplexity per codebook since the last log, and bits/s.

    bits/s (entropy) = frame rate * sum over codebooks of log2(perplexity): the rate an ideal order-0 entropy
    coder would reach with the current code usage; bits/s (nominal) = frame rate * sum log2(K).
    """

    def __init__(self, every: int = 200) -> None:
        self.every = every

    def _codebooks(self, pl_module: L.LightningModule) -> list[torch.nn.Module]:
        from mediatok.quantizers import Codebook

        return [m for m in pl_module.codec.quantizer.modules() if isinstance(m, Codebook)]

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        step = int(pl_module.steps)
        if step % self.every:
            return
        books = self._codebooks(pl_module)
        frame_rate = pl_module.codec.cfg.frame_rate
        bits, util = 0.0, []
        for i, cb in enumerate(books):
            counts = cb.usage_counts.double()
            p = counts / counts.sum().clamp_min(1)
            entropy = float(-(p * torch.log2(p.clamp_min(1e-12))).sum())
            bits += entropy
            util.append(float((counts > 0).double().mean()))
            pl_module.log(f"vq/utilization_window/{i}", util[-1])
            pl_module.log(f"vq/perplexity_window/{i}", 2**entropy)
            cb.reset_usage()
        pl_module.log("vq/bits_per_second_entropy", bits * frame_rate)
        pl_module.log("vq/bits_per_second_nominal", pl_module.codec.bitrate)
        if util:
            pl_module.log("vq/utilization_window", sum(util) / len(util), prog_bar=True)


class AudioSamples(L.Callback):
    """After each validation: write the first few reconstructions (and once, the references) as .wav files.

    Writes into `<log_dir>/samples/step<N>/`; with a TensorBoard logger they are added there too.
    """

    def __init__(self, num: int = 3) -> None:
        self.num = num

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if batch_idx != 0 or trainer.sanity_checking:
            return
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask, not only rank 0
        if not trainer.is_global_zero:
            return
        with torch.no_grad():
            audio = pl_module.codec(batch[: self.num]).audio
        sr = pl_module.codec.cfg.sample_rate
        root = Path(log_dir or trainer.default_root_dir) / "samples"
        out = root / f"step{int(pl_module.steps):07d}"
        out.mkdir(parents=True, exist_ok=True)
        for i, (ref, deg) in enumerate(zip(batch[: self.num, 0], audio[:, 0])):
            sf.write(str(out / f"{i}.wav"), deg.float().cpu().clamp(-1, 1).numpy(), sr)
            if not (root / f"ref{i}.wav").exists():
                sf.write(str(root / f"ref{i}.wav"), ref.cpu().numpy(), sr)
        experiment = getattr(trainer.logger, "experiment", None)
        if hasattr(experiment, "add_audio"):
            for i, deg in enumerate(audio[:, 0]):
                experiment.add_audio(f"sample/{i}", deg.float().cpu()[None], int(pl_module.steps), sr)


class StepTimer(L.Callback):
    """Logs seconds per training step (wall clock), averaged over `every` steps."""

    def __init__(self, every: int = 50) -> None:
        self.every, self.start, self.count = every, time.monotonic(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.count += 1
        if self.count == self.every:
            pl_module.log("train/sec_per_step", (time.monotonic() - self.start) / self.count, prog_bar=True)
            self.start, self.count = time.monotonic(), 0
