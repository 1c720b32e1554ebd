"""The loss-set contract every media family's training losses follow, and their weights.

A loss set is an `nn.Module` (so that its filters and windows follow the module to the device):

    terms = losses(batch, out)          # dict of *unweighted* scalar terms, commitment/aux terms included
    loss = losses.weights.total(terms)  # weighted sum; GAN terms ("adversarial", "feature") are added by
                                        # CodecModule before it calls total()
    y = losses.reconstruction(out)      # what the discriminator and callbacks compare with the batch
    losses.check_codec(codec)           # optional: refuse a codec these losses cannot train (e.g. sample rate)

Each family's weights are a dataclass deriving from `LossWeights`, one float field per term it returns.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from torch import Tensor, nn


@dataclass
class LossWeights:
    """Weights of the generator's loss terms; families add one field per reconstruction term."""

    adversarial: float = 1.0
    feature: float = 2.0

    def total(self, terms: dict[str, Tensor]) -> Tensor:
        """sum over terms of weight * term; a term without a weight field is an error, not silently dropped."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(terms) - known)
        if unknown:
            raise ValueError(f"loss terms {unknown} have no weight in {type(self).__name__} (fields: {sorted(known)})")
        if not terms:
            raise ValueError("a loss set returned no terms")
        return sum(getattr(self, name) * value for name, value in terms.items())


class LossSet(nn.Module):
    """Base of a family's training losses: `forward(batch, out) -> {name: unweighted scalar}` and `weights`."""

    weights: LossWeights

    def forward(self, batch: Tensor, out: object) -> dict[str, Tensor]:
        """Unweighted scalar terms for a batch and the codec's output on it."""
        raise NotImplementedError

    def reconstruction(self, out: object) -> Tensor:
        """The codec output's reconstruction of the batch (same shape as the batch)."""
        return out.reconstruction  # type: ignore[attr-defined]

    def last_layer(self, codec: nn.Module) -> Tensor | None:
        """The weight of the codec's output layer, where an adaptive GAN weight compares gradients (None: no such
        layer is known, and `CodecModule(adaptive_gan_weight=True)` refuses to start)."""
        return None

    def aux_parameters(self, codec: nn.Module) -> list[nn.Parameter]:
        """Parameters trained only by an auxiliary term (an entropy bottleneck's quantiles): `CodecModule` keeps
        them out of gradient clipping and weight decay, so that the auxiliary term's large early gradients neither
        shrink the codec's updates through the shared clipping norm nor get decayed. None by default."""
        return []

    def check_codec(self, codec: nn.Module) -> None:
        """Raise ValueError when these losses cannot train `codec`; by default every codec is accepted."""
