"""Data recipe for the shipped speech codecs: voice acting from Fish Fillets NG (Czech, Dutch) and the Asterisk
telephony prompts (English, Spanish, French, Italian, Russian), with held-out test splits per source and language.

Sources (Debian packages; `apt-get download` + `dpkg -x`, no install and no root needed; never commit the audio):
- ``fillets-ng-data-cs``, ``fillets-ng-data-nl``: ``sound/<level>/{cs,nl}/*.ogg``, a cast of voice actors,
  22.05/44.1 kHz. GPL-2+ game data: fine to train on.
- ``asterisk-core-sounds-{en,es,fr,it,ru}-g722``: ``sounds/<voice>/**/*.g722``, 16 kHz G.722 at 64 kbit/s, one
  professional speaker per language: Allison Smith (en_US and es_MX, the same voice), June Wallack (fr_CA),
  Carlo Flora (it_IT, male), Maxim Topal / ivrvoice.ru (ru_RU). en, es, fr: CC-BY-SA-3.0; it, ru: CC-BY-3.0 (each
  package's copyright file). Decoded with the public-domain PyPI ``G722`` (``pip install 'mediatok[data]'``);
  the ``silence/`` prompts are left out.
- ``codec2`` and ``opus-tools`` (+ their libraries), unpacked into ``data/tools`` unless ``c2enc`` and ``opusenc``
  are on PATH: the classical baselines of ``mediatok eval`` (it looks on PATH, then in ``$MEDIATOK_TOOLS``, by
  default ``data/tools``).

Run from the repository root (about 5 minutes on one core; needs the `data` extra)::

    python scripts/prepare_speech.py            # -> data/speech16k/, data/tools/

Outputs, all 16 kHz mono:

    data/speech16k/<split>.npy            v1 (speech-16k): Fish Fillets cs + nl only, source levels, split by level
    data/speech16k/<split>_offsets.npy        int64 (N + 1,), clip i is audio[offsets[i]:offsets[i + 1]]
    data/speech16k/<split>.txt                the source path of each clip, in order
    data/speech16k/<split>_wav/*.wav          PCM-16 copies of the held-out clips (val and test only)
    data/speech16k/wide/{train,val}.npy   v2 training set (+ _offsets.npy, .txt): v1's train/val clips and the
                                          Asterisk train/val prompts, each normalised to -23 LUFS (BS.1770)
    data/speech16k/test/<source>-<lang>/*.wav   held-out evaluation splits, one per source and language, at
                                          their source levels: `mediatok eval --model NAME data/speech16k/test`
                                          reports one row per folder and a pooled row

The v1 files are bit-identical to those speech-16k was trained on (configs/audio/speech-16k-cpu.yaml); a v2
config points its data module at ``data/speech16k/wide`` (and may add ``augment``, see AudioAugment).

Fixed splits:
- Fish Fillets, by game level so that held-out clips are held-out sentences: sort the 81 level folders by name;
  level ``i`` (0-based) is ``test`` if ``i % 10 == 3``, ``val`` if ``i % 20 == 7``, else ``train``. Both
  languages alike. Test splits ``fillets-cs`` / ``fillets-nl`` are the test levels' clips: unseen sentences, but
  voices of a cast that training hears.
- Asterisk: Allison Smith's two languages, English and Spanish, are held out whole (``asterisk-en``,
  ``asterisk-es``: a speaker and two languages training never hears; English is what users try first). For fr,
  it and ru, a prompt (its path under the voice folder, without suffix, e.g. ``digits/7``) is ``test`` if
  ``crc32(prompt) % 10 == 3``, ``val`` if ``crc32(prompt) % 20 == 7``, else ``train``: the same prompts are held
  out in every language (``asterisk-fr`` etc.: unseen sentences of a speaker training hears).
- Clips under 0.1 s (clicks) are dropped everywhere; test splits keep clips of at least 1 s, since PESQ and STOI
  are unreliable on shorter ones (v1's test_wav keeps its 0.1 s rule).

espeak-ng synthetic speech, a possible supplement, is not used: real speech from six voices suffices for now.
"""
from __future__ import annotations

import argparse
import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from debian import unpack_packages  # scripts/debian.py, beside this script
from mediatok.train.audio.augment import normalize_loudness

PACKAGES = ("fillets-ng-data-cs", "fillets-ng-data-nl")
LANGUAGES = ("cs", "nl")
SOUND_DIR = "usr/share/games/fillets-ng/sound"
SAMPLE_RATE = 16000

