"""`python -m mediatok.tokenize DATA -o OUT --model NAME` (the same as `mediatok tokenize`)."""
from __future__ import annotations

import sys

from mediatok.tokenize.command import main

if __name__ == "__main__":
    sys.exit(main())
