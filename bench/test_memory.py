"""Extra memory of a fit beyond its input arrays: group ``memory|n=...|d=...|dtype``.

Each benchmark runs ``bench/_memory_probe.py`` in a fresh process (its docstring says
how the figure is taken) and records in ``extra_info``: ``extra_mb`` (peak RSS during
the fit minus RSS with the data loaded; ``method`` says how the peak was read),
``input_mb`` (X and y) and ``fit_s``. The timed figure is the whole
process (start, import, data generation, fit): read ``extra_info``, not the time.
n = 10^5 runs in the smoke run so the probe cannot rot; n = 10^7 is ``slow``.
"""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ._memory_probe import KINDS
from ._workloads import Workload, params, workloads

ROOT = Path(__file__).resolve().parents[1]
MEMORY_WORKLOADS = [Workload(10**5, 1, "float64")] + workloads(sizes=((10**7, 1), (10**7, 10)))


def _probe(w, kind):
    out = subprocess.run(
        [sys.executable, "-m", "bench._memory_probe", str(w.n), str(w.d), w.dtype, kind],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("w", params(MEMORY_WORKLOADS))
def test_fit_memory(benchmark, w, kind):
    benchmark.group = f"memory|{w}"
    r = benchmark.pedantic(_probe, args=(w, kind), rounds=1, iterations=1)
    assert math.isfinite(r["final_loss"]) and r["final_loss"] < r["loss0"], r
    if kind == "batch-default":  # the optimum: about the noise variance, 0.1^2
        assert 0.009 < r["final_loss"] < 0.011, r
    assert abs(r["input_mb"] - w.nbytes / 1024**2) < 1e-6
    benchmark.extra_info.update(
        contender=f"fastgd-{kind}", n=w.n, d=w.d, dtype=w.dtype, loss=r["final_loss"],
        timed="process",
        **{k: r[k] for k in ("extra_mb", "method", "input_mb", "data_rss_mb",
                             "peak_mb", "fit_s", "threads")},
    )
