"""Fixtures: a tiny randomly initialised speech codec (a real `AudioCodec`) and folders of speech-like audio."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mediatok.codecs.audio import AudioCodec, AudioCodecConfig, SpeechCodec

TINY = dict(enc_dim=32, enc_depth=1, dec_dim=32, dec_depth=1, up_dim=16, up_depth=1, latent_dim=16, codebook_size=64)


def _make_codec(seed: int = 0) -> SpeechCodec:
    """A small GRVQ speech codec (4 codebooks x 64 codes at 50 Hz) with seeded random weights."""
    torch.manual_seed(seed)
    return SpeechCodec(AudioCodec(AudioCodecConfig(**TINY)), name="tiny-speech")


def _speech_like(seconds: float, sample_rate: int, seed: int, channels: int = 1) -> np.ndarray:
    """A voiced, syllable-rate-modulated harmonic signal with a gliding pitch and breath noise: (samples, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = rng.uniform(90, 220) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None) ** 2
    x = 0.2 * envelope * voiced + 0.01 * rng.standard_normal(t.shape)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "speech.wav"


def write_speech_folder(root: Path, n: int = 9) -> Path:
    """examples/speech.wav (real speech, 8 s), n speech-like clips of 0.3-2 s at 16/22.05/8 kHz (some stereo) in
    two sub-folders, a corrupt wav and a stray text file: n + 1 good items, 1 failure."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE, root / "example.wav")
    for i in range(n):
        sr = (16000, 22050, 8000)[i % 3]
        sub = root / ("spk-b" if i % 2 else "spk-a")
        sub.mkdir(exist_ok=True)
        sf.write(sub / f"utt{i:02d}.wav", _speech_like(0.3 + 0.2 * i, sr, seed=i, channels=1 + (i % 4 == 1)), sr)
    (root / "spk-a" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (root / "notes.txt").write_text("not audio\n")
    return root


@pytest.fixture(scope="session")
def make_codec():
    """make_codec(seed) -> a fresh tiny codec."""
    return _make_codec


@pytest.fixture(scope="session")
def speech_like():
    """speech_like(seconds, sample_rate, seed, channels=1) -> (samples, channels) float32."""
    return _speech_like


@pytest.fixture(scope="session")
def codec() -> SpeechCodec:
    return _make_codec()


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_speech_folder(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="session")
def codec_dir(tmp_path_factory: pytest.TempPathFactory, codec: SpeechCodec) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "tiny-speech"
    codec.save(folder, dtype=torch.float32)
    return folder


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def tree_bytes():
    """Every file under a folder (relative name -> bytes): equal dicts mean byte-identical outputs."""
    return _tree_bytes
