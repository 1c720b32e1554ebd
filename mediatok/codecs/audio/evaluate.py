"""Rate and quality of an audio codec on held-out speech, one row per split, with classical baselines in the same run.

    files --codec.encode--> .mtk bytes (real kbps from their sizes) --codec.decode--> audio --metrics
    files --c2enc/c2dec 1200, 3200--> audio --metrics        (Debian `codec2`)
    files --opusenc 6 kbps/opusdec--> audio --metrics        (Debian `opus-tools`)

Splits: each immediate sub-folder of the data folder that holds audio (searched recursively) is one split, e.g.
``data/speech16k/test/{fillets-cs,asterisk-en,...}`` from scripts/prepare_speech.py; audio files lying directly in
a folder that also has such sub-folders form one more split, named ``(top level)``. A folder without sub-folders of
audio is one split, as before. With more than one split, every system also gets a ``pooled`` row over all files
(each file weighs by its duration in kbps and speed, equally in the quality means). ``limit`` applies per split.

Baseline tools are found on PATH, else under ``$MEDIATOK_TOOLS/usr/bin`` (default ``data/tools``, where
scripts/prepare_speech.py unpacks the Debian packages with their libraries); a baseline whose tools are missing is
left out of the table.

Metrics: PESQ-WB, PESQ-NB, STOI, mel distance (see mediatok.codecs.audio.metrics), utilisation of each codebook over
the split, and speed as a multiple of real time (encode + decode, this process's threads).
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from mediatok.codecs.audio.io import AUDIO_SUFFIXES, load_audio
from mediatok.codecs.audio.metrics import have_quality_metrics, quality

SR = 16000
POOLED = "pooled"
TOP_LEVEL = "(top level)"


@dataclass
class Row:
    """One system's totals over one split (or the pooled set)."""

    name: str
    split: str = ""
    bits: float = 0.0
    seconds: float = 0.0
    compute: float = 0.0
    files: int = 0
    scores: dict[str, list[float]] = field(default_factory=dict)
    utilization: float = math.nan
    raw_bits: float = math.nan

    def add(self, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self.scores.setdefault(k, []).append(v)

    def add_file(self, bits: float, seconds: float, compute: float, metrics: dict[str, float]) -> None:
        """One file's rate, duration, encode + decode time and quality."""
        self.bits += bits
        self.seconds += seconds
        self.compute += compute
        self.files += 1
        self.add(metrics)

    def mean(self, key: str) -> float:
        values = [v for v in self.scores.get(key, []) if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    def as_dict(self) -> dict[str, float | str]:
        d: dict[str, float | str] = {"system": self.name}
        if self.split:
            d["split"] = self.split
        d["files"] = self.files
        d["minutes"] = self.seconds / 60
        d["kbps"] = self.bits / max(self.seconds, 1e-9) / 1000
        d.update({k: self.mean(k) for k in ("pesq_wb", "pesq_nb", "stoi", "mel")})
        d["utilization"] = self.utilization
        d["x_realtime"] = self.seconds / self.compute if self.compute > 0 else math.nan
        if not math.isnan(self.raw_bits):
            d["raw_kbps"] = self.raw_bits / max(self.seconds, 1e-9) / 1000
        return d


def audio_files(folder: str | Path, limit: int | None = None) -> list[Path]:
    """Sorted audio files under folder; with `limit`, that many evenly spaced through the sorted list."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {folder}")
    return _spaced(files, limit)


def _spaced(files: list[Path], limit: int | None) -> list[Path]:
    if limit and limit < len(files):
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    return files


def splits_of(folder: str | Path, limit: int | None = None) -> dict[str, list[Path]]:
    """Evaluation splits of a folder: {name: sorted files}, one per sub-folder holding audio (see module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {folder} does not exist or is not a folder")
    subs = {d.name: files for d in sorted(folder.iterdir()) if d.is_dir()
            if (files := sorted(p for p in d.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES))}
    if not subs:
        return {folder.resolve().name: audio_files(folder, limit)}
    top = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    splits = {name: _spaced(files, limit) for name, files in subs.items()}
    if top:
        splits[TOP_LEVEL] = _spaced(top, limit)
    return splits


def tools_dir() -> Path:
    """Where unpacked Debian tools live: $MEDIATOK_TOOLS, default data/tools (scripts/prepare_speech.py)."""
    return Path(os.environ.get("MEDIATOK_TOOLS", "data/tools"))


def find_tool(name: str) -> tuple[str, dict[str, str] | None] | None:
    """(executable, environment) of a command-line tool: PATH first, then tools_dir()/usr/bin; None if neither.

    The environment is None for a tool on PATH, else this process's with the unpacked libraries on LD_LIBRARY_PATH.
    """
    if found := shutil.which(name):
        return found, None
    root = tools_dir().resolve()
    exe = root / "usr" / "bin" / name
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        return None
    libs = [str(d) for d in sorted((root / "usr" / "lib").glob("*-linux-gnu*")) + [root / "usr" / "lib"] if d.is_dir()]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [p for p in [env.get("LD_LIBRARY_PATH", "")] if p])
    return str(exe), env


def _tools(*names: str) -> list[tuple[str, dict[str, str] | None]] | None:
    found = [find_tool(n) for n in names]
    return None if any(f is None for f in found) else found  # type: ignore[return-value]


def _run(tool: tuple[str, dict[str, str] | None], *args: str) -> None:
    subprocess.run([tool[0], *args], check=True, capture_output=True, env=tool[1])


def _codec2(mode: int) -> Callable[[np.ndarray, Path], tuple[np.ndarray, int]] | None:
    if (tools := _tools("c2enc", "c2dec")) is None:
        return None
    enc, dec = tools

    def run(x: np.ndarray, tmp: Path) -> tuple[np.ndarray, int]:
        pcm = AF.resample(torch.from_numpy(x), SR, 8000).numpy()
        (tmp / "in.raw").write_bytes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
        _run(enc, str(mode), str(tmp / "in.raw"), str(tmp / "out.c2"))
        _run(dec, str(mode), str(tmp / "out.c2"), str(tmp / "out.raw"))
        y = np.frombuffer((tmp / "out.raw").read_bytes(), dtype="<i2").astype(np.float32) / 32768
        return AF.resample(torch.from_numpy(y), 8000, SR).numpy(), (tmp / "out.c2").stat().st_size * 8

    return run


def opus_baseline(kbps: float) -> Callable[[np.ndarray, Path], tuple[np.ndarray, int]] | None:
    """Opus (opusenc/opusdec) at `kbps` as run(wav, tmp_dir) -> (decoded 16 kHz wav, bits); None without the tools.
    The wavelet eval uses it at the nearest bitrate Opus accepts."""
    if (tools := _tools("opusenc", "opusdec")) is None:
        return None
    enc, dec = tools

    def run(x: np.ndarray, tmp: Path) -> tuple[np.ndarray, int]:
        sf.write(str(tmp / "in.wav"), x, SR, subtype="PCM_16")
        _run(enc, "--quiet", "--bitrate", str(kbps), str(tmp / "in.wav"), str(tmp / "out.opus"))
        _run(dec, "--quiet", "--rate", str(SR), str(tmp / "out.opus"), str(tmp / "out.wav"))
        y, _ = sf.read(str(tmp / "out.wav"), dtype="float32", always_2d=True)
        return y[:, 0], (tmp / "out.opus").stat().st_size * 8

    return run


def baselines(names: Iterable[str] = ("codec2-1200", "codec2-3200", "opus-6k")) -> dict[str, Callable]:
    """The classical codecs whose command-line tools are found (see `find_tool`)."""
    makers = {"codec2-1200": lambda: _codec2(1200), "codec2-3200": lambda: _codec2(3200), "opus-6k": lambda: opus_baseline(6)}
    found = {n: makers[n]() for n in names if n in makers}
    return {n: f for n, f in found.items() if f is not None}


def evaluate(codec, folder: str | Path, *, limit: int | None = None, with_baselines: bool = True,
             progress: Callable[[Iterable], Iterable] | None = None) -> list[dict[str, float | str]]:
    """Evaluate `codec` (a SpeechCodec) and the found baselines on each split of folder (see `splits_of`).

    Rows come grouped by split (ours first, then the baselines), then a pooled group when there are several splits.
    """
    splits = splits_of(folder, limit)
    if not have_quality_metrics():
        print("note: PESQ and STOI need `pip install 'mediatok[bench]'` (pesq, pystoi); reporting mel distance only",
              file=sys.stderr)
    runners = baselines() if with_baselines else {}
    if with_baselines and len(runners) < 3:
        print(f"note: baselines found: {', '.join(runners) or 'none'}; Codec2 and Opus come from Debian's codec2 and "
              f"opus-tools, on PATH or unpacked under {tools_dir()} by scripts/prepare_speech.py", file=sys.stderr)
    ours = f"{codec.name} (ours)"
    groups = list(splits) + ([POOLED] if len(splits) > 1 else [])
    rows = {g: {n: Row(n, g if len(splits) > 1 else "") for n in [ours, *runners]} for g in groups}
    counts = {g: torch.zeros(codec.num_codebooks, codec.codebook_size, dtype=torch.long) for g in groups}
    for g in groups:
        rows[g][ours].raw_bits = 0.0
    raw_bits_per_frame = codec.num_codebooks * math.log2(codec.codebook_size)
    codec.decode(codec.encode(torch.zeros(4 * codec.hop), SR))  # compile the entropy coder before timing
    jobs = [(split, path) for split, files in splits.items() for path in files]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for split, path in progress(jobs) if progress else jobs:
            x = load_audio(path, SR)
            if len(x) < codec.hop:
                continue
            targets = [split] + ([POOLED] if len(splits) > 1 else [])
            seconds = len(x) / SR
            t0 = time.perf_counter()
            blob = codec.encode(torch.from_numpy(x), SR)
            y, _ = codec.decode(blob)
            compute = time.perf_counter() - t0
            tokens = codec.tokenize(torch.from_numpy(x), SR)
            used = torch.stack([torch.bincount(t, minlength=codec.codebook_size) for t in tokens])
            metrics = quality(x, y.numpy(), SR)
            for g in targets:
                rows[g][ours].add_file(len(blob) * 8, seconds, compute, metrics)
                rows[g][ours].raw_bits += tokens.shape[1] * raw_bits_per_frame
                counts[g] += used
            for name, run in runners.items():
                t0 = time.perf_counter()
                yb, bits = run(x, tmp)
                compute = time.perf_counter() - t0
                metrics = quality(x, yb, SR)
                for g in targets:
                    rows[g][name].add_file(bits, seconds, compute, metrics)
    for g in groups:
        rows[g][ours].utilization = float((counts[g] > 0).double().mean())
    return [r.as_dict() for g in groups for r in rows[g].values()]


def format_table(rows: list[dict[str, float | str]]) -> str:
    """A Markdown table of evaluation rows; with splits, a split and a minutes column lead."""
    split_cols = [("split", "split"), ("minutes", "min")] if any("split" in r for r in rows) else []
    cols = split_cols + [("system", "system"), ("kbps", "kbps"), ("pesq_wb", "PESQ-WB"), ("pesq_nb", "PESQ-NB"), ("stoi", "STOI"),
            ("mel", "mel dist"), ("utilization", "code use"), ("x_realtime", "x real time")]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for key, _ in cols:
            v = r.get(key, math.nan)
            if isinstance(v, str):
                cells.append(v)
            elif math.isnan(v):
                cells.append("-")
            elif key == "utilization":
                cells.append(f"{100 * v:.1f} %")
            elif key == "x_realtime":
                cells.append(f"{v:.0f}")
            elif key == "minutes":
                cells.append(f"{v:.1f}")
            else:
                cells.append(f"{v:.3f}" if key != "kbps" else f"{v:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
