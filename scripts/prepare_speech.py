"""Data recipe for the shipped speech codecs: Czech + Dutch voice acting from the Fish Fillets NG game.

Source: Debian packages ``fillets-ng-data-cs`` and ``fillets-ng-data-nl`` (GPL-2+ game data; fine to train
on, never commit the clips). Run from the repository root::

    python scripts/prepare_speech.py            # -> data/speech16k/

Steps: ``apt-get download`` both packages, ``dpkg -x`` them (no install, no root needed), decode every
``sound/<level>/{cs,nl}/*.ogg`` with soundfile, down-mix to mono, resample to 16 kHz, and write

    data/speech16k/<split>.npy          float32, all clips of the split concatenated
    data/speech16k/<split>_offsets.npy  int64 (N + 1,), clip i is audio[offsets[i]:offsets[i + 1]]
    data/speech16k/<split>.txt          the source path of each clip, in order
    data/speech16k/<split>_wav/*.wav    16 kHz PCM-16 copies of the held-out clips (val and test only)

Fixed split, by game level so that held-out clips are held-out sentences: sort the 81 level folders by
name; level number ``i`` (0-based) goes to ``test`` if ``i % 10 == 3``, to ``val`` if ``i % 20 == 7``,
else to ``train``. The same rule applies to both languages.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from debian import unpack_packages  # scripts/debian.py, beside this script

PACKAGES = ("fillets-ng-data-cs", "fillets-ng-data-nl")
LANGUAGES = ("cs", "nl")
SOUND_DIR = "usr/share/games/fillets-ng/sound"
SAMPLE_RATE = 16000


def split_of(level_index: int) -> str:
    """The fixed split of the ``level_index``-th level folder (sorted by name)."""
    if level_index % 10 == 3:
        return "test"
    if level_index % 20 == 7:
        return "val"
    return "train"


def extract(raw_dir: Path) -> Path:
    """Download and unpack the two Debian packages into ``raw_dir``; return the sound folder."""
    sound = raw_dir / SOUND_DIR
    if sound.is_dir() and any(sound.glob("*/cs/*.ogg")) and any(sound.glob("*/nl/*.ogg")):
        return sound
    unpack_packages(PACKAGES, raw_dir)
    return sound


def load_clip(path: Path) -> np.ndarray:
    """Decode one .ogg to 16 kHz mono float32."""
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    x = x.mean(axis=1)
    if sr != SAMPLE_RATE and len(x):
        x = AF.resample(torch.from_numpy(x), sr, SAMPLE_RATE).numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def main(argv: list[str] | None = None) -> None:
    """Build data/speech16k from the two Debian packages."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=Path("data/raw"), help="where the packages are unpacked")
    parser.add_argument("--out", type=Path, default=Path("data/speech16k"), help="output folder")
    args = parser.parse_args(argv)
    sound = extract(args.raw)
    levels = sorted(p.name for p in sound.iterdir() if p.is_dir())
    clips: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for i, level in enumerate(levels):
        for lang in LANGUAGES:
            clips[split_of(i)].extend(sorted((sound / level / lang).glob("*.ogg")))
    args.out.mkdir(parents=True, exist_ok=True)
    for split, paths in clips.items():
        arrays, names = [], []
        for p in paths:
            x = load_clip(p)
            if len(x) < SAMPLE_RATE // 10:  # a few clips are clicks; under 0.1 s carries no speech
                continue
            arrays.append(x)
            names.append(str(p.relative_to(sound)))
            if split != "train":
                wav_dir = args.out / f"{split}_wav"
                wav_dir.mkdir(exist_ok=True)
                sf.write(str(wav_dir / (names[-1].replace("/", "_")[:-4] + ".wav")), x, SAMPLE_RATE, subtype="PCM_16")
        offsets = np.cumsum([0] + [len(a) for a in arrays]).astype(np.int64)
        np.save(args.out / f"{split}.npy", np.concatenate(arrays))
        np.save(args.out / f"{split}_offsets.npy", offsets)
        (args.out / f"{split}.txt").write_text("\n".join(names) + "\n")
        print(f"{split}: {len(arrays)} clips, {offsets[-1] / SAMPLE_RATE / 60:.1f} min")


if __name__ == "__main__":
    main()
