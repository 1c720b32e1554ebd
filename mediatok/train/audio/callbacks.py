"""Audio callbacks: reconstructions written as .wav files, and PESQ/STOI on the validation crops.

Both read the codec output that `CodecModule.validation_step` returns, so nothing runs the codec twice.
"""
from __future__ import annotations

import lightning as L
import numpy as np
import soundfile as sf

from mediatok.train.callbacks import samples_root


class AudioSamples(L.Callback):
    """After each validation: write the first few reconstructions (and once, the references) as .wav files.

    Writes into `<log_dir>/samples/step<N>/`; with a TensorBoard logger they are added there too.
    """

    def __init__(self, num: int = 3) -> None:
        self.num = num

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        root = samples_root(trainer, batch_idx)
        if root is None:
            return
        audio = pl_module.losses.reconstruction(outputs)[: self.num].detach()  # (n, 1, T)
        sr = pl_module.codec.cfg.sample_rate
        step = int(pl_module.steps)
        out = root / f"step{step:07d}"
        out.mkdir(parents=True, exist_ok=True)
        for i, (ref, deg) in enumerate(zip(batch[: self.num, 0], audio[:, 0])):
            sf.write(str(out / f"{i}.wav"), deg.float().cpu().clamp(-1, 1).numpy(), sr)
            if not (root / f"ref{i}.wav").exists():
                sf.write(str(root / f"ref{i}.wav"), ref.cpu().numpy(), sr)
        experiment = getattr(trainer.logger, "experiment", None)
        if hasattr(experiment, "add_audio"):
            for i, deg in enumerate(audio[:, 0]):
                experiment.add_audio(f"sample/{i}", deg.float().cpu()[None], step, sr)


class SpeechQuality(L.Callback):
    """PESQ (WB, NB) and STOI of every validation crop, averaged and logged as val/pesq_wb, val/stoi, ...

    Every `every` epochs; skipped, with nothing logged, when the optional `pesq` / `pystoi` packages are missing.
    A checkpoint callback may monitor `val/pesq_wb`.
    """

    def __init__(self, every: int = 1) -> None:
        self.every = every
        self._rows: list[dict[str, float]] = []

    def _active(self, trainer: L.Trainer) -> bool:
        from mediatok.codecs.audio.metrics import have_quality_metrics

        return trainer.current_epoch % self.every == 0 and have_quality_metrics()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if not self._active(trainer):
            return
        from mediatok.codecs.audio.metrics import quality

        sr = pl_module.codec.cfg.sample_rate
        degraded = pl_module.losses.reconstruction(outputs)[:, 0].detach().float().cpu().numpy()
        for ref, deg in zip(batch[:, 0].cpu().numpy(), degraded):
            self._rows.append(quality(ref, deg, sr))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self._rows:
            for key in self._rows[0]:
                values = [r[key] for r in self._rows if not np.isnan(r[key])]
                # PESQ finds no speech in some outputs of an untrained model; every rank must still log every key.
                pl_module.log(f"val/{key}", float(np.mean(values)) if values else 0.0, sync_dist=True)
        self._rows = []


class CodebookFromLatents(L.Callback):
    """Before the first step of a fresh run: the LC codebook's frozen entries become k-means centres of the encoder's
    latents on `seconds` of training crops, and its projector starts as the identity (latents map onto themselves).

    Meant for a new quantizer on a shipped encoder (`init_from` + `init_skip: [quantizer]`): the codewords start
    where the latents already are, each code owning a cluster of them, instead of being pulled in from random
    places over thousands of steps. A resumed run (step > 0) keeps the codebook its checkpoint holds, and so does a
    run whose quantizer came from `init_from` (not named in `init_skip`): a shipped codebook is not re-seeded.
    """

    def __init__(self, seconds: float = 1600.0, iters: int = 10, batch_size: int = 32) -> None:
        if seconds <= 0 or iters < 1 or batch_size < 1:
            raise ValueError(f"seconds must be > 0, iters and batch_size >= 1; got {seconds}, {iters}, {batch_size}")
        self.seconds, self.iters, self.batch_size = seconds, iters, batch_size

    def on_fit_start(self, trainer, pl_module) -> None:
        import torch

        from mediatok.quantizers import LCQuantizer

        codec = pl_module.codec
        quantizer = getattr(codec, "quantizer", None)
        if not isinstance(quantizer, LCQuantizer):
            raise ValueError(f"CodebookFromLatents initialises an LC quantizer (quantizer: lc); this codec has "
                             f"{type(quantizer).__name__}")
        if int(pl_module.steps) > 0 or self._quantizer_was_loaded(pl_module):
            return
        crops = getattr(trainer.datamodule, "train_set", None)
        if crops is None:
            raise ValueError("CodebookFromLatents needs the data module's train_set (an AudioDataModule after setup)")
        segment = crops.segment
        count = min(len(crops), max(1, round(self.seconds * codec.cfg.sample_rate / segment)))
        latents = []
        was_training = codec.training
        codec.eval()
        with torch.no_grad():
            for start in range(0, count, self.batch_size):
                batch = torch.stack([crops[k] for k in range(start, min(count, start + self.batch_size))])
                z = codec.encoder(batch.to(pl_module.device))  # (b, D, n)
                latents.append(z.movedim(1, -1).reshape(-1, z.shape[1]))  # (b * n, D)
        codec.train(was_training)
        rows = torch.cat(latents)
        if rows.shape[0] < quantizer.codebook_size:
            raise ValueError(f"{rows.shape[0]} latent frames from {count} crops cannot seed {quantizer.codebook_size} "
                             f"codes; raise `seconds`")
        quantizer.init_from_features(rows, latents=rows, iters=self.iters)

    @staticmethod
    def _quantizer_was_loaded(pl_module) -> bool:
        """Whether `init_from` supplied the quantizer (CodecModule's hyper-parameters; absent: it did not)."""
        hparams = getattr(pl_module, "hparams", {}) or {}
        if not hparams.get("init_from"):
            return False
        skipped = hparams.get("init_skip") or ()
        return not any(name == "quantizer" or name.startswith("quantizer.") for name in skipped)
