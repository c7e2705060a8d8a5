"""Start-up costs, each a fresh Python process timed once (``pedantic(rounds=1)``).

Group ``coldstart`` (see :mod:`bench.coldstart` for the cases): the first call in a new
process with an empty ``FASTGD_CACHE_DIR``, import included, for each mode and front end
(the default fit on 10^5 x 1 and 10^5 x 5 rows, SGD and mini-batch, ``GDRegressor``, the
command line on a 10^5-row CSV, the demo's warm-up, and a fit large enough for the
compiled kernels), with the ten slowest kernels each compiled in ``extra_info``; the
benchmark session prints them all in its summary (``bench/conftest.py``), so a change
that brings back a slow compilation shows in the smoke run's output.

Group ``warmstart``: ``import fastgd`` alone, and a fit in a new process whose cache an
earlier process filled (what every run after the first pays).
"""
import os
import subprocess
import sys
import time

import pytest

from . import coldstart

#: (case, wall, ten slowest compilations) of this session, printed by conftest.py
RESULTS = []

FIT = ("import fastgd, numpy as np; "
       "res = fastgd.fit(np.arange(100.0), np.arange(100.0), mode='sgd', epochs=1, "
       "learning_rate=1e-4, random_state=0); print(repr(res.slope), repr(res.intercept))")


@pytest.mark.parametrize("case", list(coldstart.CASES))
def test_cold_start(benchmark, case):
    benchmark.group = "coldstart"
    out = {}

    def once():
        out["wall"], out["compiles"] = coldstart.run(case)

    benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info.update(contender=case, wall_s=out["wall"],
                                slowest_compiles=out["compiles"])
    RESULTS.append((case, out["wall"], out["compiles"]))
    if case.startswith(("fit 1e5", "cli", "GDRegressor", "import")):
        # small data: NumPy's passes, nothing compiled (fastgd.sources.small)
        assert out["compiles"] == [], out["compiles"]
    else:
        assert out["compiles"], f"{case}: no kernel compiled with an empty cache?"


def _env(cache_dir):
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("FASTGD_DISABLE_CACHE", None)
    env["FASTGD_CACHE_DIR"] = str(cache_dir)
    return env


def _run(code, env, cwd):
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_alone(benchmark, tmp_path):
    """``import fastgd`` in its own process: numba is not imported (lazily, on the first
    kernel)."""
    benchmark.group = "warmstart"
    code = "import sys, fastgd; assert 'numba' not in sys.modules"
    t0 = time.perf_counter()
    benchmark.pedantic(_run, args=(code, _env(tmp_path / "cache"), tmp_path), rounds=1,
                       iterations=1)
    benchmark.extra_info.update(contender="import", wall_s=time.perf_counter() - t0)


def test_first_fit_warm_cache(benchmark, tmp_path):
    """The first SGD fit (a compiled kernel) in a new process whose cache was filled by an
    earlier process, import included."""
    benchmark.group = "warmstart"
    env = _env(tmp_path / "cache")
    _run(FIT, env, tmp_path)  # fills the cache, untimed
    assert any((tmp_path / "cache").rglob("*.nbi")), "the first run wrote nothing to the cache"
    t0 = time.perf_counter()
    stdout = benchmark.pedantic(_run, args=(FIT, env, tmp_path), rounds=1, iterations=1)
    benchmark.extra_info.update(contender="first-fit-warm-cache", wall_s=time.perf_counter() - t0)
    slope, intercept = (float(v) for v in stdout.split())
    assert 0.5 < slope < 1.5 and abs(intercept) < 1.0, stdout
