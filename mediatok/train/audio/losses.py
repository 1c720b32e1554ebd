"""Audio's loss set: multi-scale mel L1, multi-resolution STFT magnitude, phase derivatives and commitment.

The phase terms compare *phase derivatives* of the output and the target, not phases: instantaneous
frequency (phase advance between frames) and group delay (phase step between bins), as in APNet
(Ai & Ling, 2023), in the smooth form 1 - cos(difference) and weighted by the target's magnitude so that
silent bins, whose phase is noise, do not count. A 2 kbps code cannot carry absolute phase; it can carry
pitch and onsets, which is what these derivatives measure, and without them an iSTFT decoder trained on
magnitudes alone produces phasey, buzzy speech unless a GAN is added.

The optional intelligibility term ("stoi", weight 0 unless set) is 1 - a differentiable STOI (Taal et al.,
2011): correlations of one-third-octave band envelopes over 384 ms segments, the measure the speech codecs'
evaluation reports. Mel and STFT losses compare frames one at a time; STOI compares how each band's envelope
moves over a syllable, which they do not reward directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    stoi: float = 0.0  # 0: the intelligibility term is not computed at all


class AudioLosses(LossSet):
    """mel + STFT magnitude + phase derivatives + commitment for an `AudioCodec`'s output. batch (B, 1, T).

    Terms (unweighted): "mel", "stft", "phase", "commit" (the quantizer's own, already scaled by its
    commitment_weight), and "stoi" (1 - intelligibility) when its weight is not 0; weighted by `weights` (an
    `AudioLossWeights`).
    """

    def __init__(self, sample_rate: int = 16000, stft_resolutions: tuple[int, ...] = (320, 640, 1280),
                 mel_scales: MelScales = MEL_SCALES, weights: AudioLossWeights | None = None) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.weights = weights or AudioLossWeights()
        self.mel = MultiScaleMelLoss(sample_rate, tuple(tuple(s) for s in mel_scales))
        self.stft = MultiResolutionSTFTLoss(tuple(stft_resolutions))
        self.intelligibility = IntelligibilityLoss(sample_rate)

    def forward(self, batch: Tensor, out) -> dict[str, Tensor]:
        """Unweighted mel, STFT-magnitude, phase and commitment losses (+ "stoi" when weighted)."""
        audio = out.reconstruction
        mag, phase = self.stft(audio, batch)
        terms = {"mel": self.mel(audio, batch), "stft": mag, "phase": phase, "commit": out.commit_loss}
        if self.weights.stoi:
            terms["stoi"] = self.intelligibility(audio, batch)
        return terms


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


def third_octave_bands(sample_rate: int = 10000, n_fft: int = 512, bands: int = 15, lowest: float = 150.0) -> Tensor:
    """(bands, n_fft // 2 + 1) 0/1 matrix: band i sums the FFT bins from the one nearest lowest * 2**((2i - 1) / 6)
    up to (not including) the one nearest lowest * 2**((2i + 1) / 6), STOI's one-third-octave bands."""
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    matrix = np.zeros((bands, len(freqs)), dtype=np.float32)
    for i in range(bands):
        low = int(np.argmin(np.abs(freqs - lowest * 2 ** ((2 * i - 1) / 6))))
        high = int(np.argmin(np.abs(freqs - lowest * 2 ** ((2 * i + 1) / 6))))
        matrix[i, low:high] = 1.0
    return torch.from_numpy(matrix)


class IntelligibilityLoss(nn.Module):
    """1 - STOI of output x against target y (B, 1, T), differentiable in x; STOI as in Taal et al. (2011).

    At 10 kHz: 256-sample Hann frames every 128 samples, 15 one-third-octave band envelopes from 150 Hz,
    segments of 30 frames (384 ms) at every frame; in each band and segment the output's envelope is scaled to
    the target's energy and clipped at 15 dB above the target (the lower bound on the signal-to-distortion
    ratio), and the score is the mean correlation of the two envelopes. STOI drops the frames 40 dB below the
    loudest; here each segment is weighted by its share of such frames instead, which keeps the batch's shape.
    Close to pystoi's value on whole clips (a test checks), but made to be trained on 1 s crops, not to report.
    """

    rate = 10000
    frame = 256
    segment = 30
    clip_db = 15.0
    dynamic_range_db = 40.0

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        # non-persistent: checkpoints of runs without this term load into runs with it, and back
        self.register_buffer("window", torch.hann_window(self.frame + 2, periodic=False)[1:-1], persistent=False)
        self.register_buffer("bands", third_octave_bands(self.rate, 2 * self.frame), persistent=False)

    def _resampled(self, audio: Tensor) -> Tensor:
        return torchaudio.functional.resample(audio[:, 0], self.sample_rate, self.rate)  # (B, T')

    def _envelopes(self, audio: Tensor) -> Tensor:
        """(B, T') at 10 kHz -> band envelopes (B, 15, frames)."""
        spec = torch.stft(audio, 2 * self.frame, self.frame // 2, win_length=self.frame, window=self.window,
                          center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()
        return torch.sqrt(torch.einsum("kf,bfn->bkn", self.bands, power) + 1e-10)

    def _active_frames(self, audio: Tensor) -> Tensor:
        """(B, T') -> (B, frames) 1.0 where a frame is within 40 dB of the clip's loudest, as STOI keeps them."""
        frames = audio.unfold(-1, 2 * self.frame, self.frame // 2)[..., self.frame // 2: self.frame // 2 + self.frame]
        energy_db = 20 * torch.log10(torch.linalg.vector_norm(frames * self.window, dim=-1) + 1e-10)
        return (energy_db > energy_db.amax(-1, keepdim=True) - self.dynamic_range_db).float()

    def score(self, x: Tensor, y: Tensor) -> Tensor:
        """STOI-like score of output x against target y (B, 1, T), one per item (B,)."""
        xr, yr = self._resampled(x), self._resampled(y)
        ex, ey = self._envelopes(xr), self._envelopes(yr)  # (B, 15, n)
        if ey.shape[-1] < self.segment:
            raise ValueError(f"IntelligibilityLoss needs at least {self.segment} frames "
                             f"({(self.segment + 3) * self.frame // 2 / self.rate:.2f} s), got {ey.shape[-1]}")
        sx, sy = ex.unfold(-1, self.segment, 1), ey.unfold(-1, self.segment, 1)  # (B, 15, S, 30)
        scale = torch.linalg.vector_norm(sy, dim=-1, keepdim=True) / torch.linalg.vector_norm(sx, dim=-1, keepdim=True)
        sx = torch.minimum(sx * scale, sy * (1 + 10 ** (self.clip_db / 20)))
        sx = sx - sx.mean(-1, keepdim=True)
        sy = sy - sy.mean(-1, keepdim=True)
        corr = (sx * sy).sum(-1) / (torch.linalg.vector_norm(sx, dim=-1) * torch.linalg.vector_norm(sy, dim=-1) + 1e-8)
        weight = self._active_frames(yr).unfold(-1, self.segment, 1).mean(-1)  # (B, S)
        per_segment = corr.mean(1)  # (B, S)
        return (per_segment * weight).sum(-1) / weight.sum(-1).clamp_min(1e-8)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x output, y target (B, 1, T) -> scalar 1 - mean score."""
        return 1 - self.score(x, y).mean()
