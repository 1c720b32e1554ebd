"""Every shipped model's decoder survives hostile header fields: BitstreamError or a decode, fast and small."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mediatok.codecs import pretrained_root

HERE = Path(__file__).parent
SHIPPED = sorted(p.parent.name for p in pretrained_root().glob("*/config.json"))


@pytest.mark.slow
@pytest.mark.parametrize("model", SHIPPED)
def test_header_fuzz_only_bitstream_errors_within_memory_and_time(model):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(HERE / "fuzz_headers.py"), model, "--memory-mb", "1024"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    print(model, {k: v for k, v in counts.items() if k != "failures"})
    assert counts["failures"] == []
    assert counts["rejected"] > counts["files"] // 2  # most hostile headers are refused, not decoded
    # the done-when of issue 10: each file within a second (CPU time of the one-thread decoder, so that a loaded
    # machine does not make it flaky; the wall-clock maximum is printed above)
    assert counts["max_cpu_seconds"] < 1.0, counts
