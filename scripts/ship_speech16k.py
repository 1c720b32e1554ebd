"""Ship `pretrained/speech-16k`: export a training checkpoint, evaluate it on the held-out test split, write CARD.md.

    OMP_NUM_THREADS=1 python scripts/ship_speech16k.py runs/speech-16k/checkpoints/best-step=N.ckpt --limit 120 \
        --stage "0-4000: lr 1.5e-3, warm-up 200 steps, cosine decay to 7.5e-5 over steps 1800-4100 (72 min)" \
        --stage "4000-9700: resumed; lr 6e-4, cosine decay to 3e-5 over steps 4000-9500 (74 min)"

Each --stage is one training session or learning-rate cycle, "FIRST-LAST: recipe"; the stages follow each other
without gaps from step 0 to the checkpoint's step, and CARD.md lists them with their step ranges.
Steps: export (fp16 safetensors + config.json, MarkovPrior fitted on 80 min of training tokens), then
`mediatok.codecs.audio.evaluate` on data/speech16k/test_wav (held-out levels, see scripts/prepare_speech.py)
with Codec2 1200/3200 and Opus 6 kbps in the same run, then CARD.md with the table.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from mediatok.codecs.audio.evaluate import evaluate, format_table
from mediatok.train.export import export

CARD = """# speech-16k

A 2 kbps speech codec for 16 kHz mono audio: STFT-frame ConvNeXt encoder, grouped residual VQ
(HiFi-Codec GRVQ: 2 groups x 2 levels x 1024 codes at 50 Hz = 2000 bit/s nominal), ConvNeXt decoder with an
iSTFT head (magnitude + phase, 40 ms window at 100 frames/s). {params:.1f} M parameters, stored as fp16
safetensors. Bitstreams are `.mtk` files whose tokens are entropy-coded (rANS) with a first-order context prior
(`mediatok.entropy.MarkovPrior`: each codebook's table is chosen by the class of the previous frame's token;
classes and integer tables fitted on training tokens, shipped in `model.safetensors` as `prior.*`).

```python
import mediatok
codec = mediatok.load("speech-16k")
blob = codec.encode("speech.wav")          # or codec.encode(x, sample_rate=16000)
y, sr = codec.decode(blob)
tokens = codec.tokenize("speech.wav")      # (4, frames) int64, 50 frames/s
```

## Data

Czech and Dutch voice acting from the game Fish Fillets NG (Debian packages `fillets-ng-data-cs`,
`fillets-ng-data-nl`, GPL-2+; clips not redistributed here), decoded and resampled to 16 kHz mono by
`python scripts/prepare_speech.py`. Fixed split by game level (sorted level i: test if i % 10 == 3,
validation if i % 20 == 7, else train): train 2,772 clips / 159.7 min, validation 200 / 14.2 min,
test 337 / 18.3 min. The test levels were never seen in training or model selection.

## Training

`OMP_NUM_THREADS=1 mediatok train fit --config configs/audio/speech-16k-cpu.yaml` (2 CPU processes, DDP, batch
12 x 1 s): multi-scale mel L1 + multi-resolution STFT magnitude loss + phase-derivative losses (instantaneous
frequency and group delay, magnitude-weighted) + VQ commitment; EMA codebooks with k-means initialisation and
dead-code restarts; AdamW with warm-up and cosine decay; no discriminator. {steps} steps in {num_stages} stage(s),
{wall} of wall time on a shared 2-core CPU ({cpu}). Checkpoint: `{ckpt}`.

{stages}

Resume: add `--ckpt_path <that checkpoint>` (kept outside git), or from a fresh checkout `--model.init_from pretrained/speech-16k` (shipped weights; optimiser and schedule start afresh); export: `python -m mediatok.train.export CKPT
pretrained/speech-16k --short-id s16`.

## Rate and quality (held-out test split)

{n} test clips ({minutes:.1f} min) evenly spaced through the sorted test files, one run of
`mediatok eval --model speech-16k data/speech16k/test_wav --limit {n}`:

{table}

{status}

kbps are real: file sizes (with container) over duration. Ours: {kbps:.2f} kbps in `.mtk` files versus
{raw_kbps:.2f} kbps for the raw indices (10 bits each) - the context prior saves {saving:.1f} %, container included.
"code use" is the fraction of the 4 x 1024 codes used on the test set. "x real time" is encode + decode
(ours, one process; {threads} thread(s)) or the command-line tools (Codec2, Opus, including process start-up),
measured on the shared CPU while other jobs ran, so it is a lower bound.
Reproduce: `python scripts/prepare_speech.py && mediatok eval --model speech-16k data/speech16k/test_wav --limit {n}`.

Published points for context (other data, not comparable): EnCodec 1.5 kbps PESQ-WB 1.56 / STOI 0.85;
HiFi-Codec 16k 2 kbps PESQ about 2.1-2.2 / STOI 0.86 (LibriSpeech test-clean, GPU-trained for days).

## Limitations

