"""The shipped speech-16k model's bitstreams stay byte-identical across refactors (tests/expected/speech-16k.json)."""
from __future__ import annotations

import json
import warnings

import pytest

import mediatok
from golden_inputs import EXPECTED, ROOT, digests

pytestmark = pytest.mark.skipif(not (ROOT / "pretrained" / "speech-16k" / "config.json").exists(),
                                reason="pretrained/speech-16k not present")


def test_shipped_bitstreams_are_unchanged():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 44.1 kHz case resamples with a notice
        got = digests(mediatok.load("speech-16k"))
    assert got == json.loads(EXPECTED.read_text())
