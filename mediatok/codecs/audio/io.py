"""Reading audio files: a clear error for non-audio, optional down-mix and resampling."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus")
WRITE_SUFFIXES = (".wav", ".flac", ".ogg")


def read_audio(path: str | Path) -> tuple[torch.Tensor, int]:
    """Read an audio file -> ((channels, samples) float32, sample_rate), with a clear error for non-audio."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such audio file: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    except Exception as e:  # soundfile raises LibsndfileError (a RuntimeError) for non-audio
        raise ValueError(f"could not read {path} as audio (wav, flac, ogg, ...): {e}") from e
    return torch.from_numpy(data.T.copy()), int(sr)


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode a file to mono float32 at sample_rate, (samples,)."""
    x, sr = read_audio(path)
    x = x.mean(dim=0)
    if sr != sample_rate and x.numel():
        x = AF.resample(x, sr, sample_rate)
    return np.ascontiguousarray(x.numpy(), dtype=np.float32)


def write_audio(path: str | Path, media: tuple[torch.Tensor, int]) -> None:
    """Write (waveform (samples,) | (channels, samples), sample_rate) as .wav, .flac or .ogg (by suffix)."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise ValueError(f"cannot write audio as {path.suffix or 'a suffix-less file'}; use one of {WRITE_SUFFIXES}")
    wav, sr = media
    data = wav.numpy().T if wav.ndim == 2 else wav.numpy()  # soundfile wants (samples, channels)
    sf.write(str(path), data.clip(-1, 1), sr)


def read_for_codec(path: Path) -> tuple[torch.Tensor, dict]:
    """A file -> (audio (channels, samples), {"sample_rate": sr}): what `codec.encode` / `tokenize` take."""
    x, sr = read_audio(path)
    if x.numel() == 0:
        raise ValueError(f"{path} holds no samples")
    return x, {"sample_rate": sr}


def duration(x: torch.Tensor, kwargs: dict) -> tuple[float, str]:
    """Seconds of audio (channels, samples) at kwargs["sample_rate"]."""
    return x.shape[-1] / kwargs["sample_rate"], "s"
