"""Issue 4: penalties in batch mode.

Objective: ``loss + alpha * (l1_ratio ||coef||_1 + (1 - l1_ratio) / 2 ||coef||^2)`` on the
ORIGINAL-unit weights, never the intercept. Oracles: the closed-form ridge solution, the
KKT conditions of the penalized problem, and scikit-learn's ElasticNet (objective
``1/(2n) ||r||^2 + a l1_ratio ||w||_1 + a (1 - l1_ratio) / 2 ||w||^2``, so ``a = alpha / 2``
for fastgd's mean loss).
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastgd


@pytest.fixture
def problem(rng):
    n, d = 400, 5
    X = rng.normal(size=(n, d)) * np.array([1.0, 10.0, 0.1, 3.0, 50.0]) + 4.0
    y = 2.0 * X[:, 0] - 0.1 * X[:, 1] + 0.5 + rng.normal(0, 1.0, n)
    return X, y


def ridge(X, y, alpha, sw=None, fit_intercept=True, reduction="mean"):
    """argmin norm * sum w r^2 + alpha/2 ||coef||^2, by the normal equations."""
    n, d = X.shape
    w = np.ones(n) if sw is None else sw
    A = np.column_stack([X, np.ones(n)]) if fit_intercept else X
    norm = 1.0 / w.sum() if reduction == "mean" else 1.0
    P = np.zeros(A.shape[1])
    P[:d] = alpha / 2.0
    sol = np.linalg.solve(norm * (A.T * w) @ A + np.diag(P), norm * (A.T * w) @ y)
    return (sol[:d], sol[d]) if fit_intercept else (sol, 0.0)


@pytest.mark.parametrize("solver", ["gram", "stream"])
@pytest.mark.parametrize("optimizer", ["auto", "gd", "nesterov", "momentum"])
@pytest.mark.parametrize("weighted,fit_intercept,reduction", [
    (False, True, "mean"), (True, True, "mean"), (False, False, "mean"), (False, True, "sum"),
])
def test_ridge_closed_form(problem, rng, solver, optimizer, weighted, fit_intercept, reduction):
    X, y = problem
    sw = rng.uniform(0.2, 2.0, len(y)) if weighted else None
    alpha = 0.5 if reduction == "mean" else 200.0
    res = fastgd.fit(X, y, penalty="l2", alpha=alpha, solver=solver, optimizer=optimizer,
                     sample_weight=sw, fit_intercept=fit_intercept, reduction=reduction)
    c, b = ridge(X, y, alpha, sw, fit_intercept, reduction)
    assert res.converged
    assert_allclose(res.coef, c, rtol=1e-9, atol=1e-12)
    assert res.intercept == pytest.approx(b, rel=1e-9, abs=1e-12)
    r = y - X @ c - b
    w = np.ones(len(y)) if sw is None else sw
    norm = 1.0 / w.sum() if reduction == "mean" else 1.0
    assert res.final_loss == pytest.approx(norm * w @ r ** 2 + alpha / 2 * c @ c, rel=1e-10)


@pytest.mark.parametrize("penalty,l1_ratio", [("l1", 1.0), ("elasticnet", 0.5), ("elasticnet", 0.1)])
@pytest.mark.parametrize("solver", ["gram", "stream"])
@pytest.mark.parametrize("optimizer", ["auto", "gd"])
def test_l1_elasticnet_against_sklearn_and_kkt(problem, penalty, l1_ratio, solver, optimizer):
    from sklearn.linear_model import ElasticNet

    X, y = problem
    alpha = 0.3
    res = fastgd.fit(X, y, penalty=penalty, alpha=alpha, l1_ratio=l1_ratio, solver=solver,
                     optimizer=optimizer)
    assert res.converged and res.optimizer == ("nesterov" if optimizer == "auto" else "gd")
    ref = ElasticNet(alpha=alpha / 2, l1_ratio=l1_ratio, tol=1e-15, max_iter=10**6).fit(X, y)
    assert_allclose(res.coef, ref.coef_, rtol=1e-8, atol=1e-12)
    assert res.intercept == pytest.approx(ref.intercept_, rel=1e-8)
    assert np.count_nonzero(res.coef == 0.0) >= 1  # exact zeros from the proximal step
    # KKT: grad_j + alpha (l1_ratio sign(c_j) + (1 - l1_ratio) c_j) = 0 where c_j != 0,
    # |grad_j| <= alpha l1_ratio where c_j == 0; the intercept's gradient is zero
    r = y - X @ res.coef - res.intercept
    grad = -2.0 * X.T @ r / len(y)
    scale = np.abs(2.0 * X.T @ np.abs(r) / len(y))
    nz = res.coef != 0
    kkt = grad[nz] + alpha * (l1_ratio * np.sign(res.coef[nz]) + (1 - l1_ratio) * res.coef[nz])
    assert np.all(np.abs(kkt) <= 1e-10 * scale[nz])
    assert np.all(np.abs(grad[~nz]) <= alpha * l1_ratio * (1 + 1e-10))
    assert abs(r.mean()) <= 1e-12 * np.abs(y).max()


def test_penalty_is_in_original_units_whatever_scale(problem):
    X, y = problem
    kw = dict(penalty="elasticnet", alpha=0.3, l1_ratio=0.5)
    a = fastgd.fit(X, y, **kw)
    b = fastgd.fit(X, y, scale=False, epochs=200_000, **kw)
    assert a.scaled and not b.scaled and b.converged
    assert_allclose(a.coef, b.coef, rtol=1e-7, atol=1e-10)


def test_intercept_never_penalized(problem, rng):
    X, y = problem
    sw = rng.uniform(0.5, 1.5, len(y))
    res = fastgd.fit(X, y, penalty="l1", alpha=1e6, sample_weight=sw)
    assert np.all(res.coef == 0.0)
    assert res.intercept == pytest.approx(np.average(y, weights=sw), rel=1e-12)


def test_loss_history_holds_the_objective(problem):
    X, y = problem
    res = fastgd.fit(X, y, penalty="l1", alpha=0.3, tol=None, epochs=5, optimizer="gd")
    assert res.loss_history[-1] == pytest.approx(
        res.loss(X, y) + 0.3 * np.abs(res.coef).sum(), rel=1e-12)
    assert np.all(np.diff(res.loss_history) <= 0)  # ISTA is monotone


@pytest.mark.parametrize("optimizer", ["gd", "nesterov"])
def test_l1_gram_trajectory_equals_stream(problem, optimizer):
    X, y = problem
    runs = []
    for solver in ("gram", "stream"):
        seen = []
        fastgd.fit(X, y, penalty="elasticnet", alpha=0.3, l1_ratio=0.5, solver=solver,
                   optimizer=optimizer, epochs=20, tol=None,
                   callback=lambda e, c, b, l, seen=seen: seen.append(np.append(c, b)))
        runs.append(np.array(seen))
    assert_allclose(runs[0], runs[1], rtol=1e-12, atol=1e-14)


def test_alpha_ignored_without_penalty(problem):
    X, y = problem
    a = fastgd.fit(X, y, alpha=5.0)
    b = fastgd.fit(X, y)
    assert np.array_equal(a.coef, b.coef)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(penalty="l3"), ValueError, r"penalty must be one of 'l2', 'l1', 'elasticnet'; got 'l3'"),
    (dict(penalty="l2", alpha=-1.0), ValueError, r"alpha must be a finite number >= 0, got -1.0"),
    (dict(penalty="l2", alpha="big"), TypeError, r"alpha must be a number >= 0"),
    (dict(penalty="elasticnet", l1_ratio=1.5), ValueError, r"l1_ratio must be between 0 and 1, got 1.5"),
    (dict(penalty="l1", optimizer="cg"), ValueError, r"L1 part.*'gd' or 'nesterov'"),
])
def test_bad_penalty_parameters(kwargs, exc, match):
    X = np.arange(20.0).reshape(10, 2)
    with pytest.raises(exc, match=match):
        fastgd.fit(X, np.arange(10.0), **kwargs)
