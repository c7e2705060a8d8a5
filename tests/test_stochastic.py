"""Issue 4, stochastic modes: scaled SGD, schedules, averaging, early stopping, penalties, Huber.

Oracles: ``naive.sgd_scaled_epoch`` (the per-row twin of the kernel), numpy.linalg.lstsq,
the batch penalized fit, and scikit-learn's schedule semantics spelled out in the tests.
"""
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastgd
from fastgd import kernels as K
from fastgd.losses import get as get_loss
from tests import naive
from tests.conftest import make_linear


def _perms(seed, n, epochs):
    from fastgd._chunking import perm_layout

    rng = np.random.default_rng(seed)
    return [naive.permutation(n, int(rng.integers(0, 2**63 - 1)), perm_layout(n)[0])
            for _ in range(epochs)]


# --- the kernel against its twin -------------------------------------------------------

@pytest.mark.parametrize("d,bs", [(1, 1), (3, 1), (1, 5), (3, 7)])
@pytest.mark.parametrize("variant", ["plain", "plain_avg", "invscaling_avg", "penalties",
                                     "huber_weighted", "sum"])
def test_sgd_scaled_epoch_matches_twin(rng, d, bs, variant):
    n = 120
    X, y, _ = make_linear(rng, n, d)
    X = X * 3.0 + 2.0
    sw = rng.uniform(0.2, 2.0, n) if variant == "huber_weighted" else np.empty(0)
    perm = rng.permutation(n).astype(np.int64)
    m, s = X.mean(axis=0), X.std(axis=0)
    lam1, lam2 = np.zeros(d + 1), np.zeros(d + 1)
    if variant == "penalties":
        lam1[:d], lam2[:d] = 0.05, 0.1
    params = np.zeros(K.N_PARAMS)
    params[K.P_ETA0] = 0.05
    params[K.P_POWER_T] = 0.5
    params[K.P_T0] = 10.0
    params[K.P_SCHEDULE] = 1.0 if variant == "invscaling_avg" else 0.0
    params[K.P_BATCH] = bs
    params[K.P_MEAN] = 0.0 if variant == "sum" else 1.0
    params[K.P_WSCALE] = 1.3
    params[K.P_FIT_B] = 1.0
    # averaging starts mid-epoch (the epoch's steps are 11..): the kernel's split point
    params[K.P_AVG_START] = 25.0 if variant in ("invscaling_avg", "plain_avg") else 1e18
    params[K.P_EPSILON] = 0.3
    if variant == "sum":
        params[K.P_ETA0] = 0.05 / bs
    theta0 = rng.normal(size=d + 1)
    state = np.array([theta0, theta0 * 0.5])
    coords = np.array([np.append(m, 0.0), np.append(1 / s, 0.0), lam1, lam2])
    loss = get_loss("huber" if variant == "huber_weighted" else "squared")
    steps = K.sgd_kernels(loss).any(X, y, sw, perm, coords, params, state)
    th, av, t = naive.sgd_scaled_epoch(
        X, y, sw, perm, m, s, lam1, lam2, params[0], 0.5, 10, variant == "invscaling_avg", bs,
        variant != "sum", 1.3, True, params[K.P_AVG_START], variant == "huber_weighted", 0.3,
        theta0, theta0 * 0.5)
    assert steps == t - 10 == -(-n // bs)
    assert_allclose(state[0], th, rtol=1e-12, atol=1e-14)
    assert_allclose(state[1], av, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("d,avg_start", [(2, 1e18), (1, 1e18), (1, 3.0), (1, 20.0)])
def test_sgd_scaled_epoch_reports_nonfinite_row(rng, d, avg_start):
    """Every path stops at the first non-finite residual, before or after averaging starts."""
    X, y, _ = make_linear(rng, 50, d)
    y[7] = np.inf
    perm = np.arange(50, dtype=np.int64)
    params = np.zeros(K.N_PARAMS)
    params[[K.P_ETA0, K.P_BATCH, K.P_MEAN, K.P_WSCALE, K.P_FIT_B]] = [0.01, 1, 1, 1, 1]
    params[K.P_AVG_START] = avg_start
    coords = np.array([np.zeros(d + 1), np.ones(d + 1), np.zeros(d + 1), np.zeros(d + 1)])
    state = np.zeros((2, d + 1))
    assert K.sgd_kernels(get_loss("squared")).any(X, y, np.empty(0), perm, coords, params,
                                                 state) == -8
    assert np.all(np.isfinite(state))


# --- the fit against the twin, epoch by epoch --------------------------------------------

@pytest.mark.parametrize("kw", [
    dict(),  # default: scaled and averaged at the automatic rate
    dict(learning_rate=0.02, learning_rate_schedule="invscaling", average=30, scale=True),
    dict(learning_rate=0.02, penalty="elasticnet", alpha=0.05, l1_ratio=0.5, average=False,
         scale=True),
    dict(learning_rate=0.02, loss="huber", epsilon=0.2, average=False, fit_intercept=False,
         scale=True),
])
def test_fit_matches_twin(rng, kw):
    n, d, epochs = 150, 2, 3
    X, y, _ = make_linear(rng, n, d)
    X = X * np.array([5.0, 0.2]) + np.array([3.0, -1.0])
    res = fastgd.fit(X, y, mode="sgd", epochs=epochs, tol=None, random_state=5, **kw)
    fit_b = kw.get("fit_intercept", True)
    if fit_b:
        m, s = X.mean(axis=0), X.std(axis=0)
    else:
        m, s = np.zeros(d), np.sqrt((X ** 2).mean(axis=0))
    if "learning_rate" in kw:
        eta0 = kw["learning_rate"]
    else:
        Z = (X - m) / s
        eta0 = 1.0 / (2 * ((Z ** 2).sum(axis=1).max() + 1.0))
    alpha, l1r = kw.get("alpha", 0.0), kw.get("l1_ratio", 0.0)
    lam1 = np.append(alpha * l1r / s, 0.0)
    lam2 = np.append(alpha * (1 - l1r) / s ** 2, 0.0)
    avg_start = {None: 0, False: 1e18}.get(kw.get("average"), kw.get("average"))
    theta = np.zeros(d + 1)
    avg = theta.copy()
    t = 0
    for perm in _perms(5, n, epochs):
        theta, avg, t = naive.sgd_scaled_epoch(
            X, y, None, perm, m, s, lam1, lam2, eta0, 0.25, t,
            kw.get("learning_rate_schedule") == "invscaling", 1, True, 1.0, fit_b, avg_start,
            kw.get("loss") == "huber", kw.get("epsilon", 0.1), theta, avg)
    rep = avg if t > avg_start else theta
    coef = rep[:d] / s
    assert res.scaled and res.optimizer == "sgd"
    assert res.learning_rate == pytest.approx(eta0, rel=1e-12)
    assert_allclose(res.coef, coef, rtol=1e-10)
    assert res.intercept == pytest.approx(rep[d] - m @ coef if fit_b else 0.0, rel=1e-10, abs=1e-12)


# --- quality -------------------------------------------------------------------------------

def test_default_sgd_three_epochs_million_points(rng):
    """Issue 4's target: 10^6 points, mode='sgd' defaults, 3 epochs: excess MSE <= 1e-4."""
    n = 10**6
    x = rng.uniform(0, 10, n)
    y = 2.5 * x - 1 + rng.normal(0, 0.5, n)
    res = fastgd.fit(x, y, mode="sgd", tol=None, epochs=3, random_state=0)
    A = np.column_stack([x, np.ones(n)])
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    best = fastgd.mse(x, y, ref[:1], ref[1])
    assert (fastgd.mse(x, y, res.coef, res.intercept) - best) / best <= 1e-4
    # moments, rate, initial loss, then 3 x (epoch + loss)
    assert res.scaled and res.n_passes == 3 + 2 * 3


def test_sgd_elasticnet_approaches_batch_solution(rng):
    X, y, _ = make_linear(rng, 20_000, 3)
    kw = dict(penalty="elasticnet", alpha=0.2, l1_ratio=0.5)
    batch = fastgd.fit(X, y, **kw)
    sgd = fastgd.fit(X, y, mode="sgd", epochs=5, random_state=0, **kw)
    assert_allclose(sgd.coef, batch.coef, atol=5e-3)
    assert sgd.final_loss <= batch.final_loss * (1 + 1e-3)


def test_huber_resists_outliers(rng):
    n = 5000
    x = rng.normal(size=n)
    y = 2.0 * x + 1.0 + rng.normal(0, 0.1, n)
    y[:250] += 50.0  # 5% gross outliers
    sq = fastgd.fit(x, y, mode="sgd", tol=None, epochs=10, random_state=0)
    hub = fastgd.fit(x, y, mode="sgd", tol=None, epochs=10, random_state=0, loss="huber", epsilon=0.3)
    assert abs(hub.slope - 2.0) < 0.05 and abs(hub.intercept - 1.0) < 0.2
    assert abs(sq.intercept - 1.0) > 2.0  # the squared loss is dragged by the outliers


def test_adaptive_schedule_divides_by_five_until_tiny(rng):
    """With tol=0.5 no epoch after the first improves by half: eta / 5 every epoch, and
    the fit stops once eta < 1e-6 eta0, i.e. after 9 divisions (5^9 > 10^6)."""
    X, y, _ = make_linear(rng, 2000, 2)
    res = fastgd.fit(X, y, mode="sgd", learning_rate_schedule="adaptive", tol=0.5, epochs=100,
                     n_iter_no_change=1, random_state=0)
    assert res.converged and res.n_epochs == 10
    assert res.stop_reason.startswith("schedule: the adaptive rate fell below 1e-6 of eta0")
    res3 = fastgd.fit(X, y, mode="sgd", learning_rate_schedule="adaptive", tol=0.5, epochs=100,
                      n_iter_no_change=3, random_state=0)
    assert res3.converged and res3.n_epochs == 1 + 9 * 3


def test_early_stopping_stops_and_is_deterministic(rng):
    X, y, _ = make_linear(rng, 5000, 2)
    a = fastgd.fit(X, y, mode="minibatch", early_stopping=True, validation_fraction=0.2,
                   epochs=500, random_state=1)
    b = fastgd.fit(X, y, mode="minibatch", early_stopping=True, validation_fraction=0.2,
                   epochs=500, random_state=1)
    assert a.converged and a.n_epochs < 500
    assert np.array_equal(a.coef, b.coef) and np.array_equal(a.loss_history, b.loss_history)


def test_constant_schedule_tol_stops(rng):
    X, y, _ = make_linear(rng, 2000, 2)
    res = fastgd.fit(X, y, mode="sgd", tol=1e-3, n_iter_no_change=2, epochs=1000, random_state=0)
    assert res.converged and res.n_epochs < 1000


def test_parallel_true_mixes_scaled_sgd_with_averaging(rng):
    """parallel=True with the automatic rate: parameter mixing of the scaled, averaged
    SGD kernel (a numeric rate keeps mixing on the raw data)."""
    X, y, _ = make_linear(rng, 20_000, 2)
    res = fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, parallel=True, random_state=0)
    assert res.scaled and res.plan.mixing and res.plan.average == 0
    raw = fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, parallel=True, learning_rate=1e-3, random_state=0)
    assert not raw.scaled and raw.plan.mixing and raw.plan.engine == "sgd_raw"


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(mode="sgd", learning_rate_schedule="optimal"), ValueError, r"learning_rate_schedule must be one of 'constant', 'invscaling', 'adaptive'"),
    (dict(mode="sgd", power_t=-1.0), ValueError, r"power_t must be a finite number >= 0"),
    (dict(mode="sgd", average="yes"), ValueError, r"average must be True, False, 'auto' or an int >= 1"),
    (dict(mode="sgd", average=0), ValueError, r"average must be >= 1, got 0"),
    (dict(mode="sgd", early_stopping="yes"), TypeError, r"early_stopping must be True or False"),
    (dict(mode="sgd", early_stopping=True, validation_fraction=1.0), ValueError, r"validation_fraction must be strictly between 0 and 1"),
    (dict(mode="sgd", loss="l1"), ValueError, r"loss must be one of 'squared', 'huber'.* \(the registered losses, fastgd.losses\); got 'l1'"),
    (dict(mode="sgd", loss="huber", epsilon=0.0), ValueError, r"epsilon must be a finite number > 0"),
    (dict(learning_rate_schedule="adaptive"), ValueError, r"applies to mode='minibatch' and mode='sgd' only, not to mode='batch'"),
    (dict(mode="sgd", learning_rate_schedule="adaptive", tol=None), ValueError, r"need tol"),
])
def test_bad_stochastic_parameters(kwargs, exc, match):
    X = np.arange(20.0).reshape(10, 2)
    with pytest.raises(exc, match=match):
        fastgd.fit(X, np.arange(10.0), **kwargs)