ASTERISK_LANGUAGES = ("en", "es", "fr", "it", "ru")
ASTERISK_DIR = "usr/share/asterisk/sounds"
ASTERISK_HELD_OUT = ("en", "es")  # one speaker (Allison Smith) speaks both: hold out the speaker, not only a language
TOOL_PACKAGES = ("codec2", "libcodec2-1.0", "opus-tools", "libopus0", "libopusenc0", "libopusfile0", "libogg0",
                 "libflac12")
MIN_SECONDS = 0.1
TEST_MIN_SECONDS = 1.0
TARGET_LUFS = -23.0


def split_of(level_index: int) -> str:
    """The fixed split of the ``level_index``-th level folder (sorted by name)."""
    if level_index % 10 == 3:
        return "test"
    if level_index % 20 == 7:
        return "val"
    return "train"


def asterisk_split_of(lang: str, prompt: str) -> str:
    """The fixed split of an Asterisk prompt (``digits/7``: its path under the voice folder, no suffix)."""
    if lang in ASTERISK_HELD_OUT:
        return "test"
    h = zlib.crc32(prompt.encode())
    if h % 10 == 3:
        return "test"
    if h % 20 == 7:
        return "val"
    return "train"


def extract(raw_dir: Path) -> Path:
    """Download and unpack the two Fish Fillets packages into ``raw_dir``; return the sound folder."""
    sound = raw_dir / SOUND_DIR
    if sound.is_dir() and any(sound.glob("*/cs/*.ogg")) and any(sound.glob("*/nl/*.ogg")):
        return sound
    unpack_packages(PACKAGES, raw_dir)
    return sound


def extract_asterisk(raw_dir: Path) -> dict[str, Path]:
    """Download and unpack the five Asterisk G.722 packages into ``raw_dir``; return each language's voice folder."""
    sounds = raw_dir / ASTERISK_DIR

    def voices() -> dict[str, Path]:
        found = sorted(sounds.glob("*_*_*")) if sounds.is_dir() else []
        return {lang: v for lang in ASTERISK_LANGUAGES for v in found if v.name.startswith(f"{lang}_")}

    missing = [lang for lang in ASTERISK_LANGUAGES if lang not in voices()]
    if missing:
        unpack_packages([f"asterisk-core-sounds-{lang}-g722" for lang in missing], raw_dir)
    return voices()


def fetch_tools(tools_dir: Path) -> None:
    """Unpack Codec2 and Opus command-line tools into ``tools_dir`` unless they are on PATH already."""
    if all(shutil.which(t) for t in ("c2enc", "c2dec", "opusenc", "opusdec")):
        return
    if (tools_dir / "usr/bin/c2enc").exists() and (tools_dir / "usr/bin/opusenc").exists():
        return
    unpack_packages(TOOL_PACKAGES, tools_dir)


def load_clip(path: Path) -> np.ndarray:
    """Decode one .ogg to 16 kHz mono float32."""
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    x = x.mean(axis=1)
    if sr != SAMPLE_RATE and len(x):
        x = AF.resample(torch.from_numpy(x), sr, SAMPLE_RATE).numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def load_g722(path: Path) -> np.ndarray:
    """Decode one 64 kbit/s G.722 file (headerless, as Asterisk stores them) to 16 kHz mono float32."""
    try:
        from G722 import G722
    except ImportError as e:
        raise ImportError("decoding the Asterisk prompts needs the G722 package: pip install 'mediatok[data]'") from e
    pcm = np.asarray(G722(SAMPLE_RATE, 64000).decode(path.read_bytes()), dtype=np.int16)
    return pcm.astype(np.float32) / 32768


def write_arrays(out: Path, split: str, arrays: list[np.ndarray], names: list[str]) -> float:
    """Write <split>.npy, <split>_offsets.npy and <split>.txt; return the minutes written."""
    offsets = np.cumsum([0] + [len(a) for a in arrays]).astype(np.int64)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / f"{split}.npy", np.concatenate(arrays))
    np.save(out / f"{split}_offsets.npy", offsets)
    (out / f"{split}.txt").write_text("\n".join(names) + "\n")
    return float(offsets[-1] / SAMPLE_RATE / 60)


