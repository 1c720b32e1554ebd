"""PatchGAN: the image discriminator of pix2pix and VQGAN, scoring overlapping patches as real or reconstructed.

    x (B, 3, H, W) in [0, 1] --conv 4x4 /2, LeakyReLU--> [conv 4x4 /2, LeakyReLU] x (layers - 1)
        --conv 4x4, LeakyReLU--> conv 4x4 --> scores (B, 1, ~H / 2^layers, ~W / 2^layers)

Each score sees a patch of about 70 px (3 layers), so the discriminator judges texture, not layout. No
normalisation layers (VQGAN's BatchNorm couples the samples of a batch, and a batch of 4 on a CPU is noisy);
spectral normalisation on every conv keeps its Lipschitz constant, and so the adversarial gradient, bounded.
Returns [(scores, [features of every hidden layer])], the shape `mediatok.train.gan` takes.
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """PatchGAN with `layers` stride-2 convolutions of width `width` * 2^i (capped at 8x)."""

    def __init__(self, width: int = 32, layers: int = 3) -> None:
        super().__init__()
        if width < 1 or layers < 1:
            raise ValueError(f"width and layers must be >= 1, got {width}, {layers}")
        dims = [3] + [width * min(2**i, 8) for i in range(layers + 1)]
        blocks = [nn.Sequential(spectral_norm(nn.Conv2d(dims[i], dims[i + 1], 4, stride=2 if i < layers else 1,
                                                        padding=1)), nn.LeakyReLU(0.2))
                  for i in range(layers + 1)]
        self.blocks = nn.ModuleList(blocks)
        self.head = spectral_norm(nn.Conv2d(dims[-1], 1, 4, padding=1))

    def forward(self, x: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        """x (B, 3, H, W) in [0, 1] -> [(scores (B, 1, h, w), [hidden features])]."""
        h, features = x * 2 - 1, []
        for block in self.blocks:
            h = block(h)
            features.append(h)
        return [(self.head(h), features)]
