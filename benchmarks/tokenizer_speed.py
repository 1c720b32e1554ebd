"""Dataset tokenizing speed: items/s, tokens/s and x real time on this machine's CPU, per shipped model.

    python benchmarks/tokenizer_speed.py [--data data/speech16k/test_wav] [--models speech-16k] [--limit N] [--ddp]
                                         [--accelerator gpu]   # the codec on CUDA (worker rows only)

Data: the held-out Czech/Dutch speech clips written by scripts/prepare_speech.py (16 kHz PCM-16 wav), real
files read from disk. Each row is one end-to-end `tokenize_dataset` run into a fresh folder, wall clock
including model loading, worker start-up, file reading, resampling and writing shards + manifest, with one
intra-op thread per process. "cores used" is CPU seconds (this process + its workers) per wall second and
"x real time per CPU-s" divides the audio by those CPU seconds: on a shared machine (Linux autogroup gives each
terminal session one fair share of the cores) wall time is set by the other load, the CPU cost is not.
After the rows the script checks that every run wrote byte-identical files.
A model that is not shipped yet (no pretrained/<name>/) is measured with its training config's architecture
and random weights, marked "untrained": speed does not depend on the weights.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

import mediatok
from mediatok.tokenize import tokenize_dataset

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"speech-16k": ROOT / "configs" / "audio" / "speech-16k-cpu.yaml"}


def load_model(name: str) -> tuple[object, str]:
    """The shipped model, or its architecture from the training config with random weights."""
    if name in mediatok.list_models():
        return name, name
    import yaml

    from mediatok.codecs.audio import AudioCodec, AudioCodecConfig, SpeechCodec

    cfg = yaml.safe_load(CONFIGS[name].read_text())["model"]["codec"]
    torch.manual_seed(0)
    return SpeechCodec(AudioCodec(AudioCodecConfig.from_dict(cfg)), name=name), f"{name} (untrained)"


def tree_digest(root: Path) -> str:
    """One sha256 over every file's name and bytes: equal digests mean byte-identical outputs."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (the worker processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT / "data" / "speech16k" / "test_wav"))
    p.add_argument("--models", nargs="+", default=None, help="default: speech-16k and every shipped model")
    p.add_argument("--limit", type=int, default=None, help="use the first N clips (sorted by name)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--ddp", action="store_true", help="add a 2-process Lightning DDP row (CPU, ddp_fork)")
    p.add_argument("--shard-size", type=int, default=64)
    p.add_argument("--accelerator", default="cpu", help="cpu, or gpu to run the codec on CUDA (rows are then GPU rows)")
    args = p.parse_args()

    data = Path(args.data)
    if not data.is_dir():
        raise SystemExit(f"{data} not found: run `python scripts/prepare_speech.py` first (or pass --data)")
    models = args.models or sorted(set(["speech-16k", *mediatok.list_models()]))
    with tempfile.TemporaryDirectory() as tmp:
        src = data
        if args.limit:
            src = Path(tmp) / "clips"
            src.mkdir()
            for f in sorted(data.glob("*.wav"))[: args.limit]:
                os.symlink(f.resolve(), src / f.name)
        print(f"data: {data} ({len(list(src.glob('*.wav')))} clips); CPU cores: {os.cpu_count()}; "
              f"load average at start: {os.getloadavg()[0]:.1f}")
        print("| model | run | items | audio (s) | tokens | wall (s) | items/s | tokens/s | x real time | CPU (s) "
              "| cores used | x real time per CPU-s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name in models:
            model, label = load_model(name)
            runs = [(f"{w} worker{'s' if w > 1 else ''}", dict(workers=w, accelerator=args.accelerator))
                    for w in args.workers]
            if args.ddp:
                runs.append(("2-process DDP", dict(devices=2, accelerator="cpu", strategy="ddp_fork")))
            digests = {}
            for run, kw in runs:
                out = Path(tmp) / f"{name}-{run.replace(' ', '_')}"
                t0, c0 = time.perf_counter(), cpu_seconds()
                s = tokenize_dataset(src, out, model, shard_size=args.shard_size, progress=False, **kw)
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                digests[run] = tree_digest(out)
                assert s.unit == "s", f"{name} measures its media in {s.unit!r}, not seconds of audio"
                print(f"| {label} | {run} | {s.num_items} | {s.amount:.1f} | {s.num_tokens} | {wall:.2f} | "
                      f"{s.num_items / wall:.1f} | {s.num_tokens / wall:.0f} | {s.amount / wall:.0f} | {cpu:.1f} | "
                      f"{cpu / wall:.2f} | {s.amount / cpu:.0f} |", flush=True)
            same = len(set(digests.values())) == 1
            print(f"\n{label}: outputs byte-identical across {', '.join(digests)}: {'yes' if same else 'NO'} "
                  f"(sha256 {next(iter(digests.values()))})\n")


if __name__ == "__main__":
    main()