def write_wav(folder: Path, name: str, x: np.ndarray) -> None:
    """One PCM-16 wav named after a clip's source path."""
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(str(folder / (name.replace("/", "_").rsplit(".", 1)[0] + ".wav")), x, SAMPLE_RATE, subtype="PCM_16")


def main(argv: list[str] | None = None) -> None:
    """Build data/speech16k (v1 arrays, v2 wide arrays, held-out test splits) and data/tools."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=Path("data/raw"), help="where the packages are unpacked")
    parser.add_argument("--out", type=Path, default=Path("data/speech16k"), help="output folder")
    parser.add_argument("--tools", type=Path, default=Path("data/tools"),
                        help="where Codec2 and Opus are unpacked for `mediatok eval` (skipped when on PATH)")
    parser.add_argument("--v1-only", action="store_true", help="only the Fish Fillets arrays speech-16k was trained on")
    args = parser.parse_args(argv)
    summary: dict[str, dict[str, float]] = {}

    def count(group: str, split: str, x: np.ndarray) -> None:
        entry = summary.setdefault(group, {})
        entry[split] = entry.get(split, 0.0) + len(x) / SAMPLE_RATE / 60

    # v1: unchanged since speech-16k, so that its files stay bit-identical
    sound = extract(args.raw)
    levels = sorted(p.name for p in sound.iterdir() if p.is_dir())
    clips: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for i, level in enumerate(levels):
        for lang in LANGUAGES:
            clips[split_of(i)].extend(sorted((sound / level / lang).glob("*.ogg")))
    args.out.mkdir(parents=True, exist_ok=True)
    wide: dict[str, tuple[list[np.ndarray], list[str]]] = {"train": ([], []), "val": ([], [])}
    for split, paths in clips.items():
        arrays, names = [], []
        for p in paths:
            x = load_clip(p)
            if len(x) < SAMPLE_RATE * MIN_SECONDS:  # a few clips are clicks; under 0.1 s carries no speech
                continue
            arrays.append(x)
            names.append(str(p.relative_to(sound)))
            lang = p.parent.name
            if split != "train":
                write_wav(args.out / f"{split}_wav", names[-1], x)
            if split == "test" and len(x) >= SAMPLE_RATE * TEST_MIN_SECONDS and not args.v1_only:
                write_wav(args.out / "test" / f"fillets-{lang}", names[-1], x)
                count(f"fillets-{lang}", split, x)
            elif split != "test":
                count(f"fillets-{lang}", split, x)
            if split in wide:
                wide[split][0].append(normalize_loudness(x, SAMPLE_RATE, TARGET_LUFS))
                wide[split][1].append(f"fillets-ng/{names[-1]}")
        minutes = write_arrays(args.out, split, arrays, names)
        print(f"v1 {split}: {len(arrays)} clips, {minutes:.1f} min")
    del arrays
    if args.v1_only:
        return

    # v2: the Asterisk prompts, and the loudness-normalised wide training set
    for lang, voice in extract_asterisk(args.raw).items():
        for p in sorted(voice.rglob("*.g722")):
            prompt = p.relative_to(voice).with_suffix("").as_posix()
            if prompt.startswith("silence/"):
                continue
            x = load_g722(p)
            if len(x) < SAMPLE_RATE * MIN_SECONDS:
                continue
            split = asterisk_split_of(lang, prompt)
            name = f"{voice.name}/{prompt}.g722"
            if split == "test":
                if len(x) >= SAMPLE_RATE * TEST_MIN_SECONDS:
                    write_wav(args.out / "test" / f"asterisk-{lang}", name, x)
                    count(f"asterisk-{lang}", split, x)
                continue
            count(f"asterisk-{lang}", split, x)
            wide[split][0].append(normalize_loudness(x, SAMPLE_RATE, TARGET_LUFS))
            wide[split][1].append(f"asterisk/{name}")
    for split, (arrays, names) in wide.items():
        minutes = write_arrays(args.out / "wide", split, arrays, names)
        print(f"wide {split}: {len(arrays)} clips, {minutes:.1f} min")
    for group in sorted(summary):
        summary[group] = {s: round(m, 2) for s, m in summary[group].items()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("minutes per source and split (test: the clips of at least 1 s in test/<source>-<lang>):")
    for group, splits in sorted(summary.items()):
        print(f"  {group}: " + ", ".join(f"{s} {m:.1f}" for s, m in sorted(splits.items())))
    fetch_tools(args.tools)


if __name__ == "__main__":
    main()
