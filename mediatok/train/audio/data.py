"""Audio data for codec training: a folder of audio files, prepared once into one float32 array per split.

    folder of .wav/.flac/.ogg  --prepare_folder-->  <split>.npy (float32, clips concatenated) + <split>_offsets.npy
    <split>.npy --memmap--> random crops (train) [--AudioAugment--] / fixed crops (val) --> (B, 1, segment) batches

Preparing once (decode, down-mix, resample) makes the loader nearly free, which matters on a 2-core machine
where every cycle the loader spends is taken from the model.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mediatok.codecs.audio.io import AUDIO_SUFFIXES, load_audio
from mediatok.train.audio.augment import AudioAugment
from mediatok.train.data import item_rng


def prepare_folder(src: str | Path, out: str | Path, split: str, sample_rate: int) -> int:
    """Decode every audio file under src into out/<split>.npy + offsets; returns the number of clips."""
    paths = sorted(p for p in Path(src).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {src}")
    arrays = [load_audio(p, sample_rate) for p in paths]
    Path(out).mkdir(parents=True, exist_ok=True)
    np.save(Path(out) / f"{split}.npy", np.concatenate(arrays))
    np.save(Path(out) / f"{split}_offsets.npy", np.cumsum([0] + [len(a) for a in arrays]).astype(np.int64))
    return len(arrays)


class ClipArray:
    """Clips stored as one memory-mapped float32 array plus offsets."""

    def __init__(self, root: str | Path, split: str) -> None:
        root = Path(root)
        if not (root / f"{split}.npy").exists():
            raise FileNotFoundError(
                f"{root / f'{split}.npy'} not found; run scripts/prepare_speech.py or mediatok.train.audio.prepare_folder"
            )
        self.audio = np.load(root / f"{split}.npy", mmap_mode="r")
        self.offsets = np.load(root / f"{split}_offsets.npy")
        self.lengths = np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.lengths)

    def crop(self, i: int, start: int, length: int) -> np.ndarray:
        """length samples of clip i from start, zero-padded past its end."""
        begin = self.offsets[i] + start
        end = min(begin + length, self.offsets[i + 1])
        out = np.zeros(length, dtype=np.float32)
        out[: end - begin] = self.audio[begin:end]
        return out


class RandomCrops(Dataset):
    """Endless-style dataset: item k is a random crop of a clip drawn proportionally to its length.

    Without `augment` the crop gets a random level within ±gain_db; with one, `augment` (EQ, noise, level) replaces it.
    """

    def __init__(self, clips: ClipArray, segment: int, epoch_size: int, gain_db: float = 6.0, seed: int = 0,
                 augment: AudioAugment | None = None) -> None:
        self.clips, self.segment, self.epoch_size, self.gain_db, self.seed = clips, segment, epoch_size, gain_db, seed
        self.augment = augment
        self.p = clips.lengths / clips.lengths.sum()

    def __len__(self) -> int:
        return self.epoch_size

    def __getitem__(self, k: int) -> torch.Tensor:
        rng = item_rng(self.seed, k)
        i = int(rng.choice(len(self.p), p=self.p))
        start = int(rng.integers(0, max(1, self.clips.lengths[i] - self.segment + 1)))
        x = self.clips.crop(i, start, self.segment)
        if self.augment is not None:
            return torch.from_numpy(self.augment(x, rng))[None]  # (1, segment)
        peak = float(np.abs(x).max())
        if peak > 0:  # random level, never clipping: the codec must not depend on the recording's loudness
            gain = 10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20)
            x = x * min(gain, 0.99 / peak)
        return torch.from_numpy(x)[None]  # (1, segment)


class FixedCrops(Dataset):
    """Deterministic validation crops: the first `segment` samples of up to `max_clips` evenly spaced clips."""

    def __init__(self, clips: ClipArray, segment: int, max_clips: int) -> None:
        self.clips, self.segment = clips, segment
        self.index = np.linspace(0, len(clips) - 1, min(max_clips, len(clips))).round().astype(int)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> torch.Tensor:
        return torch.from_numpy(self.clips.crop(int(self.index[k]), 0, self.segment))[None]


class AudioDataModule(L.LightningDataModule):
    """Random training crops and fixed validation crops from a prepared folder (see `prepare_folder`).

    `augment` (an `AudioAugment`, off by default) randomises EQ, noise and level of the training crops only;
    in a config: `augment: {gain_db: [-15, 8], noise_prob: 0.3}` under the data module's init_args.
    """

    def __init__(
        self,
        root: str = "data/speech16k",
        segment: int = 16000,
        batch_size: int = 16,
        epoch_size: int = 16000,
        val_segment: int = 48000,
        val_clips: int = 32,
        val_batch_size: int = 8,
        num_workers: int = 1,
        seed: int = 0,
        augment: AudioAugment | None = None,
    ) -> None:
        super().__init__()
        # recorded only when set, so that runs without augmentation keep the hyper-parameters they always had
        self.save_hyperparameters(ignore=[] if augment is not None else ["augment"])
        self.augment = augment
        self.train_set: RandomCrops | None = None
        self.val_set: FixedCrops | None = None

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        self.train_set = RandomCrops(ClipArray(h.root, "train"), h.segment, h.epoch_size, seed=h.seed, augment=self.augment)
        self.val_set = FixedCrops(ClipArray(h.root, "val"), h.val_segment, h.val_clips)

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "setup() runs first"
        return DataLoader(
            self.train_set, batch_size=self.hparams.batch_size, shuffle=False, drop_last=True,
            num_workers=self.hparams.num_workers, persistent_workers=False,
        )

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "setup() runs first"
        return DataLoader(self.val_set, batch_size=self.hparams.val_batch_size, num_workers=0)
