"""The user-facing audio codec: waveforms or files in, .mtk bytes or tokens out, and back.

    x (channels, samples) | path --check, down-mix, resample--> (1, T) @ model rate
        --chunks of `chunk_seconds` with `margin` frames of context--> AudioCodec.encode_indices --> (Q, n)
        --FrequencyPrior.encode--> payload --entropy.pack(header, [payload])--> .mtk bytes

Chunks overlap by more than the networks' receptive field and only their centres are kept, so a long file
costs bounded memory and decodes to the same tokens and (up to float rounding) the same audio as one pass.
"""
from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from safetensors.torch import load_file, save_file
from torch import Tensor

from mediatok.codecs.audio.io import read_audio
from mediatok.codecs.audio.model import AudioCodec, AudioCodecConfig
from mediatok.errors import BitstreamError

AudioInput = Tensor | np.ndarray | str | Path


@dataclass(frozen=True)
class PreparedAudio:
    """Audio checked and converted for the model, plus what decode needs to restore the input's form."""

    wav: Tensor  # (1, T) float32 at the model's rate
    shape: tuple[int, ...]  # the input's shape: (samples,) or (channels, samples)
    sample_rate: int  # the input's rate


class SpeechCodec:
    """A trained `AudioCodec` with its entropy prior: encode / decode / tokenize / detokenize."""

    family = "audio"

    def __init__(self, model: AudioCodec, prior=None, name: str = "audio", model_hash: bytes = b"",
                 short_id: str | None = None, chunk_seconds: float = 20.0, margin: int = 64) -> None:
        self.model = model.eval()
        self.prior = prior
        self.name, self.model_hash, self.short_id = name, model_hash, short_id or name
        self.chunk_frames = max(1, int(chunk_seconds * model.cfg.frame_rate))
        self.margin = margin

    # ---- properties -------------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.model.cfg.sample_rate

    @property
    def hop(self) -> int:
        return self.model.cfg.hop

    @property
    def bitrate(self) -> float:
        """Nominal bits per second before entropy coding."""
        return self.model.bitrate

    @property
    def num_codebooks(self) -> int:
        return self.model.num_codebooks

    @property
    def codebook_size(self) -> int:
        return self.model.quantizer.codebook_size

    # ---- input handling -----------------------------------------------------------------------------------
    def prepare(self, x: AudioInput, sample_rate: int | None = None) -> PreparedAudio:
        """Check x and bring it to (1, T) float32 at the model's rate (down-mix, resample with a notice)."""
        if isinstance(x, (str, Path)):
            x, sample_rate = read_audio(x)
        elif sample_rate is None:
            raise ValueError("sample_rate is required when x is an array or tensor (pass sample_rate=16000)")
        if isinstance(x, np.ndarray):
            if x.dtype == np.int16:
                x = x.astype(np.float32) / 32768.0
            x = torch.from_numpy(np.ascontiguousarray(x))
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
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if wav.shape[1] == 0:
            raise ValueError("audio is empty (0 samples)")
        if not torch.isfinite(wav).all():
            raise ValueError("audio contains NaN or infinite values")
        wav = wav.mean(dim=0, keepdim=True)  # mono
        if int(sample_rate) != self.sample_rate:
            warnings.warn(f"resampling from {sample_rate} Hz to the model's {self.sample_rate} Hz", stacklevel=3)
            wav = _fit_length(AF.resample(wav, int(sample_rate), self.sample_rate), self.model_length(shape[-1], int(sample_rate)))
        if wav.shape[1] < self.hop:
            raise ValueError(
                f"audio is shorter than one codec frame: {wav.shape[1]} samples at {self.sample_rate} Hz, "
                f"need at least {self.hop} ({1000 * self.hop / self.sample_rate:.0f} ms)"
            )
        return PreparedAudio(wav, shape, int(sample_rate))

    # ---- tokens -------------------------------------------------------------------------------------------
    @torch.no_grad()  # not inference_mode: what callers get back stays an ordinary tensor (in-place edits work)
    def _encode_frames(self, wav: Tensor) -> Tensor:
        """wav (1, T) -> indices (Q, ceil(T / hop)), chunk by chunk with context margins."""
        n = math.ceil(wav.shape[1] / self.hop)
        wav = torch.nn.functional.pad(wav, (0, n * self.hop - wav.shape[1]))
        out = []
        for start in range(0, n, self.chunk_frames):
            stop = min(n, start + self.chunk_frames)
            lo, hi = max(0, start - self.margin), min(n, stop + self.margin)
            idx = self.model.encode_indices(wav[None, :, lo * self.hop : hi * self.hop])[0]  # (Q, hi - lo)
            out.append(idx[:, start - lo : stop - lo])
        return torch.cat(out, dim=1)

    @torch.no_grad()  # not inference_mode: what callers get back stays an ordinary tensor (in-place edits work)
    def _decode_frames(self, indices: Tensor) -> Tensor:
        """indices (Q, n) -> wav (1, n * hop), chunk by chunk with context margins."""
        n = indices.shape[1]
        out = []
        for start in range(0, n, self.chunk_frames):
            stop = min(n, start + self.chunk_frames)
            lo, hi = max(0, start - self.margin), min(n, stop + self.margin)
            wav = self.model.decode_indices(indices[None, :, lo:hi])[0]  # (1, (hi - lo) * hop)
            out.append(wav[:, (start - lo) * self.hop : (stop - lo) * self.hop])
        return torch.cat(out, dim=1)

    def tokenize(self, x: AudioInput, sample_rate: int | None = None) -> Tensor:
        """Audio -> LongTensor (codebooks, frames) at `frame_rate` Hz, no entropy coding."""
        return self._encode_frames(self.prepare(x, sample_rate).wav)

    def detokenize(self, tokens: Tensor) -> tuple[Tensor, int]:
        """LongTensor (codebooks, frames) -> (waveform (1, frames * hop), sample_rate)."""
        tokens = torch.as_tensor(tokens)
        if tokens.ndim != 2 or tokens.shape[0] != self.num_codebooks:
            raise ValueError(f"expected tokens of shape ({self.num_codebooks}, frames), got {tuple(tokens.shape)}")
        if tokens.is_floating_point():
            raise TypeError(f"tokens must be integers, got {tokens.dtype}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.codebook_size):
            raise ValueError(f"tokens must lie in [0, {self.codebook_size})")
        return self._decode_frames(tokens.long()), self.sample_rate

    # ---- bitstream ----------------------------------------------------------------------------------------
    def encode(self, x: AudioInput, sample_rate: int | None = None) -> bytes:
        """Audio (samples,) | (channels, samples) | file path -> .mtk bytes (entropy-coded tokens)."""
        from mediatok.entropy import pack

        audio = self.prepare(x, sample_rate)
        indices = self._encode_frames(audio.wav)
        # Only what the model cannot infer goes in the header: a one-chunk file stays under ~32 bytes of overhead.
        header: dict = {"model": self.short_id, "model_hash": self.model_hash, "num_samples": audio.shape[-1]}
        if audio.sample_rate != self.sample_rate:
            header["sample_rate"] = audio.sample_rate
        if len(audio.shape) == 2:
            header["channels"] = audio.shape[0]
        if self.prior is None:
            payload = indices.to(torch.int16).numpy().tobytes()  # raw: log2(K) <= 15 bits fit in int16
            header["coder"] = "raw16"
        else:
            payload = self.prior.encode(indices)
        return pack(header, [payload])

    def decode(self, blob: bytes) -> tuple[Tensor, int]:
        """.mtk bytes -> (waveform of the encoded input's shape, its sample rate)."""
        from mediatok.entropy import unpack

        header, chunks = unpack(bytes(blob))
        sr, samples, channels = self._check_header(header, chunks)
        frames, q = self.frames_for(samples, sr), self.num_codebooks
        if header.get("coder") == "raw16":
            if len(chunks[0]) != 2 * q * frames:
                raise BitstreamError(f"raw payload has {len(chunks[0])} bytes, expected {2 * q * frames}")
            indices = torch.from_numpy(np.frombuffer(chunks[0], dtype=np.int16).astype(np.int64).reshape(q, frames))
            if int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size:
                raise BitstreamError(f"raw payload holds tokens outside [0, {self.codebook_size})")
        else:
            if self.prior is None:
                raise BitstreamError("the bitstream is entropy-coded but this model has no prior")
            try:
                indices = self.prior.decode(chunks[0], frames)
            except BitstreamError:
                raise
            except Exception as e:  # a payload that passed the CRC but does not decode
                raise BitstreamError(f"could not entropy-decode the token payload: {e}") from e
        wav = self._decode_frames(indices)[:, : self.model_length(samples, sr)]
        if sr != self.sample_rate:
            wav = AF.resample(wav, self.sample_rate, sr)
        wav = _fit_length(wav, samples)
        if channels == 0:
            return wav[0], sr
        return wav.expand(channels, -1).contiguous(), sr

    def model_length(self, samples: int, sample_rate: int) -> int:
        """Samples at the model's rate for `samples` at `sample_rate` (integer arithmetic, as in prepare)."""
        return -(-samples * self.sample_rate // sample_rate)

    def frames_for(self, samples: int, sample_rate: int) -> int:
        """Token frames for an input of `samples` at `sample_rate`."""
        return -(-self.model_length(samples, sample_rate) // self.hop)

    def _check_header(self, header: dict, chunks: list[bytes]) -> tuple[int, int, int]:
        """Validate an unpacked header -> (sample_rate, num_samples, channels; 0 for a 1-d input)."""
        if "model" not in header or "num_samples" not in header:
            raise BitstreamError(f"not an audio bitstream of this library: header fields {sorted(header)}")
        if header["model"] not in (self.short_id, self.name) or (
            self.model_hash and header.get("model_hash") != self.model_hash
        ):
            raise BitstreamError(
                f"bitstream was made by model {header['model']!r} (hash {bytes(header.get('model_hash', b'')).hex()}), "
                f"this is {self.name!r} (id {self.short_id!r}, hash {self.model_hash.hex()}); load that model to decode it"
            )
        if len(chunks) != 1:
            raise BitstreamError(f"expected one chunk of tokens, got {len(chunks)}")
        sr, samples, channels = header.get("sample_rate", self.sample_rate), header["num_samples"], header.get("channels", 0)
        if not all(isinstance(v, int) for v in (sr, samples, channels)):
            raise BitstreamError("sample_rate, num_samples and channels must be integers")
        if not (1 <= sr <= 1_000_000 and 1 <= samples < 2**40 and 0 <= channels <= 64):
            raise BitstreamError(f"header out of range: sample_rate {sr}, num_samples {samples}, channels {channels}")
        # Never allocate for a length the payload cannot hold: each frame costs at least one bit per codebook
        # only with an extreme prior, so bound by the raw size instead of trusting num_samples.
        frames = self.frames_for(samples, sr)
        if frames * self.num_codebooks > 64 * (len(chunks[0]) + 16) * 8:
            raise BitstreamError(f"header claims {samples} samples but the payload has only {len(chunks[0])} bytes")
        return sr, samples, channels

    # ---- checkpoints --------------------------------------------------------------------------------------
    def save(self, folder: str | Path, card: str | None = None, dtype: torch.dtype = torch.float16) -> None:
        """Write config.json + model.safetensors (+ CARD.md) into folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in self.model.state_dict().items()}
        if self.prior is not None:
            tensors.update({f"prior.{k}": torch.as_tensor(v).contiguous() for k, v in self.prior.state_dict().items()})
        save_file(tensors, str(folder / "model.safetensors"), metadata={"codec": self.family, "name": self.name})
        (folder / "model.safetensors").chmod(0o644)
        config = {"codec": self.family, "name": self.name, "short_id": self.short_id, "model": self.model.cfg.to_dict()}
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        if card is not None:
            (folder / "CARD.md").write_text(card)

    @classmethod
    def load(cls, folder: str | Path) -> SpeechCodec:
        """Load a folder written by `save` (never unpickles anything)."""
        from mediatok.entropy import prior_from_state_dict

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        model = AudioCodec(AudioCodecConfig.from_dict(config["model"]))
        weights_path = folder / "model.safetensors"
        tensors = load_file(str(weights_path))
        prior_state = {k[len("prior."):]: v for k, v in tensors.items() if k.startswith("prior.")}
        state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items() if not k.startswith("prior.")}
        model.load_state_dict(state, strict=True)
        prior = prior_from_state_dict(prior_state) if prior_state else None
        digest = hashlib.sha256(weights_path.read_bytes()).digest()[:3]
        return cls(model, prior, name=config.get("name", folder.name), model_hash=digest, short_id=config.get("short_id"))


def _fit_length(wav: Tensor, length: int) -> Tensor:
    """Crop or zero-pad (C, T) to length samples."""
    if wav.shape[1] >= length:
        return wav[:, :length]
    return torch.nn.functional.pad(wav, (0, length - wav.shape[1]))
