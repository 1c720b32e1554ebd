"""Run by test_command.py: `mediatok tokenize` with a 0.15 s pause per item, so that a test can kill it midway."""
from __future__ import annotations

import sys
import time

from mediatok.tokenize import command, jobs

_tokenize_item = jobs.tokenize_item


def _slow_tokenize_item(item, codec, io, options=None):
    time.sleep(0.15)
    return _tokenize_item(item, codec, io, options)


if __name__ == "__main__":
    jobs.tokenize_item = _slow_tokenize_item
    sys.exit(command.main(sys.argv[1:]))
