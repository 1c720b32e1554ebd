"""scripts/ship_speech16k.py: the training stages it writes into CARD.md."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ship_speech16k.py"


@pytest.fixture(scope="module")
def ship():
    spec = importlib.util.spec_from_file_location("ship_speech16k", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_stages_become_a_table_of_step_ranges(ship):
    stages = [ship.parse_stage("0-4000: lr 1.5e-3, warm-up 200"), ship.parse_stage(" 4000 - 9700 : lr 6e-4 ")]
    ship.check_stages(stages, 9700)
    table = ship.stages_table(stages)
    assert table.splitlines()[2:] == ["| 1 | 0-4,000 | lr 1.5e-3, warm-up 200 |", "| 2 | 4,000-9,700 | lr 6e-4 |"]


@pytest.mark.parametrize("texts, steps, message", [
    (["0-4000: a", "4100-9700: b"], 9700, "does not start where 0-4000 ends"),
    (["100-4000: a"], 4000, "must start at step 0"),
    (["0-4000: a"], 5000, "checkpoint is at step 5000"),
])
def test_stages_with_gaps_or_the_wrong_end_are_refused(ship, texts, steps, message):
    with pytest.raises(ValueError, match=message):
        ship.check_stages([ship.parse_stage(t) for t in texts], steps)


def test_a_malformed_stage_says_the_expected_form(ship):
    with pytest.raises(ValueError, match="FIRST-LAST: recipe"):
        ship.parse_stage("stage one: lr 1e-3")
    with pytest.raises(SystemExit):
        ship.main(["x.ckpt", "--stage", "4000-100: backwards"])
