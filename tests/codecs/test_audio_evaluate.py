"""`mediatok eval` for audio: one row per held-out split plus a pooled row, and baselines found in a tools folder."""
from __future__ import annotations

import math
import os

import pytest
import soundfile as sf

from audio_helpers import speechlike
from mediatok.codecs.audio.evaluate import TOP_LEVEL, evaluate, find_tool, format_table, splits_of


def _wav(path, seconds, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), speechlike(seconds, seed=seed).numpy(), 16000, subtype="PCM_16")


@pytest.fixture()
def held_out(tmp_path):
    root = tmp_path / "test"
    _wav(root / "asterisk-en" / "a.wav", 1.0, 0)
    _wav(root / "asterisk-en" / "b.wav", 1.5, 1)
    _wav(root / "fillets-cs" / "level" / "c.wav", 2.0, 2)  # nested deeper: still the sub-folder's split
    (root / "empty").mkdir()  # no audio: not a split
    return root


def test_splits_are_the_sub_folders_holding_audio(held_out, tmp_path):
    splits = splits_of(held_out)
    assert list(splits) == ["asterisk-en", "fillets-cs"]
    assert [p.name for p in splits["asterisk-en"]] == ["a.wav", "b.wav"] and len(splits["fillets-cs"]) == 1
    assert [len(v) for v in splits_of(held_out, limit=1).values()] == [1, 1]  # the limit is per split
    _wav(held_out / "loose.wav", 1.0, 3)
    assert splits_of(held_out)[TOP_LEVEL] == [held_out / "loose.wav"]
    flat = splits_of(held_out / "asterisk-en")
    assert list(flat) == ["asterisk-en"] and len(flat["asterisk-en"]) == 2  # no sub-folders: one split, as before
    with pytest.raises(FileNotFoundError, match="no audio"):
        splits_of(held_out / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        splits_of(tmp_path / "missing")


def test_one_row_per_split_and_a_pooled_row(tiny_codec, held_out):
    rows = evaluate(tiny_codec, held_out, with_baselines=False)
    assert [r["split"] for r in rows] == ["asterisk-en", "fillets-cs", "pooled"]
    en, cs, pooled = rows
    assert (en["files"], cs["files"], pooled["files"]) == (2, 1, 3)
    assert pooled["minutes"] == pytest.approx((1.0 + 1.5 + 2.0) / 60)
    assert pooled["kbps"] == pytest.approx((en["kbps"] * 2.5 + cs["kbps"] * 2.0) / 4.5)  # weighted by duration
    assert pooled["mel"] == pytest.approx((2 * en["mel"] + cs["mel"]) / 3)  # quality: every file counts once
    assert pooled["utilization"] >= max(en["utilization"], cs["utilization"]) > 0
    assert pooled["raw_kbps"] == pytest.approx(tiny_codec.bitrate / 1000, rel=0.05)
    table = format_table(rows).splitlines()
    assert table[0].startswith("| split | min | system | kbps |")
    assert table[2].startswith("| asterisk-en | 0.0 | tiny-test (ours) |") and table[-1].startswith("| pooled |")


def test_a_plain_folder_keeps_the_single_table(tiny_codec, held_out):
    rows = evaluate(tiny_codec, held_out / "asterisk-en", with_baselines=False)
    assert len(rows) == 1 and "split" not in rows[0] and rows[0]["files"] == 2
    assert format_table(rows).splitlines()[0].startswith("| system | kbps |")


FAKE_TOOL = """#!/bin/sh
# stands in for NAME: copies its input to its output, and fails unless the unpacked libraries are on the path
case "$LD_LIBRARY_PATH" in *LIBS*) ;; *) exit 3 ;; esac
/bin/cp "$IN" "$OUT"
"""


def _fake_tools(root):
    bin_dir, lib_dir = root / "usr" / "bin", root / "usr" / "lib" / "x86_64-linux-gnu"
    bin_dir.mkdir(parents=True)
    lib_dir.mkdir(parents=True)
    for name, n_in, n_out in (("c2enc", 2, 3), ("c2dec", 2, 3), ("opusenc", 4, 5), ("opusdec", 4, 5)):
        tool = bin_dir / name
        script = FAKE_TOOL.replace("NAME", name).replace("LIBS", str(lib_dir))
        tool.write_text(script.replace("$IN", f"${n_in}").replace("$OUT", f"${n_out}"))
        tool.chmod(0o755)
    return lib_dir


def test_baselines_are_found_in_the_tools_folder(tiny_codec, held_out, tmp_path, monkeypatch):
    lib_dir = _fake_tools(tmp_path / "tools")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # hide any installed codec2 / opus-tools
    monkeypatch.setenv("MEDIATOK_TOOLS", str(tmp_path / "tools"))
    exe, env = find_tool("c2enc")
    assert exe == str(tmp_path / "tools" / "usr" / "bin" / "c2enc") and str(lib_dir) in env["LD_LIBRARY_PATH"]
    assert find_tool("no-such-tool") is None
    rows = evaluate(tiny_codec, held_out, with_baselines=True)
    systems = [(r["split"], r["system"]) for r in rows]
    assert systems[:4] == [("asterisk-en", "tiny-test (ours)"), ("asterisk-en", "codec2-1200"),
                           ("asterisk-en", "codec2-3200"), ("asterisk-en", "opus-6k")]
    assert len(rows) == 12 and systems[-1] == ("pooled", "opus-6k")
    opus = {r["split"]: r for r in rows if r["system"] == "opus-6k"}
    codec2 = {r["split"]: r for r in rows if r["system"] == "codec2-1200"}
    assert opus["pooled"]["mel"] < 0.05  # the fake Opus hands back the 16-bit input itself
    assert codec2["pooled"]["kbps"] == pytest.approx(8 * 16, rel=0.01)  # and the fake Codec2 raw 8 kHz PCM-16
    assert all(not math.isnan(r["x_realtime"]) for r in rows)


def test_tools_on_path_come_first(tmp_path, monkeypatch):
    _fake_tools(tmp_path / "tools")
    on_path = tmp_path / "bin"
    on_path.mkdir()
    (on_path / "c2enc").write_text("#!/bin/sh\n")
    (on_path / "c2enc").chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.setenv("MEDIATOK_TOOLS", str(tmp_path / "tools"))
    assert find_tool("c2enc") == (str(on_path / "c2enc"), None)
    assert os.path.dirname(find_tool("c2dec")[0]) == str(tmp_path / "tools" / "usr" / "bin")