# --- stopping by default (issue 20, item 3) -------------------------------------------------

@pytest.mark.parametrize("mode", ["sgd", "minibatch"])
def test_default_stochastic_fits_stop_by_themselves(rng, mode):
    """Default settings: the fit stops once the full-data loss of the reported (averaged)
    iterate improves by less than 1e-4 (relative) in 3 epochs, says so, and is close to
    the optimum (oracle: the least-squares solution)."""
    X, y, _ = make_linear(rng, 100_000, 5, noise=1.0)
    res = fastgd.fit(X, y, mode=mode, random_state=1)
    assert res.converged and res.n_epochs < 20
    assert res.plan.tol == 1e-4 and res.plan.n_iter_no_change == 3
    assert res.stop_reason.startswith("tol: the full-data loss improved by less than tol=0.0001")
    A = np.column_stack([X, np.ones(len(y))])
    best = float(np.mean((y - A @ np.linalg.lstsq(A, y, rcond=None)[0]) ** 2))
    assert res.final_loss <= best * (1.0 + 2e-3)
    # the rule, checked on the history: the last 3 epochs did not improve on the best
    # before them by more than tol, and every earlier run of 3 did
    h = res.loss_history
    best_before = h[: len(h) - 3].min()
    assert np.all(h[-3:] >= best_before - 1e-4 * best_before)


