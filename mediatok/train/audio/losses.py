"""Audio's loss set: multi-scale mel L1, multi-resolution STFT magnitude, phase derivatives and commitment.

The phase terms compare *phase derivatives* of the output and the target, not phases: instantaneous
frequency (phase advance between frames) and group delay (phase step between bins), as in APNet
(Ai & Ling, 2023), in the smooth form 1 - cos(difference) and weighted by the target's magnitude so that
silent bins, whose phase is noise, do not count. A 2 kbps code cannot carry absolute phase; it can carry
pitch and onsets, which is what these derivatives measure, and without them an iSTFT decoder trained on
magnitudes alone produces phasey, buzzy speech unless a GAN is added.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor, nn

from mediatok.train.losses import LossSet, LossWeights

MelScales = tuple[tuple[int, int], ...]
MEL_SCALES: MelScales = ((256, 32), (512, 64), (1024, 80), (2048, 128))  # (n_fft, mel bands)


@dataclass
class AudioLossWeights(LossWeights):
    """Weights of `AudioLosses`' terms (and, inherited, of the GAN's adversarial and feature terms)."""

    mel: float = 1.0
    stft: float = 1.0
    phase: float = 1.0
    commit: float = 1.0


class AudioLosses(LossSet):
    """mel + STFT magnitude + phase derivatives + commitment for an `AudioCodec`'s output. batch (B, 1, T).

    Terms (unweighted): "mel", "stft", "phase", "commit" (the quantizer's own, already scaled by its
    commitment_weight); weighted by `weights` (an `AudioLossWeights`).
    """

    def __init__(self, sample_rate: int = 16000, stft_resolutions: tuple[int, ...] = (320, 640, 1280),
                 mel_scales: MelScales = MEL_SCALES, weights: AudioLossWeights | None = None) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.weights = weights or AudioLossWeights()
        self.mel = MultiScaleMelLoss(sample_rate, tuple(tuple(s) for s in mel_scales))
        self.stft = MultiResolutionSTFTLoss(tuple(stft_resolutions))

    def forward(self, batch: Tensor, out) -> dict[str, Tensor]:
        """Unweighted mel, STFT-magnitude, phase and commitment losses."""
        audio = out.reconstruction
        mag, phase = self.stft(audio, batch)
        return {"mel": self.mel(audio, batch), "stft": mag, "phase": phase, "commit": out.commit_loss}


    def check_codec(self, codec: nn.Module) -> None:
        """The mel filters are built for `sample_rate`: refuse a codec that runs at another rate."""
        rate = getattr(getattr(codec, "cfg", None), "sample_rate", self.sample_rate)
        if rate != self.sample_rate:
            raise ValueError(f"AudioLosses(sample_rate={self.sample_rate}) cannot train a codec at {rate} Hz; "
                             f"set losses.init_args.sample_rate: {rate}")


class MultiScaleMelLoss(nn.Module):
    """Mean over scales of L1 between log-mel spectrograms. x, y (B, 1, T)."""

    def __init__(self, sample_rate: int, scales: MelScales = MEL_SCALES) -> None:
        super().__init__()
        self.mels = nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(
                sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=n_mels, power=1.0, center=True,
                f_min=0.0, f_max=sample_rate / 2, norm="slaney", mel_scale="slaney",
            )
            for n_fft, n_mels in scales
        )

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x output, y target (B, 1, T) -> scalar."""
        total = x.new_zeros(())
        for mel in self.mels:
            total = total + F.l1_loss(torch.log(mel(x).clamp_min(1e-5)), torch.log(mel(y).clamp_min(1e-5)))
        return total / len(self.mels)


def _unit(z: Tensor, floor: Tensor) -> Tensor:
    """z / |z| with a floor that keeps the gradient bounded at zero magnitude."""
    return z / torch.sqrt(z.real.square() + z.imag.square() + floor)


class MultiResolutionSTFTLoss(nn.Module):
    """Log-magnitude L1 + spectral convergence, and phase-derivative losses, over several resolutions.

    Returns (magnitude loss, phase loss). x, y (B, 1, T).
    """

    def __init__(self, resolutions: tuple[int, ...] = (320, 640, 1280)) -> None:
        super().__init__()
        self.resolutions = resolutions
        for n_fft in resolutions:
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """x output, y target (B, 1, T) -> (magnitude loss, phase loss), scalars."""
        mag_loss, phase_loss = x.new_zeros(()), x.new_zeros(())
        for n_fft in self.resolutions:
            window = getattr(self, f"window_{n_fft}")
            sx = torch.stft(x[:, 0], n_fft, n_fft // 4, window=window, return_complex=True)  # (B, F, n)
            sy = torch.stft(y[:, 0], n_fft, n_fft // 4, window=window, return_complex=True)
            mx, my = sx.abs().clamp_min(1e-5), sy.abs().clamp_min(1e-5)
            mag_loss = mag_loss + F.l1_loss(mx.log(), my.log()) + torch.linalg.norm(my - mx) / torch.linalg.norm(my).clamp_min(1e-7)
            # Phase derivatives as unit complex numbers: u_t conj(u_{t-1}) is the phase advance of a bin.
            floor = (my.square().mean(dim=(1, 2), keepdim=True) * 1e-4).detach()
            ux, uy = _unit(sx, floor), _unit(sy.detach(), floor)
            w = my.detach()
            w_t = torch.minimum(w[..., 1:], w[..., :-1])
            w_f = torch.minimum(w[:, 1:], w[:, :-1])
            inst_freq = (ux[..., 1:] * ux[..., :-1].conj() * (uy[..., 1:] * uy[..., :-1].conj()).conj()).real
            group_delay = (ux[:, 1:] * ux[:, :-1].conj() * (uy[:, 1:] * uy[:, :-1].conj()).conj()).real
            phase_loss = phase_loss + ((1 - inst_freq) * w_t).sum() / w_t.sum().clamp_min(1e-7)
            phase_loss = phase_loss + ((1 - group_delay) * w_f).sum() / w_f.sum().clamp_min(1e-7)
        n = len(self.resolutions)
        return mag_loss / n, phase_loss / n
