"""Item discovery: folders and globs in sorted path order, CSV/JSONL manifests with text and metadata."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mediatok.codecs.audio import AUDIO_IO
from mediatok.tokenize import discover

AUDIO = AUDIO_IO.read_suffixes


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_folder_is_recursive_sorted_and_filtered(tmp_path: Path):
    _touch(tmp_path, "b/2.wav", "a.FLAC", "b/1.wav", "c/readme.md", "z.ogg")
    items = discover(tmp_path, AUDIO)
    assert [it.id for it in items] == ["a.FLAC", "b/1.wav", "b/2.wav", "z.ogg"]
    assert items[1].path == "b/1.wav" and Path(items[1].file) == tmp_path / "b/1.wav"


def test_glob_ids_are_relative_to_its_fixed_prefix(tmp_path: Path):
    _touch(tmp_path, "data/x/1.wav", "data/y/2.wav", "data/y/3.flac")
    items = discover(f"{tmp_path}/data/**/*.wav", AUDIO)
    assert [it.id for it in items] == ["x/1.wav", "y/2.wav"]


def test_csv_manifest_keeps_order_text_and_metadata(tmp_path: Path):
    _touch(tmp_path, "clips/b.wav", "clips/a.wav")
    (tmp_path / "m.csv").write_text("path,text,speaker\nclips/b.wav,ahoj svete,7\nclips/a.wav,,\n", encoding="utf-8")
    items = discover(tmp_path / "m.csv")
    assert [it.id for it in items] == ["clips/b.wav", "clips/a.wav"]
    assert items[0].text == "ahoj svete" and items[0].metadata == {"speaker": "7"}
    assert items[1].text is None and items[1].metadata == {}
    assert Path(items[0].file) == tmp_path / "clips/b.wav"


def test_jsonl_manifest_ids_and_metadata(tmp_path: Path):
    rows = [{"id": "u1", "path": "a.wav", "text": "hallo", "metadata": {"lang": "nl"}, "split": "test"},
            {"path": "/abs/b.wav"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    items = discover(tmp_path / "m.jsonl")
    assert items[0].id == "u1" and items[0].metadata == {"lang": "nl", "split": "test"}
    assert items[1].id == "/abs/b.wav" and items[1].file == "/abs/b.wav"


def test_bad_manifests_say_what_is_wrong(tmp_path: Path):
    (tmp_path / "nopath.csv").write_text("file,text\na.wav,x\n")
    with pytest.raises(ValueError, match="'path' column"):
        discover(tmp_path / "nopath.csv")
    (tmp_path / "dup.jsonl").write_text('{"path": "a.wav"}\n{"path": "a.wav"}\n')
    with pytest.raises(ValueError, match="duplicate item id 'a.wav'"):
        discover(tmp_path / "dup.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"path": "a.wav"}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        discover(tmp_path / "bad.jsonl")
    (tmp_path / "nan.jsonl").write_text('{"path": "a.wav", "snr": NaN}\n')
    with pytest.raises(ValueError, match=r"nan.jsonl:1: metadata must be plain JSON"):
        discover(tmp_path / "nan.jsonl")
    with pytest.raises(FileNotFoundError, match="folder, a glob or"):
        discover(tmp_path / "missing")
