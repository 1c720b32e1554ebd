"""Encode/decode speed of a shipped codec at 1 and 2 torch threads, on an idle machine and beside a busy core.

    python benchmarks/codec_threads.py [--model speech-16k] [--seconds 7] [--repeat 5]

Why: torch's intra-op pool spins its threads while it waits for work. When another process keeps one of the
two cores busy, a two-thread encode of a small model waits on a thread that is not scheduled and can be tens
of times slower than a one-thread one. This script measures the four cases (threads x load) for a clip of
`--seconds` seconds (the bundled example, repeated) and prints one Markdown row per case: median wall time of
encode and decode, and x real time of the pair. The competing load is a second Python process spinning on one
core for the duration of the measurement (started before and stopped after each case).
The codec's own `num_threads` setting (config.json) is bypassed here: each case sets the threads it measures.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
import warnings
from pathlib import Path

import torch

import mediatok
from mediatok.codecs.audio import load_audio

ROOT = Path(__file__).resolve().parents[1]


def _spin(stop) -> None:  # one busy core
    x = 0
    while not stop.is_set():
        for _ in range(10_000):
            x += 1


def measure(codec, wav: torch.Tensor, sr: int, threads: int, busy: bool, repeat: int) -> tuple[float, float]:
    """Median (encode s, decode s) over `repeat` runs with `threads` torch threads, optionally beside a busy core."""
    codec.num_threads = None  # this benchmark sets the threads itself
    stop = mp.Event()
    spinner = mp.Process(target=_spin, args=(stop,), daemon=True) if busy else None
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if spinner is not None:
            spinner.start()
            time.sleep(0.5)
        enc, dec = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            blob = codec.encode(wav, sr)
            t1 = time.perf_counter()
            codec.decode(blob)
            enc.append(t1 - t0)
            dec.append(time.perf_counter() - t1)
        return statistics.median(enc), statistics.median(dec)
    finally:
        torch.set_num_threads(saved)
        stop.set()
        if spinner is not None:
            spinner.join()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="speech-16k")
    p.add_argument("--seconds", type=float, default=7.0, help="clip length (the example clip, repeated or cut)")
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    warnings.simplefilter("ignore")
    codec = mediatok.load(a.model)
    sr = codec.sample_rate
    x = torch.from_numpy(load_audio(ROOT / "examples" / "speech.wav", sr))
    n = int(a.seconds * sr)
    wav = x.repeat(-(-n // len(x)))[:n]
    codec.decode(codec.encode(wav[: sr], sr))  # compile the entropy coder
    print(f"{a.model}: {a.seconds:g} s clip, median of {a.repeat}; default num_threads in config.json: "
          f"{mediatok.load(a.model).num_threads}")
    print("| threads | other load | encode s | decode s | x real time (enc + dec) |")
    print("|---|---|---|---|---|")
    for busy in (False, True):
        for threads in (1, 2):
            enc, dec = measure(codec, wav, sr, threads, busy, a.repeat)
            load = "one core busy" if busy else "idle"
            print(f"| {threads} | {load} | {enc:.3f} | {dec:.3f} | {a.seconds / (enc + dec):.0f} |", flush=True)


if __name__ == "__main__":
    main()
