"""MS-SSIM at any image size, differentiable: the measure `mediatok eval` reports and training optimises.

pytorch-msssim asserts a short side above 160 px for its five scales with an 11-tap window, whatever weights it
is given. Below that the coarsest scales are dropped (the remaining standard weights renormalised) so that the
last scale still holds one window, and below 11 px the window shrinks (plain SSIM). Above 160 px this is
pytorch-msssim's own five-scale MS-SSIM.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, finest scale first
WINDOW = 11


def msssim_levels(short_side: int) -> tuple[int, int]:
    """(scales, window) for images whose short side is short_side (>= 3 px)."""
    if short_side < 3:
        raise ValueError(f"MS-SSIM needs images of at least 3 x 3 px, got a short side of {short_side}")
    win = WINDOW if short_side >= WINDOW else short_side - (1 - short_side % 2)
    if short_side > (WINDOW - 1) * 16:
        return 5, win
    return max(1, min(5, int(math.floor(math.log2(short_side / win))) + 1)), win


def ms_ssim(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """MS-SSIM per image of batches (B, C, H, W) -> (B,), with the scales the size allows (see module doc)."""
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim  # the per-scale (ssim, cs) pytorch-msssim uses

    levels, win = msssim_levels(min(x.shape[-2:]))
    weights = torch.tensor(MSSSIM_WEIGHTS[:levels], dtype=x.dtype, device=x.device)
    weights = weights / weights.sum()
    kernel = _fspecial_gauss_1d(win, 1.5).to(x).repeat(x.shape[1], 1, 1, 1)
    terms = []
    for i in range(levels):
        s, cs = _ssim(x, y, data_range=data_range, win=kernel, size_average=False)  # (B, C) each
        if i < levels - 1:
            terms.append(torch.relu(cs))
            pad = [d % 2 for d in x.shape[2:]]
            x = F.avg_pool2d(x, 2, padding=pad)
            y = F.avg_pool2d(y, 2, padding=pad)
    terms.append(torch.relu(s))
    return torch.prod(torch.stack(terms) ** weights.view(-1, 1, 1), dim=0).mean(dim=1)
