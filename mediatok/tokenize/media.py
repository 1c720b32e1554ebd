"""What tokenize needs of a codec and of its media, found through the codec registry.

The pipeline knows nothing of any media: the codec's `modality` picks the registered family's `MediaIO`
(`mediatok.codecs.family_for_modality`), whose `read(path) -> (x, kwargs)` feeds `codec.tokenize(x, **kwargs)`
and whose `amount(x, kwargs) -> (amount, unit)` is what the item records (seconds of audio, pixels, voxels).
A new media family plugs in by registering; nothing here changes.
"""
from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn



def check_codec(codec: Any) -> Any:
    """`codec` if it is a codec object (`tokenize`, `modality`, `num_codebooks`, `codebook_size`); TypeError if not."""
    if not callable(getattr(codec, "tokenize", None)):
        hint = (" (a bare network: wrap it in its family's Codec, e.g. SpeechCodec(module), or pass a model name)"
                if isinstance(codec, nn.Module) else "")
        raise TypeError(f"model must be a model name, a checkpoint folder or a codec object with tokenize(x, **kw); "
                        f"got {type(codec).__name__}{hint}")
    missing = [a for a in ("modality", "num_codebooks", "codebook_size") if getattr(codec, a, None) is None]
    if missing:
        raise TypeError(f"codec {type(codec).__name__} lacks {', '.join(missing)}, which token shards record")
    return codec


def media_io(codec: Any) -> Any:
    """The `MediaIO` of the codec's own registered family, else of its modality's; ValueError naming the modality
    and the known ones. (Two families of one modality may read different files: the codec's own family wins.)"""
    from mediatok.codecs import families, family_for_modality

    own = families().get(getattr(codec, "family", None))
    if own is not None and own.io is not None:
        return own.io
    try:
        return family_for_modality(codec.modality).io
    except ValueError as e:
        raise ValueError(f"cannot tokenize with {getattr(codec, 'name', type(codec).__name__)!r}: {e}") from None


def load_codec(model: Any) -> Any:
    """A model name or checkpoint folder -> `mediatok.load(model)`; a codec object is checked and returned."""
    if isinstance(model, (str, os.PathLike)):
        import mediatok

        model = mediatok.load(model)
    return check_codec(model)


def resolve_device(device: str | torch.device | None, accelerator: str = "auto") -> torch.device | None:
    """Where an in-process or worker run puts the codec: `device` if given, else the accelerator's
    ("gpu"/"cuda" -> cuda, "mps" -> mps, "cpu"/"auto" -> None: the codec stays where it is, on the CPU).

    "auto" does not pick a GPU by itself: GPU kernels may round differently, and a dataset's shards should not
    depend on which machine happened to run it. ValueError naming the argument when the device asked for is absent.
    """
    asked = f"device={str(device)!r}"
    if device is None:
        named = {"gpu": "cuda", "cuda": "cuda", "mps": "mps", "cpu": None, "auto": None}
        if accelerator not in named:
            raise ValueError(f"accelerator must be one of {sorted(named)} (or pass devices= for Lightning), "
                             f"got {accelerator!r}")
        device, asked = named[accelerator], f"accelerator={accelerator!r}"
        if device is None:
            return None
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{asked} needs CUDA, but torch.cuda.is_available() is False here (torch "
                         f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); use the CPU "
                         "(accelerator 'cpu') or a machine with a GPU and a CUDA build of torch")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{asked} needs Apple's Metal backend, which this machine lacks")
    return device


def place(codec: Any, device: torch.device | str | None) -> Any:
    """`codec.to(device)` (the same codec, moved), or the codec as it is when device is None."""
    if device is None:
        return codec
    moved = codec.to(device)
    return codec if moved is None else moved


@dataclass(frozen=True)
class CodecInfo:
    """What a token file needs to say about the codec that made it."""

    name: str
    modality: str
    num_codebooks: int
    codebook_size: int
    fingerprint: str  # sha256 prefix of the weights: a resumed run refuses shards made by other weights
    sample_rate: int | None = None  # audio codecs say these; other media leave them None
    frame_rate: float | None = None
    # What every item's `codec.tokenize` is also given (an image model's codebook_size / downscale): part of the
    # shards' identity, so a resumed run with other options starts afresh instead of mixing vocabularies.
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (without `options` when there are none, as shards made before they existed)."""
        d = asdict(self)
        if not self.options:
            del d["options"]
        return d


def _modules(codec: Any) -> list[nn.Module]:
    return [v for _, v in sorted(vars(codec).items()) if isinstance(v, nn.Module)]


def weights_fingerprint(codec: Any) -> str:
    """sha256 prefix over the codec's tensors (names, dtypes, shapes, bytes), in name order."""
    if isinstance(getattr(codec, "fingerprint", None), str):
        return codec.fingerprint
    h = hashlib.sha256()
    for i, module in enumerate(_modules(codec)):
        for name, t in sorted(module.state_dict().items()):
            t = t.detach().cpu().contiguous()  # (its C-order bytes, 0-d tensors included)
            h.update(f"{i}.{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def check_options(codec: Any, options: dict[str, Any] | None) -> dict[str, Any]:
    """The tokenize options, checked before any file is read: each must be a named parameter of
    `codec.tokenize` after the media, with a plain JSON value, and the codec's own `check_options` (where it has
    one) must accept the values; ValueError naming what was wrong. Without this, a bad option would fail every
    item one by one."""
    options = dict(options or {})
    if not options:
        return options
    name = getattr(codec, "name", type(codec).__name__)
    params = list(inspect.signature(codec.tokenize).parameters.values())[1:]  # after the media
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key, value in options.items():
        if key not in named:
            raise ValueError(f"{name!r} tokenizes with no option {key!r}; its options are {named or 'none'}")
        if not (value is None or isinstance(value, (str, int, float, bool))):
            raise ValueError(f"tokenize option {key!r} must be a plain value (shards record it), got "
                             f"{type(value).__name__}")
    check = getattr(codec, "check_options", None)
    if callable(check):
        check(**options)
    return options


def codec_info(codec: Any, model: Any = None, options: dict[str, Any] | None = None) -> CodecInfo:
    """Describe `codec` tokenizing with `options` (checked here); `model` is what the user named it by (a registry
    name or a checkpoint folder). An option `codebook_size` (a nested codebook) is the tokens' vocabulary."""
    options = check_options(codec, options)
    name = getattr(codec, "name", None)
    if not isinstance(name, str):
        name = Path(os.fspath(model)).name if isinstance(model, (str, os.PathLike)) else type(codec).__name__
    sample_rate, frame_rate = getattr(codec, "sample_rate", None), getattr(codec, "frame_rate", None)
    return CodecInfo(
        name=name, modality=str(codec.modality), num_codebooks=int(codec.num_codebooks),
        codebook_size=int(options.get("codebook_size") or codec.codebook_size), fingerprint=weights_fingerprint(codec),
        sample_rate=None if sample_rate is None else int(sample_rate),
        frame_rate=None if frame_rate is None else float(frame_rate), options=options,
    )
