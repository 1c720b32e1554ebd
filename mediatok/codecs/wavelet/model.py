"""WaveletAutoencoder: wavelet packet -> near-linear encoder -> per-rate gain -> entropy bottleneck -> deep decoder.

    x (B, C, H, W) | (B, C, T) --packet (CDF 9/7, `levels`)--> (B, C * 4^L | C * 2^L, ...) --1x1 conv (+ optional
        residual blocks)--> y (B, N, ...) --* gain[r]--> y_r --EntropyBottleneck r (noise in training, rounding
        after; with a fixed encoder, rounding in training too)--> y_r_hat --/ gain[r]--> decoder (conv + residual
        blocks + a linear skip) --inverse packet--> x_hat

The design of WaLLoC (Jacobellis & Yadwadkar, "Learned Compression for Compressed Learning", 2024): the wavelet
packet does the spatial (or temporal) decorrelation and downsampling for free, so the encoder can be almost linear
and run at megapixels per second, while the decoder, which only runs when a human looks, is deep. The latents
are small (N channels at 1/8 of each side), which is what downstream models learn on.

Several rates from one network: one learned gain vector per rate scales the latent before rounding and its
inverse scales it back (Cui et al., "Asymmetric Gained Deep Image Compression With Continuous Rate Adaptation",
2021), each rate with its own factorized entropy model, trained with its own lambda (a random rate per step).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mediatok.codecs.wavelet.transform import ipacket1d, ipacket2d, packet1d, packet2d, packet2d_numpy


def round_latents(y: Tensor, medians: Tensor, deadzone: float = 0.0, exempt: Tensor | None = None) -> Tensor:
    """y rounded to integers around `medians` (broadcast to y): the values a file stores. With a deadzone, d = y -
    medians goes to sign(d) floor(|d| + 0.5 - deadzone), so values within 0.5 + deadzone of zero become zero;
    channels where `exempt` (a boolean mask broadcast to y) is set are rounded plainly."""
    d = y - medians
    q = torch.round(d)
    if deadzone > 0:
        dead = torch.sign(d) * torch.floor(d.abs() + (0.5 - deadzone))
        q = dead if exempt is None else torch.where(exempt, q, dead)
    return q + medians


@dataclass
class WaveletAutoencoderConfig:
    """Shape of a `WaveletAutoencoder`; `lambdas` lists the rates (one gain vector and entropy model each)."""

    dims: int = 2  # 2: images (B, C, H, W); 1: audio (B, C, T)
    channels: int = 3
    levels: int = 3  # packet levels: images are coded at 1/2^L of each side, audio at 1/2^L of the sample rate
    latent_channels: int = 16
    encoder_blocks: int = 0  # 0: the encoder is one linear map of the packet coefficients
    decoder_width: int = 128
    decoder_blocks: int = 4
    kernel_size: int = 3
    lambdas: tuple[float, ...] = (0.001, 0.004, 0.016)  # distortion weights (x 255^2 MSE for images), low rate first
    default_rate: int = -1  # the rate `encode` uses without one (index into lambdas; -1: the highest)
    offset: float = 0.5  # subtracted before the transform (images in [0, 1] -> centred)
    peak: float = 255.0  # the signal's peak in the loss's units (8-bit images 255, 16-bit audio 32768): the gains
    # start at peak * sqrt(lambda), so a fresh network already quantises about as finely as each rate's lambda wants
    train_encoder: bool = True  # False: the analysis map and the gains keep their start (principal components, one
    # uniform step 1 / (peak * sqrt(lambda)) per rate) and training fits the decoder alone. A factorized bottleneck's
    # rate estimate charges for near-zero values that a context coder codes almost free, so an encoder learnt against
    # it may zero detail the shipped coder keeps cheaply (image-wavelet's card has the measurement and its caveat).
    # With it False, the decoder trains on the rounded latents a file holds, not on the noisy ones
    deadzone: tuple[float, ...] = ()  # per rate, in steps: the encoder rounds the channels its coder does not
    # predict to sign(y) floor(|y| + 0.5 - deadzone), so values within 0.5 + deadzone of zero become zero, which the
    # context coder codes nearly free. The decoder is unchanged. On image-wavelet's val photos, 0.1 was level with
    # plain rounding at matched bpp or slightly ahead, and 0.2-0.4 were behind. Empty: plain rounding
    sample_rate: int = 0  # audio: the waveform rate the model was trained at (0 for images)
    measured_rate: tuple[float, ...] = field(default_factory=tuple)  # bit/pixel (images) or bit/s (audio) per rate,
    # measured on held-out data at export: the "nominal" rate of a continuous-latent codec

    def __post_init__(self) -> None:
        self.lambdas = tuple(float(v) for v in self.lambdas)
        self.measured_rate = tuple(float(v) for v in self.measured_rate)
        self.deadzone = tuple(float(v) for v in self.deadzone)
        if self.dims not in (1, 2):
            raise ValueError(f"dims must be 1 (audio) or 2 (images), got {self.dims}")
        for name in ("channels", "latent_channels", "decoder_width", "kernel_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.levels <= 8:
            raise ValueError(f"levels must be in [1, 8], got {self.levels}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if not self.lambdas or min(self.lambdas) <= 0:
            raise ValueError(f"lambdas must be one or more positive numbers, got {self.lambdas}")
        if not -len(self.lambdas) <= self.default_rate < len(self.lambdas):
            raise ValueError(f"default_rate {self.default_rate} is not an index into {len(self.lambdas)} lambdas")
        if self.peak <= 0:
            raise ValueError(f"peak must be positive, got {self.peak}")
        if self.deadzone and (len(self.deadzone) != len(self.lambdas) or not all(0 <= v < 0.5 for v in self.deadzone)):
            raise ValueError(f"deadzone must be empty or one value in [0, 0.5) per rate ({len(self.lambdas)}), "
                             f"got {self.deadzone}")
        if self.measured_rate and len(self.measured_rate) != len(self.lambdas):
            raise ValueError(f"measured_rate has {len(self.measured_rate)} entries for {len(self.lambdas)} rates")

    @property
    def num_rates(self) -> int:
        return len(self.lambdas)

    @property
    def stride(self) -> int:
        """Input samples per latent position along each axis."""
        return 2**self.levels

    @property
    def hop(self) -> int:
        """Audio: samples per latent frame."""
        return self.stride

    @property
    def frame_rate(self) -> float:
        """Audio: latent frames per second (0 for images)."""
        return self.sample_rate / self.stride

    @property
    def packet_channels(self) -> int:
        return self.channels * self.stride**self.dims

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lambdas"], d["measured_rate"] = list(self.lambdas), list(self.measured_rate)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WaveletAutoencoderConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown WaveletAutoencoderConfig keys {unknown}; known: {sorted(known)}")
        return cls(**d)


@dataclass
class WaveletOutput:
    """What a training forward pass returns (the loss set reads it)."""

    reconstruction: Tensor  # like the input
    likelihoods: Tensor  # (B, N, ...) of the rounded (noisy in training) latents under the rate's entropy model
    rate: int  # index of the rate used
    lmbda: float  # its distortion weight
    aux_loss: Tensor  # the entropy models' quantile loss (CompressAI's), to be minimised alongside


class _Residual(nn.Module):
    """x + gain * conv(act(conv(act(x)))), gain starting at 0: no normalisation (its backward is slow on CPUs) and
    every block starts as the identity, so a deep decoder trains from the first step."""

    def __init__(self, conv: type[nn.Module], width: int, k: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.GELU(), conv(width, width, k, padding=k // 2), nn.GELU(),
                                  conv(width, width, k, padding=k // 2))
        self.gain = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.gain * self.body(x)


class WaveletAutoencoder(nn.Module):
    """The network of the wavelet codecs (see the module docstring); `cfg.dims` picks images or audio."""

    def __init__(self, cfg: WaveletAutoencoderConfig | None = None) -> None:
        super().__init__()
        from compressai.entropy_models import EntropyBottleneck

        self.cfg = cfg = cfg or WaveletAutoencoderConfig()
        conv = nn.Conv2d if cfg.dims == 2 else nn.Conv1d
        k, p, n, w = cfg.kernel_size, cfg.packet_channels, cfg.latent_channels, cfg.decoder_width
        self.analysis = conv(p, n, 1)
        self.encoder_blocks = nn.Sequential(*(_Residual(conv, n, k) for _ in range(cfg.encoder_blocks)))
        # Rounding has a step of 1 in latent units; with unit gains a fresh network quantises far too coarsely and
        # needs thousands of steps to grow its weights. Gains of peak * sqrt(lambda) start each rate near its
        # operating point (the MSE-optimal step of a uniform quantiser scales with 1 / sqrt(lambda)).
        start = torch.tensor([math.log(cfg.peak * math.sqrt(lam)) for lam in cfg.lambdas])[:, None].expand(-1, n)
        self.log_gain = nn.Parameter(start.clone())
        self.log_inverse_gain = nn.Parameter(-start.clone())
        self.bottlenecks = nn.ModuleList(EntropyBottleneck(n) for _ in range(cfg.num_rates))
        for eb in self.bottlenecks:
            # Integer tables are derived at export (BottleneckModel) and kept out of the state dict: their sizes
            # change with update(), which a strict load of a fresh network could not take.
            eb._non_persistent_buffers_set.update({"_offset", "_quantized_cdf", "_cdf_length"})
        self.synthesis_linear = conv(n, p, 1)
        if not cfg.train_encoder:
            for frozen in (self.analysis.weight, self.analysis.bias, self.log_gain):
                frozen.requires_grad_(False)
        # False until the first training batch has set the linear maps to its principal components (see below)
        self.register_buffer("pca_initialized", torch.tensor(False))
        self.synthesis_in = conv(n, w, k, padding=k // 2)
        self.decoder_blocks = nn.Sequential(*(_Residual(conv, w, k) for _ in range(cfg.decoder_blocks)))
        self.synthesis_out = conv(w, p, k, padding=k // 2)
        nn.init.zeros_(self.synthesis_out.weight)  # the decoder starts as the linear skip alone
        nn.init.zeros_(self.synthesis_out.bias)

    # ---- pieces ---------------------------------------------------------------------------------------------
    @property
    def num_codebooks(self) -> int:
        """Latent channels (what the codec platform counts as Q)."""
        return self.cfg.latent_channels

    def rate_index(self, rate: int | None) -> int:
        """A rate index in [0, num_rates) (negative counts from the end; None: the default)."""
        r = self.cfg.default_rate if rate is None else rate
        if isinstance(r, bool) or not isinstance(r, int) or not -self.cfg.num_rates <= r < self.cfg.num_rates:
            raise ValueError(f"rate must be an int index into this model's {self.cfg.num_rates} rates, got {rate!r}")
        return r % self.cfg.num_rates

    def _packet(self, x: Tensor) -> Tensor:
        if self.cfg.dims == 2 and x.device.type == "cpu" and not torch.is_grad_enabled():
            # inference on the CPU: the fused numba lifting, several times faster than the convolutions
            planes = (x - self.cfg.offset).float().numpy()
            return torch.stack([torch.from_numpy(packet2d_numpy(p, self.cfg.levels)) for p in planes]).to(x.dtype)
        z, _ = (packet2d if self.cfg.dims == 2 else packet1d)(x - self.cfg.offset, self.cfg.levels)
        return z

    def _unpacket(self, z: Tensor) -> Tensor:
        return (ipacket2d if self.cfg.dims == 2 else ipacket1d)(z, levels=self.cfg.levels) + self.cfg.offset

    def _gain(self, r: int, inverse: bool = False) -> Tensor:
        g = (self.log_inverse_gain if inverse else self.log_gain)[r].exp()
        return g.reshape(1, -1, *([1] * self.cfg.dims))

    def encode_latents(self, x: Tensor, rate: int | None = None) -> Tensor:
        """x (B, C, *S) with S divisible by the stride -> the rate's latents y_r (B, N, *S / stride), before rounding."""
        self._check_input(x)
        z = self._packet(x)
        # the 1x1 analysis as one matrix product over positions: torch's 1x1 convolution is several times slower here
        y = F.linear(z.movedim(1, -1), self.analysis.weight.flatten(1), self.analysis.bias).movedim(-1, 1)
        y = self.encoder_blocks(y)
        return y * self._gain(self.rate_index(rate))

    def decode_latents(self, y_hat: Tensor, rate: int | None = None) -> Tensor:
        """Rounded latents of a rate (B, N, *s) -> reconstruction (B, C, *s * stride)."""
        y = y_hat * self._gain(self.rate_index(rate), inverse=True)
        z = self.synthesis_linear(y) + self.synthesis_out(self.decoder_blocks(self.synthesis_in(y)))
        return self._unpacket(z)

    def _check_input(self, x: Tensor) -> None:
        cfg = self.cfg
        if x.ndim != cfg.dims + 2 or x.shape[1] != cfg.channels:
            layout = "(B, C, H, W)" if cfg.dims == 2 else "(B, C, T)"
            raise ValueError(f"expected {layout} with C={cfg.channels}, got {tuple(x.shape)}")
        if any(s % cfg.stride for s in x.shape[2:]):
            raise ValueError(f"input sides {tuple(x.shape[2:])} must be multiples of the stride {cfg.stride}; pad first")

    # ---- training -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def init_from_packets(self, x: Tensor) -> None:
        """Set the linear encoder to the top principal components of x's packet coefficients and the decoder's
        linear skip to their transpose: from its first step the network is the best linear code of its latent size.
        From random maps, Adam needs thousands of steps to find that subspace (measured: 25 dB after 150 steps at
        3.6 bpp, against the ~35 dB that 48 components of 192 allow). Under DDP every process takes rank 0's maps."""
        p, n = self.cfg.packet_channels, self.cfg.latent_channels
        z = self._packet(x).movedim(1, -1).reshape(-1, p).double()
        mean = z.mean(0)
        cov = (z - mean).T @ (z - mean) / max(1, z.shape[0] - 1)
        basis = torch.linalg.eigh(cov).eigenvectors.flip(-1)[:, :n].T.contiguous()  # (n, p), largest variance first
        if n > p:  # more latents than coefficients: the rest start at zero
            basis = torch.cat([basis, basis.new_zeros(n - p, p)])
        shape = (1,) * self.cfg.dims
        self.analysis.weight.copy_(basis.reshape(n, p, *shape))
        self.analysis.bias.copy_(-(basis @ mean))
        self.synthesis_linear.weight.copy_(basis.T.reshape(p, n, *shape))
        self.synthesis_linear.bias.copy_(mean)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for t in (self.analysis.weight, self.analysis.bias, self.synthesis_linear.weight, self.synthesis_linear.bias):
                torch.distributed.broadcast(t, 0)
        self._fit_bottlenecks(x)
        self.pca_initialized.fill_(True)

    def _fit_bottlenecks(self, x: Tensor, steps: int = 200, lr: float = 0.01, positions: int = 512) -> None:
        """Fit each rate's entropy model to the noisy latents of x before training starts.

        A fresh EntropyBottleneck spreads every channel's density over +-10; with 192 principal components whose
        spreads differ 1000-fold, its rate estimate started at 16 bit/pixel where a fitted one gives about 1, and
        at the codec's learning rate it took thousands of steps to get there, while the gains followed a wrong
        rate gradient (measured). Fitted on a sample of the batch's positions, this takes seconds."""
        from compressai.entropy_models import EntropyBottleneck

        if not all(isinstance(eb, EntropyBottleneck) for eb in self.bottlenecks):
            return
        for r, eb in enumerate(self.bottlenecks):
            y = self.encode_latents(x, r).detach().movedim(1, 0).flatten(1)  # (N, positions of the batch)
            pick = torch.randperm(y.shape[1], generator=torch.Generator().manual_seed(r))[:positions]
            y = y[:, pick][None]  # (1, N, positions): a sample keeps it to seconds
            params = [p for name, p in eb.named_parameters() if not name.endswith("quantiles")]
            opt = torch.optim.Adam(params, lr=lr)
            with torch.enable_grad():
                for _ in range(steps):
                    _, likelihoods = eb(y)
                    loss = -likelihoods.log2().sum() / y.numel()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                for p in params:
                    torch.distributed.broadcast(p.data, 0)

    def forward(self, x: Tensor, rate: int | None = None) -> WaveletOutput:
        """Training: a random rate per call (unless given), noisy latents; eval: the given or default rate, rounded.
        The first training call sets the linear maps from its batch (`init_from_packets`)."""
        if self.training and not bool(self.pca_initialized):
            self.init_from_packets(x)
        if rate is None and self.training:
            rate = int(torch.randint(self.cfg.num_rates, ()))
        r = self.rate_index(rate)
        y = self.encode_latents(x, r)
        y_hat, likelihoods = self.bottlenecks[r](y)
        if self.training and not self.cfg.train_encoder:
            # Nothing upstream learns, so the decoder can train on the values a file will hold (rounded around the
            # medians, with the rate's deadzone) instead of the noisy stand-in that a learnt encoder needs. The
            # codec leaves the channels its coder predicts out of the deadzone; here every channel has it.
            medians = self.bottlenecks[r]._get_medians().detach().reshape(1, -1, *([1] * (y.ndim - 2)))
            y_hat = round_latents(y.detach(), medians, self.deadzone(r))
        aux = sum(eb.loss() for eb in self.bottlenecks)
        return WaveletOutput(self.decode_latents(y_hat, r), likelihoods, r, self.cfg.lambdas[r], aux)

    def deadzone(self, rate: int) -> float:
        """The deadzone of a rate index, in steps (0 without one)."""
        return self.cfg.deadzone[rate] if self.cfg.deadzone else 0.0

    @property
    def bitrate(self) -> float:
        """The default rate's measured rate (bit/pixel or bit/s, from export); NaN before one was measured."""
        if not self.cfg.measured_rate:
            return float("nan")
        return self.cfg.measured_rate[self.rate_index(None)]


__all__ = ["WaveletAutoencoder", "WaveletAutoencoderConfig", "WaveletOutput", "round_latents"]
