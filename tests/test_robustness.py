"""Bad or extreme input: a correct answer or a clear error, never a hang, a NaN called
converged, a crash from deep inside, or a leaked RuntimeWarning (issue: "a correct answer
or a clear error, for every input"). Each test is the reproducer of a defect found by the
red-team pass; the oracle is the contract: a finite result whose ``final_loss`` is the
loss of its coefficients, or a ``ValueError``/``TypeError``/``DivergenceError`` saying
what to do.
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastgd

x = np.linspace(0, 1, 100)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 3))
    y = X @ [1.0, 2.0, 3.0] + 4 + rng.normal(0, 0.1, 1000)
    return X, y


def _finite_contract(res, X, y, sample_weight=None):
    assert np.isfinite(res.coef).all() and np.isfinite(res.intercept)
    assert np.isfinite(res.loss_history).all()
    if res.reduction == "mean" and not res.plan.alpha and res.plan.loss == "squared":
        assert res.final_loss == pytest.approx(
            fastgd.mse(X, y, res.coef, res.intercept, sample_weight=sample_weight), rel=1e-9, abs=1e-300)


def test_overflowing_column_fits_without_hanging():
    """Was: 300 s or more inside LAPACK (DLASCL illegal value), deaf to SIGINT. Oracle: the
    data lie on the line y = 99e-200 x exactly."""
    code = ("import numpy as np, fastgd\n"
            "x = np.linspace(0, 1, 100)\n"
            "r = fastgd.fit(np.c_[x[:10] * 1e200, np.zeros(10)], np.arange(10.0))\n"
            "print(repr(float(r.coef[0] * 1e200 / 99)), repr(float(r.coef[1])), r.converged)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    slope, zero, converged = out.stdout.split()
    assert float(slope) == pytest.approx(1.0, rel=1e-12) and float(zero) == 0.0
    assert converged == "True"
    assert "DLASCL" not in out.stdout + out.stderr


#: (kw, whether the fit is exactly unit-equivariant: the same iterations in any units)
UNIT_FITS = [(dict(), True), (dict(solver="stream"), True), (dict(optimizer="nesterov"), True),
             (dict(loss="huber"), False), (dict(mode="sgd", tol=None, random_state=0, epochs=3), True),
             (dict(mode="minibatch", tol=None, random_state=0, epochs=3), True),
             (dict(mode="sgd", tol=None, parallel=True, random_state=0, epochs=3), True)]


@pytest.mark.parametrize("kw,exact", UNIT_FITS)
@pytest.mark.parametrize("kx,ky", [(700, -300), (-1000, 0), (-560, 0), (0, -400), (600, 400)])
def test_extreme_magnitudes_fit_as_in_ordinary_units(problem, kw, exact, kx, ky):
    """Was: a ZeroDivisionError, a LinAlgError, NaN called converged, a silent zero fit, or
    coef 2.9e-170 for 1e170 (issue 9, #2-#5). Oracle: the fit of the same data in ordinary
    units, the powers of two moved onto the coefficients (and Huber's epsilon onto y's)."""
    X, y = problem
    ref = fastgd.fit(X, y, **kw)
    Xk, yk = np.ldexp(X, kx), np.ldexp(y, ky)
    extra = dict(epsilon=float(np.ldexp(0.1, ky))) if kw.get("loss") == "huber" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fastgd.fit(Xk, yk, **kw, **extra)
    rel = 0.0 if exact else 1e-9
    np.testing.assert_allclose(np.ldexp(res.coef, kx - ky), ref.coef, rtol=rel)
    assert np.ldexp(res.intercept, -ky) == pytest.approx(ref.intercept, rel=rel)
    assert np.ldexp(res.final_loss, -2 * ky) == pytest.approx(ref.final_loss, rel=rel)
    assert res.converged == ref.converged and res.plan is not None
    _finite_contract(res, Xk, yk)


def test_tiny_and_subnormal_columns(problem):
    """Was: coef[0] = 2.9e-170 where about 1e170 is right, "converged". Oracle: the fit
    with that column in ordinary units, its weight scaled (the data are exact multiples)."""
    X, y = problem
    ref = fastgd.fit(X, y)
    # 1e-170; subnormal (2^-1040 ~ 1e-313, with y small enough for the weight to be a
    # float64: a weight beyond is the clear error tested below)
    for kx, ky in ((-565, 0), (-1040, -100)):
        Xt = X.copy()
        Xt[:, 0] = np.ldexp(Xt[:, 0], kx)
        yt = np.ldexp(y, ky)
        res = fastgd.fit(Xt, yt)
        rel = 1e-12 if kx > -1022 else 1e-6  # subnormal values keep fewer bits
        assert np.ldexp(res.coef[0], kx - ky) == pytest.approx(ref.coef[0], rel=rel)
        np.testing.assert_allclose(np.ldexp(res.coef[1:], -ky), ref.coef[1:], rtol=rel)
        _finite_contract(res, Xt, yt)
    # symmetric tiny values: mean 0 and squares that underflow to 0, like a zero column
    Xs = np.tile([[1e-170], [-1e-170]], (50, 1))
    res = fastgd.fit(Xs, 3e170 * Xs[:, 0])
    assert res.coef[0] == pytest.approx(3e170, rel=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(penalty="l2"), dict(solver="stream"),
                                dict(mode="sgd", tol=None, epochs=2)])
def test_a_loss_beyond_float64_is_a_clear_error(kw):
    """y = 1e200 x: the slope is representable, but residuals of rounding size (1e184)
    have squares beyond float64, so no result could report its loss: a clear error (was:
    coef [nan], converged=True)."""
    with pytest.raises(ValueError, match=r"the loss of the fit is about 2\^\d+, beyond float64"):
        fastgd.fit(x, 1e200 * x, **kw)


def test_a_weight_beyond_float64_is_a_clear_error(problem):
    X, y = problem
    with pytest.raises(ValueError, match=r"weight of X\[:, 0\] is about 2\^1\d\d\d, beyond float64"):
        fastgd.fit(np.ldexp(X, -600), np.ldexp(y, 500))


def test_huber_on_a_huge_target():
    """Was: slope 0.0059, "converged", for y ~ 1e200 x. Huber's loss grows like |r|: it
    stays representable. Oracle: the same fit in ordinary units (y and epsilon / 2^400)."""
    rng = np.random.default_rng(1)
    yn = x + 0.01 * rng.normal(size=x.shape[0])
    ref = fastgd.fit(x, yn, loss="huber", epsilon=0.01)
    res = fastgd.fit(x, np.ldexp(yn, 400), loss="huber", epsilon=float(np.ldexp(0.01, 400)))
    assert np.ldexp(res.coef[0], -400) == ref.coef[0] and np.ldexp(res.intercept, -400) == ref.intercept
    assert np.ldexp(res.final_loss, -800) == ref.final_loss and res.converged


def test_extreme_magnitudes_in_blocks_and_callbacks(problem):
    """fit_chunks refits in power-of-two units block by block; the callback sees raw
    coefficients. Oracle: the in-memory fit of the same rows."""
    X, y = problem
    Xk = np.ldexp(X, 700)
    ref = fastgd.fit(Xk, y)
    seen = []
    res = fastgd.fit_chunks([(Xk[:400], y[:400]), (Xk[400:], y[400:])],
                            callback=lambda e, c, b, loss: seen.append((c, b, loss)))
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-12)
    c, b, loss = seen[-1]
    np.testing.assert_allclose(c, ref.coef, rtol=1e-6)
    assert loss == pytest.approx(fastgd.mse(Xk, y, c, b), rel=1e-9)


def test_penalty_beyond_float64_on_a_tiny_column_is_a_clear_error(problem):
    X, y = problem
    Xt = X.copy()
    Xt[:, 0] *= 1e-170
    with pytest.raises(ValueError, match=r"penalty \(alpha=0.0001\) on the weight of X\[:, 0\]"):
        fastgd.fit(Xt, y, penalty="l2")


def test_zero_columns_without_intercept(problem):
    """Was: ZeroDivisionError in every solver. The loss does not depend on the weights:
    zero weights, the optimum, converged."""
    y = np.arange(100.0)
    for kw in (dict(), dict(solver="stream"), dict(optimizer="nesterov"), dict(mode="sgd", tol=None, epochs=2)):
        res = fastgd.fit(np.zeros((100, 2)), y, fit_intercept=False, **kw)
        assert np.array_equal(res.coef, [0.0, 0.0]) and res.intercept == 0.0
        _finite_contract(res, np.zeros((100, 2)), y)


@pytest.mark.parametrize("w", [np.full(1000, 1e-320), np.full(1000, 1e306)])
def test_extreme_weights_are_rejected_clearly(problem, w):
    """Was: LinAlgError, or "diverged with learning_rate=0"."""
    X, y = problem
    with pytest.raises(ValueError, match=r"sample_weight reaches .* sample_weight / sample_weight.max\(\)"):
        fastgd.fit(X, y, sample_weight=w)


def test_masked_arrays_are_a_clear_type_error(problem):
    X, y = problem
    with pytest.raises(TypeError, match="X is a masked array.*filled"):
        fastgd.fit(np.ma.masked_array(X, mask=np.zeros_like(X)), y)


def test_zero_weight_training_rows_with_early_stopping(problem):
    """Was: a "converged" fit with nothing to fit."""
    X, y = problem
    w = np.zeros(1000)
    w[0] = 1.0  # one weighted row: the training rows (all but 10%) may have none
    for seed in range(20):
        try:
            fastgd.fit(X, y, sample_weight=w, mode="sgd", early_stopping=True, random_state=seed)
        except ValueError as exc:
            assert "zero total weight" in str(exc)
            break
    else:
        raise AssertionError("no seed put the only weighted row out of the training rows")


def test_huge_start_is_a_clear_error(problem):
    """Was: a NaN loss with converged=True."""
    X, y = problem
    with pytest.raises(ValueError, match="loss at the starting point is not finite"):
        fastgd.fit(X, y, init_coef=[1e308] * 3)


@pytest.mark.parametrize("args", [([1.0], [2.0]), (x, np.ones(100)), (np.c_[x, x], np.ones(100))])
def test_no_runtime_warnings_leak(args):
    """Was: RuntimeWarnings from fit([1.], [2.]) and a constant y; under
    np.seterr(all="raise") a FloatingPointError."""
    X, y = args
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # duplicate columns are exactly collinear: fastgd says so (tested below)
        warnings.simplefilter("ignore", fastgd.IllConditionedWarning)
        res = fastgd.fit(X, y)
    _finite_contract(res, X, y)
    old = np.seterr(all="raise")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fastgd.IllConditionedWarning)
            fastgd.fit(X, y)
    finally:
        np.seterr(**old)


def test_duplicate_columns_give_the_minimum_norm_weights_and_a_warning():
    """Exactly collinear columns: the weights are not determined by the data; the fit
    gives the minimum-norm least-squares solution (oracle: lstsq's, here w1 = w2 = 1.5)
    and says so."""
    X = np.c_[x, x]
    with pytest.warns(fastgd.IllConditionedWarning, match=r"condition number .* about"):
        res = fastgd.fit(X, 3 * x + 1)
    np.testing.assert_allclose(res.coef, [1.5, 1.5], rtol=1e-12)
    assert res.intercept == pytest.approx(1.0, rel=1e-12)


def test_automatic_rate_with_a_strong_l2_penalty(problem):
    """Was: DivergenceError telling the user to use learning_rate='auto', which was used."""
    X, y = problem
    for mode in ("sgd", "minibatch"):
        res = fastgd.fit(X, y, mode=mode, penalty="l2", alpha=100, random_state=0)
        assert np.isfinite(res.coef).all()
        assert res.converged and res.stop_reason.startswith("tol:")  # it stops by itself
        # alpha = 100 shrinks every weight towards 0 (ridge in raw units): |w| < 0.1
        assert np.abs(res.coef).max() < 0.1


@pytest.mark.parametrize("kw,exc,match", [
    (dict(init_coef="abc"), TypeError, r"init_coef must be real numbers"),
    (dict(init_coef=[1 + 1j, 2, 3]), TypeError, r"init_coef must be real numbers.*complex"),
    (dict(random_state=-1), ValueError, r"random_state must be an int >= 0"),
    (dict(random_state="seed"), TypeError, r"random_state must be None, an int"),
    (dict(shuffle="no"), TypeError, r"shuffle must be True or False"),
])
def test_messages_name_the_parameter(problem, kw, exc, match):
    X, y = problem
    with pytest.raises(exc, match=match):
        fastgd.fit(X, y, **kw)


def test_mse_with_a_bad_intercept(problem):
    X, y = problem
    with pytest.raises(TypeError, match="intercept must be a real number, got None"):
        fastgd.mse(X, y, [1, 2, 3], None)


def test_convergence_warning_advice_fits_the_fit():
    """Huber and L1 fits reject optimizer='cg': their warning must not suggest it."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 2))
    y = X @ [1.0, 2.0] + rng.standard_t(2, 500)
    for kw in (dict(loss="huber"), dict(penalty="l1", alpha=0.01)):
        with pytest.warns(fastgd.ConvergenceWarning) as rec:
            fastgd.fit(X, y, epochs=2, **kw)
        assert "optimizer='cg'" not in str(rec[0].message)


@pytest.mark.parametrize("args,match", [(["--seed", "-1"], "--seed must be an integer >= 0"),
                                        (["--n", "99999999999999999999"], "--n must be at most")])
def test_demo_bad_options_are_one_line_not_a_traceback(args, match):
    out = subprocess.run([sys.executable, "-m", "fastgd", "demo", *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and match in out.stderr and "Traceback" not in out.stderr


def test_concurrent_fits_under_the_workqueue_layer():
    """Was: two Python threads fitting 3e5 rows at once aborted the process ("Concurrent
    access has been detected") under numba's workqueue threading layer. Oracle: the
    same fits run one after the other."""
    code = (
        "import threading, numpy as np, fastgd, numba\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(300_000, 3)); y = X @ [1.0, 2, 3] + rng.normal(size=300_000)\n"
        "ref = [fastgd.fit(X, y, parallel=True).coef,\n"
        "       fastgd.fit(X, y, mode='sgd', parallel=True, epochs=1, random_state=0).coef]\n"
        # fastgd's parallel passes run on its own threads: numba's layer never starts
        "import pytest\n"
        "with pytest.raises(ValueError, match='not initialized'): numba.threading_layer()\n"
        "out = []\n"
        "def work():\n"
        "    for _ in range(3):\n"
        "        out.append((0, fastgd.fit(X, y, parallel=True).coef))\n"
        "        out.append((1, fastgd.fit(X, y, mode='sgd', parallel=True, epochs=1, random_state=0).coef))\n"
        "        fastgd.mse(X, y, ref[0], parallel=True)\n"
        "ts = [threading.Thread(target=work) for _ in range(2)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "assert len(out) == 12 and all(np.array_equal(c, ref[k]) for k, c in out)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize("kw", [dict(), dict(solver="stream"), dict(mode="sgd", tol=None, epochs=5),
                                dict(learning_rate=0.01, epochs=5), dict(loss="huber")])
def test_a_callback_writing_nan_into_X(problem, kw):
    """Was: NaN and "converged". Now the fit says what happened, not "diverged"."""
    X, y = problem
    X = X.copy()

    def spoil(epoch, coef, intercept, loss):
        X[5, 1] = np.nan

    with pytest.raises(ValueError, match=r"the data changed during the fit: .* now X has 1 row\(s\) "
                                         r"with NaN or inf values \(first at row 5\)\. Do not write"):
        fastgd.fit(X, y, callback=spoil, **kw)


def test_warnings_point_at_the_callers_line():
    """Whatever the path through the package (entry-point wrapper, units, engines)."""
    cases = [lambda: fastgd.fit(x, x + 0.01 * np.sin(50 * x), loss="huber", epsilon=1e-6),
             lambda: fastgd.fit(np.c_[x, x], 3 * x + 1),
             lambda: fastgd.fit(x, x, learning_rate=0.01, epochs=3, tol=1e-9),
             lambda: fastgd.fit_chunks([(np.c_[x, x], 3 * x + 1)])]
    for case in cases:
        with pytest.warns(fastgd.ConvergenceWarning) as record:
            case()
        assert record[0].filename == __file__


def test_huber_with_a_tiny_epsilon_is_not_called_converged():
    """Was: epsilon = 1e-100 "converged" after one epoch at slope 3e-115 (the tiny loss,
    epsilon times large residuals, passed for an exact fit; the gradient cosine compared
    psi with the loss instead of psi^2). Gradient descent cannot reach this optimum (an
    L1 fit, in effect) in the epochs given: it must say so."""
    rng = np.random.default_rng(0)
    y = x + 0.01 * rng.normal(size=x.size)
    for eps in (1e-6, 1e-100):
        with pytest.warns(fastgd.ConvergenceWarning, match="did not converge"):
            res = fastgd.fit(x, y, loss="huber", epsilon=eps)
        assert not res.converged
