"""The one `Codec` every media family shares: tokens, bitstreams, checkpoints, devices, threads.

    media | path --prepare--> x (model input) + facts (what decode needs to restore the input's form)
        --encode_latents--> tokens (Q, *S) --entropy_model.encode--> payload
        --pack({model, model_hash, **facts}, [payload])--> .mtk bytes
    .mtk --unpack--> header --check_facts (every field bounded)--> facts --latent_shape--> (Q, *S)
        --entropy_model.decode (bounded by the payload)--> tokens --decode_latents--> y --restore--> media

A family writes only its hooks (`prepare`, `restore`, `check_facts`, `latent_shape`, and, when the network
needs chunking or tiling, `encode_latents` / `decode_latents`), its `nn.Module`, its media I/O and `evaluate`;
everything else here is shared, so a bitstream, a checkpoint folder and a device move work the same for
audio, images and shapes. A family subclass registers itself with `mediatok.codecs.register_family`.
"""
from __future__ import annotations

import hashlib
import json
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from mediatok.errors import BitstreamError

Modality = Literal["audio", "image", "volume"]
MAX_HEADER_INT = 1 << 40  # no header integer is trusted beyond this, whatever the family


@dataclass(frozen=True)
class Prepared:
    """A family's `prepare` result: the model's input and the facts decode needs to restore the input's form.

    `facts` go into the bitstream header in the order given (keys of `mediatok.entropy.container.KNOWN_KEYS`
    cost one byte each), so a family lists only what the model cannot infer.
    """

    x: Tensor
    facts: dict[str, Any]