@pytest.mark.parametrize("sparse", [False, True])
def test_plain_sgd_on_raw_data_stops_by_itself_with_the_automatic_rate(rng, sparse):
    """``scale=False, average=False`` (scikit-learn's update) with the automatic rate has
    the stopping rule of the default fit; only a numeric rate, the textbook update, runs
    exactly ``epochs``. (It ran all 100 epochs without a word: the textbook rule, the
    change over one epoch, is never met by the noisy losses of constant steps.) Oracles
    for where it stops: the least-squares loss below, and above, the band that the same
    steps hover in over 60 epochs (without averaging, constant steps do not settle)."""
    X, y, _ = make_linear(rng, 20_000, 4, noise=1.0)
    if sparse:
        sp = pytest.importorskip("scipy.sparse")
        X = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    kw = dict(mode="sgd", scale=False, average=False, random_state=0)
    res = fastgd.fit(X, y, **kw)
    assert res.plan.engine == "sgd_scaled" and res.plan.tol == 1e-4
    assert res.converged and res.n_epochs < 30, res.stop_reason
    assert res.stop_reason.startswith("tol: ")
    D = X.toarray() if sparse else X
    A = np.column_stack([D, np.ones(len(y))])
    best = float(np.mean((y - A @ np.linalg.lstsq(A, y, rcond=None)[0]) ** 2))
    hovering = fastgd.fit(X, y, tol=None, epochs=60, **kw).loss_history[-30:]
    assert best <= res.final_loss <= 1.05 * hovering.max()
    textbook = fastgd.fit(X, y, learning_rate=1e-3, epochs=4, **kw)
    assert textbook.plan.tol is None and textbook.n_epochs == 4


