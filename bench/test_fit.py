"""Whole fits to the least-squares optimum, side by side: group ``fit|n=...|d=...|dtype``.

* ``fastgd-default``: ``fastgd.fit(X, y, tol=1e-10, epochs=10000)`` (automatic learning
  rate: scaled conjugate gradient on the sufficient statistics);
* ``sklearn-sgd-fit``: ``SGDRegressor(penalty=None)`` with its defaults otherwise
  (``tol=1e-3``, at most 1000 epochs): scikit-learn's SGD fit of the same loss;
* ``sklearn-linear-regression``: ``LinearRegression().fit`` (direct solve);
* ``numpy-lstsq``: ``numpy.linalg.lstsq`` on ``[X, 1]`` (the direct solution), the
  column stacking included.

Each is checked against the float64 optimum of :mod:`bench._workloads`: ``extra_info``
records the loss and its relative excess over the optimum's loss. The peers copy ``X``
(as float64 for scikit-learn's SGD) and run where that copy stays under 2 GB.
"""
import warnings

import numpy as np
import pytest

import fastgd

from ._common import checked, excess, record
from ._workloads import mse, params, peer_ok, workloads

#: how far above the optimum each contender may end (relative excess of the MSE). The
#: direct solvers compute in the data's dtype: float32 LAPACK leaves ~1e-6 on the weights.
EXCESS_MAX = {
    "fastgd-default": {"float64": 1e-8, "float32": 1e-8},
    "direct": {"float64": 1e-10, "float32": 1e-4},
    # SGD with sklearn's default decaying step stops on tol=1e-3 of the loss
    "sklearn-sgd-fit": {"float64": 0.05, "float32": 0.05},
}


def _check(ds, w, name, coef, key=None):
    loss = mse(ds.X, ds.y, coef)
    ex = excess(ds, loss)
    limit = EXCESS_MAX[key or name][w.dtype]
    assert ex <= limit, f"{name}: loss {loss!r} is {ex:.3g} above the optimum's {ds.optimum[1]!r}"
    return loss, ex


@pytest.mark.parametrize("w", params(workloads()))
def test_fastgd_default(benchmark, w, ds, warm):
    benchmark.group = f"fit|{w}"
    X = ds.X if w.d > 1 else ds.x1

    def run():
        return fastgd.fit(X, ds.y, tol=1e-10, epochs=10000)

    def check(res):
        coef = np.append(res.coef, res.intercept)
        assert res.converged
        np.testing.assert_allclose(coef, ds.optimum[0], rtol=1e-4, atol=1e-5)
        return res, *_check(ds, w, "fastgd-default", coef)

    res, loss, ex = checked(benchmark, check, run)
    record(benchmark, w, "fastgd-default", loss=loss, excess=ex, epochs=None,
           n_epochs=res.n_epochs, n_passes=res.n_passes, solver=res.solver,
           optimizer=res.optimizer)


@pytest.mark.parametrize("w", params(workloads(where=peer_ok)))
def test_numpy_lstsq(benchmark, w, ds, warm):
    benchmark.group = f"fit|{w}"

    def run():
        A = np.column_stack([ds.X, np.ones(w.n, dtype=ds.X.dtype)])
        return np.linalg.lstsq(A, ds.y, rcond=None)[0]

    loss, ex = checked(benchmark, lambda c: _check(ds, w, "numpy-lstsq", c, "direct"), run)
    record(benchmark, w, "numpy-lstsq", loss=loss, excess=ex, epochs=None)


@pytest.mark.parametrize("w", params(workloads(where=peer_ok)))
def test_sklearn_linear_regression(benchmark, w, ds, warm):
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LinearRegression

    benchmark.group = f"fit|{w}"

    def run():
        est = LinearRegression().fit(ds.X, ds.y)
        return np.append(est.coef_, est.intercept_)

    loss, ex = checked(benchmark, lambda c: _check(ds, w, "linreg", c, "direct"), run)
    record(benchmark, w, "sklearn-linear-regression", loss=loss, excess=ex, epochs=None)


@pytest.mark.parametrize("w", params(workloads(where=peer_ok)))
def test_sklearn_sgd_fit(benchmark, w, ds, warm):
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDRegressor

    benchmark.group = f"fit|{w}"

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = SGDRegressor(penalty=None, random_state=0).fit(ds.X, ds.y)
        return est

    def check(est):
        return est.n_iter_, *_check(ds, w, "sklearn-sgd-fit", np.append(est.coef_, est.intercept_))

    n_iter, loss, ex = checked(benchmark, check, run)
    record(benchmark, w, "sklearn-sgd-fit", loss=loss, excess=ex, epochs=None,
           n_epochs=int(n_iter))
