"""Sparse (hashed) data, side by side: group ``sparse-fit|n=...|d=...|nnz/row=...``.

Synthetic hashed features: each row stores ``k`` entries of +-1 at columns drawn
uniformly from ``d`` (duplicates summed, as a feature hasher does), ``y = X w + 1 +
N(0, 0.5^2)`` with ``w ~ N(0, 1)``, seeded. The contenders on the same CSR matrix:

* ``fastgd-default``: ``fastgd.fit(X, y)`` (the default batch fit: scaled streaming CG
  above 32 columns, gram CG below, the CSR passes in O(nnz));
* ``scipy-lsqr``: ``scipy.sparse.linalg.lsqr`` at ``atol = btol = 1e-14`` on ``[X, 1]``
  (the column of ones appended, as a sparse column), which also gives the optimum the
  excess MSE of each contender is measured against.

The large case (10^6 x 2^18, 20 non-zeros a row: the issue's workload) is marked slow;
the small one runs in the smoke run (``pytest bench --benchmark-disable -m "not slow"``).
The stochastic modes do not take sparse input yet: no SGD contender.
"""
import numpy as np
import pytest

import fastgd

sp = pytest.importorskip("scipy.sparse")
linalg = pytest.importorskip("scipy.sparse.linalg")

#: (n, d, non-zeros a row)
CASES = [
    pytest.param((20_000, 1 << 12, 20), id="n=2e4-d=2^12"),
    pytest.param((1_000_000, 1 << 18, 20), id="n=1e6-d=2^18", marks=pytest.mark.slow),
]
#: the default fit's excess MSE over lsqr's optimum (the issue's target)
EXCESS_MAX = 1e-8

_DATA = {}
_BEST = {}


def hashed(n, d, k, seed=0):
    """The seeded hashed CSR matrix and its targets (one case kept at a time)."""
    key = (n, d, k, seed)
    if key not in _DATA:
        _DATA.clear()
        rng = np.random.default_rng(seed)
        cols = rng.integers(0, d, size=n * k).astype(np.int32)
        vals = rng.choice([-1.0, 1.0], size=n * k)
        X = sp.csr_matrix((vals, cols, np.arange(0, n * k + 1, k)), shape=(n, d))
        X.sum_duplicates()
        y = X @ rng.normal(size=d) + 1.0 + rng.normal(0, 0.5, n)
        _DATA[key] = (X, y)
    return _DATA[key]


def lsqr_fit(X, y):
    """lsqr on ``[X, 1]`` at atol = btol = 1e-14: ``(coef, intercept, iterations)``."""
    A = sp.hstack([X, np.ones((X.shape[0], 1))], format="csr")
    sol = linalg.lsqr(A, y, atol=1e-14, btol=1e-14, iter_lim=100_000)
    return sol[0][:-1], float(sol[0][-1]), int(sol[2])


def optimum_mse(case):
    """The MSE of lsqr's solution: the optimum the excess is measured against."""
    if case not in _BEST:
        X, y = hashed(*case)
        coef, b, _ = lsqr_fit(X, y)
        _BEST[case] = fastgd.mse(X, y, coef, b)
    return _BEST[case]


def _record(benchmark, case, name, loss, **extra):
    n, d, k = case
    best = optimum_mse(case)
    benchmark.extra_info.update(contender=name, n=n, d=d, nnz_per_row=k, loss=loss,
                                excess=(loss - best) / best, **extra)


@pytest.mark.parametrize("case", CASES)
def test_fastgd_default(benchmark, case):
    X, y = hashed(*case)
    benchmark.group = f"sparse-fit|n={case[0]}|d={case[1]}|nnz/row={case[2]}"
    fastgd.fit(X[:1000], y[:1000])  # the kernels compiled before timing
    res = benchmark.pedantic(lambda: fastgd.fit(X, y), rounds=1, iterations=1)
    loss = fastgd.mse(X, y, res.coef, res.intercept)
    best = optimum_mse(case)
    assert res.converged
    assert (loss - best) / best <= EXCESS_MAX
    _record(benchmark, case, "fastgd-default", loss, n_passes=res.n_passes,
            n_epochs=res.n_epochs, solver=res.solver)


@pytest.mark.parametrize("case", CASES)
def test_scipy_lsqr(benchmark, case):
    X, y = hashed(*case)
    benchmark.group = f"sparse-fit|n={case[0]}|d={case[1]}|nnz/row={case[2]}"
    coef, b, iters = benchmark.pedantic(lambda: lsqr_fit(X, y), rounds=1, iterations=1)
    loss = fastgd.mse(X, y, coef, b)
    _record(benchmark, case, "scipy-lsqr", loss, iterations=iters)
