"""The tokenize command: a run killed midway (SIGKILL) resumes to the same bytes; the summary lists failures."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mediatok.tokenize.command import main


def test_killed_run_resumes_to_the_same_output(tmp_path: Path, codec_dir: Path, speech_dir: Path, tree_bytes, capsys):
    args = [str(speech_dir), "--model", str(codec_dir), "--shard-size", "1", "--no-progress"]
    assert main([*args, "-o", str(tmp_path / "reference")]) == 0
    printed = capsys.readouterr().out
    assert "10 items" in printed and "1 items failed" in printed and "spk-a/broken.wav" in printed

    out = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("slow_run.py")), *args, "-o", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("shard-*.json"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        output = proc.communicate(timeout=60)[0].decode()
    done = len(list(out.glob("shard-*.json")))
    assert 3 <= done < 11 and not (out / "manifest.json").exists(), (done, output)

    assert main([*args, "-o", str(out)]) == 0
    assert f"{11 - done} shards written, {done} already done" in capsys.readouterr().out
    assert tree_bytes(out) == tree_bytes(tmp_path / "reference")
