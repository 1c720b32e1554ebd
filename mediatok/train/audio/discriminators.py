"""GAN discriminators for audio codecs (their losses are media-independent: `mediatok.train.gan`).

MultiPeriodDiscriminator: HiFi-GAN (Kong et al., 2020) - the waveform folded to (T/p, p), 2-d convolutions.
MultiResolutionSTFTDiscriminator: UnivNet / Vocos - 2-d convolutions over log-magnitude spectrograms.
`channels` scales both; the CPU configs use narrow ones because discriminator cost dominates a GAN step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from mediatok.train.gan import Features


class PeriodDiscriminator(nn.Module):
    """Waveform (B, 1, T) folded by period p -> (score map, feature maps)."""

    def __init__(self, period: int, channels: int = 32, depth: int = 4) -> None:
        super().__init__()
        self.period = period
        chans = [1] + [min(channels * 4**i, 512) for i in range(depth)]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (5, 1), (3, 1), padding=(2, 0))) for i in range(depth)
        )
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        b, c, t = x.shape
        pad = (-t) % self.period
        h = F.pad(x, (0, pad), mode="reflect").view(b, c, (t + pad) // self.period, self.period)  # (B, 1, T/p, p)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.1)
            feats.append(h)
        return self.post(h), feats


class STFTDiscriminator(nn.Module):
    """Log-magnitude spectrogram at one resolution -> (score map, feature maps)."""

    def __init__(self, n_fft: int, channels: int = 32) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, channels, (7, 5), padding=(3, 2))),
            weight_norm(nn.Conv2d(channels, channels, (5, 3), (2, 1), padding=(2, 1))),
            weight_norm(nn.Conv2d(channels, channels, (5, 3), (2, 1), padding=(2, 1))),
            weight_norm(nn.Conv2d(channels, channels, (5, 3), (2, 1), padding=(2, 1))),
        ])
        self.post = weight_norm(nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        spec = torch.stft(x[:, 0], self.n_fft, self.n_fft // 4, window=self.window, return_complex=True)
        h = torch.log(spec.abs().clamp_min(1e-5))[:, None]  # (B, 1, F, n)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.1)
            feats.append(h)
        return self.post(h), feats


class MultiDiscriminator(nn.Module):
    """Period and STFT discriminators applied to the same waveform (B, 1, T) -> [(score, features), ...]."""

    def __init__(
        self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), resolutions: tuple[int, ...] = (512, 1024, 2048), channels: int = 32
    ) -> None:
        super().__init__()
        self.discs = nn.ModuleList(
            [PeriodDiscriminator(p, channels) for p in periods] + [STFTDiscriminator(n, channels) for n in resolutions]
        )

    def forward(self, x: Tensor) -> list[tuple[Tensor, Features]]:
        return [d(x) for d in self.discs]
