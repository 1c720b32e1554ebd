"""Run by test_command.py: `mediatok tokenize` with a 0.15 s pause per item, so that a test can kill it midway."""
from __future__ import annotations

import sys
import time

from mediatok.tokenize import command
from mediatok.tokenize.modalities import AudioLoader

_tokenize = AudioLoader.tokenize


def _slow_tokenize(self, codec, x, info):
    time.sleep(0.15)
    return _tokenize(self, codec, x, info)


if __name__ == "__main__":
    AudioLoader.tokenize = _slow_tokenize
    sys.exit(command.main(sys.argv[1:]))
