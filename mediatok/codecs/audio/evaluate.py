"""Rate and quality of an audio codec on a folder of speech, with classical baselines in the same run.

    files --codec.encode--> .mtk bytes (real kbps from their sizes) --codec.decode--> audio --metrics
    files --c2enc/c2dec 1200, 3200--> audio --metrics        (Debian `codec2`, when installed)
    files --opusenc 6 kbps/opusdec--> audio --metrics        (Debian `opus-tools`, when installed)

Metrics: PESQ-WB, PESQ-NB, STOI, mel distance (see mediatok.codecs.audio.metrics), utilisation of each codebook over
the whole set, and speed as a multiple of real time (encode + decode, this process's threads).
"""
from __future__ import annotations

import math
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


@dataclass
class Row:
    """One system's totals over the evaluation set."""

    name: str
    bits: float = 0.0
    seconds: float = 0.0
    compute: float = 0.0
    scores: dict[str, list[float]] = field(default_factory=dict)
    utilization: float = math.nan
    raw_bits: float = math.nan

    def add(self, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self.scores.setdefault(k, []).append(v)

    def mean(self, key: str) -> float:
        values = [v for v in self.scores.get(key, []) if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    def as_dict(self) -> dict[str, float | str]:
        d: dict[str, float | str] = {"system": self.name, "kbps": self.bits / max(self.seconds, 1e-9) / 1000}
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
    if limit and limit < len(files):
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    return files


def _codec2(mode: int) -> Callable[[np.ndarray, Path], tuple[np.ndarray, int]] | None:
    if not (shutil.which("c2enc") and shutil.which("c2dec")):
        return None

    def run(x: np.ndarray, tmp: Path) -> tuple[np.ndarray, int]:
        pcm = AF.resample(torch.from_numpy(x), SR, 8000).numpy()
        (tmp / "in.raw").write_bytes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
        subprocess.run(["c2enc", str(mode), str(tmp / "in.raw"), str(tmp / "out.c2")], check=True, capture_output=True)
        subprocess.run(["c2dec", str(mode), str(tmp / "out.c2"), str(tmp / "out.raw")], check=True, capture_output=True)
        y = np.frombuffer((tmp / "out.raw").read_bytes(), dtype="<i2").astype(np.float32) / 32768
        return AF.resample(torch.from_numpy(y), 8000, SR).numpy(), (tmp / "out.c2").stat().st_size * 8

    return run


def _opus(kbps: float) -> Callable[[np.ndarray, Path], tuple[np.ndarray, int]] | None:
    if not (shutil.which("opusenc") and shutil.which("opusdec")):
        return None

    def run(x: np.ndarray, tmp: Path) -> tuple[np.ndarray, int]:
        sf.write(str(tmp / "in.wav"), x, SR, subtype="PCM_16")
        subprocess.run(["opusenc", "--quiet", "--bitrate", str(kbps), str(tmp / "in.wav"), str(tmp / "out.opus")], check=True, capture_output=True)
        subprocess.run(["opusdec", "--quiet", "--rate", str(SR), str(tmp / "out.opus"), str(tmp / "out.wav")], check=True, capture_output=True)
        y, _ = sf.read(str(tmp / "out.wav"), dtype="float32", always_2d=True)
        return y[:, 0], (tmp / "out.opus").stat().st_size * 8

    return run


def baselines(names: Iterable[str] = ("codec2-1200", "codec2-3200", "opus-6k")) -> dict[str, Callable]:
    """The classical codecs whose command-line tools are installed."""
    makers = {"codec2-1200": lambda: _codec2(1200), "codec2-3200": lambda: _codec2(3200), "opus-6k": lambda: _opus(6)}
    found = {n: makers[n]() for n in names if n in makers}
    return {n: f for n, f in found.items() if f is not None}


def evaluate(codec, folder: str | Path, *, limit: int | None = None, with_baselines: bool = True,
             progress: Callable[[Iterable], Iterable] | None = None) -> list[dict[str, float | str]]:
    """Evaluate `codec` (a SpeechCodec) and the installed baselines on the audio files under folder."""
    files = audio_files(folder, limit)
    if not have_quality_metrics():
        print("note: PESQ and STOI need `pip install 'mediatok[bench]'` (pesq, pystoi); reporting mel distance only",
              file=sys.stderr)
    row = Row(f"{codec.name} (ours)")
    others = {n: Row(n) for n in (baselines() if with_baselines else {})}
    runners = baselines() if with_baselines else {}
    counts = torch.zeros(codec.num_codebooks, codec.codebook_size, dtype=torch.long)
    raw_bits_per_frame = codec.num_codebooks * math.log2(codec.codebook_size)
    raw_bits = 0.0
    codec.decode(codec.encode(torch.zeros(4 * codec.hop), SR))  # compile the entropy coder before timing
    iterator = progress(files) if progress else files
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for path in iterator:
            x = load_audio(path, SR)
            if len(x) < codec.hop:
                continue
            seconds = len(x) / SR
            t0 = time.perf_counter()
            blob = codec.encode(torch.from_numpy(x), SR)
            y, _ = codec.decode(blob)
            row.compute += time.perf_counter() - t0
            row.bits += len(blob) * 8
            row.seconds += seconds
            tokens = codec.tokenize(torch.from_numpy(x), SR)
            raw_bits += tokens.shape[1] * raw_bits_per_frame
            counts += torch.stack([torch.bincount(t, minlength=codec.codebook_size) for t in tokens])
            row.add(quality(x, y.numpy(), SR))
            for name, run in runners.items():
                t0 = time.perf_counter()
                yb, bits = run(x, tmp)
                others[name].compute += time.perf_counter() - t0
                others[name].bits += bits
                others[name].seconds += seconds
                others[name].add(quality(x, yb, SR))
    row.utilization = float((counts > 0).double().mean())
    row.raw_bits = raw_bits
    return [row.as_dict()] + [r.as_dict() for r in others.values()]


def format_table(rows: list[dict[str, float | str]]) -> str:
    """A Markdown table of evaluation rows."""
    cols = [("system", "system"), ("kbps", "kbps"), ("pesq_wb", "PESQ-WB"), ("pesq_nb", "PESQ-NB"), ("stoi", "STOI"),
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
            else:
                cells.append(f"{v:.3f}" if key != "kbps" else f"{v:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
