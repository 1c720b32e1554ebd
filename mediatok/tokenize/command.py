"""`mediatok tokenize DATA -o OUT --model NAME`: the verb's arguments and its run (`mediatok.cli` mounts them)."""
from __future__ import annotations

import argparse
import logging
import sys

from mediatok.tokenize.pipeline import is_rank_zero, tokenize_dataset


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `tokenize` verb's arguments."""
    p.add_argument("data", help="a folder (searched recursively), a quoted glob, or a .csv/.jsonl manifest "
                                "with a 'path' column (optional 'id', 'text'; other columns become metadata)")
    p.add_argument("-o", "--out", required=True, help="output folder: shard-*.npy, shard-*.json, manifest.json")
    p.add_argument("--model", required=True, help="model name (see `mediatok models`) or checkpoint folder")
    p.add_argument("--pattern", choices=("flat", "delay", "parallel"), default="flat",
                   help="TokenDataset's default flattening (shards always hold raw codes)")
    p.add_argument("--workers", type=int, default=1, help="processes on this machine, each loading the model once")
    p.add_argument("--shard-size", type=int, default=256, help="items per shard (part of the output's identity)")
    p.add_argument("--devices", type=int, default=None,
                   help="run through Lightning Trainer.predict on this many devices per node (DDP) instead")
    p.add_argument("--num-nodes", type=int, default=1, help="nodes for the Lightning run")
    p.add_argument("--accelerator", default="auto",
                   help="auto, cpu or gpu. Without --devices: gpu runs the codec on CUDA (an error if there is none), "
                        "auto and cpu on the CPU; with --devices: Lightning's accelerator")
    p.add_argument("--strategy", default=None, help="Lightning strategy (default: auto, i.e. ddp for several devices)")
    p.add_argument("--codebook-size", type=int, default=None,
                   help="image models with nested codebooks: tokens from the nested codebook of this size (the "
                        "manifest's vocabulary); `mediatok models` lists the model, its card the sizes")
    p.add_argument("--downscale", type=int, default=None,
                   help="image tokenizers: tokenize each image shrunk 2 or 4 times (one token per 16 x 16 pixels "
                        "for an f8 model at 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _amount(amount: float, unit: str | None) -> str:
    """How much media, as people say it: hours of audio, otherwise the family's own unit."""
    if unit == "s":
        return f"{amount / 3600:.3f} h"
    return f"{amount:.4g} {unit}" if unit else "no media"


def _rate(amount: float, unit: str | None, seconds: float) -> str:
    if not amount or not unit:
        return ""
    per_second = amount / max(seconds, 1e-9)
    return f", {per_second:.0f}x real time" if unit == "s" else f", {per_second:.4g} {unit}/s"


def run(args: argparse.Namespace) -> int:
    """Tokenize as `args` say, print a summary (failed items listed); exit status 0 unless nothing succeeded."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = {k: v for k, v in (("codebook_size", args.codebook_size), ("downscale", args.downscale)) if v is not None}
    s = tokenize_dataset(
        args.data, args.out, args.model, pattern=args.pattern, shard_size=args.shard_size, workers=args.workers,
        devices=args.devices, accelerator=args.accelerator, num_nodes=args.num_nodes, strategy=args.strategy,
        options=options, progress=not args.no_progress,
    )
    if not is_rank_zero():
        return 0
    print(f"{s.num_items} items, {s.num_tokens} tokens, {_amount(s.amount, s.unit)} -> {s.out}/manifest.json "
          f"({s.shards_written} shards written, {s.shards_skipped} already done, {s.seconds:.1f} s"
          f"{_rate(s.amount, s.unit, s.seconds) if s.shards_written else ''})")
    if s.failures:
        print(f"{s.num_failed} items failed and were skipped:")
        for f in s.failures[:20]:
            print(f"  {f['path']}: {f['error']}")
        if len(s.failures) > 20:
            print(f"  ... and {len(s.failures) - 20} more, listed in {s.out}/manifest.json")
    return 0 if s.num_items else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m mediatok.tokenize ARGS` == `mediatok tokenize ARGS`."""
    p = argparse.ArgumentParser(prog="python -m mediatok.tokenize", description="Dataset -> token shards.")
    add_arguments(p)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, TypeError, KeyError) as e:
        print(f"mediatok tokenize: error: {e}", file=sys.stderr)
        return 2
