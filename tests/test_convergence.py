"""Issue 4: the default fit reaches the least-squares optimum (scaling, CG, the gram path).

Oracles: the certified NIST StRD values and the 40-digit optimum of the tutorial data
(../shared/data/README.md), numpy.linalg.lstsq, and scaled gradient descent written out
with an explicitly standardized copy of X (``scaled_gd`` below).
"""
import json
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastgd
from tests.conftest import make_linear

BIKE_OPT = (7.9910209857344440, 1.3224310226878684)  # intercept, slope (40-digit solve)


def lre(est, cert):
    est, cert = np.asarray(est, dtype=float), np.asarray(cert, dtype=float)
    err = np.abs(est - cert) / np.abs(cert)
    return float(np.min(-np.log10(np.maximum(err, 1e-17))))


def nist(shared_data, name):
    cert = json.loads((shared_data / "nist" / "certified.json").read_text())[name]
    d = np.loadtxt(shared_data / "nist" / f"{name}.csv", delimiter=",", skiprows=1)
    y, x = d[:, 0], d[:, 1]
    cols = [x ** int(t.split("^")[1]) if "^" in t else x for t in cert["terms"]]
    return np.column_stack(cols), y, cert


def lstsq(X, y, sw=None, fit_intercept=True):
    A = np.column_stack([X, np.ones(len(X))]) if fit_intercept else X
    w = np.ones(len(X)) if sw is None else sw
    sol = np.linalg.lstsq(A * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
    return (sol[:-1], sol[-1]) if fit_intercept else (sol, 0.0)


# --- accuracy targets of issue 4 -----------------------------------------------------

def test_bike_default_fit_is_the_optimum(bike):
    x, y = bike
    res = fastgd.fit(x, y)
    assert res.intercept == pytest.approx(BIKE_OPT[0], rel=1e-10)
    assert res.slope == pytest.approx(BIKE_OPT[1], rel=1e-10)
    assert res.final_loss == pytest.approx(110.25738344912884, rel=1e-12)
    assert res.converged and res.scaled and res.solver == "gram" and res.optimizer == "cg"
    assert res.n_epochs <= 3 and res.n_passes == 2  # moments pass + refinement pass


@pytest.mark.parametrize("name,digits", [
    ("norris", 12), ("noint1", 12), ("noint2", 12), ("pontius", 9), ("wampler1", 6),
])
def test_nist_default_fit(shared_data, name, digits):
    X, y, cert = nist(shared_data, name)
    res = fastgd.fit(X, y, fit_intercept=cert["intercept"])
    est, ref = list(res.coef), list(cert["coef"])
    if cert["intercept"]:
        est.append(res.intercept)
        ref.append(cert["intercept_value"])
    else:
        assert res.intercept == 0.0
    assert res.converged
    assert lre(est, ref) >= digits


@pytest.mark.parametrize("name,digits", [("norris", 12), ("pontius", 9), ("wampler1", 6)])
def test_nist_streaming_cg(shared_data, name, digits):
    X, y, cert = nist(shared_data, name)
    res = fastgd.fit(X, y, solver="stream")
    assert res.solver == "stream" and res.converged
    assert lre(list(res.coef) + [res.intercept], cert["coef"] + [cert["intercept_value"]]) >= digits


def _excess(n, rng):
    x = rng.uniform(0, 10, n)
    y = 2.5 * x - 1 + rng.normal(0, 0.5, n)
    res = fastgd.fit(x, y)
    c, b = lstsq(x[:, None], y)
    best = fastgd.mse(x, y, c, b)
    return (fastgd.mse(x, y, res.coef, res.intercept) - best) / best, res


def test_million_points_default_fit_excess_mse(rng):
    excess, res = _excess(10**6, rng)
    assert excess <= 1e-9 and res.n_passes == 2


@pytest.mark.slow
def test_ten_million_points_default_fit_excess_mse(rng):
    excess, res = _excess(10**7, rng)
    assert excess <= 1e-9 and res.n_passes == 2


# --- the gram path equals the streaming path -----------------------------------------

@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov", "cg"])
@pytest.mark.parametrize("case", ["plain", "weighted", "no_intercept", "unscaled", "sum"])
def test_gram_trajectory_equals_stream(rng, optimizer, case):
    X, y, _ = make_linear(rng, 3000, 4)
    X = X * np.array([1.0, 10.0, 0.1, 3.0]) + np.array([5.0, -2.0, 0.0, 40.0])
    # CG reaches the optimum of this 5-parameter problem in 5 steps, after which both
    # paths iterate on rounding noise: compare the first 3 (the streaming CG takes H p
    # from a gradient difference, the gram one from G p: equal up to rounding).
    kw = dict(optimizer=optimizer, epochs=3 if optimizer == "cg" else 25, tol=None)
    if case == "weighted":
        kw["sample_weight"] = rng.uniform(0.1, 2.0, len(y))
    if case == "no_intercept":
        kw.update(fit_intercept=False, init_intercept=0.3)
    if case == "unscaled":
        kw["scale"] = False
    if case == "sum":
        kw["reduction"] = "sum"
    runs = {}
    for solver in ("gram", "stream"):
        seen = []
        res = fastgd.fit(X, y, solver=solver, **kw,
                         callback=lambda e, c, b, l, seen=seen: seen.append(np.append(c, b)))
        runs[solver] = (res, np.array(seen))
    (g, gs), (s, ss) = runs["gram"], runs["stream"]
    assert g.solver == "gram" and s.solver == "stream" and g.n_epochs == s.n_epochs
    assert_allclose(gs, ss, rtol=1e-12, atol=1e-12 * np.abs(ss).max())
    assert_allclose(g.loss_history, s.loss_history, rtol=1e-10)
    assert g.n_passes == 1 and s.n_passes >= s.n_epochs


# --- scaled GD against an explicitly standardized copy --------------------------------

def scaled_gd(X, y, lr, epochs, fit_intercept=True):
    """Plain GD on the mean squared error of (X - mean) / std (or X / rms), mapped back."""
    if fit_intercept:
        m, s = X.mean(axis=0), X.std(axis=0)
    else:
        m, s = np.zeros(X.shape[1]), np.sqrt((X ** 2).mean(axis=0))
    Xs = (X - m) / s
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(epochs):
        r = y - (Xs @ w + b)
        w = w + lr * 2 * (Xs.T @ r) / len(y)
        if fit_intercept:
            b = b + lr * 2 * r.mean()
    coef = w / s
    return coef, b - m @ coef


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_numeric_rate_with_scale_is_gd_on_standardized_data(rng, fit_intercept):
    X, y, _ = make_linear(rng, 500, 3)
    X = X * np.array([100.0, 0.01, 1.0]) + 7.0
    res = fastgd.fit(X, y, learning_rate=0.2, epochs=30, scale=True, fit_intercept=fit_intercept)
    coef, b = scaled_gd(X, y, 0.2, 30, fit_intercept)
    assert res.scaled and res.optimizer == "gd" and res.n_epochs == 30 and not res.converged
    assert_allclose(res.coef, coef, rtol=1e-10)
    assert res.intercept == pytest.approx(b, rel=1e-10, abs=1e-12)


def test_numeric_rate_stays_textbook(bike):
    """scale='auto' is off for a numeric rate: the tutorial run, exactly."""
    x, y = bike
    res = fastgd.fit(x, y, learning_rate=1e-4, epochs=1000)
    assert not res.scaled and res.solver == "stream" and res.optimizer == "gd"
    assert res.n_epochs == 1000 and res.n_passes == 1001
    assert res.intercept == pytest.approx(0.08893651993741346, rel=1e-9)


# --- optimizers and stopping -----------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov", "cg"])
@pytest.mark.parametrize("solver", ["gram", "stream"])
def test_every_optimizer_reaches_lstsq(rng, optimizer, solver):
    n, d = 4000, 5
    Z = rng.normal(size=(n, d))
    X = Z @ np.triu(np.ones((d, d))) * np.array([1, 2, 50, 0.1, 3]) + 10  # correlated, scaled
    y = X @ rng.uniform(-1, 1, d) + 2 + rng.normal(0, 0.1, n)
    w = rng.uniform(0.5, 1.5, n)
    res = fastgd.fit(X, y, sample_weight=w, optimizer=optimizer, solver=solver)
    c, b = lstsq(X, y, w)
    assert res.converged
    assert_allclose(res.coef, c, rtol=1e-8, atol=1e-10)
    assert res.intercept == pytest.approx(b, rel=1e-8)


def test_no_intercept_keeps_init_intercept(rng):
    X, y, _ = make_linear(rng, 300, 2)
    res = fastgd.fit(X, y, fit_intercept=False, init_intercept=0.7)
    assert res.intercept == 0.7
    c, _ = lstsq(X, y - 0.7, fit_intercept=False)
    assert_allclose(res.coef, c, rtol=1e-10)


def test_constant_column_is_harmless(rng):
    X, y, _ = make_linear(rng, 300, 2)
    X = np.column_stack([X, np.full(300, 3.0)])
    res = fastgd.fit(X, y)
    assert res.converged and res.coef[2] == 0.0
    c, b = lstsq(X[:, :2], y)
    assert_allclose(res.coef[:2], c, rtol=1e-10)


def test_exhausted_cap_warns_with_advice(shared_data):
    X, y, _ = nist(shared_data, "wampler1")
    with pytest.warns(fastgd.ConvergenceWarning, match=r"did not converge in epochs=50.*raise epochs"):
        res = fastgd.fit(X, y, optimizer="gd", epochs=50)
    assert not res.converged and res.n_epochs == 50


def test_textbook_run_with_tol_warns_when_cap_runs_out(bike):
    x, y = bike
    with pytest.warns(fastgd.ConvergenceWarning, match=r"epochs=20.*learning_rate='auto'"):
        fastgd.fit(x, y, learning_rate=1e-4, epochs=20, tol=1e-12)


def test_tol_none_runs_exactly_epochs(rng):
    X, y, _ = make_linear(rng, 200, 3)
    res = fastgd.fit(X, y, optimizer="gd", epochs=7, tol=None)
    assert res.n_epochs == 7 and not res.converged


def test_n_iter_no_change_delays_the_stop(rng):
    X, y, _ = make_linear(rng, 200, 3)
    one = fastgd.fit(X, y, optimizer="gd")
    three = fastgd.fit(X, y, optimizer="gd", n_iter_no_change=3)
    assert one.converged and three.converged and three.n_epochs == one.n_epochs + 2


def test_default_fit_monotone_loss(rng):
    X, y, _ = make_linear(rng, 1000, 6)
    res = fastgd.fit(X * np.arange(1, 7) ** 3, y)
    assert np.all(np.diff(res.loss_history) <= 1e-12 * res.loss_history[0])


def test_gram_serial_equals_parallel(rng):
    X, y, _ = make_linear(rng, 70_001, 3)
    a = fastgd.fit(X, y, parallel=False)
    b = fastgd.fit(X, y, parallel=True)
    assert np.array_equal(a.coef, b.coef) and a.intercept == b.intercept
    assert np.array_equal(a.loss_history, b.loss_history)


# --- validation of the new parameters -------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(scale="yes"), ValueError, r"scale must be True, False or 'auto', got 'yes'"),
    (dict(solver="lbfgs"), ValueError, r"solver must be one of 'auto', 'stream', 'gram'; got 'lbfgs'"),
    (dict(optimizer="adam"), ValueError, r"optimizer must be one of 'auto', 'gd', 'momentum', 'nesterov', 'cg'"),
    (dict(n_iter_no_change=0), ValueError, r"n_iter_no_change must be >= 1, got 0"),
    (dict(n_iter_no_change=1.5), TypeError, r"n_iter_no_change must be an integer"),
    (dict(optimizer="cg", learning_rate=0.1), ValueError, r"optimizer='cg' chooses its own step"),
    (dict(mode="minibatch", solver="gram"), ValueError, r"solver='gram' applies to mode='batch'"),
    (dict(mode="sgd", optimizer="nesterov"), ValueError, r"optimizer='nesterov' applies to mode='batch'"),
    (dict(tol="fast"), TypeError, r"tol must be a number >= 0, got 'fast'"),
    (dict(tol=-1.0), ValueError, r"tol must be a finite number >= 0"),
    (dict(n_iter_no_change="x"), TypeError, r"n_iter_no_change must be 'auto' or an int >= 1"),
])
def test_bad_new_parameters(kwargs, exc, match):
    X = np.arange(20.0).reshape(10, 2)
    with pytest.raises(exc, match=match):
        fastgd.fit(X, np.arange(10.0), **kwargs)


