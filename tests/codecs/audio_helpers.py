"""Test helpers for the audio codec tests: a tiny config and a deterministic speech-like signal."""
from __future__ import annotations

import torch

TINY = dict(latent_dim=16, enc_dim=32, enc_depth=1, dec_dim=32, dec_depth=1, up_dim=32, up_depth=1, codebook_size=64)


def speechlike(seconds: float, sample_rate: int = 16000, seed: int = 0) -> torch.Tensor:
    """A deterministic voiced-speech-like signal: harmonics of a gliding pitch with a syllable envelope, (T,)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 120 + 30 * torch.sin(2 * torch.pi * 0.7 * t)
    phase = 2 * torch.pi * torch.cumsum(f0, 0) / sample_rate
    x = sum(torch.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 + 0.5 * torch.sin(2 * torch.pi * 3 * t).clamp(min=0)
    return (0.1 * env * x + 0.003 * torch.randn(t.shape, generator=g)).float()
