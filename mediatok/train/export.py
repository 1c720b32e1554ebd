"""Export a training checkpoint to an inference folder: fp16 safetensors + config.json (+ CARD.md), any family.

    python -m mediatok.train.export runs/speech-16k/checkpoints/last.ckpt pretrained/speech-16k \
        --name speech-16k --short-id s16 --prior-data data/speech16k --prior-minutes 80

    ckpt --(family, network config) from CodecModule.on_save_checkpoint--> families()[family].codec_class
        .build_model(config) + the "codec.*" weights --round to fp16--> network
        --the family's entropy fit (registered with register_entropy_fit) on prior data--> entropy model
        --codec_class(network, entropy model, name, short_id).save(folder)

Weights are rounded to fp16 before the entropy model is fitted, so it sees the tokens the shipped model emits.
"""
from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

EntropyFit = Callable[..., Any]  # fit(network, data, **options) -> entropy model (encode / decode / state_dict)
_ENTROPY_FITS: dict[str, EntropyFit] = {}


def register_entropy_fit(family: str, fit: EntropyFit) -> None:
    """Register how `export` fits a family's entropy model; refuses a second, different one for the same family."""
    taken = _ENTROPY_FITS.get(family)
    if taken is not None and (taken.__module__, taken.__qualname__) != (fit.__module__, fit.__qualname__):
        raise ValueError(f"an entropy fit for family {family!r} is already registered by {taken.__module__}")
    _ENTROPY_FITS[family] = fit


