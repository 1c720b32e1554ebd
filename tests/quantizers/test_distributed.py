"""Two gloo processes on the CPU end with identical codebooks (EMA, k-means init, restarts, quantizer dropout)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_hold_identical_codebooks(tmp_path: Path):
    worker = Path(__file__).with_name("ddp_worker.py")
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                   OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, str(worker), str(tmp_path / f"rank{rank}.safetensors")],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        for p in procs:
            out, _ = p.communicate(timeout=180)
            assert p.returncode == 0, out.decode()
    finally:
        for p in procs:  # ranks that disagree on a collective hang: do not leave them behind
            if p.poll() is None:
                p.kill()
                p.wait()
    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in range(2))
    assert rank0.keys() == rank1.keys()
    embeds = [k for k in rank0 if k.endswith("embed")]
    assert len(embeds) == 8  # one VQ codebook + 2 groups x 2 levels + 3 RVQ levels
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    # Quantizer dropout did drop levels, at the same steps on both ranks (compared above), and ran at full depth.
    grvq_depths, rvq_depths = rank0["depths"].T.tolist()
    assert set(grvq_depths) == {1, 2} and set(rvq_depths) >= {1, 3}, rank0["depths"]
    assert int(rank0["rvq.dropout_step"]) == 12
    # The codebooks did move away from their shared random start: restarts and EMA ran.
    torch.manual_seed(0)
    from mediatok.quantizers import VectorQuantizer

    assert not torch.equal(VectorQuantizer(8, 64, dead_code_threshold=0.5).codebook.embed, rank0["vq.codebook.embed"])
