"""Neural-network blocks shared by the codecs: ConvNeXt-1d and framed STFT / iSTFT with 'same' padding."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvNeXtBlock1d(nn.Module):
    """Depthwise conv -> LayerNorm -> pointwise MLP -> layer scale, with a residual. x (B, C, T).

    Liu et al., "A ConvNet for the 2020s" (2022), in the 1-d form Vocos uses at frame rate.
    """

    def __init__(self, dim: int, mult: float = 3.0, kernel_size: int = 7, layer_scale: float = 1e-2) -> None:
        super().__init__()
        hidden = int(dim * mult)
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, hidden)
        self.pw2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C, T) -> (B, C, T)."""
        h = self.dwconv(x).transpose(1, 2)  # (B, T, C)
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class Backbone(nn.Module):
    """Conv stem, `depth` ConvNeXt blocks and a final LayerNorm. (B, C_in, T) -> (B, dim, T)."""

    def __init__(self, in_dim: int, dim: int, depth: int, mult: float = 3.0, stem_kernel: int = 7) -> None:
        super().__init__()
        self.stem = nn.Conv1d(in_dim, dim, stem_kernel, padding=stem_kernel // 2)
        self.norm_in = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock1d(dim, mult) for _ in range(depth))
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C_in, T) -> (B, dim, T)."""
        h = self.norm_in(self.stem(x).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            h = block(h)
        return self.norm_out(h.transpose(1, 2)).transpose(1, 2)


class FramedSTFT(nn.Module):
    """STFT with 'same' padding: a signal of T = n * hop samples gives exactly n frames. x (B, T) -> (B, F, n)."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        assert (n_fft - hop) % 2 == 0, "n_fft - hop must be even for symmetric padding"
        self.n_fft, self.hop, self.pad = n_fft, hop, (n_fft - hop) // 2
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T) with T divisible by hop -> complex (B, n_fft // 2 + 1, T // hop)."""
        x = F.pad(x[:, None], (self.pad, self.pad), mode="reflect")[:, 0]
        return torch.stft(x, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)


class FramedISTFT(nn.Module):
    """Inverse of `FramedSTFT`: n frames give exactly n * hop samples (overlap-add, window-sum normalised).

    torch.istft checks the window envelope over the whole padded signal, which fails once the padding is
    trimmed; this does the overlap-add itself (as Vocos does), as n_fft / hop shifted slice additions, which on a
    CPU costs a fraction of F.fold.
    """

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        if n_fft % hop or (n_fft - hop) % 2:
            raise ValueError(f"n_fft ({n_fft}) must be a multiple of hop ({hop}) with n_fft - hop even")
        self.n_fft, self.hop, self.pad = n_fft, hop, (n_fft - hop) // 2
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def _overlap_add(self, frames: Tensor) -> Tensor:
        """frames (B, n, n_fft) -> (B, (n - 1) * hop + n_fft) by summing the n_fft / hop shifted hop-blocks."""
        b, n, _ = frames.shape
        k = self.n_fft // self.hop
        blocks = frames.reshape(b, n, k, self.hop)  # (B, n, k, hop): block j of frame t lands at t + j
        out = frames.new_zeros(b, n + k - 1, self.hop)
        for j in range(k):
            out[:, j : j + n] += blocks[:, :, j]
        return out.reshape(b, (n + k - 1) * self.hop)

    def forward(self, spec: Tensor) -> Tensor:
        """spec complex (B, n_fft // 2 + 1, n) -> x (B, n * hop)."""
        return self.from_frames(spec.transpose(1, 2))

    def from_frames(self, spec: Tensor) -> Tensor:
        """spec complex in frames-last layout (B, n, n_fft // 2 + 1) -> x (B, n * hop)."""
        n = spec.shape[1]
        frames = torch.fft.irfft(spec, self.n_fft, dim=-1, norm="backward") * self.window  # (B, n, n_fft)
        y = self._overlap_add(frames)
        env = self._overlap_add(self.window.square().expand(1, n, -1))[0]
        length = y.shape[1]
        return y[:, self.pad : length - self.pad] / env[self.pad : length - self.pad].clamp_min(1e-8)
