"""Issue 4: the Huber loss (``loss="huber"``), batch (streaming path) and stochastic.

Oracles: ``naive.huber_grad`` (the twin of the compiled pass) and the first-order
optimality of the fitted parameters (the gradient of the mean Huber loss vanishes).
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastgd
from fastgd import _threads
from fastgd._chunking import n_chunks
from fastgd.kernels import loss_kernels
from fastgd.losses import get as get_loss
from tests import naive
from tests.conftest import make_linear


def _huber_grad():
    return loss_kernels(get_loss("huber")).grad


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huber_pass_matches_twin_and_is_bitwise_parallel(rng, weighted, dtype):
    n, d = 70_001, 3
    X, y, _ = make_linear(rng, n, d, noise=2.0, dtype=dtype)
    sw = rng.uniform(0, 2, n) if weighted else np.empty(0)
    coef = np.array([0.3, -0.2, 0.1, 0.5])
    outs = []
    for parallel in (False, True):
        out = np.empty((n_chunks(n), d + 2))
        _threads.run_chunks(_huber_grad(), (X, y, sw, coef, np.array([0.7]), out), out.shape[0],
                            parallel)
        outs.append(out.sum(axis=0))
    assert_array_equal(outs[0], outs[1])
    sub = slice(0, 3000)  # the twin is slow: check a prefix too
    out = np.empty((n_chunks(3000), d + 2))
    _huber_grad()(X[sub], y[sub], sw[sub] if weighted else sw, coef, np.array([0.7]), out, 0,
                out.shape[0])
    ref = naive.huber_grad(X[sub], y[sub], sw[sub] if weighted else None, coef, 0.7)
    assert_allclose(out.sum(axis=0), ref, rtol=1e-10)


def _outliers(rng, n=4000):
    X = rng.normal(size=(n, 2)) * np.array([1.0, 10.0]) + 3.0
    y = X @ np.array([2.0, -0.5]) + 1.0 + rng.normal(0, 0.3, n)
    y[: n // 20] += 40.0
    return X, y


@pytest.mark.parametrize("optimizer", ["auto", "gd", "momentum", "nesterov"])
def test_batch_huber_is_stationary_and_robust(rng, optimizer):
    X, y = _outliers(rng)
    eps = 0.5
    res = fastgd.fit(X, y, loss="huber", epsilon=eps, optimizer=optimizer)
    assert res.converged and res.solver == "stream"
    assert res.optimizer == ("nesterov" if optimizer == "auto" else optimizer)
    r = y - X @ res.coef - res.intercept
    psi = np.clip(r, -eps, eps)
    grad = np.append(X.T @ psi, psi.sum()) / len(y)
    scale = np.append(np.abs(X).T @ np.abs(psi), np.abs(psi).sum()) / len(y)
    assert np.all(np.abs(grad) <= 1e-6 * scale)
    assert_allclose(res.coef, [2.0, -0.5], atol=0.05)
    h = np.where(np.abs(r) <= eps, r * r, 2 * eps * np.abs(r) - eps * eps)
    assert res.final_loss == pytest.approx(h.mean(), rel=1e-12)
    sq = fastgd.fit(X, y)
    assert abs(sq.intercept - 1.0) > 1.0 > abs(res.intercept - 1.0)


def test_bad_huber_combinations():
    X = np.arange(20.0).reshape(10, 2)
    with pytest.raises(ValueError, match=r"solver='gram' needs the squared loss"):
        fastgd.fit(X, np.arange(10.0), loss="huber", solver="gram")
    with pytest.raises(ValueError, match=r"optimizer='cg' .* needs the squared loss"):
        fastgd.fit(X, np.arange(10.0), loss="huber", optimizer="cg")


@pytest.mark.parametrize("optimizer", ["auto", "gd", "nesterov"])
def test_huber_of_40_columns_steps_by_the_exact_curvature(rng, optimizer):
    """Above 16 columns the streaming path gathered per-column moments only, and the
    step 1/L came from the trace bound, about d times too small on well-conditioned
    columns: a Huber fit of 6,000 x 40 rows did not converge in 1000 epochs. The plan now
    gathers the co-moments for the optimizers that step by 1/L (up to GRAM_MAX_D
    features). Oracles: scipy.optimize's L-BFGS-B on the mean Huber loss (its optimum's
    loss, to 1e-9) and NumPy's eigvalsh for the step (1 / (2 lambda_max) of the Gram
    matrix of the standardized rows and the intercept, over n)."""
    optimize = pytest.importorskip("scipy.optimize")
    n, d, eps = 6000, 40, 0.05
    X = rng.standard_normal((n, d)) * (rng.uniform(size=(n, d)) < 0.15)
    y = X @ rng.uniform(-2, 2, d) + 0.7 + rng.normal(0, 0.1, n)
    res = fastgd.fit(X, y, loss="huber", epsilon=eps, optimizer=optimizer)
    assert res.plan.full_moments and res.converged and res.n_epochs < 300
    Z = np.column_stack([(X - X.mean(axis=0)) / X.std(axis=0), np.ones(n)])
    lmax = np.linalg.eigvalsh(Z.T @ Z / n)[-1]
    assert res.learning_rate == pytest.approx(1.0 / (2.0 * lmax), rel=1e-9)
    A = np.column_stack([X, np.ones(n)])

    def huber(w):
        r = y - A @ w
        h = np.where(np.abs(r) <= eps, r * r, 2 * eps * np.abs(r) - eps * eps)
        return h.mean(), -2.0 * A.T @ np.clip(r, -eps, eps) / n

    best = optimize.minimize(huber, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                             options=dict(ftol=1e-15, gtol=1e-13, maxiter=20_000))
    got = huber(np.append(res.coef, res.intercept))[0]
    assert got == pytest.approx(res.final_loss, rel=1e-12)
    assert got <= best.fun * (1 + 1e-9)
