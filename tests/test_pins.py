"""Refactorings keep every mode's results bit for bit.

Oracle: ``tests/data/pins.json``, the coefficients, intercept and loss history (as
``float.hex``) of the fits in ``tests/_pin_cases.py``, written by the code before the
fit-plan/sources refactoring (commit a1bb1a6). A change of arithmetic that moves any of
them by one ulp fails here; regenerate the file only for a deliberate change of results,
and say so in the commit.
"""
import json
from pathlib import Path

import pytest

from tests import _pin_cases

PINS = json.loads((Path(__file__).parent / "data" / "pins.json").read_text())


@pytest.fixture(scope="module")
def current():
    return _pin_cases.run_all()


@pytest.mark.parametrize("key", sorted(PINS))
def test_results_bit_identical_to_pins(current, key):
    assert current[key] == PINS[key], key