def entropy_fit(family: str) -> EntropyFit:
    """The registered entropy fit of `family`, importing its training pieces first: `mediatok.train.<package>` for a
    family whose codec class lives in `mediatok.codecs.<package>` (several families may share one package, as the
    image and audio wavelet codecs do), then `mediatok.train.<family>` (the shape family: codecs/volume, train/shape)."""
    if family not in _ENTROPY_FITS:
        from mediatok.codecs import families

        codec_class = getattr(families().get(family), "codec_class", None)
        parts = getattr(codec_class, "__module__", "").split(".")
        package = parts[2] if len(parts) > 2 and parts[:2] == ["mediatok", "codecs"] else family
        for name in dict.fromkeys((package, family)):
            if family in _ENTROPY_FITS:
                break
            try:
                importlib.import_module(f"mediatok.train.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"mediatok.train.{name}":
                    raise
    if family not in _ENTROPY_FITS:
        raise ValueError(f"codec family {family!r} registered no entropy fit (mediatok.train.export."
                         f"register_entropy_fit); export without prior data for raw indices")
    return _ENTROPY_FITS[family]


def network_from_checkpoint(path: str | Path, ema: bool = True,
                            overrides: dict[str, Any] | None = None) -> tuple[str, nn.Module]:
    """(family, the trained network) from a Lightning checkpoint written by `CodecModule` (our own file); with
    `ema` and an `EMAWeights` callback in the run, its averaged parameters replace the live ones. `overrides`
    replace fields of the saved network config (settings the weights do not depend on, such as a deadzone)."""
    from mediatok.codecs import families

    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    saved = ckpt.get("codec")
    if saved is None and "codec_config" in ckpt:  # written by the audio-only module before CodecModule
        saved = {"family": "audio", "model": dict(ckpt["codec_config"])}
    if not saved or saved.get("family") is None or saved.get("model") is None:
        raise ValueError(f"{path} does not say which codec family and network it trained (no 'codec' entry with a "
                         "family and a config): was it written by CodecModule with a registered family's network?")
    fams = families()
    family = fams.get(saved["family"])
    if family is None or family.codec_class is None:
        raise ValueError(f"{path} was trained for codec family {saved['family']!r}, which has no registered codec "
                         f"class; known: {sorted(f for f in fams if fams[f].codec_class is not None)}")
    model = family.codec_class.build_model({**saved["model"], **(overrides or {})})
    state = {k[len("codec."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("codec.")}
    if ema and ckpt.get("codec_ema"):
        unknown = sorted(set(ckpt["codec_ema"]) - set(state))
        if unknown:
            raise ValueError(f"{path}: averaged weights {unknown[:3]} are not in the network's state dict")
        state.update(ckpt["codec_ema"])
    model.load_state_dict(state, strict=True)
    return family.name, model.eval()


def round_to_fp16(model: nn.Module) -> nn.Module:
    """Round every floating-point parameter and buffer to what an fp16 file holds (in place)."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())
    return model


def export(ckpt: str | Path, folder: str | Path, name: str, short_id: str | None = None, *,
           prior_data: str | Path | None = None, card: str | None = None, ema: bool = True,
           overrides: dict[str, Any] | None = None, **fit_options: Any) -> Any:
    """Checkpoint -> checkpoint folder; returns the exported codec as loaded back from the folder.

    With `prior_data`, the family's entropy fit runs on it with `fit_options` (audio: minutes, seed);
    without, the codec ships without an entropy model (raw indices in its bitstreams).
    """
    family, model = network_from_checkpoint(ckpt, ema=ema, overrides=overrides)
    return package(model, family, folder, name, short_id, prior_data=prior_data, card=card, **fit_options)


def package(model: nn.Module, family: str, folder: str | Path, name: str, short_id: str | None = None, *,
            prior_data: str | Path | None = None, card: str | None = None, **fit_options: Any) -> Any:
    """A trained network -> checkpoint folder (fp16 weights, the family's entropy fit on `prior_data` with
    `fit_options`); returns the codec as loaded back from the folder. `export` after a checkpoint is read, and the
    way back for scripts that change a shipped network (e.g. scripts/rebalance_image_vq.py)."""
    from mediatok.codecs import families

    round_to_fp16(model)
    fitted = entropy_fit(family)(model, prior_data, **fit_options) if prior_data else None
    # A family's fit returns its entropy model, or the codec's arguments when it also changes the network
    # (the image family's nested codebooks): {"model": ..., "entropy_model": ..., other keyword arguments}.
    parts = dict(fitted) if isinstance(fitted, dict) else {"entropy_model": fitted}
    model = round_to_fp16(parts.pop("model", model))
    entropy_model = parts.pop("entropy_model", None)
    codec_class = families()[family].codec_class
    codec_class(model, entropy_model, name=name, short_id=short_id, **parts).save(folder, card=card)
    return codec_class.load(folder)


def parse_sizes(text: str) -> tuple[int, ...]:
    """Codebook sizes as the command line gives them: "4096,1024,256" -> (4096, 1024, 256), "" -> ()."""
    try:
        sizes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 4096,1024,256, got {text!r}") from None
    if any(k < 2 for k in sizes):
        raise argparse.ArgumentTypeError(f"codebook sizes must be >= 2, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> None:
    """Command-line entry."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("out")
    p.add_argument("--name", default=None, help="model name (default: the output folder's name)")
    p.add_argument("--short-id", default=None, help="short model id written into every bitstream header")
    p.add_argument("--prior-data", default="data/speech16k",
                   help="prepared data folder the entropy model is fitted on ('' for none: raw indices)")
    p.add_argument("--prior-minutes", type=float, default=None,
                   help="audio: minutes of training clips to fit on (default: the family's, 80 for audio)")
    p.add_argument("--prior-images", type=int, default=None,
                   help="image: training images to fit on (default: all of root/train; wavelet: of root/val)")
    p.add_argument("--nested-sizes", type=parse_sizes, default=(),
                   help="image: smaller codebook sizes selectable at encode time, e.g. 4096,1024,256 (fitted at export)")
    p.add_argument("--nested-steps", type=int, default=200, help="image: fine-tuning steps per nested codebook")
    p.add_argument("--no-ema", action="store_true", help="export the live weights, not the EMAWeights average")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="replace a field of the saved network config, e.g. --set 'deadzone=[0.2,0.2,0.1]' (repeatable)")
    a = p.parse_args(argv)
    overrides = {}
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--set {item!r}: expected KEY=JSON")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError as e:
            p.error(f"--set {item!r}: the value after '=' must be JSON ({e})")
    options: dict[str, Any] = {"minutes": a.prior_minutes} if a.prior_minutes is not None else {}
    if a.prior_images is not None:
        options["images"] = a.prior_images
    if a.nested_sizes:
        options["nested_sizes"] = a.nested_sizes
        options["nested_steps"] = a.nested_steps
    codec = export(a.ckpt, a.out, a.name or Path(a.out).name, a.short_id, prior_data=a.prior_data or None,
                   ema=not a.no_ema, overrides=overrides, **options)
    unit = {"audio": "bit/s", "image": "bit/pixel", "volume": "bit/voxel"}.get(codec.modality, "bits")
    print(f"exported {codec.name}: {codec.bitrate:.4g} {unit} nominal -> {a.out}")


if __name__ == "__main__":
    # Run the importable module's main: families register their entropy fits into mediatok.train.export's
    # registry, which `python -m` would otherwise duplicate as __main__'s own, empty one.
    from mediatok.train.export import main as module_main

    module_main()
