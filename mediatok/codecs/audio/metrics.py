"""Speech quality metrics shared by validation and `mediatok eval`: PESQ (WB, NB), STOI, mel distance.

PESQ and STOI come from the optional `pesq` and `pystoi` packages (`pip install mediatok[bench]`).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio
import torchaudio.functional as AF


def have_quality_metrics() -> bool:
    """True when pesq and pystoi import."""
    try:
        import pesq  # noqa: F401
        import pystoi  # noqa: F401
    except ImportError:
        return False
    return True


def pesq_scores(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(PESQ-WB, PESQ-NB) of 1-d float signals; NaN where PESQ finds no speech."""
    from pesq import pesq

    def score(sr: int, mode: str) -> float:
        r, d = ref, deg
        if sr != sample_rate:
            r = AF.resample(torch.from_numpy(ref), sample_rate, sr).numpy()
            d = AF.resample(torch.from_numpy(deg), sample_rate, sr).numpy()
        try:
            return float(pesq(sr, r, d, mode))
        except Exception:  # pesq raises NoUtterancesError and friends on silence
            return math.nan

    return score(16000, "wb"), score(8000, "nb")


def stoi_score(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    """Short-time objective intelligibility (Taal et al., 2011) of 1-d float signals."""
    from pystoi import stoi

    return float(stoi(ref, deg, sample_rate, extended=False))


_MEL: dict[int, torchaudio.transforms.MelSpectrogram] = {}


def mel_distance(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    """Mean absolute difference of log10 mel spectrograms (80 bands, 64 ms window)."""
    if sample_rate not in _MEL:
        n_fft = 2 ** round(math.log2(sample_rate * 0.064))
        _MEL[sample_rate] = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=80)
    mel = _MEL[sample_rate]
    a = torch.log10(mel(torch.from_numpy(ref).float()).clamp_min(1e-5))
    b = torch.log10(mel(torch.from_numpy(deg).float()).clamp_min(1e-5))
    return float((a - b).abs().mean())


def quality(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> dict[str, float]:
    """All metrics for one pair of 1-d signals of equal length."""
    n = min(len(ref), len(deg))
    ref, deg = ref[:n].astype(np.float64), deg[:n].astype(np.float64)
    mel = mel_distance(ref, deg, sample_rate)
    if not have_quality_metrics():  # PESQ and STOI need the optional bench extra; report them as missing
        return {"pesq_wb": math.nan, "pesq_nb": math.nan, "stoi": math.nan, "mel": mel}
    wb, nb = pesq_scores(ref, deg, sample_rate)
    return {"pesq_wb": wb, "pesq_nb": nb, "stoi": stoi_score(ref, deg, sample_rate), "mel": mel}
