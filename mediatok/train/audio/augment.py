"""Loudness normalisation for data recipes, and training-time augmentation that keeps a speech codec from
learning its corpus's microphones and levels.

    crop --random EQ (peaking + shelf biquads)--> --mild noise (white/pink/brown at an SNR)--> --level--> crop

The augmented crop is both the codec's input and its target: the codec must reproduce what it is given, so
augmentation widens the input distribution (levels, colourations, noise floors of real recordings) without
asking the model to denoise. Every draw comes from the caller's generator, so an item is reproducible from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio.functional as AF

PEAK = 0.99  # never clip: a clipped target teaches the codec to make clipping


def loudness_lufs(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4, K-weighted, gated) of a 1-d signal; NaN for silence.

    Clips under one 400 ms gating block fall back to the K-weighting-free estimate 20·log10(rms) - 0.691.
    """
    if x.ndim != 1:
        raise ValueError(f"expected a 1-d signal, got shape {tuple(x.shape)}")
    if len(x) >= int(0.4 * sample_rate):
        value = float(AF.loudness(torch.tensor(x, dtype=torch.float32)[None], sample_rate))  # a copy: x may be a read-only memmap
        if math.isfinite(value):
            return value
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return 20 * math.log10(rms) - 0.691 if rms > 1e-7 else math.nan


def normalize_loudness(x: np.ndarray, sample_rate: int, target_lufs: float = -23.0) -> np.ndarray:
    """x scaled to target_lufs (EBU R 128's -23 by default), less where the peak would pass 0.99; silence unchanged."""
    lufs = loudness_lufs(x, sample_rate)
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if math.isnan(lufs) or peak == 0:
        return x.astype(np.float32, copy=True)
    gain = min(10 ** ((target_lufs - lufs) / 20), PEAK / peak)
    return (x * gain).astype(np.float32)


def _biquad(kind: str, f0: float, gain_db: float, q: float, sample_rate: int) -> tuple[list[float], list[float]]:
    """(b, a) of an RBJ Audio-EQ-Cookbook filter: 'peak', 'lowshelf' or 'highshelf'."""
    amp = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * f0 / sample_rate
    cos, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    if kind == "peak":
        b = [1 + alpha * amp, -2 * cos, 1 - alpha * amp]
        a = [1 + alpha / amp, -2 * cos, 1 - alpha / amp]
    else:
        sign = 1 if kind == "lowshelf" else -1
        s = 2 * math.sqrt(amp) * alpha
        b = [amp * ((amp + 1) - sign * (amp - 1) * cos + s), sign * 2 * amp * ((amp - 1) - sign * (amp + 1) * cos),
             amp * ((amp + 1) - sign * (amp - 1) * cos - s)]
        a = [(amp + 1) + sign * (amp - 1) * cos + s, -sign * 2 * ((amp - 1) + sign * (amp + 1) * cos),
             (amp + 1) + sign * (amp - 1) * cos - s]
    return b, a


def colored_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-rms noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    noise -= noise.mean()
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


@dataclass(frozen=True)
class AudioAugment:
    """Random EQ, mild noise and level for one training crop (numpy, 1-d); off unless a data module is given one.

    gain_db: a gain uniform in this range (dB), capped so the peak stays <= 0.99. A gain, not a target level, so
    that a crop of near-silence stays quiet; on clips normalised to -23 LUFS (scripts/prepare_speech.py) the
    default spans about -38 to -15 LUFS.
    eq_prob / eq_bands / eq_db: with eq_prob, 1..eq_bands random biquads (peaking 150-6000 Hz, low shelf at
    100-400 Hz, high shelf at 2-6 kHz), each of gain uniform in ±eq_db.
    noise_prob / snr_db: with noise_prob, white, pink or brown noise at an SNR uniform in snr_db (dB, re the crop's
    rms), mild enough that the speech stays clean to the ear.
    """

    sample_rate: int = 16000
    gain_db: tuple[float, float] = (-15.0, 8.0)
    eq_prob: float = 0.5
    eq_bands: int = 3
    eq_db: float = 6.0
    noise_prob: float = 0.3
    snr_db: tuple[float, float] = (25.0, 50.0)

    def __post_init__(self) -> None:
        for name in ("gain_db", "snr_db"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {getattr(self, name)}")
        for name in ("eq_prob", "noise_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.eq_bands < 1 or self.eq_db < 0:
            raise ValueError(f"eq_bands must be >= 1 and eq_db >= 0, got {self.eq_bands} and {self.eq_db}")

    def equalize(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """x through 1..eq_bands random biquads."""
        y = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]  # (1, T)
        nyquist = self.sample_rate / 2
        for _ in range(int(rng.integers(1, self.eq_bands + 1))):
            kind = str(rng.choice(["peak", "peak", "lowshelf", "highshelf"]))
            lo, hi = {"peak": (150.0, 6000.0), "lowshelf": (100.0, 400.0), "highshelf": (2000.0, 6000.0)}[kind]
            f0 = min(math.exp(rng.uniform(math.log(lo), math.log(hi))), 0.9 * nyquist)
            q = math.exp(rng.uniform(math.log(0.5), math.log(2.0))) if kind == "peak" else 0.707
            b, a = _biquad(kind, f0, float(rng.uniform(-self.eq_db, self.eq_db)), q, self.sample_rate)
            y = AF.lfilter(y, torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32), clamp=False)
        return y[0].numpy()

    def add_noise(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """x plus white, pink or brown noise at an SNR drawn from snr_db."""
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        if rms == 0:
            return x
        snr = rng.uniform(*self.snr_db)
        noise = colored_noise(len(x), float(rng.choice([0.0, 1.0, 2.0])), rng)
        return (x + noise * rms * 10 ** (-snr / 20)).astype(np.float32)

    def set_level(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """x times a gain drawn from gain_db, less where its peak would pass 0.99."""
        peak = float(np.abs(x).max()) if len(x) else 0.0
        if peak == 0:
            return x
        return (x * min(10 ** (rng.uniform(*self.gain_db) / 20), PEAK / peak)).astype(np.float32)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The augmented crop: same length, float32, peak <= 0.99."""
        if x.ndim != 1:
            raise ValueError(f"expected a 1-d crop, got shape {tuple(x.shape)}")
        if rng.random() < self.eq_prob:
            x = self.equalize(x, rng)
        if rng.random() < self.noise_prob:
            x = self.add_noise(x, rng)
        return self.set_level(x, rng)
