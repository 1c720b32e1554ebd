"""The `mediatok` command: one verb per job, each a thin layer over public library functions.

    mediatok models
    mediatok encode IN -o OUT.mtk [--model NAME]        (default model: the one for IN's media)
    mediatok decode IN.mtk -o OUT.wav|.flac|.png|.obj  (the model named in the file's header)
    mediatok info IN.mtk
    mediatok eval --model NAME DATA_DIR
    mediatok tokenize DATA -o SHARDS_DIR --model NAME [--pattern flat|delay|parallel] [--workers N]
    mediatok train fit --config configs/audio/speech-16k-cpu.yaml

Every verb dispatches on the model's family (its modality, media I/O and evaluation, from the registry in
`mediatok.codecs`), so a new family needs no change here.
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import mediatok

RATE_UNITS = {"s": (1000.0, "kbps"), "px": (1.0, "bpp"), "vox": (1.0, "bits/voxel")}


def _family(codec: Any) -> Any:
    from mediatok.codecs import family_of

    fam = family_of(codec)
    if fam.io is None:
        raise ValueError(f"codec family {fam.name!r} registered no media I/O, so it cannot read or write files")
    return fam


def _rate(bits: float, amount: float, unit: str) -> str:
    scale, name = RATE_UNITS.get(unit, (1.0, f"bits/{unit}"))
    return f"{bits / max(amount, 1e-12) / scale:.3f} {name}"


def _nominal(codec: Any) -> str:
    unit = {"audio": "s", "image": "px", "volume": "vox"}.get(getattr(codec, "modality", ""), "s")
    return _rate(float(codec.bitrate), 1.0, unit)


def _models(args: argparse.Namespace) -> int:
    from mediatok.codecs import model_summaries

    rows = list(model_summaries())
    print("| name | modality | nominal rate | parameters | size |")
    print("|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['name']} | - | could not load: {r['error']} | - | - |")
            continue
        size = f"{r['bytes'] / 1e6:.1f} MB" if r.get("bytes") else "-"
        unit = {"audio": "s", "image": "px", "volume": "vox"}.get(r["modality"], "s")
        print(f"| {r['name']} | {r['modality']} | {_rate(r['bitrate'], 1.0, unit)} | "
              f"{r['parameters'] / 1e6:.2f} M | {size} |")
    return 0


def _encode(args: argparse.Namespace) -> int:
    src = Path(args.input)
    if not src.exists():
        raise FileNotFoundError(f"no such file: {src}")
    codec = mediatok.load(args.model or mediatok.default_model_for(src))
    fam = _family(codec)
    if src.suffix.lower() not in fam.io.read_suffixes:
        raise ValueError(f"model {codec.name!r} encodes {fam.modality} ({', '.join(fam.io.read_suffixes)}), "
                         f"not {src.suffix or 'suffix-less'} files")
    x, kwargs = fam.io.read(src)
    if args.codebook_size is not None:
        sizes = getattr(codec.model, "codebook_sizes", (codec.codebook_size,))
        if args.codebook_size not in sizes:
            raise ValueError(f"--codebook-size must be one of {codec.name}'s codebook sizes {list(sizes)}, "
                             f"got {args.codebook_size}")
        kwargs["codebook_size"] = args.codebook_size
    if args.rate is not None:
        rates = getattr(codec, "num_rates", None)
        if rates is None:
            raise ValueError(f"--rate is for the wavelet codecs' rates; {codec.name!r} has one rate")
        if not 0 <= args.rate < rates:
            raise ValueError(f"--rate must be in 0..{rates - 1} for {codec.name!r} (0 lowest), got {args.rate}")
        kwargs["rate"] = args.rate
    if args.downscale is not None:
        factors = getattr(codec, "downscales", None)
        if factors is None:
            raise ValueError(f"--downscale is for the image tokenizers; {codec.name!r} codes at one scale")
        if args.downscale not in factors:
            raise ValueError(f"--downscale must be one of {list(factors)} for {codec.name!r}, got {args.downscale}")
        kwargs["downscale"] = args.downscale
    blob = codec.encode(x, **kwargs)
    out = Path(args.output or src.with_suffix(".mtk"))
    out.write_bytes(blob)
    amount, unit = fam.io.amount(x, kwargs)
    print(f"{src} -> {out}: {len(blob)} bytes, {_rate(len(blob) * 8, amount, unit)} ({codec.name})")
    return 0


def _decode(args: argparse.Namespace) -> int:
    from mediatok.entropy import unpack

    blob = Path(args.input).read_bytes()
    if args.model:
        codec = mediatok.load(args.model)
    else:
        header, _ = unpack(blob)
        model_id = header.get("model")
        if not isinstance(model_id, str):
            raise mediatok.BitstreamError("the bitstream names no model; pass --model")
        codec = mediatok._cached_by_id(model_id)
    fam = _family(codec)
    out = Path(args.output or Path(args.input).with_suffix(fam.io.write_suffixes[0]))
    if out.suffix.lower() not in fam.io.write_suffixes:
        raise ValueError(f"{codec.name!r} decodes {fam.modality}: write {', '.join(fam.io.write_suffixes)}, "
                         f"not {out.suffix or 'a suffix-less file'}")
    media = codec.decode(blob)
    fam.io.write(out, media)
    print(f"{args.input} -> {out} ({codec.name}, {out.stat().st_size} bytes)")
    return 0


def _info(args: argparse.Namespace) -> int:
    from mediatok.entropy import describe, unpack

    blob = Path(args.input).read_bytes()
    print(describe(blob))
    model_id = unpack(blob)[0].get("model")
    if isinstance(model_id, str):
        try:
            codec = mediatok._cached_by_id(model_id)
            print(f"  made by     : {codec.name} ({codec.modality}, nominal {_nominal(codec)})")
        except mediatok.ModelNotFoundError:
            print(f"  made by     : {model_id[:40]!r}, not a registered or shipped model")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    codec = mediatok.load(args.model)
    fam = _family(codec)
    if fam.evaluate is None or fam.format_table is None:
        raise ValueError(f"codec family {fam.name!r} registered no evaluation")
    options: dict[str, Any] = {"limit": args.limit, "with_baselines": not args.no_baselines,
                               "progress": lambda xs: tqdm(xs, desc="eval", unit="file", file=sys.stderr)}
    if args.out:
        if "out_dir" in inspect.signature(fam.evaluate).parameters:
            options["out_dir"] = args.out
        else:
            print(f"note: codec family {fam.name!r} makes no figures; --out {args.out} is not used", file=sys.stderr)
    rows = fam.evaluate(codec, args.data, **options)
    print(fam.format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def _tokenize(args: argparse.Namespace) -> int:
    from mediatok.tokenize.command import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand except `train` (handed to LightningCLI)."""
    from mediatok.tokenize.command import add_arguments as add_tokenize_arguments

    parser = argparse.ArgumentParser(prog="mediatok", description="Neural codecs and tokenizers for media.")
    parser.add_argument("--version", action="version", version=f"mediatok {mediatok.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list shipped and registered models: modality, nominal rate, size")
    p.set_defaults(func=_models)

    p = sub.add_parser("encode", help="encode a media file (audio, image, mesh) to .mtk")
    p.add_argument("input", help="media file: .wav/.flac/.ogg, and further kinds as their codecs are installed")
    p.add_argument("-o", "--output", help="output .mtk (default: input with .mtk)")
    p.add_argument("--model", default=None, help="model name or checkpoint folder (default: the one for the input's media)")
    p.add_argument("--codebook-size", type=int, default=None,
                   help="image models with nested codebooks: encode at a lower rate with the codebook of this size "
                        "(`mediatok info` or `mediatok models` lists them)")
    p.add_argument("--rate", type=int, default=None,
                   help="wavelet codecs: which of the model's rates to encode at, 0 the lowest (default: the highest)")
    p.add_argument("--downscale", type=int, default=None,
                   help="image tokenizers: code the image shrunk 2 or 4 times and grow it back on decode, for about a "
                        "quarter or a sixteenth of the bits (combines with --codebook-size)")
    p.set_defaults(func=_encode)

    p = sub.add_parser("decode", help="decode a .mtk file; the output's suffix picks the format")
    p.add_argument("input", help=".mtk file")
    p.add_argument("-o", "--output", help="output file, e.g. .wav/.flac (default: input with the media's usual suffix)")
    p.add_argument("--model", default=None, help="model to decode with (default: the one named in the file)")
    p.set_defaults(func=_decode)

    p = sub.add_parser("info", help="describe a .mtk file's header and chunks, and the model that made it")
    p.add_argument("input")
    p.set_defaults(func=_info)

    p = sub.add_parser("eval", help="rate and quality table on a folder of media, with the classical baselines")
    p.add_argument("data", help="folder of media files (searched recursively); audio: each sub-folder holding audio is a "
                                "split with its own rows, plus a pooled row (e.g. data/speech16k/test from "
                                "scripts/prepare_speech.py); a folder with no such sub-folders is one split")
    p.add_argument("--model", default=mediatok.DEFAULT_AUDIO_MODEL, help="model name or checkpoint folder")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate N files evenly spaced through the sorted list (audio: N per split)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the classical codecs (Codec2/Opus, JPEG/WebP, ...); audio finds c2enc/c2dec/opusenc/opusdec "
                        "on PATH, else under $MEDIATOK_TOOLS/usr/bin (default data/tools, see scripts/prepare_speech.py)")
    p.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    p.add_argument("--out", default=None, help="folder for figures (grids, rate-distortion plots, code-use curves) where the family makes them")
    p.set_defaults(func=_eval)

    p = sub.add_parser("tokenize", help="dataset -> token shards for language-model training (see mediatok.tokenize)")
    add_tokenize_arguments(p)
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
