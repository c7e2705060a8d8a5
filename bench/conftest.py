"""Fixtures of the benchmark suite: seeded data per workload, cached; the JIT warm-up.

``pytest bench`` runs everything; ``pytest bench --benchmark-disable -m "not slow"`` is the
CI smoke run (each small benchmark once, untimed, checks included).
"""
from pathlib import Path

import numpy as np
import pytest

import fastgd
from fastgd import _validation as V
from fastgd import solvers as D
from fastgd.sources import ArraySource, permutation

from . import _reference
from ._workloads import DataCache, Workload

BENCH_DIR = Path(__file__).resolve().parent


def pytest_configure(config):
    # The root pyproject declares `slow` for the whole rootdir already; registering it here
    # too keeps `pytest bench` working under --strict-markers from any config.
    config.addinivalue_line("markers", "slow: large workloads (n > 10^6, or n = 10^6 with d = 100)")


def _workload_of(item):
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    w = callspec.params.get("w")
    return w if isinstance(w, Workload) else None


def pytest_collection_modifyitems(config, items):
    """Run the benchmarks workload by workload (smallest first), so each dataset is
    generated once and the cache never needs to hold two large ones. Items without a
    workload (cold start, the report's test) keep their order, after the others. Items
    outside ``bench/`` are left where they are."""
    pos = [i for i, it in enumerate(items) if BENCH_DIR in Path(str(it.path)).resolve().parents]
    mine = [items[i] for i in pos]
    order = sorted(
        range(len(mine)),
        key=lambda k: (0, _workload_of(mine[k]), k) if _workload_of(mine[k]) else (1, None, k),
    )
    for i, k in zip(pos, order):
        items[i] = mine[k]


@pytest.fixture(scope="session")
def datasets():
    """The session's dataset cache (:class:`bench._workloads.DataCache`)."""
    return DataCache()


@pytest.fixture
def ds(w, datasets):
    """The seeded data of the test's workload ``w``, with its reference figures."""
    return datasets.get(w)


@pytest.fixture(scope="session")
def warm():
    """Compile (or load from numba's cache) every kernel the benchmarks time, for both
    dtypes, and start fastgd's thread pool, so no timed call includes compilation.
    Cold compilation is measured on its own in ``test_coldstart.py``."""
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        X = rng.standard_normal((3000, 3)).astype(dtype)
        y = (X @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(dtype)
        for X_ in (X, np.ascontiguousarray(X[:, 0])):
            for par in (False, True):
                fastgd.fit(X_, y, mode="batch", learning_rate=0.1, epochs=2, tol=None, parallel=par)
                fastgd.fit(X_, y, epochs=3, tol=None, parallel=par)
                for mode in ("minibatch", "sgd"):
                    fastgd.fit(X_, y, mode=mode, epochs=1, tol=None, parallel=par, random_state=0)
                data = V.check_data(X_, y, parallel=par)
                D.Objective(ArraySource(data, par), "mean", True)(np.zeros(data.d + 1))
                permutation(3000, 1, par)
            fastgd.mse(X_, y, np.zeros(X_.reshape(3000, -1).shape[1]), 0.0)
            _reference.stream_sum(X_, y)
    return True


def pytest_terminal_summary(terminalreporter):
    """The cold starts of this session (``test_coldstart.py``), with the slowest kernels
    each compiled: printed in the smoke run too, so that a slow compilation that comes
    back is seen."""
    from .test_coldstart import RESULTS

    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("cold starts (new process, empty kernel cache, import included)")
    for case, wall, compiles in RESULTS:
        slow = ", ".join(f"{name} {t:.2f} s" for t, name in compiles) or "nothing compiled"
        tr.write_line(f"{case:20s} {wall:6.2f} s   {slow}")
