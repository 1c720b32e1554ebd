"""Multi-GPU / multi-node tokenizing through Lightning: `Trainer.predict` over shard jobs + a shard writer.

Each predict "sample" is a whole shard job, so the distributed sampler hands out shards, each rank tokenizes
its shards item by item (the same code as the worker processes) and `ShardWriter` writes them atomically.
Shards depend only on the plan, never on the rank, so 1 process, N workers and N DDP ranks write the same bytes
(on the same kind of device). Nothing here imports the pipeline: both build on `jobs`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset

from mediatok.tokenize.jobs import ShardJob, tokenize_items
from mediatok.tokenize.media import load_codec, media_io, place
from mediatok.tokenize.shards import write_shard


class ShardJobs(Dataset):
    """The shard jobs still to do; one job per sample."""

    def __init__(self, jobs: list[ShardJob]) -> None:
        self.jobs = jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> ShardJob:
        return self.jobs[i]


def _single(batch: list[ShardJob]) -> ShardJob:
    return batch[0]


class TokenizeModule(L.LightningModule):
    """Wraps a codec (or the name to load it by in each rank) for `Trainer.predict` over `ShardJobs`.

    A codec is not an `nn.Module` of this module, so Lightning does not move it: each rank puts it on its own
    root device for the predict loop (and a codec object the caller passed in goes back where it was).
    """

    def __init__(self, model: Any, header: dict[str, Any]) -> None:
        super().__init__()
        self.spec = model if isinstance(model, (str, os.PathLike)) else None
        self.codec = None if self.spec is not None else model
        self.header = header
        self._home: torch.device | None = None

    def setup(self, stage: str) -> None:
        if self.codec is None:
            self.codec = load_codec(self.spec)
        self.io = media_io(self.codec)

    def transfer_batch_to_device(self, batch: ShardJob, device: torch.device, dataloader_idx: int) -> ShardJob:
        return batch  # a job names files; the codec moves what it reads

    def on_predict_start(self) -> None:
        self._home = getattr(self.codec, "device", None)
        self.codec = place(self.codec, self.trainer.strategy.root_device)

    def on_predict_end(self) -> None:
        if self._home is not None:
            self.codec = place(self.codec, self._home)

    def predict_step(self, job: ShardJob, batch_idx: int) -> tuple[ShardJob, list, list, list]:
        """One shard job -> (job, records, token arrays, failures), with one intra-op thread like every path."""
        return (job, *tokenize_items(job, self.codec, self.io, self.header))


class ShardWriter(BasePredictionWriter):
    """Writes each predicted shard as soon as it is done; waits for every rank at the end of the epoch."""

    def __init__(self, out: Path, header: dict[str, Any]) -> None:
        super().__init__(write_interval="batch")
        self.out, self.header = Path(out), header

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0) -> None:
        job, records, arrays, failures = prediction
        write_shard(self.out, job.index, [it.id for it in job.items], records, arrays, failures, self.header)

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.strategy.barrier("mediatok-tokenize-shards")  # every shard exists before any rank writes the manifest


def run_lightning(jobs: list[ShardJob], model: Any, header: dict[str, Any], out: Path, *, devices: int,
                  accelerator: str = "auto", num_nodes: int = 1, strategy: str | None = None) -> None:
    """Tokenize `jobs` with `Trainer.predict` on `devices` x `num_nodes` processes; shards land in `out`."""
    if not jobs:
        return
    trainer = L.Trainer(
        accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy or "auto",
        callbacks=[ShardWriter(out, header)], logger=False, enable_checkpointing=False,
        enable_model_summary=False, use_distributed_sampler=True,
    )
    loader = DataLoader(ShardJobs(jobs), batch_size=1, shuffle=False, collate_fn=_single)
    trainer.predict(TokenizeModule(model, header), loader, return_predictions=False)
