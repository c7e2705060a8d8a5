"""The loss contract (issue 19): every registered loss, and two defined here only.

``PseudoHuber`` and ``LogCosh`` below are test-only losses, each registered with one line
(``fastgd.losses.register``) and nothing else: no file of the package knows them. The same
conformance suite runs on them and on the package's losses:

* the per-row functions: ``psi`` is half the derivative of ``value`` (finite differences),
  the NumPy versions equal the scalar ones, ``psi_bound`` bounds ``psi``;
* the compiled pass (``source.loss_grad``, serial and parallel, kernels and NumPy's small
  path) against the sums computed here from the definition;
* the fits: batch (the streaming solver), SGD, mini-batch, ``fit_chunks`` and a dask
  collection (the in-process scheduler) against the minimizer of the objective found by
  ``scipy.optimize.minimize`` from the loss's NumPy functions (an independent oracle).
"""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastgd
from fastgd import _validation as V
from fastgd import losses
from fastgd import sources as _sources
from fastgd.sources import small as _small

optimize = pytest.importorskip("scipy.optimize")


class PseudoHuber(losses.Loss):
    """``2 c^2 (sqrt(1 + (r / c)^2) - 1)``: ``r^2`` near 0, linear far out, smooth."""

    name = "pseudohuber"
    curvature = 2.0
    scales_with_y = True
    parameter = "the scale of the residuals where the loss turns linear"

    @staticmethod
    def value(r, c):
        return 2.0 * c * c * (math.sqrt(1.0 + (r / c) * (r / c)) - 1.0)

    @staticmethod
    def psi(r, c):
        return r / math.sqrt(1.0 + (r / c) * (r / c))

    @staticmethod
    def value_np(r, c):
        return 2.0 * c * c * (np.sqrt(1.0 + (r / c) ** 2) - 1.0)

    @staticmethod
    def psi_np(r, c):
        return r / np.sqrt(1.0 + (r / c) ** 2)

    def psi_bound(self, c):
        return c


class LogCosh(losses.Loss):
    """``2 log(cosh(r))``: no parameter, and not a function of ``r / scale`` (fits of
    extreme magnitudes are refused rather than rescaled)."""

    name = "logcosh"
    curvature = 2.0

    @staticmethod
    def value(r, c):
        a = abs(r)
        return 2.0 * (a + math.log1p(math.exp(-2.0 * a)) - math.log(2.0))

    @staticmethod
    def psi(r, c):
        return math.tanh(r)

    @staticmethod
    def value_np(r, c):
        a = np.abs(r)
        return 2.0 * (a + np.log1p(np.exp(-2.0 * a)) - np.log(2.0))

    @staticmethod
    def psi_np(r, c):
        return np.tanh(r)

    def psi_bound(self, c):
        return 1.0


losses.register(PseudoHuber())  # the one line that adds a loss
losses.register(LogCosh())

ALL = ["squared", "huber", "pseudohuber", "logcosh"]
EPS = 0.8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(19)
    n, d = 3000, 3
    X = rng.normal(size=(n, d)) * [1.0, 3.0, 0.5] + [0.0, 1.0, -2.0]
    y = X @ [1.5, -0.5, 2.0] + 0.7 + rng.standard_t(3, n) * 0.5  # heavy tails
    sw = rng.uniform(0.5, 2.0, n)
    return X, y, sw


def _objective(loss, X, y, sw, c):
    W = sw.sum()

    def f(p):
        r = y - (X @ p[:-1] + p[-1])
        return float(np.sum(sw * loss.value_np(r, c)) / W)

    def grad(p):
        r = y - (X @ p[:-1] + p[-1])
        g = sw * loss.psi_np(r, c)
        return -2.0 * np.r_[g @ X, g.sum()] / W

    return f, grad


@pytest.fixture(scope="module")
def optimum(data):
    X, y, sw = data
    out = {}
    for name in ALL:
        loss = losses.get(name)
        f, grad = _objective(loss, X, y, sw, EPS)
        res = optimize.minimize(f, np.zeros(X.shape[1] + 1), jac=grad, method="BFGS",
                                options=dict(gtol=1e-12, maxiter=10_000))
        out[name] = (res.x, res.fun)
    return out


@pytest.mark.parametrize("name", ALL)
def test_psi_is_half_the_derivative_and_numpy_agrees(name):
    loss = losses.get(name)
    r = np.r_[np.linspace(-20, 20, 401), [-1e-3, 0.0, 1e-3, EPS, -EPS]]
    h = 1e-6
    for c in (0.1, EPS, 5.0):
        fd = np.array([(loss.value(v + h, c) - loss.value(v - h, c)) / (4 * h) for v in r])
        psi = np.array([loss.psi(v, c) for v in r])
        assert_allclose(psi, fd, rtol=1e-6, atol=1e-6)
        assert_allclose(loss.psi_np(r, c), psi, rtol=1e-14, atol=1e-300)
        assert_allclose(loss.value_np(r, c), [loss.value(v, c) for v in r], rtol=1e-14)
        bound = loss.psi_bound(c)
        if bound is not None:
            assert np.abs(psi).max() <= bound * (1 + 1e-15)
        assert loss.value(0.0, c) == 0.0 and np.all(loss.value_np(r, c) >= 0.0)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("path", ["kernels-serial", "kernels-parallel", "numpy"])