@pytest.mark.parametrize("kw", [dict(optimizer="nesterov", scale=True), dict(mode="sgd", scale=True)])
def test_too_large_rate_in_scaled_fits_raises_divergence(rng, kw):
    X, y, _ = make_linear(rng, 2000, 3)
    with pytest.raises(fastgd.DivergenceError, match=r"learning_rate=10") as info:
        fastgd.fit(X, y, learning_rate=10.0, epochs=50, **kw)
    last = info.value.result
    assert np.all(np.isfinite(last.coef)) and np.all(np.isfinite(last.loss_history))
    assert last.n_epochs == info.value.epoch - 1


def test_stream_and_sgd_scaling_skip_the_full_comoments(rng, monkeypatch):
    """Above 16 features the streaming solver and scaled SGD gather per-column moments
    only (O(n d)); the O(n d^2) co-moment pass is the gram solver's alone."""
    from fastgd import sources as _sources

    original = _sources.Source.moments

    def refuse(self, full):
        assert not full, "full co-moments computed"
        return original(self, full)

    X = rng.normal(size=(3000, 20)) * rng.uniform(0.1, 10, 20) + rng.normal(size=20)
    y = X @ rng.normal(size=20) + 1.0 + rng.normal(0, 0.1, 3000)
    ref = np.linalg.lstsq(np.column_stack([X, np.ones(3000)]), y, rcond=None)[0]
    monkeypatch.setattr(_sources.Source, "moments", refuse)
    res = fastgd.fit(X, y, solver="stream")
    assert res.converged and res.solver == "stream"
    np.testing.assert_allclose(np.append(res.coef, res.intercept), ref, rtol=1e-8, atol=1e-10)
    # 3,000 rows: averaged SGD needs epochs here (excess 3.9x at 3 epochs, 0.26% at 100)
    sgd = fastgd.fit(X, y, mode="sgd", epochs=100, random_state=0)
    assert sgd.final_loss <= 1.01 * fastgd.mse(X, y, ref[:20], ref[20])


