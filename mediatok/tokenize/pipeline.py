"""Dataset -> token shards: plan shards by sorted item order, tokenize the unfinished ones, write the manifest.

    items (sorted) --chunks of shard_size--> shard jobs --(in process | N worker processes | Lightning DDP)-->
        shard-k.npy + shard-k.json (atomic, any order) --all present--> manifest.json

Determinism: an item's shard depends only on its position in the sorted list; each item is tokenized alone
with one intra-op thread, so batch composition and thread count never change a token; files hold no
timestamps or worker ids. Resuming: a shard whose index exists, lists the planned ids and names the same
weights is kept; everything else is redone. A file that fails to load or tokenize is logged, listed in its
shard's index and in the manifest, and skipped.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue as queue_mod
import re
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mediatok.tokenize.modalities import CodecInfo, Loader, codec_info, load_codec, loader_for
from mediatok.tokenize.patterns import PATTERNS, get_pattern
from mediatok.tokenize.shards import (
    FORMAT, MANIFEST, atomic_write, dumps, read_index, sha256_file, shard_name, token_dtype, write_shard,
)
from mediatok.tokenize.sources import Item, discover

log = logging.getLogger("mediatok.tokenize")


@dataclass(frozen=True)
class ShardJob:
    """Shard `index` holds these items, in this order."""

    index: int
    items: tuple[Item, ...]


@dataclass(frozen=True)
class TokenizeSummary:
    """What a `tokenize_dataset` run did."""

    out: Path
    num_items: int  # items in the finished dataset
    num_failed: int
    num_tokens: int
    duration: float  # seconds of media tokenized (audio), over the whole dataset
    shards_written: int  # by this run
    shards_skipped: int  # finished by an earlier run
    seconds: float  # wall time of this run
    failures: list[dict[str, str]] = field(default_factory=list)


def is_rank_zero() -> bool:
    """False in the extra processes of a multi-process Lightning/torchrun run (they repeat rank 0's summary)."""
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def plan_shards(items: Sequence[Item], shard_size: int) -> list[ShardJob]:
    """Fixed-size consecutive chunks of the item list."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    return [ShardJob(k, tuple(items[i : i + shard_size])) for k, i in enumerate(range(0, len(items), shard_size))]


def shard_header(info: CodecInfo) -> dict[str, Any]:
    """The codec facts every shard index repeats (a resumed run compares them)."""
    return {"model": info.to_dict(), "dtype": token_dtype(info.codebook_size).name}


def shard_done(out: Path, job: ShardJob, header: dict[str, Any]) -> bool:
    """Whether an earlier run finished this exact shard with the same weights."""
    doc = read_index(out, job.index)
    if doc is None or doc["planned"] != [it.id for it in job.items]:
        return False
    return all(doc.get(k) == v for k, v in header.items())


def _codes_array(codes: Any, header: dict[str, Any]) -> np.ndarray:
    """The codec's tokens -> a checked numpy array of the shard dtype, (codebooks, *positions)."""
    model = header["model"]
    codes = codes.detach().cpu() if isinstance(codes, torch.Tensor) else torch.as_tensor(codes)
    if codes.ndim < 2 or codes.shape[0] != model["num_codebooks"] or codes.dtype.is_floating_point:
        raise ValueError(f"codec returned tokens {codes.dtype} {tuple(codes.shape)}; "
                         f"expected integers ({model['num_codebooks']}, frames)")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= model["codebook_size"]):
        raise ValueError(f"codec returned tokens outside [0, {model['codebook_size']})")
    return codes.numpy().astype(header["dtype"])


Records = list[dict[str, Any]]


