"""The `mediatok` command on a tiny saved model: encode, info, decode, eval, models."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audio_helpers import speechlike
from mediatok.cli import main


@pytest.fixture()
def saved(tiny_codec, tmp_path):
    tiny_codec.save(tmp_path / "tiny")
    wav = tmp_path / "clips" / "a.wav"
    wav.parent.mkdir()
    sf.write(str(wav), speechlike(1.5).numpy(), 16000, subtype="PCM_16")
    return tmp_path / "tiny", wav


def test_encode_info_decode(saved, tmp_path, capsys):
    model, wav = saved
    assert main(["encode", str(wav), "-o", str(tmp_path / "a.mtk"), "--model", str(model)]) == 0
    assert "kbps" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "a.mtk")]) == 0
    assert "num_samples : 24000" in capsys.readouterr().out
    assert main(["decode", str(tmp_path / "a.mtk"), "-o", str(tmp_path / "b.wav"), "--model", str(model)]) == 0
    y, sr = sf.read(str(tmp_path / "b.wav"))
    assert sr == 16000 and y.shape == (24000,) and np.isfinite(y).all()


def test_eval_writes_a_table_and_json(saved, tmp_path, capsys):
    model, wav = saved
    out = tmp_path / "rows.json"
    assert main(["eval", "--model", str(model), str(wav.parent), "--no-baselines", "--json", str(out)]) == 0
    assert "| tiny-test (ours) |" in capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert rows[0]["kbps"] > 0 and 0 < rows[0]["utilization"] <= 1
    # the audio family makes no figures: --out is named as unused instead of failing the run
    assert main(["eval", "--model", str(model), str(wav.parent), "--no-baselines", "--out", str(tmp_path / "figs")]) == 0
    captured = capsys.readouterr()
    assert "| tiny-test (ours) |" in captured.out and "makes no figures" in captured.err


def test_errors_are_reported_not_raised(tmp_path, capsys):
    bogus = tmp_path / "x.mtk"
    bogus.write_bytes(b"not a bitstream")
    assert main(["info", str(bogus)]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["models"]) == 0
