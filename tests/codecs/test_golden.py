"""The shipped speech models' bitstreams stay byte-identical across refactors (tests/expected/<model>.json)."""
from __future__ import annotations

import json
import warnings

import pytest

import mediatok
from golden_inputs import GOLDEN_MODELS, ROOT, digests, expected_path


@pytest.mark.parametrize("model", GOLDEN_MODELS)
def test_shipped_bitstreams_are_unchanged(model):
    if not (ROOT / "pretrained" / model / "config.json").exists():
        pytest.skip(f"pretrained/{model} not present")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 44.1 kHz case resamples with a notice
        got = digests(mediatok.load(model))
    assert got == json.loads(expected_path(model).read_text())
