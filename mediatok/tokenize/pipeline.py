"""Dataset -> token shards: plan shards by sorted item order, tokenize the unfinished ones, write the manifest.

    items (sorted) --chunks of shard_size--> shard jobs --(in process | N worker processes | Lightning DDP)-->
        shard-k.npy + shard-k.json (atomic, any order) --all present--> manifest.json

Determinism: an item's shard depends only on its position in the sorted list; each item is tokenized alone
with one intra-op thread (the caller's setting restored afterwards), so batch composition and thread count never
change a token; files hold no
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
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mediatok.tokenize.jobs import ShardJob, plan_shards, run_shard, shard_header
from mediatok.tokenize.media import codec_info, load_codec, media_io, place, resolve_device
from mediatok.tokenize.patterns import PATTERNS, get_pattern
from mediatok.tokenize.shards import FORMAT, MANIFEST, atomic_write, dumps, read_index, sha256_file, shard_name
from mediatok.tokenize.sources import discover

log = logging.getLogger("mediatok.tokenize")


@dataclass(frozen=True)
class TokenizeSummary:
    """What a `tokenize_dataset` run did."""

    out: Path
    num_items: int  # items in the finished dataset
    num_failed: int
    num_tokens: int
    amount: float  # media tokenized over the whole dataset, in `unit`s
    unit: str | None  # the family I/O's unit: "s" (audio), "px", "vox", ...; None when no item succeeded
    shards_written: int  # by this run
    shards_skipped: int  # finished by an earlier run
    seconds: float  # wall time of this run
    failures: list[dict[str, str]] = field(default_factory=list)


def is_rank_zero() -> bool:
    """False in the extra processes of a multi-process Lightning/torchrun run (they repeat rank 0's summary)."""
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def shard_done(out: Path, job: ShardJob, header: dict[str, Any]) -> bool:
    """Whether an earlier run finished this exact shard with the same weights."""
    doc = read_index(out, job.index)
    if doc is None or doc["planned"] != [it.id for it in job.items]:
        return False
    return all(doc.get(k) == v for k, v in header.items())


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
    amount, units = 0.0, set()
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
        amount += sum(float(r["amount"]) for r in doc["items"])
        units.update(r["unit"] for r in doc["items"])
        failures += doc["failures"]
    if len(units) > 1:  # one family's I/O measures every item of a modality the same way
        raise RuntimeError(f"items of {out} measure their media in different units {sorted(units)}")
    model = header["model"]
    p = get_pattern(pattern, model["num_codebooks"], model["codebook_size"])
    manifest = {
        **header, "format": FORMAT, "pattern": pattern, "vocab_size": p.vocab_size, "pad_id": p.pad_id,
        "shard_size": shard_size, "num_items": num_items, "num_failed": len(failures), "num_tokens": num_tokens,
        "amount": amount, "unit": units.pop() if units else None, "shards": shards, "failures": failures,
    }
    atomic_write(out / MANIFEST, dumps(manifest))
    return manifest


class _Progress:
    """tqdm bar over items with items/s, ETA and media per wall second (x real time for audio)."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=done, unit="item", desc="tokenize", disable=not enabled, dynamic_ncols=True)
        self.t0, self.media = time.perf_counter(), 0.0

    def update(self, amount: float, unit: str) -> None:
        self.media += amount
        rate = self.media / max(time.perf_counter() - self.t0, 1e-9)
        if unit:
            self.bar.set_postfix_str(f"{rate:.0f}x real time" if unit == "s" else f"{rate:.3g} {unit}/s", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


_WORKER: dict[str, Any] = {}


def _init_worker(model: Any, device: torch.device | None, progress: Any) -> None:
    # This process is ours: one intra-op thread for its whole life (no oversubscription of the cores by N workers);
    # tokenize_items pins it per shard anyway, so the tokens are those of every other path.
    torch.set_num_threads(1)
    codec = place(load_codec(model), device)
    _WORKER.update(codec=codec, io=media_io(codec), progress=progress)


def _report(amount: float, unit: str) -> None:
    _WORKER["progress"].put((amount, unit))


def _worker_shard(job: ShardJob, header: dict[str, Any], out: Path) -> int:
    return run_shard(job, _WORKER["codec"], _WORKER["io"], header, out, on_item=_report)


def _run_pool(jobs: list[ShardJob], model: Any, device: torch.device | None, header: dict[str, Any], out: Path,
              workers: int, bar: _Progress) -> None:
    # fork starts a worker in milliseconds instead of re-importing torch (seconds); it is safe here because each
    # worker runs with one intra-op thread (no OpenMP pool to inherit) and never touches CUDA. CUDA needs spawn.
    cuda = torch.cuda.is_initialized() or (device is not None and device.type == "cuda")
    fork = "fork" in mp.get_all_start_methods() and not cuda
    ctx = mp.get_context("fork" if fork else "spawn")
    progress = ctx.Queue()

    def drain(timeout: float) -> None:
        try:
            bar.update(*progress.get(timeout=timeout))
            while True:
                bar.update(*progress.get_nowait())
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


@contextmanager
def _placed(codec: Any, device: torch.device | None) -> Iterator[Any]:
    """The codec on `device` for the body, then back where it was: a caller's codec object is not left moved."""
    before = getattr(codec, "device", None)
    moved = place(codec, device)
    try:
        yield moved
    finally:
        if device is not None and before is not None:
            place(moved, before)


def tokenize_dataset(data: str | Path, out: str | Path, model: Any, *, pattern: str = "flat", shard_size: int = 256,
                     workers: int = 1, devices: int | None = None, accelerator: str = "auto", num_nodes: int = 1,
                     strategy: str | None = None, device: str | torch.device | None = None,
                     options: dict[str, Any] | None = None, progress: bool = True) -> TokenizeSummary:
    """Tokenize every item of `data` (folder, glob or CSV/JSONL manifest) into shards under `out`.

    `model` is a registry name or checkpoint folder (loaded with `mediatok.load` in each process) or a codec
    object (anything with `tokenize`, `modality`, `num_codebooks`, `codebook_size`); its modality picks the
    registered family's media I/O, which reads the files. `workers` > 1 runs that many processes on this
    machine; `devices` runs through Lightning (`Trainer.predict` + a prediction writer, DDP across `devices`
    x `num_nodes` on `accelerator`). Without `devices`, the codec runs on `device`, or on the accelerator's
    device ("gpu" -> cuda; "auto" and "cpu" -> the CPU). CPU runs of any of these kinds give byte-identical
    shards. A re-run skips finished shards. torch's thread setting is left as it was.

    `options` go to every `codec.tokenize` call, e.g. {"codebook_size": 1024, "downscale": 2} for an image model's
    nested codebook at one token per 16 x 16 pixels; they are checked before any file is read and recorded in
    the manifest, whose `codebook_size` (the vocabulary) is then the nested one.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if devices is not None and device is not None:
        raise ValueError(f"pass device={device!r} or devices={devices} (Lightning picks each rank's device), not both")
    codec = load_codec(model)
    io, info = media_io(codec), codec_info(codec, model, options)
    target = resolve_device(device, accelerator) if devices is None else None
    if devices is not None and accelerator in ("gpu", "cuda"):
        resolve_device(None, accelerator)  # the same clear error as without devices, before Lightning starts
    items = discover(data, io.read_suffixes)
    if not items:
        raise ValueError(f"no {info.modality} files ({', '.join(io.read_suffixes)}) found in {os.fspath(data)!r}")
    jobs = plan_shards(items, shard_size)
    header = shard_header(info)
    out.mkdir(parents=True, exist_ok=True)
    prepare_out(out, len(jobs))
    todo = [j for j in jobs if not shard_done(out, j, header)]
    spec = model if isinstance(model, (str, os.PathLike)) else codec  # what other processes load (or inherit);
    # each of them moves its own copy to the device, so the parent's codec never needs to be on it
    if devices is not None:
        from mediatok.tokenize.distributed import run_lightning

        run_lightning(todo, spec, header, out, devices=devices, accelerator=accelerator, num_nodes=num_nodes,
                      strategy=strategy)
    else:
        bar = _Progress(len(items), len(items) - sum(len(j.items) for j in todo), progress)
        try:
            if workers > 1 and len(todo) > 1:
                _run_pool(todo, spec, target, header, out, workers, bar)
            elif todo:
                with _placed(codec, target) as placed:
                    for job in todo:
                        run_shard(job, placed, io, header, out, on_item=bar.update)
        finally:
            bar.close()
    m = finalize(out, len(jobs), header, pattern, shard_size)
    if m["failures"] and is_rank_zero():
        log.warning("%d of %d items failed and were skipped; see %s", m["num_failed"], len(items), out / MANIFEST)
    return TokenizeSummary(
        out=out, num_items=m["num_items"], num_failed=m["num_failed"], num_tokens=m["num_tokens"], amount=m["amount"],
        unit=m["unit"], shards_written=len(todo), shards_skipped=len(jobs) - len(todo),
        seconds=time.perf_counter() - t0, failures=m["failures"],
    )
