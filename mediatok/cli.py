"""The `mediatok` command: one verb per job, each a thin layer over public library functions.

    mediatok models
    mediatok encode IN -o OUT.mtk [--model NAME]
    mediatok decode IN.mtk -o OUT.wav
    mediatok info IN.mtk
    mediatok eval --model NAME DATA_DIR
    mediatok train fit --config configs/audio/speech-16k-cpu.yaml
    mediatok tokenize DATA -o SHARDS_DIR [--model NAME] [--pattern flat|delay|parallel] [--workers N]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import mediatok


def _models(args: argparse.Namespace) -> int:
    for name in mediatok.list_models():
        print(name)
    return 0


def _encode(args: argparse.Namespace) -> int:
    codec = mediatok.load(args.model)
    blob = codec.encode(args.input)
    out = Path(args.output or Path(args.input).with_suffix(".mtk"))
    out.write_bytes(blob)
    import soundfile as sf

    seconds = sf.info(str(args.input)).duration
    print(f"{args.input} -> {out}: {len(blob)} bytes, {len(blob) * 8 / max(seconds, 1e-9) / 1000:.2f} kbps")
    return 0


def _decode(args: argparse.Namespace) -> int:
    import soundfile as sf

    blob = Path(args.input).read_bytes()
    wav, sr = mediatok.decode(blob, model=args.model)
    data = wav.numpy().T if wav.ndim == 2 else wav.numpy()
    out = Path(args.output or Path(args.input).with_suffix(".wav"))
    sf.write(str(out), data.clip(-1, 1), sr)
    print(f"{args.input} -> {out}: {data.shape[0] / sr:.2f} s at {sr} Hz")
    return 0


def _info(args: argparse.Namespace) -> int:
    from mediatok.entropy import describe

    print(describe(Path(args.input).read_bytes()))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mediatok.codecs.audio.evaluate import evaluate, format_table

    codec = mediatok.load(args.model)
    rows = evaluate(codec, args.data, limit=args.limit, with_baselines=not args.no_baselines,
                    progress=lambda xs: tqdm(xs, desc="eval", unit="file", file=sys.stderr))
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def _tokenize(args: argparse.Namespace) -> int:
    from mediatok.tokenize.command import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand except `train` (handed to LightningCLI)."""
    parser = argparse.ArgumentParser(prog="mediatok", description="Neural codecs and tokenizers for media.")
    parser.add_argument("--version", action="version", version=f"mediatok {mediatok.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list shipped and registered models")
    p.set_defaults(func=_models)

    p = sub.add_parser("encode", help="encode an audio file to .mtk")
    p.add_argument("input", help="audio file (wav, flac, ogg, ...)")
    p.add_argument("-o", "--output", help="output .mtk (default: input with .mtk)")
    p.add_argument("--model", default=mediatok.DEFAULT_AUDIO_MODEL)
    p.set_defaults(func=_encode)

    p = sub.add_parser("decode", help="decode a .mtk file to audio")
    p.add_argument("input", help=".mtk file")
    p.add_argument("-o", "--output", help="output .wav (default: input with .wav)")
    p.add_argument("--model", default=None, help="model to decode with (default: the one named in the file)")
    p.set_defaults(func=_decode)

    p = sub.add_parser("info", help="describe a .mtk file's header and chunks")
    p.add_argument("input")
    p.set_defaults(func=_info)

    p = sub.add_parser("eval", help="rate and quality table on a folder of audio, with Codec2/Opus baselines")
    p.add_argument("data", help="folder of audio files (searched recursively)")
    p.add_argument("--model", default=mediatok.DEFAULT_AUDIO_MODEL)
    p.add_argument("--limit", type=int, default=None, help="evaluate N files evenly spaced through the sorted list")
    p.add_argument("--no-baselines", action="store_true", help="skip Codec2 and Opus")
    p.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    p.set_defaults(func=_eval)

    p = sub.add_parser("tokenize", help="dataset -> token shards for language-model training (see mediatok.tokenize)")
    p.add_argument("data", help="a folder (searched recursively), a quoted glob, or a .csv/.jsonl manifest "
                                "with a 'path' column (optional 'id', 'text'; other columns become metadata)")
    p.add_argument("-o", "--out", required=True, help="output folder: shard-*.npy, shard-*.json, manifest.json")
    p.add_argument("--model", default=mediatok.DEFAULT_AUDIO_MODEL, help="model name or checkpoint folder")
    p.add_argument("--pattern", choices=("flat", "delay", "parallel"), default="flat",
                   help="TokenDataset's default flattening (shards always hold raw codes)")
    p.add_argument("--workers", type=int, default=1, help="processes on this machine, each loading the model once")
    p.add_argument("--shard-size", type=int, default=256, help="items per shard (part of the output's identity)")
    p.add_argument("--devices", type=int, default=None,
                   help="run through Lightning Trainer.predict on this many devices per node (DDP) instead")
    p.add_argument("--num-nodes", type=int, default=1, help="nodes for the Lightning run")
    p.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu")
    p.add_argument("--strategy", default=None, help="Lightning strategy (default: auto, i.e. ddp for several devices)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_tokenize)

    sub.add_parser("train", help="LightningCLI: mediatok train fit --config CONFIG.yaml (see `mediatok train --help`)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from mediatok.train.cli import train_main

        train_main(argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (mediatok.MediatokError, ValueError, FileNotFoundError, TypeError) as e:
        print(f"mediatok {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
