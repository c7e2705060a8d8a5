"""The solver conformance suite: every solver reaches the optimum, stops, diverges,
checkpoints and resumes the same way.

Run over the registry (:data:`fastgd.solvers.OPTIMIZERS`, both oracles: the sufficient
statistics and one pass per evaluation), the stochastic solvers (SGD and mini-batch in
scaled coordinates) and the textbook updates. Oracles: ``numpy.linalg.lstsq`` (the
optimum), the loss recomputed in NumPy from the coefficients a result holds (its
reported loss), the uninterrupted fit (a resumed one, bit for bit).

:class:`BarzilaiBorwein` is an optimizer defined in this file only and registered for
the tests by one line: it passes the same suite through the public API with no change to
any package file (the proof that a :class:`fastgd.solvers.BatchSolver` subclass is all an
optimizer needs).
"""
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastgd
from fastgd.solvers import OPTIMIZERS, BatchSolver
from tests.conftest import crash_then_resume


class BarzilaiBorwein(BatchSolver):
    """Gradient descent with the Barzilai-Borwein step ``s.s / s.y`` (``s``, ``y``: the
    last change of the point and of the gradient), ``1 / L`` on the first step."""

    name = "bb"
    quadratic_only = True  # no line search: the step assumes a quadratic
    handles_l1 = False
    takes_learning_rate = False

    def step(self, k):
        theta, mask = self.theta, self.sc.mask
        g = self.g2 * self.S
        step = self.step_size
        if self.g_old is not None:
            s, dy = theta - self.prev, g - self.g_old
            sy = float(s @ dy)
            if sy > 0.0:
                step = float(s @ s) / sy
        new = (theta - step * g) * mask + theta * (1.0 - mask)
        new_loss, new_S = self.oracle(new)
        self.check(k, new_loss)
        self.prev, self.g_old = theta, g
        return new, new_loss, new_S


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setitem(OPTIMIZERS, BarzilaiBorwein.name, BarzilaiBorwein)


ALL = ["gd", "momentum", "nesterov", "cg", "bb"]


@pytest.fixture(scope="module")
def data():
    """Columns of different scales and offsets (the scaled coordinates matter)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 4)) * [1.0, 30.0, 0.01, 2.0] + [0.0, 100.0, 1.0, -3.0]
    y = X @ [0.5, -0.02, 40.0, 1.5] + 2.0 + rng.normal(0.0, 0.5, 3000)
    A = np.column_stack([X, np.ones(len(y))])
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    return X, y, ref


def mse(X, y, coef, intercept):
    r = y - (X @ coef + intercept)
    return float(np.mean(r * r))


def test_the_registry_holds_every_optimizer():
    assert list(OPTIMIZERS) == ALL
    for name, cls in OPTIMIZERS.items():
        assert cls.name == name and issubclass(cls, BatchSolver)


@pytest.mark.parametrize("solver", ["gram", "stream"])
@pytest.mark.parametrize("optimizer", ALL)
def test_every_optimizer_reaches_the_optimum_and_stops(data, optimizer, solver):
    X, y, ref = data
    res = fastgd.fit(X, y, optimizer=optimizer, solver=solver, epochs=20_000)
    assert res.converged and res.n_epochs < 20_000
    assert res.optimizer == optimizer and res.solver == solver
    assert_allclose(np.r_[res.coef, res.intercept], ref, rtol=1e-6)
    # the reported loss is the loss of the coefficients returned
    assert_allclose(res.final_loss, mse(X, y, res.coef, res.intercept), rtol=1e-12)


@pytest.mark.parametrize("optimizer", ALL)
def test_every_optimizer_diverges_the_same_way(data, optimizer):
    """A numeric rate far above the stable limit: a DivergenceError holding the last
    finite state, whose loss is the loss of its coefficients; an optimizer that chooses
    its own steps refuses the rate up front."""
    X, y, _ = data
    if not OPTIMIZERS[optimizer].takes_learning_rate:
        with pytest.raises(ValueError, match=rf"optimizer='{optimizer}' chooses its own step"):
            fastgd.fit(X, y, optimizer=optimizer, learning_rate=0.1)
        return
    with pytest.raises(fastgd.DivergenceError, match="diverged in epoch") as err:
        fastgd.fit(X, y, optimizer=optimizer, learning_rate=50.0, scale=True, epochs=500)
    last = err.value.result
    assert np.isfinite(last.coef).all() and np.isfinite(last.loss_history).all()
    assert_allclose(last.final_loss, mse(X, y, last.coef, last.intercept), rtol=1e-9)
    assert err.value.epoch == last.n_epochs + 1


@pytest.mark.parametrize("solver", ["gram", "stream"])
@pytest.mark.parametrize("optimizer", ALL)
def test_every_optimizer_checkpoints_and_resumes_bit_for_bit(tmp_path, data, optimizer,
                                                             solver):
    X, y, _ = data
    kw = dict(optimizer=optimizer, solver=solver, epochs=40, tol=None)
    ref = fastgd.fit(X, y, **kw)
    path = tmp_path / "fit.ckpt"
    crash_then_resume(lambda cb: fastgd.fit(X, y, checkpoint=path, callback=cb, **kw),
                      lambda: fastgd.resume(path, X, y), ref)


@pytest.mark.parametrize("optimizer", ALL)
def test_the_plan_reads_the_capabilities(data, optimizer):
    """An L1 penalty needs proximal steps, a non-quadratic loss an optimizer that does not
    assume one: the refusals come from the optimizer's own flags."""
    X, y, _ = data
    cls = OPTIMIZERS[optimizer]
    if cls.handles_l1:
        res = fastgd.fit(X, y, optimizer=optimizer, penalty="l1", alpha=0.05, epochs=20_000)
        assert res.converged
        # the lasso's optimality: |gradient_j| <= alpha on the weights (scaled problem's
        # sub-gradient, checked on the raw one within the fit's tolerance)
        r = y - (X @ res.coef + res.intercept)
        grad = -2.0 * X.T @ r / len(y)
        nz = res.coef != 0.0
        assert_allclose(grad[nz], -0.05 * np.sign(res.coef[nz]), atol=2e-3)
        assert np.all(np.abs(grad[~nz]) <= 0.05 + 2e-3)
    else:
        with pytest.raises(ValueError, match="L1 part"):
            fastgd.fit(X, y, optimizer=optimizer, penalty="l1", alpha=0.05)
    if cls.quadratic_only:
        with pytest.raises(ValueError, match="assumes a quadratic.*needs the squared loss"):
            fastgd.fit(X, y, optimizer=optimizer, loss="huber")
    else:
        res = fastgd.fit(X, y, optimizer=optimizer, loss="huber", epsilon=1.0, epochs=20_000)
        assert res.converged
        r = y - (X @ res.coef + res.intercept)
        psi = np.clip(r, -1.0, 1.0)
        assert np.abs(X.T @ psi).max() / len(y) < 1e-3 * np.abs(X).max()


