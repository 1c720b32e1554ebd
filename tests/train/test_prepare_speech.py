"""scripts/prepare_speech.py: the fixed split rules and the layout it writes, on a tiny fake unpacked tree (offline)."""
from __future__ import annotations

import importlib.util
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mediatok.train.audio import ClipArray
from mediatok.train.audio.augment import loudness_lufs

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
VOICES = {"en": "en_US_f_Allison", "es": "es_MX_f_Allison", "fr": "fr_CA_f_June", "it": "it_IT_m_Carlo",
          "ru": "ru_RU_f_IvrvoiceRU"}


@pytest.fixture(scope="module")
def prep():
    sys.path.insert(0, str(SCRIPTS))  # the script imports debian.py beside it
    spec = importlib.util.spec_from_file_location("prepare_speech", SCRIPTS / "prepare_speech.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SCRIPTS))


def _tone(seconds: float, level: float, sr: int, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    return (level * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
            + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


def test_split_rules_are_fixed(prep):
    assert [prep.split_of(i) for i in range(8)] == ["train"] * 3 + ["test"] + ["train"] * 3 + ["val"]
    assert prep.split_of(13) == "test" and prep.split_of(27) == "val" and prep.split_of(17) == "train"
    assert all(prep.asterisk_split_of(lang, "digits/7") == "test" for lang in ("en", "es"))  # one held-out speaker
    prompts = [f"vm-prompt-{i}" for i in range(2000)]
    fr = [prep.asterisk_split_of("fr", p) for p in prompts]
    assert fr == [prep.asterisk_split_of("ru", p) for p in prompts]  # the same prompts held out in every language
    assert 0.08 < fr.count("test") / len(fr) < 0.12 and 0.03 < fr.count("val") / len(fr) < 0.07
    assert zlib.crc32(b"vm-p8") % 10 == 3 and prep.asterisk_split_of("it", "vm-p8") == "test"


def _fake_raw(raw: Path, prep, with_asterisk: bool) -> None:
    sound = raw / prep.SOUND_DIR
    for i in range(8):  # level 3 is test, level 7 is val
        for j, lang in enumerate(prep.LANGUAGES):
            folder = sound / f"level{i}" / lang
            folder.mkdir(parents=True)
            sf.write(str(folder / "a.ogg"), _tone(1.2, 0.05 * (1 + j), 22050, seed=i), 22050)
            sf.write(str(folder / "b.ogg"), _tone(0.5, 0.3, 22050, seed=i), 22050)  # kept, but too short for test/
            sf.write(str(folder / "click.ogg"), _tone(0.05, 0.3, 22050), 22050)  # under 0.1 s: dropped
    if with_asterisk:
        from G722 import G722

        for k, (lang, voice) in enumerate(VOICES.items()):
            for prompt in ("vm-p8", "vm-p16", "vm-p0", "silence/1", "digits/x"):
                path = raw / prep.ASTERISK_DIR / voice / f"{prompt}.g722"
                path.parent.mkdir(parents=True, exist_ok=True)
                x = _tone(0.5 if prompt == "digits/x" else 1.5, 0.02 * (k + 1), 16000, seed=k)
                path.write_bytes(bytes(G722(16000, 64000).encode((x * 32767).astype(np.int16))))
    for tool in ("c2enc", "opusenc"):  # present, so nothing is downloaded
        (raw.parent / "tools" / "usr" / "bin").mkdir(parents=True, exist_ok=True)
        (raw.parent / "tools" / "usr" / "bin" / tool).touch()


def test_v1_layout_and_split_by_level(prep, tmp_path):
    _fake_raw(tmp_path / "raw", prep, with_asterisk=False)
    out = tmp_path / "speech16k"
    prep.main(["--raw", str(tmp_path / "raw"), "--out", str(out), "--tools", str(tmp_path / "tools"), "--v1-only"])
    names = {s: (out / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert names["test"] == ["level3/cs/a.ogg", "level3/cs/b.ogg", "level3/nl/a.ogg", "level3/nl/b.ogg"]
    assert names["val"][0] == "level7/cs/a.ogg" and len(names["train"]) == 6 * 2 * 2
    clips = ClipArray(out, "test")
    assert list(clips.lengths) == [19200, 8000, 19200, 8000]  # 16 kHz
    assert sorted(p.name for p in (out / "test_wav").iterdir())[0] == "level3_cs_a.wav"
    assert not (out / "wide").exists() and not (out / "test").exists()


def test_full_layout_with_asterisk(prep, tmp_path):
    pytest.importorskip("G722")
    _fake_raw(tmp_path / "raw", prep, with_asterisk=True)
    out = tmp_path / "speech16k"
    prep.main(["--raw", str(tmp_path / "raw"), "--out", str(out), "--tools", str(tmp_path / "tools")])
    test = out / "test"
    assert sorted(p.name for p in test.iterdir()) == ["asterisk-en", "asterisk-es", "asterisk-fr", "asterisk-it",
                                                      "asterisk-ru", "fillets-cs", "fillets-nl"]
    assert sorted(p.name for p in (test / "asterisk-en").iterdir()) == [
        "en_US_f_Allison_vm-p0.wav", "en_US_f_Allison_vm-p16.wav", "en_US_f_Allison_vm-p8.wav"]  # no silence/, no < 1 s
    assert [p.name for p in (test / "asterisk-fr").iterdir()] == ["fr_CA_f_June_vm-p8.wav"]
    assert [p.name for p in (test / "fillets-cs").iterdir()] == ["level3_cs_a.wav"]
    wide_train = (out / "wide" / "train.txt").read_text().split()
    wide_val = (out / "wide" / "val.txt").read_text().split()
    assert "asterisk/fr_CA_f_June/vm-p0.g722" in wide_train and "asterisk/it_IT_m_Carlo/digits/x.g722" in wide_train
    assert "asterisk/ru_RU_f_IvrvoiceRU/vm-p16.g722" in wide_val
    assert not any("Allison" in n or "vm-p8" in n or "silence" in n for n in wide_train + wide_val)
    assert "fillets-ng/level0/cs/a.ogg" in wide_train and "fillets-ng/level7/nl/a.ogg" in wide_val
    clips = ClipArray(out / "wide", "train")
    levels = [loudness_lufs(np.asarray(clips.crop(i, 0, int(clips.lengths[i]))), 16000) for i in range(len(clips))]
    assert max(abs(v + 23) for v in levels) < 0.1  # every training clip at -23 LUFS
    x, sr = sf.read(str(test / "asterisk-en" / "en_US_f_Allison_vm-p0.wav"))
    assert sr == 16000 and 0.015 < np.abs(x).max() < 0.03  # test clips keep their source level
    summary = json.loads((out / "summary.json").read_text())
    assert summary["asterisk-en"] == {"test": pytest.approx(3 * 1.5 / 60, abs=0.01)}
