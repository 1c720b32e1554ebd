"""`CodecModule`: trains any family's codec network with its family's loss set, and optionally a GAN.

    batch --codec--> out --+--> discriminator step (once step >= disc_start, when a discriminator is given)
                           +--> generator step: losses(batch, out) (+ adversarial + feature) --weights.total-->

The contract, which is all this module knows of a media family:
- `codec`: an `nn.Module`; `out = codec(batch)` returns an object whose reconstruction `losses.reconstruction(out)`
  finds (by default `out.reconstruction`, same shape as the batch) and, optionally, `out.stats`: a dict whose
  "utilization" / "perplexity" entries are logged under `vq/`. To be exported, the network has `cfg.to_dict()` and
  belongs to a registered family: `families()[f].codec_class.build_model(cfg.to_dict())` rebuilds it.
- `losses`: a `mediatok.train.losses.LossSet` (unweighted terms, a `LossWeights` dataclass, the reconstruction).
- `discriminator`: optional, `discriminator(x) -> [(score, [features]), ...]` (see `mediatok.train.gan`).
- the data module: any `LightningDataModule` whose batches `codec` takes.
Logging of media (samples, quality metrics) lives in callbacks, which receive `out` from `validation_step`.

The GAN objective is `gan_loss` ("lsgan" or "hinge", see `mediatok.train.gan`); with `adaptive_gan_weight` the
adversarial term is scaled by VQGAN's gradient-norm ratio at `losses.last_layer(codec)`.

Manual optimisation, because a GAN needs two optimisers stepping in a fixed order. The learning rate follows
`WarmupCosine`, a pure function of the step count, so resuming from any checkpoint continues it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from mediatok.train.gan import GAN_LOSSES, GanLoss, discriminator_loss, generator_losses
from mediatok.train.losses import LossSet
from mediatok.train.schedule import WarmupCosine


class CodecModule(L.LightningModule):
    """Trains `codec` with `losses`; with a `discriminator`, adds a GAN phase from step `disc_start` on."""

    def __init__(
        self,
        codec: nn.Module,
        losses: LossSet,
        discriminator: nn.Module | None = None,
        lr: float = 1e-3,
        disc_lr: float = 2e-4,
        warmup_steps: int = 200,
        decay_start: int = 1_000_000,
        decay_steps: int = 1,
        min_lr_ratio: float = 0.05,
        disc_start: int = 0,
        grad_clip: float = 10.0,
        init_from: str | None = None,
        init_skip: list[str] | None = None,
        gan_loss: GanLoss = "lsgan",
        adaptive_gan_weight: bool = False,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # The networks are in the state dict; the YAML (or the caller) says how to build them again.
        self.save_hyperparameters(ignore=["codec", "losses", "discriminator"])
        self.codec, self.losses, self.discriminator = codec, losses, discriminator
        losses.check_codec(codec)
        if gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {GAN_LOSSES}, got {gan_loss!r}")
        if adaptive_gan_weight and losses.last_layer(codec) is None:
            raise ValueError(f"adaptive_gan_weight needs the loss set to name the codec's last layer; "
                             f"{type(losses).__name__}.last_layer returned None")
        self.schedule = WarmupCosine(warmup_steps, decay_start, decay_steps, min_lr_ratio)
        if init_skip and init_from is None:
            raise ValueError(f"init_skip={init_skip!r} names modules to leave out of init_from, but init_from is not set")
        if init_from is not None:
            self._load_shipped_weights(init_from, tuple(init_skip or ()))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # generator steps, saved and resumed

    def _load_shipped_weights(self, folder: str, skip: tuple[str, ...] = ()) -> None:
        """Start from a shipped checkpoint folder (config.json + model.safetensors), e.g. pretrained/speech-16k.

        Training checkpoints (.ckpt) stay outside git, so a later session resumes from what was shipped:
        weights and codebook state; the optimiser and the step count start afresh.

        `skip` names submodules of the codec (e.g. "quantizer", "decoder.head") that keep their fresh initialisation:
        a new quantizer on a shipped encoder and decoder. Every other tensor must match the shipped one exactly
        (same names, same shapes); a skipped name that is no submodule of the codec is an error, not a no-op.
        """
        from mediatok.codecs import load_folder

        shipped = load_folder(Path(folder)).model
        if type(shipped) is not type(self.codec):
            raise ValueError(f"init_from={folder!r} holds a {type(shipped).__name__}, but this run trains a "
                             f"{type(self.codec).__name__}; pick a folder of the same codec family")
        modules = dict(self.codec.named_modules())
        unknown = [name for name in skip if not name or name not in modules]
        if unknown:
            tops = sorted(name for name in modules if name and "." not in name)
            raise ValueError(f"init_skip names {unknown}, which are not submodules of the codec; "
                             f"its top-level submodules are {tops}")

        def skipped(key: str) -> bool:
            return any(key.startswith(name + ".") for name in skip)

        ours = self.codec.state_dict()
        state = {k: v for k, v in shipped.state_dict().items() if not skipped(k)}
        # The skipped modules' own tensors, so that strict loading still checks every other name and shape.
        state.update({k: v for k, v in ours.items() if skipped(k)})
        try:
            self.codec.load_state_dict(state, strict=True)
        except RuntimeError as err:
            hint = f" (init_skip={list(skip)})" if skip else ""
            raise ValueError(f"init_from={folder!r} does not fit this run's codec settings{hint}: {err}") from err

    def lr_factor(self, step: int) -> float:
        """The schedule's multiplier of `lr` at generator step `step`."""
        return self.schedule(step)

    def configure_optimizers(self) -> Any:
        h = self.hparams
        aux = {id(p) for p in self.losses.aux_parameters(self.codec)}
        groups = [{"params": [p for p in self.codec.parameters() if id(p) not in aux]}]
        if aux:
            groups.append({"params": [p for p in self.codec.parameters() if id(p) in aux], "weight_decay": 0.0})
        opt_g = torch.optim.AdamW(groups, lr=h.lr, betas=(0.8, 0.99), weight_decay=0.01)
        if self.discriminator is None:
            return opt_g
        opt_d = torch.optim.AdamW(self.discriminator.parameters(), lr=h.disc_lr, betas=(0.8, 0.99), weight_decay=0.01)
        return [opt_g, opt_d]

    def _optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
        opts = self.optimizers()
        return (opts[0], opts[1]) if isinstance(opts, list) else (opts, None)

    # ---- training ---------------------------------------------------------------------------------------------
    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        out = self.codec(batch)
        gan = self.discriminator is not None and int(self.steps) >= self.hparams.disc_start
        if gan:
            self._discriminator_step(batch, out)
        self._generator_step(batch, out, gan)
        self.steps += 1

    def _discriminator_step(self, batch: Tensor, out: Any) -> None:
        _, opt_d = self._optimizers()
        assert opt_d is not None and self.discriminator is not None, "GAN phase needs the discriminator"
        fake = self.losses.reconstruction(out).detach()
        loss = discriminator_loss(self.discriminator(batch), self.discriminator(fake), self.hparams.gan_loss)
        self._step(opt_d, loss)
        self.log("train/disc", loss.detach())

    def _generator_step(self, batch: Tensor, out: Any, gan: bool) -> None:
        opt_g, _ = self._optimizers()
        terms = self.losses(batch, out)
        if gan:
            adversarial, feature = self._adversarial_terms(batch, out)
            if self.hparams.adaptive_gan_weight:
                adversarial = adversarial * self._adaptive_weight(self.losses.weights.total(terms), adversarial)
            terms.update(adversarial=adversarial, feature=feature)
        loss = self.losses.weights.total(terms)
        for group in opt_g.param_groups:
            group["lr"] = self.hparams.lr * self.lr_factor(int(self.steps))
        self._step(opt_g, loss)
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()})
        self.log("train/loss", loss.detach(), prog_bar=True)
        self.log("train/lr", opt_g.param_groups[0]["lr"])
        stats = getattr(out, "stats", {}) or {}
        self.log_dict({f"vq/{k}": v.float() for k, v in stats.items() if k in ("utilization", "perplexity")})

    def _adaptive_weight(self, reconstruction: Tensor, adversarial: Tensor) -> Tensor:
        """VQGAN's balance (Esser et al. 2021, eq. 7): |grad of the reconstruction loss| / |grad of the adversarial
        loss| at the codec's last layer, so that the GAN never outweighs reconstruction whatever their scales."""
        last = self.losses.last_layer(self.codec)
        g_rec = torch.autograd.grad(reconstruction, last, retain_graph=True)[0]
        g_adv = torch.autograd.grad(adversarial, last, retain_graph=True)[0]
        weight = (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, 1e4).detach()
        self.log("train/adaptive_gan_weight", weight)
        return weight

    def _adversarial_terms(self, batch: Tensor, out: Any) -> tuple[Tensor, Tensor]:
        """(adversarial, feature matching) with the discriminator frozen, so only the codec gets gradients."""
        assert self.discriminator is not None, "GAN phase needs the discriminator"
        self.discriminator.requires_grad_(False)
        try:
            return generator_losses(self.discriminator(batch), self.discriminator(self.losses.reconstruction(out)),
                                    self.hparams.gan_loss)
        finally:
            self.discriminator.requires_grad_(True)

    def _step(self, opt: torch.optim.Optimizer, loss: Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if len(opt.param_groups) > 1:  # the generator's auxiliary-only parameters (group 1) are not clipped
            torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], self.hparams.grad_clip)
        else:
            self.clip_gradients(opt, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")
        opt.step()

    # ---- validation and checkpoints -------------------------------------------------------------------------
    def validation_step(self, batch: Tensor, batch_idx: int) -> Any:
        """Logs the unweighted terms; returns the codec's output for callbacks (samples, quality metrics)."""
        out = self.codec(batch)
        terms = self.losses(batch, out)
        self.log_dict({f"val/{k}": v for k, v in terms.items()}, sync_dist=True, batch_size=batch.shape[0])
        return out

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # What `mediatok.train.export` needs to rebuild the network through the family registry (plain JSON types,
        # so LightningCLI's weights_only loading of hyper-parameters on resume is unaffected).
        cfg = getattr(self.codec, "cfg", None)
        checkpoint["codec"] = {"family": network_family(self.codec),
                               "model": cfg.to_dict() if hasattr(cfg, "to_dict") else None}


def network_family(model: nn.Module) -> str | None:
    """The registered family whose `Codec.model_class` this network is an instance of, or None."""
    from mediatok.codecs import families

    for name, fam in families().items():
        built = getattr(fam.codec_class, "model_class", None)
        if isinstance(built, type) and isinstance(model, built):
            return name
    return None
