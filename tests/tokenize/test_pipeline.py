"""tokenize_dataset: the shards hold the codec's tokens, any worker count writes the same bytes, runs resume."""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mediatok.tokenize import TokenDataset, tokenize_dataset


def _expected_codes(codec, file: Path) -> torch.Tensor:
    data, sr = sf.read(file, dtype="float32", always_2d=True)  # (samples, channels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the resampling notice
        return codec.tokenize(torch.from_numpy(data.T.copy()), sample_rate=sr)


def test_shards_hold_the_codec_tokens(tmp_path: Path, codec, speech_dir: Path):
    out = tmp_path / "out"
    summary = tokenize_dataset(speech_dir, out, codec, shard_size=4, progress=False)
    assert (summary.num_items, summary.num_failed, summary.shards_written, summary.shards_skipped) == (10, 1, 3, 0)
    assert summary.failures[0]["path"] == "spk-a/broken.wav" and "Error" in summary.failures[0]["error"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["name"] == "tiny-speech" and manifest["model"]["num_codebooks"] == 4
    assert manifest["dtype"] == "uint16" and manifest["pattern"] == "flat" and manifest["vocab_size"] == 4 * 64
    assert [s["name"] for s in manifest["shards"]] == ["shard-00000", "shard-00001", "shard-00002"]
    assert np.load(out / "shard-00000.npy").dtype == np.uint16

    ds = TokenDataset(out, pattern=None)
    assert ds.ids == sorted(ds.ids) and len(ds) == 10 and "spk-a/broken.wav" not in ds.ids
    assert ds.ids[0] == "example.wav" and ds[0]["shape"] == (4, 410)  # 8.2 s of real speech at 50 Hz
    for i in (0, 4, 9):
        item = ds[i]
        expected = _expected_codes(codec, speech_dir / item["path"])
        assert torch.equal(item["tokens"], expected), item["id"]
        assert item["shape"] == (4, expected.shape[1]) == ds.shape(i)
        info = sf.info(speech_dir / item["path"])
        assert item["sample_rate"] == info.samplerate  # the audio reader's kwargs for tokenize, recorded
        assert item["unit"] == "s" and item["amount"] == pytest.approx(info.duration)  # the audio I/O's amount
    assert summary.unit == manifest["unit"] == "s"
    assert abs(summary.amount - sum(ds[i]["amount"] for i in range(len(ds)))) < 1e-9
    for name, data in ((p.name, p.read_bytes()) for p in out.iterdir()):  # nothing machine-specific inside
        assert str(tmp_path).encode() not in data and str(speech_dir).encode() not in data, name


def test_worker_count_does_not_change_a_byte(tmp_path: Path, codec, speech_dir: Path, tree_bytes):
    tokenize_dataset(speech_dir, tmp_path / "w1", codec, shard_size=3, workers=1, progress=False)
    tokenize_dataset(speech_dir, tmp_path / "w2", codec, shard_size=3, workers=2, progress=False)
    assert tree_bytes(tmp_path / "w1") == tree_bytes(tmp_path / "w2")


def test_resume_redoes_only_missing_shards(tmp_path: Path, codec, speech_dir: Path, tree_bytes):
    out = tmp_path / "out"
    tokenize_dataset(speech_dir, out, codec, shard_size=3, progress=False)
    reference = tree_bytes(out)
    # What a run killed midway leaves: no manifest, a missing shard, a half-written temp file.
    (out / "manifest.json").unlink()
    (out / "shard-00002.json").unlink()
    (out / ".shard-00003.npy.tmp-4242").write_bytes(b"\x93NUMPY half")
    summary = tokenize_dataset(speech_dir, out, codec, shard_size=3, progress=False)
    assert (summary.shards_written, summary.shards_skipped) == (1, 3)
    assert tree_bytes(out) == reference
    assert tokenize_dataset(speech_dir, out, codec, shard_size=3, progress=False).shards_written == 0


def test_other_weights_or_items_are_not_mixed_in(tmp_path: Path, codec, speech_dir: Path, tree_bytes, make_codec, speech_like):
    data = tmp_path / "data"
    shutil.copytree(speech_dir, data)
    out = tmp_path / "out"
    tokenize_dataset(data, out, codec, shard_size=3, progress=False)
    assert tokenize_dataset(data, out, make_codec(seed=1), shard_size=3, progress=False).shards_written == 4
    for name in ("utt00b.wav", "utt00c.wav"):  # shift every later item: 13 files, 5 shards
        sf.write(data / "spk-a" / name, speech_like(0.5, 16000, seed=99), 16000)
    summary = tokenize_dataset(data, out, codec, shard_size=3, progress=False)
    assert summary.shards_written == 5 and summary.num_items == 12
    for name in ("utt00b.wav", "utt00c.wav"):
        (data / "spk-a" / name).unlink()
    assert tokenize_dataset(data, out, codec, shard_size=3, progress=False).shards_written == 3  # shard 0 still fits
    fresh = tmp_path / "fresh"
    tokenize_dataset(data, fresh, codec, shard_size=3, progress=False)
    assert tree_bytes(out) == tree_bytes(fresh)  # the stale fifth shard is gone too


def test_dataset_patterns_invert_to_the_codec_audio(tmp_path: Path, codec, speech_dir: Path):
    out = tmp_path / "out"
    tokenize_dataset(speech_dir, out, codec, shard_size=4, pattern="delay", progress=False)
    raw = TokenDataset(out, pattern=None)[2]["tokens"]
    delay = TokenDataset(out)  # the manifest's pattern
    assert delay.pattern.name == "delay" and delay.vocab_size == 65
    assert delay[2]["tokens"].shape == (4, raw.shape[1] + 3)
    flat = TokenDataset(out, pattern="flat")
    seq = flat[2]["tokens"]
    assert seq.shape == (4 * raw.shape[1],) and int(seq.max()) < flat.vocab_size == 256
    wav, sr = flat.detokenize(seq, codec)
    ref, ref_sr = codec.detokenize(raw)
    assert sr == ref_sr == 16000 and torch.equal(wav, ref)
    loader = torch.utils.data.DataLoader(flat, batch_size=None, num_workers=0)
    assert sum(1 for _ in loader) == 10
    assert len(TokenDataset(out, verify=True)) == 10
    with open(out / "shard-00001.npy", "r+b") as f:  # flip one token
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(ValueError, match="does not match the sha256"):
        TokenDataset(out, verify=True)


def test_manifest_input_and_model_by_folder(tmp_path: Path, codec, codec_dir: Path, speech_dir: Path):
    rows = [{"path": str(speech_dir / "spk-b" / "utt03.wav"), "id": "s3", "text": "dobrý den", "speaker": "b"},
            {"path": "missing.wav", "id": "gone"},
            {"path": str(speech_dir / "spk-a" / "utt00.wav"), "id": "s0", "metadata": {"lang": "cs"}}]
    manifest = tmp_path / "clips.jsonl"
    manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    summary = tokenize_dataset(manifest, tmp_path / "out", str(codec_dir), progress=False)
    assert summary.num_items == 2 and [f["id"] for f in summary.failures] == ["gone"]
    ds = TokenDataset(tmp_path / "out", pattern=None)
    assert ds.ids == ["s3", "s0"]  # manifest order
    assert ds[0]["text"] == "dobrý den" and ds[0]["metadata"] == {"speaker": "b"} and ds[1]["metadata"] == {"lang": "cs"}
    assert torch.equal(ds[1]["tokens"], _expected_codes(codec, speech_dir / "spk-a" / "utt00.wav"))


def test_nothing_to_tokenize_is_an_error(tmp_path: Path, codec):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        tokenize_dataset(tmp_path / "empty", tmp_path / "out", codec, progress=False)
    with pytest.raises(ValueError, match="pattern must be one of"):
        tokenize_dataset(tmp_path / "empty", tmp_path / "out", codec, pattern="zigzag")


def test_a_dying_worker_stops_the_run_and_a_rerun_finishes_it(tmp_path: Path, codec, speech_dir: Path, tree_bytes,
                                                                monkeypatch):
    from mediatok.tokenize import jobs

    tokenize_dataset(speech_dir, tmp_path / "reference", codec, shard_size=2, progress=False)
    original = jobs.tokenize_item

    def crash_on_utt05(item, codec, io, options=None):
        if item.path == "spk-b/utt05.wav":  # its worker dies as if the OOM killer took it
            os._exit(3)
        return original(item, codec, io, options)

    monkeypatch.setattr(jobs, "tokenize_item", crash_on_utt05)  # fork workers inherit the patch
    with pytest.raises(RuntimeError, match="worker process died"):
        tokenize_dataset(speech_dir, tmp_path / "out", codec, shard_size=2, workers=2, progress=False)
    assert not (tmp_path / "out" / "manifest.json").exists()
    monkeypatch.setattr(jobs, "tokenize_item", original)
    summary = tokenize_dataset(speech_dir, tmp_path / "out", codec, shard_size=2, workers=2, progress=False)
    assert summary.shards_skipped >= 1 and tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "reference")


def test_older_format_shards_are_rewritten_not_reused(tmp_path: Path, codec, speech_dir: Path, tree_bytes, caplog):
    out = tmp_path / "out"
    tokenize_dataset(speech_dir, out, codec, shard_size=4, progress=False)
    reference = tree_bytes(out)
    for index in out.glob("shard-*.json"):  # what mediatok-tokens/1 left: same files, older layout
        doc = json.loads(index.read_text())
        index.write_text(json.dumps({**doc, "format": "mediatok-tokens/1"}))
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "format": "mediatok-tokens/1"}))
    with pytest.raises(ValueError, match=r"format 'mediatok-tokens/1', expected 'mediatok-tokens/2': re-tokenize"):
        TokenDataset(out)
    summary = tokenize_dataset(speech_dir, out, codec, shard_size=4, progress=False)
    assert (summary.shards_written, summary.shards_skipped) == (3, 0)
    assert "shard-00000.json is format 'mediatok-tokens/1'" in caplog.text
    assert tree_bytes(out) == reference
