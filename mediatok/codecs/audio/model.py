"""The audio codec network: STFT-frame encoder, quantizer chosen by config, ConvNeXt + iSTFT decoder.

    wav (B, 1, T) --STFT(n_fft, hop)--> log|X| (B, F, n) --ConvNeXt--> z (B, D, n)    n = T / hop frames
        --quantizer (GRVQ | RVQ | SimVQ | LC | VQ)--> indices (B, Q, n), q (B, D, n)
        --ConvNeXt @ frame rate--(x upsample)--> ConvNeXt --linear--> log-magnitude, phase
        --iSTFT(head_n_fft, hop / upsample)--> wav (B, 1, T)

The frame-rate encoder and the iSTFT head (Vocos, Siuzdak 2023; WavTokenizer, Ji et al. 2024) keep every
convolution at 50-100 Hz, which is what makes training and real-time inference cheap on a CPU.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import torch
from torch import Tensor, nn

from mediatok.codecs.blocks import Backbone, ConvNeXtBlock1d, FramedISTFT, FramedSTFT
from mediatok.quantizers import GroupedResidualVQ, LCQuantizer, QuantizerOutput, ResidualVQ, SimVQ, VectorQuantizer

QuantizerKind = Literal["grvq", "rvq", "simvq", "lc", "vq"]


@dataclass
class AudioCodecConfig:
    """Everything needed to rebuild an `AudioCodec`; saved as config.json next to the weights."""

    sample_rate: int = 16000
    hop: int = 320  # samples per token frame: 16000 / 320 = 50 Hz
    n_fft: int = 640  # encoder analysis window
    head_n_fft: int = 640  # decoder synthesis window, at hop / upsample
    latent_dim: int = 128
    enc_dim: int = 256
    enc_depth: int = 4
    dec_dim: int = 384
    dec_depth: int = 6
    upsample: int = 2  # decoder frames per token frame before the iSTFT head
    up_dim: int = 256
    up_depth: int = 2
    mult: float = 3.0
    quantizer: QuantizerKind = "grvq"
    codebook_size: int = 1024
    num_groups: int = 2
    num_quantizers: int = 2
    codebook_dim: int | None = None
    quantizer_dropout: float = 0.0
    commitment_weight: float = 0.25
    ema_decay: float = 0.99
    dead_code_threshold: float = 0.1

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioCodecConfig:
        """Build from a dict, refusing unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown AudioCodecConfig keys {unknown}; known keys are {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict."""
        return asdict(self)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop


def build_quantizer(cfg: AudioCodecConfig) -> nn.Module:
    """The quantizer named by cfg.quantizer, over cfg.latent_dim channels."""
    common = dict(commitment_weight=cfg.commitment_weight)
    ema = dict(ema_decay=cfg.ema_decay, dead_code_threshold=cfg.dead_code_threshold, codebook_dim=cfg.codebook_dim)
    if cfg.quantizer == "grvq":
        return GroupedResidualVQ(
            cfg.latent_dim, cfg.codebook_size, cfg.num_groups, cfg.num_quantizers,
            quantizer_dropout=cfg.quantizer_dropout, **common, **ema,
        )
    if cfg.quantizer == "rvq":
        return ResidualVQ(
            cfg.latent_dim, cfg.codebook_size, cfg.num_quantizers, quantizer_dropout=cfg.quantizer_dropout, **common, **ema
        )
    if cfg.quantizer == "simvq":
        return SimVQ(cfg.latent_dim, cfg.codebook_size, codebook_dim=cfg.codebook_dim, **common)
    if cfg.quantizer == "lc":
        # SimVQ's layout (frozen entries, trained projector) whose entries are set from encoder latents by k-means
        # before training (mediatok.train.audio.CodebookFromLatents); codebook_dim defaults to the latent width.
        return LCQuantizer(cfg.latent_dim, cfg.codebook_size, cfg.codebook_dim or cfg.latent_dim, **common)
    if cfg.quantizer == "vq":
        return VectorQuantizer(cfg.latent_dim, cfg.codebook_size, **common, **ema)
    raise ValueError(f"quantizer must be one of grvq, rvq, simvq, lc, vq; got {cfg.quantizer!r}")


@dataclass(frozen=True)
class CodecOutput:
    """What `AudioCodec.forward` returns."""

    audio: Tensor  # (B, 1, T) reconstruction
    indices: Tensor  # (B, Q, n) int64
    commit_loss: Tensor  # scalar, weighted by the quantizer
    stats: dict[str, Tensor]
    phase: Tensor  # (B, F', n * upsample) the head's phase (for phase losses)
    log_mag: Tensor  # (B, F', n * upsample) the head's log-magnitude

    @property
    def reconstruction(self) -> Tensor:
        """The platform's name for the reconstruction (what training losses and callbacks compare)."""
        return self.audio


class Encoder(nn.Module):
    """wav (B, 1, T) -> z (B, latent_dim, T / hop) from log-magnitude STFT frames."""

    def __init__(self, cfg: AudioCodecConfig) -> None:
        super().__init__()
        self.stft = FramedSTFT(cfg.n_fft, cfg.hop)
        self.backbone = Backbone(cfg.n_fft // 2 + 1, cfg.enc_dim, cfg.enc_depth, cfg.mult, stem_kernel=3)
        self.proj = nn.Conv1d(cfg.enc_dim, cfg.latent_dim, 1)

    def forward(self, wav: Tensor) -> Tensor:
        """wav (B, 1, T) -> (B, latent_dim, T / hop)."""
        spec = self.stft(wav[:, 0])  # (B, F, n)
        feats = torch.log(spec.abs().clamp_min(1e-5))
        return self.proj(self.backbone(feats))


class Decoder(nn.Module):
    """q (B, latent_dim, n) -> wav (B, 1, n * hop): ConvNeXt at frame rate, upsample, ConvNeXt, iSTFT head."""

    def __init__(self, cfg: AudioCodecConfig) -> None:
        super().__init__()
        if cfg.hop % cfg.upsample:
            raise ValueError(f"hop ({cfg.hop}) must be divisible by upsample ({cfg.upsample})")
        self.backbone = Backbone(cfg.latent_dim, cfg.dec_dim, cfg.dec_depth, cfg.mult)
        head_dim = cfg.dec_dim
        self.up: nn.Module = nn.Identity()
        self.up_blocks = nn.ModuleList()
        if cfg.upsample > 1:
            u = cfg.upsample
            self.up = nn.ConvTranspose1d(cfg.dec_dim, cfg.up_dim, 2 * u, stride=u, padding=u // 2)
            self.up_blocks = nn.ModuleList(ConvNeXtBlock1d(cfg.up_dim, cfg.mult) for _ in range(cfg.up_depth))
            head_dim = cfg.up_dim
        self.head_norm = nn.LayerNorm(head_dim, eps=1e-6)
        n_fft, hop = cfg.head_n_fft, cfg.hop // cfg.upsample
        self.bins = n_fft // 2 + 1
        self.head = nn.Linear(head_dim, 2 * self.bins)
        self.istft = FramedISTFT(n_fft, hop)

    def spectrum(self, q: Tensor) -> tuple[Tensor, Tensor]:
        """q (B, latent_dim, n) -> (log-magnitude, phase), each frames-last (B, n * upsample, F')."""
        h = self.up(self.backbone(q))
        for block in self.up_blocks:
            h = block(h)
        out = self.head(self.head_norm(h.transpose(1, 2)))  # (B, n', 2F')
        log_mag, phase = out.split(self.bins, dim=-1)
        return log_mag.clamp(max=6.0), phase  # exp(6) ~ 400: a bound against early-training overflow

    def forward(self, q: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q (B, latent_dim, n) -> (wav (B, 1, n * hop), log-magnitude, phase (B, F', n * upsample))."""
        log_mag, phase = self.spectrum(q)
        wav = self.istft.from_frames(torch.polar(log_mag.exp(), phase))
        return wav[:, None], log_mag.transpose(1, 2), phase.transpose(1, 2)


class AudioCodec(nn.Module):
    """Encoder -> quantizer -> decoder. wav (B, 1, T), T a multiple of `hop` -> `CodecOutput`."""

    def __init__(self, cfg: AudioCodecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = build_quantizer(cfg)
        self.decoder = Decoder(cfg)

    @property
    def num_codebooks(self) -> int:
        return self.quantizer.num_codebooks

    @property
    def bitrate(self) -> float:
        """Nominal bits per second before entropy coding."""
        return self.quantizer.bits_per_token * self.cfg.frame_rate

    def quantize(self, wav: Tensor) -> QuantizerOutput:
        """wav (B, 1, T) -> the quantizer's output over T / hop frames."""
        return self.quantizer(self.encoder(wav))

    def forward(self, wav: Tensor) -> CodecOutput:
        """wav (B, 1, T) -> reconstruction and everything the losses need."""
        if wav.ndim != 3 or wav.shape[1] != 1 or wav.shape[-1] % self.cfg.hop:
            raise ValueError(f"expected wav of shape (B, 1, T) with T a multiple of {self.cfg.hop}, got {tuple(wav.shape)}")
        out = self.quantize(wav)
        audio, log_mag, phase = self.decoder(out.quantized)
        return CodecOutput(audio, out.indices, out.loss, out.stats, phase, log_mag)

    @torch.no_grad()
    def encode_indices(self, wav: Tensor) -> Tensor:
        """wav (B, 1, T) -> indices (B, Q, T / hop)."""
        return self.quantize(wav).indices

    @torch.no_grad()
    def decode_indices(self, indices: Tensor) -> Tensor:
        """indices (B, Q, n) -> wav (B, 1, n * hop)."""
        return self.decoder(self.quantizer.decode_indices(indices))[0]