@pytest.mark.parametrize("solver", ["gram", "stream"])
def test_exact_data_converges_without_warning(solver):
    """A fit that reaches zero loss has converged, even with a cap of one epoch."""
    x = np.arange(100.0)
    res = fastgd.fit(x, 3.0 * x + 2.0, epochs=1, solver=solver)  # ConvergenceWarning is an error here
    assert res.converged
    assert res.slope == pytest.approx(3.0, rel=1e-12) and res.intercept == pytest.approx(2.0, rel=1e-12)


def test_optimum_reached_in_first_epoch_converges_without_warning(rng):
    """CG reaches the optimum of a one-feature problem in one step: converged at once."""
    x = rng.uniform(-5, 5, 4096)
    y = 2.5 * x - 1 + rng.normal(0, 0.5, 4096)
    res = fastgd.fit(x, y, epochs=1)  # a ConvergenceWarning would be an error here
    assert res.converged and res.n_epochs == 1
    ref = np.polyfit(x, y, 1)
    assert res.slope == pytest.approx(ref[0], rel=1e-12) and res.intercept == pytest.approx(ref[1], rel=1e-10)


# --- warnings computed from the data and the plan that ran (issue 20, items 4 and 5) -------

def _line(rng, n=100):
    x = rng.normal(50.0, 10.0, n)
    return x, 3.0 * x + 2.0 + rng.normal(0.0, 10.0, n)