def tokenize_items(job: ShardJob, codec: Any, loader: Loader, header: dict[str, Any],
                   on_item: Callable[[float], None] | None = None) -> tuple[Records, list[np.ndarray], Records]:
    """Tokenize one shard's items one at a time -> (records, token arrays, failures)."""
    records, arrays, failures = [], [], []
    for item in job.items:
        duration = 0.0
        try:
            x, facts = loader.load(item.file)
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="resampling from")  # expected here: the codec resamples
                arrays.append(_codes_array(loader.tokenize(codec, x, facts), header))
        except Exception as e:  # noqa: BLE001 - one bad file must not stop a dataset; it is reported instead
            msg = f"{type(e).__name__}: {e}".replace(item.file, item.path)  # no machine-specific paths in shards
            log.warning("skipping %s: %s", item.path, msg)
            failures.append({"id": item.id, "path": item.path, "error": msg})
        else:
            records.append({"id": item.id, "path": item.path, "text": item.text, "metadata": item.metadata, **facts})
            duration = float(facts.get("duration", 0.0))
        if on_item is not None:
            on_item(duration)
    return records, arrays, failures


def run_shard(job: ShardJob, codec: Any, loader: Loader, header: dict[str, Any], out: Path,
              on_item: Callable[[float], None] | None = None) -> int:
    """Tokenize and write one shard; returns its number of failed items."""
    records, arrays, failures = tokenize_items(job, codec, loader, header, on_item)
    write_shard(out, job.index, [it.id for it in job.items], records, arrays, failures, header)
    return len(failures)


def prepare_out(out: Path, num_shards: int) -> None:
    """Remove what a finished manifest or a killed run may have left: the manifest, temp files, stale shards."""
    (out / MANIFEST).unlink(missing_ok=True)
    for p in out.iterdir():
        m = re.fullmatch(r"shard-(\d+)\.(npy|json)", p.name)
        stale = m is not None and int(m.group(1)) >= num_shards
        if stale or (p.name.startswith(".") and ".tmp-" in p.name):
            p.unlink()


def finalize(out: Path, num_shards: int, header: dict[str, Any], pattern: str, shard_size: int) -> dict[str, Any]:
    """Write manifest.json once every shard exists; returns it."""
    shards, failures = [], []
    num_items = num_tokens = 0
    duration = 0.0
    for k in range(num_shards):
        doc = read_index(out, k)
        if doc is None or any(doc.get(key) != v for key, v in header.items()):
            raise RuntimeError(f"shard {shard_name(k)} in {out} is missing or was made by other weights; "
                               "re-run to finish it")
        name = shard_name(k)
        shards.append({"index": k, "name": name, "items": len(doc["items"]), "tokens": doc["num_tokens"],
                       "sha256": sha256_file(out / f"{name}.npy")})
        num_items += len(doc["items"])
        num_tokens += doc["num_tokens"]
        duration += sum(float(r.get("duration", 0.0)) for r in doc["items"])
        failures += doc["failures"]
    model = header["model"]
    p = get_pattern(pattern, model["num_codebooks"], model["codebook_size"])
    manifest = {
        **header, "format": FORMAT, "pattern": pattern, "vocab_size": p.vocab_size, "pad_id": p.pad_id,
        "shard_size": shard_size, "num_items": num_items, "num_failed": len(failures), "num_tokens": num_tokens,
        "duration": duration, "shards": shards, "failures": failures,
    }
    atomic_write(out / MANIFEST, dumps(manifest))
    return manifest


