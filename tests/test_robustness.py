"""Bad or extreme input: a correct answer or a clear error, never a hang, a NaN called
converged, a crash from deep inside, or a leaked RuntimeWarning (issue: "a correct answer
or a clear error, for every input"). Each test is the reproducer of a defect found by the
red-team pass; the oracle is the contract: a finite result whose ``final_loss`` is the
loss of its coefficients, or a ``ValueError``/``TypeError``/``DivergenceError`` saying
what to do.
"""
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
    if res.reduction == "mean" and not res.plan.alpha:
        assert res.final_loss == pytest.approx(
            fastgd.mse(X, y, res.coef, res.intercept, sample_weight=sample_weight), rel=1e-9, abs=1e-300)


def test_overflowing_column_is_a_clear_error_not_a_hang():
    """Was: 300 s or more inside LAPACK (DLASCL illegal value), deaf to SIGINT."""
    code = ("import numpy as np, fastgd\n"
            "x = np.linspace(0, 1, 100)\n"
            "try:\n"
            "    fastgd.fit(np.c_[x[:10] * 1e200, np.zeros(10)], np.arange(10.0))\n"
            "except ValueError as e:\n"
            "    print('ValueError:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ValueError: the sums of squares of X[:, 0] overflow float64" in out.stdout
    assert "DLASCL" not in out.stdout + out.stderr


@pytest.mark.parametrize("kw", [dict(), dict(penalty="l2"), dict(solver="stream"),
                                dict(loss="huber")])
def test_overflowing_target_never_returns_nan_called_converged(kw):
    """Was: coef [nan], converged=True, for |y| >= 1e155."""
    with pytest.raises(ValueError, match="overflow float64"):
        fastgd.fit(x, 1e200 * x, **kw)


def test_overflowing_feature_is_a_clear_error():
    """Was: ZeroDivisionError, or LinAlgError from the eigenvalue solver."""
    for kw in (dict(), dict(scale=False, optimizer="gd", epochs=5, tol=None)):
        with pytest.raises(ValueError, match=r"X\[:, 0\] overflow float64"):
            fastgd.fit(1e200 * x, x, **kw)


def test_zero_columns_without_intercept(problem):
    """Was: ZeroDivisionError in every solver. The loss does not depend on the weights:
    zero weights, the optimum, converged."""
    y = np.arange(100.0)
    for kw in (dict(), dict(solver="stream"), dict(optimizer="nesterov"), dict(mode="sgd", epochs=2)):
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
        res = fastgd.fit(X, y)
    _finite_contract(res, X, y)
    old = np.seterr(all="raise")
    try:
        fastgd.fit(X, y)
    finally:
        np.seterr(**old)


def test_automatic_rate_with_a_strong_l2_penalty(problem):
    """Was: DivergenceError telling the user to use learning_rate='auto', which was used."""
    X, y = problem
    for mode in ("sgd", "minibatch"):
        res = fastgd.fit(X, y, mode=mode, penalty="l2", alpha=100, epochs=5, random_state=0)
        assert np.isfinite(res.coef).all()
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
