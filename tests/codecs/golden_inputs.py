"""The inputs behind tests/expected/<model>.json: a few encodes whose bytes must never change silently.

One file per shipped speech model: speech-16k (v2, short id s16b) and speech-16k-v1 (short id s16, kept shipped
so that its files still decode). Regenerate on purpose only (a new model or a new format):
`python tests/codecs/golden_inputs.py --model speech-16k --write`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_MODELS = ("speech-16k", "speech-16k-v1")


def expected_path(model: str) -> Path:
    """Where the golden digests of `model` are kept."""
    return ROOT / "tests" / "expected" / f"{model}.json"


def golden_cases() -> dict[str, tuple]:
    """name -> (input, kwargs) for codec.encode."""
    from audio_helpers import speechlike

    x = speechlike(2.3, seed=7)
    stereo44 = torch.stack([speechlike(1.1, 44100, seed=8), 0.5 * speechlike(1.1, 44100, seed=9)])
    pcm = (speechlike(0.9, seed=10).numpy() * 20000).astype(np.int16)
    return {
        "example-file": (ROOT / "examples" / "speech.wav", {}),
        "mono-1d-16k": (x, {"sample_rate": 16000}),
        "stereo-44k1": (stereo44, {"sample_rate": 44100}),
        "int16-mono": (pcm, {"sample_rate": 16000}),
    }


def digests(codec) -> dict[str, str]:
    """sha256 of each golden case's bitstream (one torch thread: the tokens must not depend on threading)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {name: hashlib.sha256(codec.encode(x, **kw)).hexdigest() for name, (x, kw) in golden_cases().items()}
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    import sys
    import warnings

    sys.path.insert(0, str(Path(__file__).parent))
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="speech-16k", choices=GOLDEN_MODELS)
    p.add_argument("--write", action="store_true", help="rewrite tests/expected/<model>.json")
    args = p.parse_args()
    import mediatok

    warnings.simplefilter("ignore")
    got = digests(mediatok.load(args.model))
    print(json.dumps(got, indent=2))
    if args.write:
        expected_path(args.model).write_text(json.dumps(got, indent=2) + "\n")
