"""The user-facing audio codec: waveforms or files in, .mtk bytes or tokens out, and back.

    x (channels, samples) | path --check, down-mix, resample--> (1, T) @ model rate
        --chunks of `chunk_seconds` with `margin` frames of context--> AudioCodec.encode_indices --> (Q, n)
        --MarkovPrior.encode--> payload --entropy.pack(header, [payload])--> .mtk bytes   (codecs.base.Codec)

Chunks overlap by more than the networks' receptive field and only their centres are kept, so a long file
costs bounded memory and decodes to the same tokens and (up to float rounding) the same audio as one pass.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from torch import Tensor

from mediatok.codecs.audio.io import read_audio
from mediatok.codecs.base import Codec, Prepared, header_int
from mediatok.codecs.audio.model import AudioCodec, AudioCodecConfig
from mediatok.errors import BitstreamError

AudioInput = Tensor | np.ndarray | str | Path


MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 64
# torchaudio's resampler builds a (new / g) x (old / g * width) kernel for g = gcd(old, new): rates with a small
# common divisor (16000 <-> 44101) would need gigabytes, so they are refused rather than resampled.
MAX_RESAMPLE_PHASES = 1 << 18


def chunked(n: int, chunk: int, margin: int, scale: int, run: Callable[[int, int], Tensor]) -> Tensor:
    """Concatenate run(lo, hi)'s centres over frames [0, n) in chunks of `chunk` frames with `margin` frames of
    context each side; run's output has `scale` positions per frame along its last axis. Long files thus cost
    bounded memory, and each chunk sees its neighbours (the audio and wavelet codecs' encoders and decoders)."""
    out = []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        lo, hi = max(0, start - margin), min(n, stop + margin)
        out.append(run(lo, hi)[..., (start - lo) * scale : (stop - lo) * scale])
    return torch.cat(out, dim=-1)


class SpeechCodec(Codec):
    """A trained `AudioCodec` with its entropy prior: waveforms or files <-> tokens (Q, frames) <-> .mtk bytes."""

    family = "audio"
    modality = "audio"
    model_class = AudioCodec
    token_layout = "frames"

    def __init__(self, model: AudioCodec, prior=None, name: str = "audio", model_hash: bytes = b"",
                 short_id: str | None = None, chunk_seconds: float = 20.0, margin: int = 64,
                 num_threads: int | None = None) -> None:
        super().__init__(model, prior, name=name, short_id=short_id, model_hash=model_hash, num_threads=num_threads)
        self.chunk_frames = max(1, int(chunk_seconds * model.cfg.frame_rate))
        self.margin = margin

    @classmethod
    def build_model(cls, config: dict) -> AudioCodec:
        return AudioCodec(AudioCodecConfig.from_dict(config))

    # ---- properties -------------------------------------------------------------------------------------
    @property
    def prior(self):
        """The entropy model over tokens (a FrequencyPrior or MarkovPrior), or None for raw indices."""
        return self.entropy_model

    @prior.setter
    def prior(self, value) -> None:
        self.entropy_model = value

    @property
    def sample_rate(self) -> int:
        return self.model.cfg.sample_rate

    @property
    def hop(self) -> int:
        return self.model.cfg.hop

    @property
    def frame_rate(self) -> float:
        return self.model.cfg.frame_rate

    # ---- family hooks -------------------------------------------------------------------------------------
    def prepare(self, x: AudioInput, sample_rate: int | None = None) -> Prepared:
        """Check x and bring it to (1, T) float32 at the model's rate (down-mix, resample with a notice).

        Facts: num_samples, and sample_rate / channels only when they differ from the model's mono input.
        """
        if isinstance(x, (str, Path)):
            x, sample_rate = read_audio(x)
        elif sample_rate is None:
            raise ValueError("sample_rate is required when x is an array or tensor (pass sample_rate=16000)")
        if isinstance(x, np.ndarray):
            if x.dtype == np.int16:
                x = x.astype(np.float32) / 32768.0
            x = np.ascontiguousarray(x)
            x = torch.from_numpy(x if x.flags.writeable else x.copy())  # read-only arrays (np.load's mmap) too
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a tensor, a numpy array or a file path, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"expected floating-point audio (or int16 numpy), got {x.dtype}")
        if x.ndim not in (1, 2):
            raise ValueError(f"expected audio of shape (samples,) or (channels, samples), got {tuple(x.shape)}")
        shape = tuple(x.shape)
        if x.numel() == 0:
            raise ValueError(f"audio is empty (shape {shape})")
        wav = x.detach().float().cpu().reshape(-1, x.shape[-1])  # (C, T)
        if wav.shape[0] > 16 and wav.shape[1] <= 16:
            raise ValueError(f"expected (channels, samples), got {shape}; it looks like (samples, channels): pass x.T")
        if wav.shape[0] > MAX_CHANNELS:
            raise ValueError(f"audio has {wav.shape[0]} channels; at most {MAX_CHANNELS} are supported")
        sample_rate = int(sample_rate)
        self._check_rate(sample_rate, ValueError)
        if not torch.isfinite(wav).all():
            raise ValueError("audio contains NaN or infinite values")
        wav = wav.mean(dim=0, keepdim=True)  # mono
        if sample_rate != self.sample_rate:
            warnings.warn(f"resampling from {sample_rate} Hz to the model's {self.sample_rate} Hz", stacklevel=3)
            wav = _fit_length(AF.resample(wav, sample_rate, self.sample_rate), self.model_length(shape[-1], sample_rate))
        if wav.shape[1] < self.hop:
            raise ValueError(
                f"audio is shorter than one codec frame: {wav.shape[1]} samples at {self.sample_rate} Hz, "
                f"need at least {self.hop} ({1000 * self.hop / self.sample_rate:.0f} ms)"
            )
        facts: dict = {"num_samples": shape[-1]}
        if sample_rate != self.sample_rate:
            facts["sample_rate"] = sample_rate
        if len(shape) == 2:
            facts["channels"] = shape[0]
        return Prepared(wav, facts)

    def _check_rate(self, rate: int, error: type[Exception]) -> None:
        """Refuse rates out of range or whose resampling kernel against the model's rate would be huge."""
        if not 1 <= rate <= MAX_SAMPLE_RATE:
            raise error(f"sample_rate must be in [1, {MAX_SAMPLE_RATE}] Hz, got {rate}")
        g = math.gcd(rate, self.sample_rate)
        if (rate // g) * (self.sample_rate // g) > MAX_RESAMPLE_PHASES:
            raise error(f"cannot resample between {rate} Hz and the model's {self.sample_rate} Hz (their ratio "
                        f"{rate // g}/{self.sample_rate // g} is too fine); resample to a common rate first")

    def check_facts(self, header: dict) -> dict:
        """num_samples, sample_rate and channels from the header, each bounded."""
        facts = {
            "num_samples": header_int(header, "num_samples", None, 1, 1 << 40),
            "sample_rate": header_int(header, "sample_rate", self.sample_rate, 1, MAX_SAMPLE_RATE),
            "channels": header_int(header, "channels", 0, 0, MAX_CHANNELS),  # 0: the input was 1-d
        }
        try:
            self._check_rate(facts["sample_rate"], BitstreamError)
        except BitstreamError as e:
            raise BitstreamError(f"bitstream header: {e}") from None
        return facts

    def latent_shape(self, facts: dict) -> tuple[int, ...]:
        return (self.num_codebooks, self.frames_for(facts["num_samples"], facts["sample_rate"]))

    def default_facts(self, tokens: Tensor) -> dict:
        """Detokenized audio is (1, frames * hop) at the model's rate."""
        return {"num_samples": tokens.shape[1] * self.hop, "sample_rate": self.sample_rate, "channels": 1}

    def restore(self, y: Tensor, facts: dict) -> tuple[Tensor, int]:
        """Model-rate (1, T') -> the encoded input's rate, length and channel layout."""
        sr, samples, channels = facts["sample_rate"], facts["num_samples"], facts["channels"]
        wav = y[:, : self.model_length(samples, sr)]
        if sr != self.sample_rate:
            wav = AF.resample(wav, self.sample_rate, sr)
        wav = _fit_length(wav, samples)
        if channels == 0:
            return wav[0], sr
        return wav.expand(channels, -1).contiguous(), sr

    # ---- tokens: chunked, so a long file costs bounded memory ------------------------------------------------
    def encode_latents(self, wav: Tensor) -> Tensor:
        """wav (1, T) -> indices (Q, ceil(T / hop)), chunk by chunk with context margins."""
        n = math.ceil(wav.shape[1] / self.hop)
        wav = torch.nn.functional.pad(wav, (0, n * self.hop - wav.shape[1]))
        return chunked(n, self.chunk_frames, self.margin, 1,
                       lambda lo, hi: self.model.encode_indices(wav[None, :, lo * self.hop : hi * self.hop])[0])

    def decode_latents(self, indices: Tensor) -> Tensor:
        """indices (Q, n) -> wav (1, n * hop), chunk by chunk with context margins."""
        return chunked(indices.shape[1], self.chunk_frames, self.margin, self.hop,
                       lambda lo, hi: self.model.decode_indices(indices[None, :, lo:hi])[0])

    # ---- public signatures with audio's keyword ----------------------------------------------------------------
    def tokenize(self, x: AudioInput, sample_rate: int | None = None) -> Tensor:
        """Audio -> LongTensor (codebooks, frames) at `frame_rate` Hz, no entropy coding."""
        return super().tokenize(x, sample_rate=sample_rate)

    def detokenize(self, tokens: Tensor) -> tuple[Tensor, int]:
        """LongTensor (codebooks, frames) -> (waveform (1, frames * hop), sample_rate)."""
        return super().detokenize(tokens)

    def encode(self, x: AudioInput, sample_rate: int | None = None) -> bytes:
        """Audio (samples,) | (channels, samples) | file path -> .mtk bytes (entropy-coded tokens)."""
        return super().encode(x, sample_rate=sample_rate)

    def decode(self, blob: bytes) -> tuple[Tensor, int]:
        """.mtk bytes -> (waveform of the encoded input's shape, its sample rate)."""
        return super().decode(blob)

    def model_length(self, samples: int, sample_rate: int) -> int:
        """Samples at the model's rate for `samples` at `sample_rate` (integer arithmetic, as in prepare)."""
        return -(-samples * self.sample_rate // sample_rate)

    def frames_for(self, samples: int, sample_rate: int) -> int:
        """Token frames for an input of `samples` at `sample_rate`."""
        return -(-self.model_length(samples, sample_rate) // self.hop)


def _fit_length(wav: Tensor, length: int) -> Tensor:
    """Crop or zero-pad (C, T) to length samples."""
    if wav.shape[1] >= length:
        return wav[:, :length]
    return torch.nn.functional.pad(wav, (0, length - wav.shape[1]))