def test_the_pass_is_the_definition(data, monkeypatch, name, path):
    X, y, sw = data
    loss = losses.get(name)
    if path != "numpy":
        monkeypatch.setattr(_small, "SMALL_VALUES", 0)
    src = _sources.ArraySource(V.check_data(X, y, sw), path == "kernels-parallel")
    src.numpy_passes = path == "numpy"
    coef = np.array([1.0, -0.3, 1.8, 0.5])
    got = src.loss_grad(coef, loss, EPS)
    r = y - (X @ coef[:3] + coef[3])
    psi = sw * loss.psi_np(r, EPS)
    ref = np.r_[np.sum(sw * loss.value_np(r, EPS)), psi.sum(), psi @ X]
    assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    # the objective's gradient, from the pass, against finite differences of the loss
    f, _ = _objective(loss, X, y, sw, EPS)
    g = -2.0 * np.r_[got[2:], got[1]] / sw.sum()
    fd = np.array([(f(coef + h) - f(coef - h)) / 2e-6 for h in np.eye(4) * 1e-6])
    assert_allclose(g, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ALL)
def test_batch_fit_reaches_the_minimizer(data, optimum, name):
    X, y, sw = data
    ref, fmin = optimum[name]
    res = fastgd.fit(X, y, sample_weight=sw, loss=name, epsilon=EPS, epochs=5000)
    assert res.converged
    assert_allclose(np.r_[res.coef, res.intercept], ref, rtol=1e-6, atol=1e-6)
    assert res.final_loss == pytest.approx(fmin, rel=1e-9)
    assert res.plan.loss == name and res.plan.reasons.get("solver", "").startswith(
        "stream" if name != "squared" else "gram")


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("mode", ["sgd", "minibatch"])
def test_stochastic_fits_approach_the_minimizer(data, optimum, name, mode):
    X, y, sw = data
    ref, fmin = optimum[name]
    # averaged iterates, from the start (SGD: 3000 steps an epoch) or once the transient
    # is over (mini-batches of 32: 94 steps an epoch)
    kw = dict(average=True) if mode == "sgd" else dict(batch_size=32, average=1000)
    res = fastgd.fit(X, y, sample_weight=sw, loss=name, epsilon=EPS, mode=mode, epochs=60,
                     tol=None, random_state=0, **kw)
    assert res.final_loss <= fmin * 1.002, (res.final_loss, fmin)
    assert_allclose(np.r_[res.coef, res.intercept], ref, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("name", ALL)
def test_fit_chunks_and_dask_equal_the_arrays(data, name):
    X, y, sw = data
    ref = fastgd.fit(X, y, sample_weight=sw, loss=name, epsilon=EPS, epochs=5000)
    cuts = [0, 700, 1500, 1501, 3000]
    blocks = [(X[a:b], y[a:b], sw[a:b]) for a, b in zip(cuts, cuts[1:])]
    got = fastgd.fit_chunks(blocks, loss=name, epsilon=EPS, epochs=5000)
    assert_allclose(got.coef, ref.coef, rtol=1e-9)
    da = pytest.importorskip("dask.array")
    import dask

    chunks = tuple(np.diff(cuts))
    with dask.config.set(scheduler="sync"):
        on_dask = fastgd.fit(da.from_array(X, chunks=(chunks, 3)), da.from_array(y, chunks=chunks),
                             sample_weight=da.from_array(sw, chunks=chunks), loss=name,
                             epsilon=EPS, epochs=5000)
        sgd_chunks = fastgd.fit_chunks(blocks, loss=name, epsilon=EPS, mode="sgd", tol=None, epochs=3,
                                       random_state=4)
        sgd_dask = fastgd.fit(da.from_array(X, chunks=(chunks, 3)), da.from_array(y, chunks=chunks),
                              sample_weight=da.from_array(sw, chunks=chunks), loss=name,
                              epsilon=EPS, mode="sgd", tol=None, epochs=3, random_state=4, parallel=False)
    # the same blocks: the same passes in the same order, bit for bit
    assert np.array_equal(on_dask.coef, got.coef) and on_dask.intercept == got.intercept
    assert np.array_equal(sgd_dask.coef, sgd_chunks.coef)


def test_a_loss_that_does_not_scale_refuses_extreme_magnitudes(data):
    X, y, sw = data
    with pytest.raises(ValueError, match="overflow|beyond float64"):
        fastgd.fit(X * 1e200, y * 1e200, loss="logcosh")
    # the losses that scale with y refit in power-of-two units, as the squared loss does
    big = fastgd.fit(X, y * 2.0 ** 450, loss="pseudohuber", epsilon=EPS * 2.0 ** 450,
                     epochs=5000)
    small = fastgd.fit(X, y, loss="pseudohuber", epsilon=EPS, epochs=5000)
    assert_allclose(big.coef * 2.0 ** -450, small.coef, rtol=1e-12)


def test_the_registry_is_the_validation():
    with pytest.raises(ValueError, match="'squared', 'huber', 'pseudohuber', 'logcosh'"):
        fastgd.fit([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], loss="cauchy")
    with pytest.raises(ValueError, match="registered already"):
        losses.register(type("Other", (PseudoHuber,), {})())
    with pytest.raises(TypeError, match="Loss instance"):
        losses.register("pseudohuber")
    with pytest.raises(ValueError, match="needs the squared loss"):
        fastgd.fit([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], loss="logcosh", solver="gram")