def test_a_numeric_rate_that_makes_the_fit_worse_warns_with_the_stable_limit(rng):
    """Oracle: the stable limit of gradient descent, 2/L with L = 2 lambda_max of the
    Gram matrix of [x, 1] over n (the mean loss's curvature), from NumPy."""
    x, y = _line(rng)
    A = np.column_stack([x, np.ones_like(x)])
    limit = 2.0 / (2.0 * np.linalg.eigvalsh(A.T @ A / len(x))[-1])
    with pytest.warns(fastgd.ConvergenceWarning,
                      match=rf"above its starting loss .* learning_rate=\S+ is above the stable "
                            rf"limit for this data, about {limit:.3g} \(2/L.*learning_rate='auto'"):
        res = fastgd.fit(x, y, learning_rate=1.1 * limit, epochs=30)
    assert res.final_loss > res.loss_history[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastgd.fit(x, y, learning_rate=0.9 * limit, epochs=30)  # below the limit: silent


def test_a_rate_that_ends_far_above_its_best_loss_warns_though_below_its_start():
    """The second trigger: the final loss below the starting one but over 10 times the best
    reached. Oracle: the eigenvalues of the Gram matrix (NumPy). Just above the stable limit
    the steep direction grows by about 1.01^2 an epoch from a tiny start while the shallow
    one decays from a large one: the loss falls, bottoms out, then climbs."""
    rng = np.random.default_rng(1)
    X = np.column_stack([3.0 * rng.normal(size=400), 10.0 * rng.normal(size=400)])
    y = X @ [1.0, 1.0]
    limit = 2.0 / (2.0 * np.linalg.eigvalsh(X.T @ X / 400)[-1])
    kw = dict(learning_rate=1.01 * limit, fit_intercept=False, init_coef=[11.0, 1.00001])
    with pytest.warns(fastgd.ConvergenceWarning,
                      match=rf"times the best loss it reached .* is above the stable limit for "
                            rf"this data, about {limit:.3g}"):
        res = fastgd.fit(X, y, epochs=100, **kw)
    h = res.loss_history
    assert h.min() * 10 < h[-1] < h[0]
    with warnings.catch_warnings():  # at 80 epochs it is 9 times the best: silent
        warnings.simplefilter("error")
        res = fastgd.fit(X, y, epochs=80, **kw)
    assert res.loss_history.min() * 5 < res.final_loss < 10 * res.loss_history.min()


def test_a_numeric_sgd_rate_above_the_limit_warns():
    """Oracle: per-row SGD on the mean loss overshoots a row when the rate exceeds
    1 / max_i (x_i^2 + 1). (Its own seed: the rate that ends worse without exploding is
    a narrow window, 2.6 to 2.8 times the limit on these rows.)"""
    x, y = _line(np.random.default_rng(0), 400)
    limit = 1.0 / np.max(x * x + 1.0)
    with pytest.warns(fastgd.ConvergenceWarning,
                      match=rf"learning_rate=\S+ is above the stable limit for this data, about "
                            rf"{limit:.3g} \(twice the rate at which no single step overshoots"):
        res = fastgd.fit(x, y, mode="sgd", learning_rate=2.7 * limit, epochs=3, random_state=0)
    assert res.final_loss > res.loss_history[0]  # 3.4e5 against 2.4e4 at the start


@pytest.mark.parametrize("kw,has,lacks", [
    # the automatic fit already runs CG in scaled coordinates: neither is advised
    (dict(solver="stream", epochs=1, tol=1e-30), ["raise epochs", "loosen tol"],
     ["optimizer='cg'", "scale=True"]),
    (dict(optimizer="gd", epochs=3), ["optimizer='cg'"], ["scale=True"]),
    (dict(optimizer="gd", scale=False, epochs=3, solver="stream"), ["optimizer='cg'", "scale=True"],
     []),
    (dict(loss="huber", optimizer="gd", epochs=3), ["optimizer='nesterov'"], ["optimizer='cg'"]),
])
def test_convergence_advice_comes_from_the_plan_that_ran(rng, kw, has, lacks):
    X = rng.normal(size=(500, 3)) * [1.0, 100.0, 0.01]
    X[:, 1] += X[:, 0]
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=500)
    with pytest.warns(fastgd.ConvergenceWarning, match="did not converge") as w:
        fastgd.fit(X, y, **kw)
    text = str(w[0].message)
    for s in has:
        assert s in text, (s, text)
    for s in lacks:
        assert s not in text, (s, text)
