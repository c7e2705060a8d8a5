"""Refactorings keep every mode's results bit for bit.

Oracle: ``tests/data/pins.json``, the coefficients, intercept and loss history (as
``float.hex``) of the fits in ``tests/_pin_cases.py``, written by the code before the
fit-plan/sources refactoring (commit a1bb1a6, kernels compiled afresh), regenerated once
deliberately since: the moments pass sums values shifted by each slice's first row
(issue 9: a constant column's moments are then exactly 0; 47 of 70 pins moved, final
coefficients by 1 to 2 ulps, loss histories by at most 4e-11 relative; and the loss
history of early stopping is the full data's, as documented, instead of the training
rows': the 3 "sgd-early" histories, coefficients unchanged; and the moments' merge of
blocks compiled strict, as (Wa / W) * Wb: reassociated, Wa * Wb underflowed for small
weights; 23 pins moved, coefficients by at most 2 ulps, one CG run an iteration
shorter). A change of
arithmetic that moves any of them by one ulp fails here; regenerate the file only for a
deliberate change of results, and say so in the commit.

Since issue 18 every case is pinned twice. ``kernels:...``: every pass forced through the
compiled kernels; these are the pins of before, bit for bit (parallel passes moved from
numba's ``prange`` to fastgd's own threads without changing one). The plain keys: the fit
as it runs, which for blocks of at most 2^20 values computes its passes in NumPy
(``fastgd.sources.small``: no kernel to compile on a cold start) in the fits that make few
passes (the gram path, the stochastic modes), and the iterative streaming fits
(textbook, stream, Huber, L1) run their loss/gradient passes through the kernels (their
one-off moments pass in NumPy); regenerated then: coefficients moved by at most 5e-13 relative, loss histories by at
most 1.5e-10 (the gram path's losses computed from the statistics near the optimum), and
two runs stopped one iteration earlier or later at the rounding-level stopping test.
``sgd-default`` at 70,000 rows moved on both paths: ``parallel="auto"`` now runs
parameter mixing from 200,000 rows (it was 20,000 with OpenMP; see fastgd/_plan.py),
so that fit is serial averaged SGD now. Regenerated again in issue 21: CG on the
sufficient statistics to a tolerance is preconditioned by the inverse Gram matrix
(``fastgd.solvers.batch.PCG_MAX_D``): 21 gram-path pins (default, l2, nointercept,
sum) end in 1 or 2 iterations instead of 1 to 7, coefficients moved by at most 7.6e-15
relative, final losses by at most 1.9e-15. And once more in issue 21: the per-column
moments pass (the stochastic modes, the streaming path) reads X in slices of its own
width, which stay in cache for both of its passes (they had been sized as for d = 1):
7 ``kernels:`` pins of the stochastic modes moved (d = 7 at 3,000 rows, d = 2 at
70,000), by at most 5.5e-14 relative (the scaling moves by an ulp, the SGD steps follow).

The fits run in a subprocess with numba's on-disk cache off (``FASTGD_DISABLE_CACHE=1``):
measured with numba 0.68, a kernel loaded from the cache can differ from the same kernel
compiled in the process in the last bits of its sums (the d = 1 gradient pass: 5 of 90
sums), so only freshly compiled kernels give pins that do not depend on the cache's state.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PINS = json.loads((ROOT / "tests" / "data" / "pins.json").read_text())


@pytest.fixture(scope="module")
def current(tmp_path_factory):
    out = tmp_path_factory.mktemp("pins") / "pins.json"
    env = dict(os.environ, FASTGD_DISABLE_CACHE="1", PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "tests._pin_cases", str(out)], cwd=ROOT, env=env,
                   check=True, timeout=600)
    return json.loads(out.read_text())


@pytest.mark.parametrize("key", sorted(PINS))
def test_results_bit_identical_to_pins(current, key):
    assert current[key] == PINS[key], key
