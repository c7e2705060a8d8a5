from pathlib import Path

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
    """Run a block under a given thread count of fastgd's passes, restoring it afterwards.
    ``max`` is at least 4, more than this machine's cores: the chunks a thread claims then
    vary the most from run to run, and the results must not."""
    from fastgd import _threads

    original = _threads.get_num_threads()

    class _Threads:
        max = max(4, _threads._available_cpus())

        def set(self, k):
            _threads.set_num_threads(k)

    try:
        yield _Threads()
    finally:
        _threads.set_num_threads(original)


def make_linear(rng, n, d, noise=0.1, dtype=np.float64):
    X = rng.normal(size=(n, d))
    w = rng.uniform(-2, 2, d)
    y = X @ w + 0.7 + rng.normal(0, noise, n)
    return X.astype(dtype), y.astype(dtype), w


class Interrupted(Exception):
    """Raised by :func:`crash_then_resume`'s callback: a fit that stops mid-way."""


def crash_then_resume(fit, resume, ref):
    """The checkpoint oracle: ``fit(callback)`` (a fit writing a checkpoint) is stopped by
    an exception from its callback half-way through ``ref``'s epochs; ``resume()`` must
    then return ``ref`` (the uninterrupted fit) bit for bit. The checkpoint of an epoch is
    written after its callback, so the stop comes at epoch 2 at the earliest."""
    assert ref.n_epochs >= 2, "a fit of one epoch leaves nothing to resume"
    stop_at = max(2, ref.n_epochs // 2)

    def crash(epoch, *_):
        if epoch == stop_at:
            raise Interrupted

    with pytest.raises(Interrupted):
        fit(crash)
    res = resume()
    assert np.array_equal(res.coef, ref.coef) and res.intercept == ref.intercept
    assert np.array_equal(res.loss_history, ref.loss_history)
    assert res.n_epochs == ref.n_epochs and res.n_passes == ref.n_passes
    assert res.converged == ref.converged and res.plan == ref.plan
    return res