Trained for a short time on about 2.7 hours of speech from a handful of voice actors in two languages: expect
artefacts on other voices, noisy recordings and music. Not trained with a discriminator yet.
"""


@dataclass(frozen=True)
class Stage:
    """One training session or learning-rate cycle: generator steps [first, last) and how they were trained."""

    first: int
    last: int
    recipe: str


def parse_stage(text: str) -> Stage:
    """"FIRST-LAST: recipe" -> Stage, e.g. "0-4000: lr 1.5e-3, warm-up 200 steps, cosine decay to 7.5e-5"."""
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*:\s*(.+)", text, flags=re.S)
    if m is None:
        raise ValueError(f"expected a stage as 'FIRST-LAST: recipe' (e.g. '0-4000: lr 1.5e-3'), got {text!r}")
    first, last = int(m[1]), int(m[2])
    if last <= first:
        raise ValueError(f"stage {text!r} ends (step {last}) before it starts (step {first})")
    return Stage(first, last, m[3].strip())


def _stage_arg(text: str) -> Stage:
    try:
        return parse_stage(text)
    except ValueError as e:  # argparse shows an ArgumentTypeError's message, not a ValueError's
        raise argparse.ArgumentTypeError(str(e)) from None


def check_stages(stages: list[Stage], steps: int) -> None:
    """The stages follow each other without gaps from step 0 and end at the checkpoint's step."""
    if not stages or stages[0].first != 0:
        raise ValueError("the first stage must start at step 0")
    for before, after in zip(stages, stages[1:]):
        if after.first != before.last:
            raise ValueError(f"stage {after.first}-{after.last} does not start where {before.first}-{before.last} ends")
    if stages[-1].last != steps:
        raise ValueError(f"the stages end at step {stages[-1].last}, but the checkpoint is at step {steps}")


def stages_table(stages: list[Stage]) -> str:
    """Markdown table of the stages with their step ranges."""
    rows = ["| stage | steps | recipe |", "|---|---|---|"]
    rows += [f"| {i} | {s.first:,}-{s.last:,} | {s.recipe} |" for i, s in enumerate(stages, 1)]
    return "\n".join(rows)


def checkpoint_steps(ckpt: str | Path) -> int:
    """Generator steps recorded in a training checkpoint (our own file)."""
    state = torch.load(str(ckpt), map_location="cpu", weights_only=False)["state_dict"]
    return int(state["steps"])


def verdict(rows: list[dict]) -> str:
    """One sentence comparing ours with Codec2 3200 and Opus 6 kbps on PESQ-WB and STOI."""
    ours, by_name = rows[0], {r["system"]: r for r in rows[1:]}
    parts = []
    for name in ("codec2-3200", "opus-6k"):
        if name in by_name:
            other = by_name[name]
            labels = {"pesq_wb": "PESQ-WB", "stoi": "STOI"}
            wins = [m for m in labels if ours[m] > other[m]]
            if len(wins) == 2:
                parts.append(f"beats {name} on PESQ-WB and STOI")
            elif wins:
                lose = "STOI" if wins == ["pesq_wb"] else "PESQ-WB"
                parts.append(f"beats {name} on {labels[wins[0]]} but not on {lose}")
            else:
                parts.append(f"does not beat {name} on PESQ-WB or STOI")
    return f"**Status**: at {ours['kbps']:.2f} kbps this model " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> None:
    """Export, evaluate and write the model card."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("--out", default="pretrained/speech-16k")
    p.add_argument("--test", default="data/speech16k/test_wav")
    p.add_argument("--limit", type=int, default=120)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--wall-minutes", type=float, default=math.nan)
    p.add_argument("--stage", action="append", default=[], type=_stage_arg,
                   help="'FIRST-LAST: recipe', once per session or learning-rate cycle, in order (default: one stage)")
    a = p.parse_args(argv)
    steps = a.steps or checkpoint_steps(a.ckpt)
    stages = a.stage or [Stage(0, steps, "configs/audio/speech-16k-cpu.yaml as committed")]
    check_stages(stages, steps)  # before the slow export and evaluation
    codec = export(a.ckpt, a.out, "speech-16k", "s16", prior_data="data/speech16k", minutes=80.0)
    rows = evaluate(codec, a.test, limit=a.limit)
    table = format_table(rows)
    print(table)
    ours = rows[0]
    files = sorted(Path(a.test).glob("*.wav"))
    import soundfile as sf

    n = min(a.limit, len(files))
    idx = [round(i * (len(files) - 1) / max(n - 1, 1)) for i in range(n)]
    minutes = sum(sf.info(str(files[i])).duration for i in idx) / 60
    status = verdict(rows)
    wall = f"{a.wall_minutes:.0f} min" if not math.isnan(a.wall_minutes) else "unknown"
    card = CARD.format(
        params=sum(t.numel() for t in codec.model.parameters()) / 1e6, steps=steps, wall=wall,
        num_stages=len(stages), stages=stages_table(stages),
        cpu=platform.processor() or platform.machine(), ckpt=Path(a.ckpt).name, n=n, minutes=minutes, table=table,
        kbps=ours["kbps"], raw_kbps=ours["raw_kbps"], saving=100 * (1 - ours["kbps"] / ours["raw_kbps"]),
        threads=torch.get_num_threads(), status=status,
    )
    (Path(a.out) / "CARD.md").write_text(card)
    (Path(a.out) / "eval.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {a.out}/CARD.md")


if __name__ == "__main__":
    main()
