"""LightningModule for audio codecs: reconstruction losses first, an optional GAN phase later.

    batch (B, 1, T) --codec--> out --+--> discriminator step (once step >= disc_start)
                                     +--> generator step: mel + STFT + phase + commitment (+ adversarial + features)

Manual optimisation, because a GAN needs two optimisers stepping in a fixed order. The learning rate is a pure
function of the step count (warm-up, constant, cosine decay), so resuming from any checkpoint continues it.
"""
from __future__ import annotations

import math
from dataclasses import asdict

import lightning as L
import numpy as np
import torch
from torch import Tensor

from mediatok.codecs.audio.model import AudioCodec, AudioCodecConfig, CodecOutput
from mediatok.train.discriminators import MultiDiscriminator, discriminator_loss, generator_losses
from mediatok.train.losses import LossWeights, MultiResolutionSTFTLoss, MultiScaleMelLoss


class AudioCodecModule(L.LightningModule):
    """Trains an `AudioCodec`. `disc_start < 0` never starts the discriminator (reconstruction losses only)."""

    def __init__(
        self,
        codec: AudioCodecConfig,
        weights: LossWeights | None = None,
        lr: float = 1e-3,
        disc_lr: float = 2e-4,
        warmup_steps: int = 200,
        decay_start: int = 1_000_000,
        decay_steps: int = 1,
        min_lr_ratio: float = 0.05,
        disc_start: int = -1,
        disc_channels: int = 32,
        disc_periods: tuple[int, ...] = (2, 3, 5, 7, 11),
        disc_resolutions: tuple[int, ...] = (512, 1024, 2048),
        stft_resolutions: tuple[int, ...] = (320, 640, 1280),
        grad_clip: float = 10.0,
        val_quality_every: int = 1,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters()
        self.weights = weights or LossWeights()
        self.codec = AudioCodec(codec)
        if init_from is not None:
            self._load_shipped_weights(init_from)
        self.mel_loss = MultiScaleMelLoss(codec.sample_rate)
        self.stft_loss = MultiResolutionSTFTLoss(stft_resolutions)
        self.disc = MultiDiscriminator(disc_periods, disc_resolutions, disc_channels) if disc_start >= 0 else None
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._val: list[dict[str, float]] = []

    def _load_shipped_weights(self, folder: str) -> None:
        """Start from a shipped checkpoint folder (config.json + model.safetensors), e.g. pretrained/speech-16k.

        Training checkpoints (.ckpt) stay outside git, so a later session resumes from what was shipped:
        weights, EMA codebook state and usage; the optimiser and the step count start afresh.
        """
        from mediatok.codecs.audio.codec import SpeechCodec

        shipped = SpeechCodec.load(folder).model
        try:
            self.codec.load_state_dict(shipped.state_dict(), strict=True)
        except RuntimeError as err:
            raise ValueError(f"init_from={folder!r} does not fit this run's codec settings: {err}") from err

    def lr_factor(self, step: int) -> float:
        """Warm-up, constant, then cosine decay to min_lr_ratio over decay_steps."""
        h = self.hparams
        if step < h.warmup_steps:
            return (step + 1) / h.warmup_steps
        if step < h.decay_start:
            return 1.0
        t = min(1.0, (step - h.decay_start) / max(1, h.decay_steps))
        return h.min_lr_ratio + (1 - h.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    def configure_optimizers(self):
        h = self.hparams
        opt_g = torch.optim.AdamW(self.codec.parameters(), lr=h.lr, betas=(0.8, 0.99), weight_decay=0.01)
        if self.disc is None:
            return opt_g
        opt_d = torch.optim.AdamW(self.disc.parameters(), lr=h.disc_lr, betas=(0.8, 0.99), weight_decay=0.01)
        return [opt_g, opt_d]

    def _optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
        opts = self.optimizers()
        if isinstance(opts, list):
            return opts[0], opts[1]
        return opts, None

    def reconstruction_losses(self, batch: Tensor, out: CodecOutput) -> dict[str, Tensor]:
        """Unweighted mel, STFT-magnitude, phase and commitment losses."""
        mag, phase = self.stft_loss(out.audio, batch)
        return {"mel": self.mel_loss(out.audio, batch), "stft": mag, "phase": phase, "commit": out.commit_loss}

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        step = int(self.steps)
        out = self.codec(batch)
        gan = self.disc is not None and step >= self.hparams.disc_start
        if gan:
            self._discriminator_step(batch, out, step)
        self._generator_step(batch, out, step, gan)
        self.steps += 1

    def _discriminator_step(self, batch: Tensor, out: CodecOutput, step: int) -> None:
        _, opt_d = self._optimizers()
        assert opt_d is not None and self.disc is not None, "GAN phase needs the discriminator"
        loss = discriminator_loss(self.disc(batch), self.disc(out.audio.detach()))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.clip_gradients(opt_d, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")
        opt_d.step()
        self.log("train/disc", loss, prog_bar=False)

    def _generator_step(self, batch: Tensor, out: CodecOutput, step: int, gan: bool) -> None:
        opt_g, _ = self._optimizers()
        w = self.weights
        terms = self.reconstruction_losses(batch, out)
        loss = w.mel * terms["mel"] + w.stft * terms["stft"] + w.phase * terms["phase"] + w.commit * terms["commit"]
        if gan:
            assert self.disc is not None, "GAN phase needs the discriminator"
            for p in self.disc.parameters():
                p.requires_grad_(False)
            real = self.disc(batch)
            adv, fm = generator_losses(real, self.disc(out.audio))
            for p in self.disc.parameters():
                p.requires_grad_(True)
            terms.update(adv=adv, feature=fm)
            loss = loss + w.adversarial * adv + w.feature * fm
        for group in opt_g.param_groups:
            group["lr"] = self.hparams.lr * self.lr_factor(step)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.clip_gradients(opt_g, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")
        opt_g.step()
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, prog_bar=False)
        self.log("train/loss", loss.detach(), prog_bar=True)
        self.log("train/lr", opt_g.param_groups[0]["lr"])
        stats = {k: v for k, v in out.stats.items() if k in ("utilization", "perplexity")}
        self.log_dict({f"vq/{k}": v.float() for k, v in stats.items()})

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        out = self.codec(batch)
        terms = self.reconstruction_losses(batch, out)
        self.log_dict({f"val/{k}": v for k, v in terms.items()}, sync_dist=True, batch_size=batch.shape[0])
        if self.current_epoch % self.hparams.val_quality_every == 0:
            from mediatok.codecs.audio.metrics import have_quality_metrics, quality

            if have_quality_metrics():
                sr = self.codec.cfg.sample_rate
                for ref, deg in zip(batch[:, 0].cpu().numpy(), out.audio[:, 0].float().cpu().numpy()):
                    self._val.append(quality(ref, deg, sr))

    def on_validation_epoch_end(self) -> None:
        if self._val:
            for key in self._val[0]:
                values = [v[key] for v in self._val if not np.isnan(v[key])]
                # PESQ finds no speech in some outputs of an untrained model; every rank must still log every key.
                self.log(f"val/{key}", float(np.mean(values)) if values else 0.0, sync_dist=True)
        self._val = []

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["codec_config"] = asdict(self.codec.cfg)
