from pathlib import Path

import numba
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (a fresh clone without ../shared)")
    return SHARED_DATA


@pytest.fixture
def bike(shared_data):
    d = np.loadtxt(shared_data / "bike_calories.csv", delimiter=",")
    return d[:, 0].copy(), d[:, 1].copy()


@pytest.fixture
def threads():
    """Run a block under a given numba thread count, restoring it afterwards."""
    original = numba.get_num_threads()

    class _Threads:
        max = numba.config.NUMBA_NUM_THREADS

        def set(self, k):
            numba.set_num_threads(k)

    try:
        yield _Threads()
    finally:
        numba.set_num_threads(original)


def make_linear(rng, n, d, noise=0.1, dtype=np.float64):
    X = rng.normal(size=(n, d))
    w = rng.uniform(-2, 2, d)
    y = X @ w + 0.7 + rng.normal(0, noise, n)
    return X.astype(dtype), y.astype(dtype), w
