"""Lightning scale-out: 2 CPU DDP processes (Trainer.predict + shard writer) write the same shards as 1 process."""
from __future__ import annotations

from pathlib import Path

from mediatok.tokenize import tokenize_dataset


def test_two_ddp_processes_match_one_process(tmp_path: Path, codec, codec_dir: Path, speech_dir: Path, tree_bytes):
    tokenize_dataset(speech_dir, tmp_path / "one", codec, shard_size=2, progress=False)
    summary = tokenize_dataset(speech_dir, tmp_path / "ddp", str(codec_dir), shard_size=2, devices=2,
                               accelerator="cpu", strategy="ddp_fork")
    assert summary.shards_written == 6 and summary.num_items == 10
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "ddp")
