"""`make demo`: a short end-to-end run on the bundled example."""
from __future__ import annotations

import argparse

import torch


def main(argv: list[str] | None = None) -> None:
    """Quantize a batch of features and check that indices reproduce the output exactly."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", default=None, help="folder for the demo's output files")
    parser.parse_args(argv)
    from mediatok.quantizers import ResidualVQ

    torch.manual_seed(0)
    rvq = ResidualVQ(dim=32, codebook_size=256, num_quantizers=4)
    x = torch.randn(2, 32, 100)
    rvq.train()
    for _ in range(20):
        rvq(x)
    rvq.eval()
    out = rvq(x)
    err = (out.quantized - x).pow(2).mean() / x.pow(2).mean()
    same = torch.equal(rvq.decode_indices(out.indices), out.quantized)
    print(f"residual VQ 4x256: {rvq.bits_per_token:.0f} bits/token, relative MSE {err:.3f}, indices reproduce output: {same}")


if __name__ == "__main__":
    main()