@pytest.mark.parametrize("tol", [None, 0, 0.0])
def test_tol_none_or_zero_runs_exactly_epochs_without_warning(rng, tol):
    X, y, _ = make_linear(rng, 2000, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fastgd.fit(X, y, mode="sgd", tol=tol, epochs=7, random_state=0)
    assert res.n_epochs == 7 and not res.converged and res.plan.tol is None
    assert res.stop_reason == "epochs: all 7 epochs ran"


def test_a_stochastic_fit_out_of_epochs_says_so(rng):
    X, y, _ = make_linear(rng, 2000, 2)
    with pytest.warns(fastgd.ConvergenceWarning,
                      match=r"the sgd fit did not meet its stopping rule in epochs=2 .*"
                            r"tol=None runs exactly epochs") as w:
        res = fastgd.fit(X, y, mode="sgd", epochs=2, random_state=0)
    assert len(w) == 1 and not res.converged
    assert res.stop_reason.startswith("epochs: all 2 epochs ran before the stopping rule")


def test_every_fit_says_why_it_stopped(rng):
    X, y, _ = make_linear(rng, 2000, 2)
    assert fastgd.fit(X, y).stop_reason.startswith("optimum:")  # CG on the statistics
    res = fastgd.fit(X, y, learning_rate=0.1, tol=1e-9, epochs=10_000)
    assert res.stop_reason.startswith("tol: the loss changed by at most tol=1e-09")
    res = fastgd.fit(X, y, mode="minibatch", early_stopping=True, random_state=0)
    assert res.converged and res.stop_reason.startswith("early_stopping: the held-out loss")
    res = fastgd.fit(X, y, mode="sgd", tol=None, epochs=50, random_state=0,
                     callback=lambda epoch, *a: epoch < 4)
    assert res.stop_reason == "callback: the callback returned False after epoch 4"
    with pytest.raises(fastgd.DivergenceError) as err:
        fastgd.fit(X, y, learning_rate=100.0, epochs=50)
    assert err.value.result.stop_reason.startswith("diverged: the loss exploded")


def test_the_cli_stops_sgd_by_itself_and_tol_0_runs_every_epoch(tmp_path, rng):
    X, y, _ = make_linear(rng, 20_000, 2)
    path = tmp_path / "rows.csv"
    np.savetxt(path, np.c_[X, y], delimiter=",", header="a,b,y", comments="")
    run = [sys.executable, "-m", "fastgd", "fit", str(path), "--x", "a", "--x", "b", "--y", "y",
           "--mode", "sgd", "--random-state", "0", "--format", "json"]
    out = json.loads(subprocess.run(run, capture_output=True, text=True, check=True).stdout)
    assert out["converged"] is True and out["epochs"] < 100
    assert out["stop_reason"].startswith("tol: ")
    proc = subprocess.run(run + ["--epochs", "4", "--tol", "0"], capture_output=True,
                          text=True, check=True)
    out = json.loads(proc.stdout)
    assert out["converged"] is False and out["epochs"] == 4 and proc.stderr == ""
    assert out["stop_reason"].startswith("epochs: ")
    # a fit that runs out of epochs says so in one line, not Python's file:line form
    proc = subprocess.run(run + ["--epochs", "2"], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout)["epochs"] == 2
    assert proc.stderr.startswith("fastgd fit: warning: the sgd fit did not meet its stopping "
                                  "rule in epochs=2"), proc.stderr
    assert proc.stderr.count("\n") == 1
