"""Run by test_distributed.py in each of 2 processes: train quantizers on different data per rank."""
from __future__ import annotations

import random
import sys

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from mediatok.quantizers import GroupedResidualVQ, ResidualVQ, VectorQuantizer


def main(out_path: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)  # identical construction on both ranks
    vq = VectorQuantizer(8, 64, dead_code_threshold=0.5, dead_code_window=1.0)
    grvq = GroupedResidualVQ(8, 32, num_groups=2, num_quantizers=2, dead_code_threshold=0.5, quantizer_dropout=0.5)
    rvq = ResidualVQ(8, 16, num_quantizers=3, quantizer_dropout=0.5)
    torch.manual_seed(100 + rank)  # each rank draws its own data and its own random choices
    random.seed(100 + rank)
    centers = torch.randn(40, 8) * 3
    depths = []
    for _ in range(12):
        x = (centers[torch.randint(40, (2, 50))] + 0.1 * torch.randn(2, 50, 8)).transpose(1, 2)
        x = x * (1 + rank)  # the ranks really see different distributions
        vq(x)
        # Quantizer dropout: a rank that ran fewer levels would leave the other waiting in a level's all_reduce.
        depths.append([grvq(x).indices.shape[1] // 2, rvq(x).indices.shape[1]])
    state = {f"vq.{k}": v.contiguous() for k, v in vq.state_dict().items()}
    state.update({f"grvq.{k}": v.contiguous() for k, v in grvq.state_dict().items()})
    state.update({f"rvq.{k}": v.contiguous() for k, v in rvq.state_dict().items()})
    state["depths"] = torch.tensor(depths)  # (steps, 2): GRVQ and RVQ depth per step
    save_file(state, out_path)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