class _Progress:
    """tqdm bar over items with items/s, ETA and x real time (media seconds per wall second)."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=done, unit="item", desc="tokenize", disable=not enabled, dynamic_ncols=True)
        self.t0, self.media = time.perf_counter(), 0.0

    def update(self, duration: float) -> None:
        self.media += duration
        rt = self.media / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"{rt:.0f}x real time", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


_WORKER: dict[str, Any] = {}


def _init_worker(model: Any, device: str | None, progress: Any) -> None:
    torch.set_num_threads(1)  # one thread per process: deterministic kernels and no oversubscription
    codec = _place(load_codec(model), device)
    _WORKER.update(codec=codec, loader=loader_for(codec), progress=progress)


def _worker_shard(job: ShardJob, header: dict[str, Any], out: Path) -> int:
    return run_shard(job, _WORKER["codec"], _WORKER["loader"], header, out, on_item=_WORKER["progress"].put)


def _place(codec: Any, device: str | None) -> Any:
    if device is not None and hasattr(codec, "to"):
        moved = codec.to(device)
        codec = codec if moved is None else moved
    return codec


def _run_pool(jobs: list[ShardJob], model: Any, device: str | None, header: dict[str, Any], out: Path,
              workers: int, bar: _Progress) -> None:
    # fork starts a worker in milliseconds instead of re-importing torch (seconds); it is safe here because each
    # worker runs with one intra-op thread (no OpenMP pool to inherit) and never touches CUDA. CUDA needs spawn.
    cuda = torch.cuda.is_initialized() or (device or "cpu").startswith("cuda")
    fork = "fork" in mp.get_all_start_methods() and not cuda
    ctx = mp.get_context("fork" if fork else "spawn")
    progress = ctx.Queue()

    def drain(timeout: float) -> None:
        try:
            bar.update(progress.get(timeout=timeout))
            while True:
                bar.update(progress.get_nowait())
        except queue_mod.Empty:
            pass

    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx, initializer=_init_worker,
                             initargs=(model, device, progress)) as pool:
        pending = {pool.submit(_worker_shard, job, header, out) for job in jobs}
        try:
            while pending:
                drain(0.2)
                done, pending = wait(pending, timeout=0, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()
        except BrokenProcessPool as e:
            raise RuntimeError("a tokenize worker process died (out of memory, or the model failed to load); "
                               "finished shards are kept, re-run to resume") from e
        except BaseException:
            for f in pending:
                f.cancel()
            raise
        drain(0.0)


def tokenize_dataset(data: str | Path, out: str | Path, model: Any, *, pattern: str = "flat", shard_size: int = 256,
                     workers: int = 1, devices: int | None = None, accelerator: str = "auto", num_nodes: int = 1,
                     strategy: str | None = None, device: str | None = None, progress: bool = True) -> TokenizeSummary:
    """Tokenize every item of `data` (folder, glob or CSV/JSONL manifest) into shards under `out`.

    `model` is a registry name or checkpoint folder (loaded with `mediatok.load` in each process) or a codec
    object. `workers` > 1 runs that many processes on this machine; `devices` runs through Lightning
    (`Trainer.predict` + a prediction writer, DDP across devices and `num_nodes`). Any of these give
    byte-identical shards. A re-run skips finished shards.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    codec = _place(load_codec(model), device)
    loader, info = loader_for(codec), codec_info(codec, model)
    items = discover(data, loader.extensions)
    if not items:
        raise ValueError(f"no {loader.modality} files ({', '.join(loader.extensions)}) found in {os.fspath(data)!r}")
    jobs = plan_shards(items, shard_size)
    header = shard_header(info)
    out.mkdir(parents=True, exist_ok=True)
    prepare_out(out, len(jobs))
    todo = [j for j in jobs if not shard_done(out, j, header)]
    spec = model if isinstance(model, (str, os.PathLike)) else codec  # what other processes load (or inherit)
    if devices is not None:
        from mediatok.tokenize.distributed import run_lightning

        run_lightning(todo, spec, header, out, devices=devices, accelerator=accelerator, num_nodes=num_nodes,
                      strategy=strategy)
    else:
        bar = _Progress(len(items), len(items) - sum(len(j.items) for j in todo), progress)
        try:
            if workers > 1 and len(todo) > 1:
                _run_pool(todo, spec, device, header, out, workers, bar)
            else:
                threads = torch.get_num_threads()
                torch.set_num_threads(1)  # same kernels as the worker processes, hence the same tokens
                try:
                    for job in todo:
                        run_shard(job, codec, loader, header, out, on_item=bar.update)
                finally:
                    torch.set_num_threads(threads)
        finally:
            bar.close()
    m = finalize(out, len(jobs), header, pattern, shard_size)
    if m["failures"] and is_rank_zero():
        log.warning("%d of %d items failed and were skipped; see %s", m["num_failed"], len(items), out / MANIFEST)
    return TokenizeSummary(
        out=out, num_items=m["num_items"], num_failed=m["num_failed"], num_tokens=m["num_tokens"], duration=m["duration"],
        shards_written=len(todo), shards_skipped=len(jobs) - len(todo), seconds=time.perf_counter() - t0,
        failures=m["failures"],
    )