# --- the stochastic solvers and the textbook updates ------------------------------------

STOCHASTIC = {
    "sgd": dict(mode="sgd"),
    "minibatch": dict(mode="minibatch", batch_size=32),
    "sgd-raw": dict(mode="sgd", learning_rate=1e-5),
}


@pytest.mark.parametrize("kind", ["sgd", "minibatch"])
def test_the_stochastic_solvers_reach_the_optimum(data, kind):
    X, y, ref = data
    res = fastgd.fit(X, y, epochs=30, random_state=0, **STOCHASTIC[kind])
    best = mse(X, y, ref[:-1], ref[-1])
    assert res.final_loss <= best * 1.01
    assert_allclose(res.final_loss, mse(X, y, res.coef, res.intercept), rtol=1e-12)


@pytest.mark.parametrize("kind", list(STOCHASTIC))
def test_the_stochastic_solvers_diverge_the_same_way(data, kind):
    X, y, _ = data
    kw = dict(STOCHASTIC[kind], learning_rate=10.0)
    with pytest.raises(fastgd.DivergenceError, match="diverged in epoch") as err:
        fastgd.fit(X, y, epochs=20, random_state=0, **kw)
    last = err.value.result
    assert np.isfinite(last.coef).all() and np.isfinite(last.loss_history).all()


@pytest.mark.parametrize("kind", ["sgd", "minibatch"])
def test_the_stochastic_solvers_checkpoint_and_resume_bit_for_bit(tmp_path, data, kind):
    X, y, _ = data
    kw = dict(STOCHASTIC[kind], epochs=6, tol=None, random_state=3)
    ref = fastgd.fit(X, y, **kw)
    path = tmp_path / "fit.ckpt"
    crash_then_resume(lambda cb: fastgd.fit(X, y, checkpoint=path, callback=cb, **kw),
                      lambda: fastgd.resume(path, X, y), ref)


@pytest.mark.parametrize("kind", ["sgd", "minibatch", "textbook"])
def test_a_callback_returning_false_stops_every_solver(data, kind):
    X, y, _ = data
    kw = (dict(learning_rate=1e-5, scale=False) if kind == "textbook"
          else dict(STOCHASTIC[kind], random_state=0))
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fastgd.fit(X, y, epochs=50, tol=None,
                         callback=lambda epoch, *a: seen.append(epoch) or epoch < 3, **kw)
    assert seen == [1, 2, 3] and res.n_epochs == 3 and not res.converged