class Codec:
    """Media <-> tokens (Q, *S) <-> .mtk bytes, for any family. Subclasses supply the hooks below.

    codec = mediatok.load("speech-16k")
    blob = codec.encode(x, sample_rate=16000); y = codec.decode(blob)
    tokens = codec.tokenize(x, sample_rate=16000); y = codec.detokenize(tokens)
    codec.to("cuda"); codec.save(folder); Codec.load(folder)
    """

    family: ClassVar[str]
    modality: ClassVar[Modality]
    model_class: ClassVar[type[nn.Module]]  # the family's network (training finds a network's family by it)
    token_layout: ClassVar[str] = "*positions"  # how error messages name the token axes after Q

    def __init__(self, model: nn.Module, entropy_model: Any = None, *, name: str | None = None,
                 short_id: str | None = None, model_hash: bytes = b"", num_threads: int | None = None) -> None:
        self.model = model.eval()
        self.entropy_model = entropy_model
        self.name = name or self.family
        self.short_id = short_id or self.name
        self.model_hash = bytes(model_hash)
        self.num_threads = num_threads  # torch threads for encode/decode (None: leave torch's setting alone)

    # ---- what every codec reports --------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the network runs; entropy coding always runs on the CPU."""
        return next(self.model.parameters()).device

    @property
    def bitrate(self) -> float:
        """Nominal rate before entropy coding: bits per second (audio), per pixel (image), per voxel (volume)."""
        return float(self.model.bitrate)

    @property
    def num_codebooks(self) -> int:
        return int(self.model.num_codebooks)

    @property
    def codebook_size(self) -> int:
        return int(self.model.quantizer.codebook_size)

    @property
    def num_parameters(self) -> int:
        """Parameters of the network (the entropy model's tables excluded)."""
        return sum(p.numel() for p in self.model.parameters())

    # ---- family hooks --------------------------------------------------------------------------------------
    def prepare(self, x: Any, **kwargs: Any) -> Prepared:
        """Check and convert user input for the model; ValueError/TypeError naming what was wrong."""
        raise NotImplementedError

    def restore(self, y: Tensor, facts: dict[str, Any]) -> Any:
        """The network's output (on the CPU) -> media of the kind and size described by facts."""
        raise NotImplementedError

    def check_facts(self, header: dict[str, Any]) -> dict[str, Any]:
        """Header -> validated facts; BitstreamError for any field out of what this family supports."""
        raise NotImplementedError

    def latent_shape(self, facts: dict[str, Any]) -> tuple[int, ...]:
        """The token grid (Q, *S) that facts imply (decode never reads a shape from the file unchecked)."""
        raise NotImplementedError

    def default_facts(self, tokens: Tensor) -> dict[str, Any]:
        """Facts for `detokenize`: the media that tokens of this shape would have come from."""
        raise NotImplementedError

    def code_options(self, facts: dict[str, Any]) -> dict[str, Any]:
        """Keyword options that facts imply for `encode_latents`, `decode_latents` and `_coder` (e.g. an image
        codec's selected codebook size); none by default."""
        return {}

    def encode_latents(self, x: Tensor) -> Tensor:
        """Model input (on the model's device) -> tokens (Q, *S). Families override to chunk or tile."""
        return self.model.encode_latents(x[None])[0]

    def decode_latents(self, tokens: Tensor) -> Tensor:
        """Tokens (Q, *S) (on the model's device) -> the network's output for one item."""
        return self.model.decode_latents(tokens[None])[0]

    # ---- tokens ---------------------------------------------------------------------------------------------
    def tokenize(self, x: Any, **kwargs: Any) -> Tensor:
        """Media -> int64 tokens (Q, *S) on the CPU, without entropy coding."""
        prepared = self.prepare(x, **kwargs)
        with self._threads(), torch.no_grad():  # no_grad, not inference_mode: callers may edit the result
            return self.encode_latents(prepared.x.to(self.device), **self.code_options(prepared.facts)).cpu()

    def detokenize(self, tokens: Tensor) -> Any:
        """Tokens (Q, *S) -> media."""
        tokens = self.check_tokens(tokens)
        return self._reconstruct(tokens, self.default_facts(tokens))

    def check_tokens(self, tokens: Any, codebook_size: int | None = None) -> Tensor:
        """Integer tokens (Q, *S) with Q codebooks and every value in [0, codebook_size) (by default the model's),
        as int64."""
        size = self.codebook_size if codebook_size is None else codebook_size
        tokens = torch.as_tensor(tokens)
        if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
            raise TypeError(f"tokens must be integers, got {tokens.dtype}")
        if tokens.ndim < 2 or tokens.shape[0] != self.num_codebooks or 0 in tokens.shape:
            raise ValueError(f"expected tokens of shape ({self.num_codebooks}, {self.token_layout}), "
                             f"got {tuple(tokens.shape)}")
        if int(tokens.min()) < 0 or int(tokens.max()) >= size:
            raise ValueError(f"tokens must lie in [0, {size})")
        return tokens.long().cpu()

    def _reconstruct(self, tokens: Tensor, facts: dict[str, Any]) -> Any:
        with self._threads(), torch.no_grad():
            y = self.decode_latents(tokens.to(self.device), **self.code_options(facts)).float().cpu()
        return self.restore(y, facts)

    # ---- bitstream ------------------------------------------------------------------------------------------
    def encode(self, x: Any, **kwargs: Any) -> bytes:
        """Media -> one .mtk container: header (model id, hash, facts) + the entropy-coded tokens."""
        from mediatok.entropy import pack

        prepared = self.prepare(x, **kwargs)
        options = self.code_options(prepared.facts)
        with self._threads(), torch.no_grad():
            tokens = self.encode_latents(prepared.x.to(self.device), **options).cpu()
        header: dict[str, Any] = {"model": self.short_id, "model_hash": self.model_hash, **prepared.facts}
        if self.entropy_model is None:
            header["coder"] = "raw"
        return pack(header, [self._coder(**options).encode(tokens)])

    def decode(self, blob: bytes) -> Any:
        """.mtk bytes -> media of the encoded input's kind and size; BitstreamError for anything malformed."""
        from mediatok.entropy import unpack

        header, chunks = unpack(_as_bytes(blob))
        self._check_model(header)
        if len(chunks) != 1:
            raise BitstreamError(f"expected one chunk of tokens, got {len(chunks)}")
        coder = header.get("coder")
        if (coder == "raw") != (self.entropy_model is None) or coder not in (None, "raw"):
            raise BitstreamError(f"bitstream coder {coder!r} does not match this model "
                                 f"({'no prior: raw' if self.entropy_model is None else 'entropy-coded'})")
        facts = self.check_facts(header)
        unknown = sorted(set(header) - {"model", "model_hash", "coder"} - set(facts))
        if unknown:  # a field this reader does not understand might change the meaning of the rest
            raise BitstreamError(f"bitstream header has fields this {self.family} codec does not know: {unknown}")
        shape = self.latent_shape(facts)
        options = self.code_options(facts)
        if math.prod(shape[1:]) > self.max_positions(len(chunks[0]), **options):
            raise BitstreamError(f"header claims a token grid of {shape}, more than a payload of "
                                 f"{len(chunks[0])} bytes can hold")
        try:
            tokens = self._coder(**options).decode(chunks[0], shape)
        except BitstreamError:
            raise
        except Exception as e:  # a payload that passed the CRC but does not decode
            raise BitstreamError(f"could not entropy-decode the token payload: {e}") from e
        return self._reconstruct(tokens, facts)

    def max_positions(self, payload_bytes: int, **options: Any) -> int:
        """Most token positions a payload of this size may declare: the entropy model's own bound."""
        coder = self._coder(**options)
        bound = getattr(coder, "max_frames", None)
        return int(bound(payload_bytes)) if bound is not None else 8 * payload_bytes

    def _coder(self, **options: Any) -> Any:
        """The entropy model that codes tokens made with `options` (see `code_options`): by default the one."""
        if self.entropy_model is not None:
            return self.entropy_model
        from mediatok.entropy import RawIndices

        return RawIndices(self.codebook_size)

    def _check_model(self, header: dict[str, Any]) -> None:
        model = header.get("model")
        if not isinstance(model, str):
            raise BitstreamError(f"not a bitstream of a mediatok codec: header fields {sorted(header)}")
        if model not in (self.short_id, self.name) or (self.model_hash and header.get("model_hash") != self.model_hash):
            made_by = bytes(header.get("model_hash", b"")) if isinstance(header.get("model_hash"), bytes) else b""
            raise BitstreamError(f"bitstream was made by model {model[:64]!r} (hash {made_by.hex()}), this is "
                                 f"{self.name!r} (id {self.short_id!r}, hash {self.model_hash.hex()}); "
                                 "load that model to decode it")

    # ---- devices and threads ----------------------------------------------------------------------------------
    def to(self, device: str | torch.device) -> Codec:
        """Run the network on `device` (e.g. "cuda"); tokens and bitstreams stay identical in meaning."""
        self.model.to(device)
        return self

    @contextmanager
    def _threads(self) -> Iterator[None]:
        with torch_threads(self.num_threads if self.device.type == "cpu" else None):
            yield

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """config.json: the family, names, and the network's config (plus the family's inference settings)."""
        config: dict[str, Any] = {"codec": self.family, "name": self.name, "short_id": self.short_id,
                                  "model": self.model.cfg.to_dict()}
        if self.num_threads is not None:
            config["num_threads"] = self.num_threads
        return config

    def save(self, folder: str | Path, card: str | None = None, dtype: torch.dtype = torch.float16) -> None:
        """Write config.json + model.safetensors (+ CARD.md) into folder."""
        import mediatok

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
                   for k, v in self.model.state_dict().items()}
        tensors.update({k: torch.as_tensor(v).contiguous() for k, v in self.entropy_state().items()})
        # One metadata entry: safetensors keeps metadata in a hash map, so several keys come out in a different
        # order from run to run, and the same weights would get another file hash (the model id in every header)
        about = json.dumps({"codec": self.family, "name": self.name, "mediatok_version": mediatok.__version__},
                           sort_keys=True)
        save_file(tensors, str(folder / "model.safetensors"), metadata={"mediatok": about})
        (folder / "model.safetensors").chmod(0o644)
        (folder / "config.json").write_text(json.dumps(self.config_dict(), indent=2) + "\n")
        if card is not None:
            (folder / "CARD.md").write_text(card)

    def entropy_state(self) -> dict[str, Tensor]:
        """The entropy model's tensors as stored in model.safetensors: "prior.<key>" (families with more entropy
        models add "prior@<tag>.<key>" and read them back in `load_extra_priors`)."""
        if self.entropy_model is None:
            return {}
        return {f"prior.{k}": v for k, v in self.entropy_model.state_dict().items()}

    def load_extra_priors(self, states: dict[str, dict[str, Tensor]]) -> None:
        """Entropy models stored as "prior@<tag>.*", by tag; a family without any refuses them."""
        if states:
            raise ValueError(f"checkpoint holds entropy models {sorted(states)} that a {self.family} codec does not use")

    @classmethod
    def build_model(cls, config: dict[str, Any]) -> nn.Module:
        """The family's network from config.json's "model" dict (unknown keys refused by the config class)."""
        raise NotImplementedError

    @classmethod
    def load(cls, folder: str | Path) -> Codec:
        """Load a folder written by `save` (safetensors + JSON only; nothing is unpickled)."""
        from mediatok.entropy import entropy_model_from_state_dict

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        model = cls.build_model(config["model"])
        weights_path = folder / "model.safetensors"
        tensors = load_file(str(weights_path))
        prior_state = {k[len("prior."):]: v for k, v in tensors.items() if k.startswith("prior.")}
        extra: dict[str, dict[str, Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("prior@"):
                tag, _, key = k[len("prior@"):].partition(".")
                extra.setdefault(tag, {})[key] = v
        state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()
                 if not k.startswith(("prior.", "prior@"))}
        model.load_state_dict(state, strict=True)
        entropy_model = entropy_model_from_state_dict(prior_state) if prior_state else None
        digest = hashlib.sha256(weights_path.read_bytes()).digest()[:3]
        codec = cls(model, entropy_model, name=config.get("name", folder.name), short_id=config.get("short_id"),
                    model_hash=digest, num_threads=config.get("num_threads"))
        codec.load_extra_priors({tag: entropy_model_from_state_dict(st) for tag, st in extra.items()})
        return codec


# ---- helpers shared by the families ---------------------------------------------------------------------------
def header_int(header: dict[str, Any], key: str, default: int | None, lo: int, hi: int) -> int:
    """header[key] (or default when absent) as an int in [lo, hi]; BitstreamError naming the field otherwise."""
    value = header.get(key, default)
    if value is None:
        raise BitstreamError(f"bitstream header lacks {key!r}")
    if not isinstance(value, int) or isinstance(value, bool):
        raise BitstreamError(f"bitstream header field {key!r} must be an integer, got {type(value).__name__}")
    if not lo <= value <= min(hi, MAX_HEADER_INT):
        raise BitstreamError(f"bitstream header field {key!r} = {value} is outside [{lo}, {hi}]")
    return value


def _as_bytes(blob: Any) -> bytes:
    if isinstance(blob, (str, Path)):
        raise TypeError("decode takes the .mtk bytes; read the file first (Path(f).read_bytes())")
    return bytes(blob)


_THREADS_LOCK = threading.Lock()
_THREADS_USERS = 0
_THREADS_SAVED = 0


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the body with n torch intra-op threads and restore the caller's setting afterwards.

    Small models run fastest on one thread, and collapse (30x slower) with two when another process keeps a
    core busy (benchmarks/codec_threads.py). torch's setting is process-wide, so concurrent users share one
    change: the first sets it, the last restores it, and nobody can leave it changed.
    """
    global _THREADS_USERS, _THREADS_SAVED
    if n is None:
        yield
        return
    with _THREADS_LOCK:
        if _THREADS_USERS == 0:
            _THREADS_SAVED = torch.get_num_threads()
            torch.set_num_threads(max(1, int(n)))
        _THREADS_USERS += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_USERS -= 1
            if _THREADS_USERS == 0:
                torch.set_num_threads(_THREADS_SAVED)
