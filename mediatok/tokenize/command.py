"""`mediatok tokenize DATA -o OUT --model NAME`: the run behind the CLI verb (arguments live in `mediatok.cli`)."""
from __future__ import annotations

import argparse
import logging
import sys

from mediatok.tokenize.pipeline import is_rank_zero, tokenize_dataset


def run(args: argparse.Namespace) -> int:
    """Tokenize as `args` say, print a summary (failed items listed); exit status 0 unless nothing succeeded."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    s = tokenize_dataset(
        args.data, args.out, args.model, pattern=args.pattern, shard_size=args.shard_size, workers=args.workers,
        devices=args.devices, accelerator=args.accelerator, num_nodes=args.num_nodes, strategy=args.strategy,
        progress=not args.no_progress,
    )
    if not is_rank_zero():
        return 0
    rate = f", {s.duration / s.seconds:.0f}x real time" if s.duration and s.shards_written else ""
    print(f"{s.num_items} items, {s.num_tokens} tokens, {s.duration / 3600:.3f} h -> {s.out}/manifest.json "
          f"({s.shards_written} shards written, {s.shards_skipped} already done, {s.seconds:.1f} s{rate})")
    if s.failures:
        print(f"{s.num_failed} items failed and were skipped:")
        for f in s.failures[:20]:
            print(f"  {f['path']}: {f['error']}")
        if len(s.failures) > 20:
            print(f"  ... and {len(s.failures) - 20} more, listed in {s.out}/manifest.json")
    return 0 if s.num_items else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m mediatok.tokenize ARGS` == `mediatok tokenize ARGS`."""
    from mediatok.cli import main as cli_main

    return cli_main(["tokenize", *(sys.argv[1:] if argv is None else argv)])
