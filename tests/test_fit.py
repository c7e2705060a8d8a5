"""fit() in every mode against its oracles: the tutorial's figures, per-row twins, lstsq."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastgd
from fastgd import sources as _sources
from tests import naive
from tests.conftest import make_linear

# --- the tutorial ----------------------------------------------------------------------

def test_tutorial_figures(bike):
    """The printed figures of the tutorial program (../shared/data/README.md)."""
    x, y = bike
    res = fastgd.fit(x, y, learning_rate=1e-4, epochs=1000)
    assert res.loss_history[0] == pytest.approx(5565.107834483211, rel=1e-9)
    assert res.intercept == pytest.approx(0.08893651993741346, rel=1e-9)
    assert res.slope == pytest.approx(1.4777440851894448, rel=1e-9)
    assert res.final_loss == pytest.approx(112.61481011613473, rel=1e-9)
    assert res.n_epochs == 1000 and res.loss_history.shape == (1001,)
    assert res.learning_rate == 1e-4 and not res.converged


def test_tutorial_matches_per_point_program(bike):
    x, y = bike
    b, m, errors = naive.fit_batch_tutorial(x, y, 1e-4, 50)
    res = fastgd.fit(x, y, learning_rate=1e-4, epochs=50)
    assert_allclose([res.intercept, res.slope], [b, m], rtol=1e-12)
    assert_allclose(res.loss_history, errors, rtol=1e-12)


@pytest.mark.parametrize("parallel", [False, True])
def test_tutorial_sum_reduction(bike, parallel):
    """reduction='sum' is the SSE derivation: same path as mean with lr scaled by n."""
    x, y = bike
    n = len(x)
    mean = fastgd.fit(x, y, learning_rate=1e-4, epochs=100, parallel=parallel)
    total = fastgd.fit(x, y, learning_rate=1e-4 / n, epochs=100, reduction="sum", parallel=parallel)
    assert_allclose(total.coef, mean.coef, rtol=1e-11)
    assert_allclose(total.loss_history, mean.loss_history * n, rtol=1e-11)


# --- modes against per-row twins with the same permutation -----------------------------

def _perms(seed, n, epochs):
    """The permutations a stochastic fit with ``random_state=seed`` visits, epoch by epoch."""
    from fastgd._chunking import perm_layout

    rng = np.random.default_rng(seed)
    return [naive.permutation(n, int(rng.integers(0, 2**63 - 1)), perm_layout(n)[0])
            for _ in range(epochs)]


@pytest.mark.parametrize("mode,batch_size", [("minibatch", 16), ("minibatch", 33), ("sgd", None)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_stochastic_modes_match_per_row_twin(rng, mode, batch_size, weighted, reduction):
    n, d, epochs = 200, 3, 3
    X, y, _ = make_linear(rng, n, d)
    sw = rng.uniform(0.1, 2, n) if weighted else None
    lr = 0.01 if reduction == "mean" else 0.01 / 16
    res = fastgd.fit(X, y, mode=mode, batch_size=batch_size, learning_rate=lr, epochs=epochs,
                     sample_weight=sw, reduction=reduction, random_state=42, parallel=False)
    coef = np.zeros(d + 1)
    bs = 1 if mode == "sgd" else batch_size
    wscale = n / sw.sum() if (weighted and reduction == "mean") else 1.0
    losses = [naive.sse_grad(X, y, sw, coef)[0]]
    for perm in _perms(42, n, epochs):
        coef = naive.sgd_epoch(X, y, sw, perm, lr, bs, reduction, wscale, True, coef)
        losses.append(naive.sse_grad(X, y, sw, coef)[0])
    norm = (sw.sum() if weighted else n) if reduction == "mean" else 1.0
    assert_allclose(res.coef, coef[:d], rtol=1e-12)
    assert res.intercept == pytest.approx(coef[d], rel=1e-12)
    assert_allclose(res.loss_history, np.array(losses) / norm, rtol=1e-12)


def test_batch_matches_per_row_twin_weighted_no_intercept(rng):
    X, y, _ = make_linear(rng, 150, 2)
    sw = rng.uniform(0, 3, 150)
    res = fastgd.fit(X, y, learning_rate=0.05, epochs=20, sample_weight=sw, fit_intercept=False,
                     init_intercept=0.25)
    coef = np.array([0.0, 0.0, 0.25])
    for _ in range(20):
        s = naive.sse_grad(X, y, sw, coef)
        coef[:2] += 0.05 * 2 * s[2:] / sw.sum()
    assert_allclose(res.coef, coef[:2], rtol=1e-12)
    assert res.intercept == 0.25


def test_no_shuffle_visits_rows_in_order(rng):
    X, y, _ = make_linear(rng, 64, 1)
    res = fastgd.fit(X[:, 0], y, mode="sgd", tol=None, learning_rate=0.01, epochs=2, shuffle=False)
    coef = np.zeros(2)
    for _ in range(2):
        coef = naive.sgd_epoch(X, y, None, np.arange(64), 0.01, 1, "mean", 1.0, True, coef)
    assert_allclose([res.slope, res.intercept], coef, rtol=1e-12)


def test_same_seed_bit_identical_other_seed_differs(rng):
    X, y, _ = make_linear(rng, 500, 2)
    a = fastgd.fit(X, y, mode="sgd", tol=None, epochs=3, random_state=7)
    b = fastgd.fit(X, y, mode="sgd", tol=None, epochs=3, random_state=7)
    c = fastgd.fit(X, y, mode="sgd", tol=None, epochs=3, random_state=8)
    assert_array_equal(a.coef, b.coef)
    assert a.intercept == b.intercept
    assert not np.array_equal(a.coef, c.coef)


def test_random_state_accepts_generator(rng):
    X, y, _ = make_linear(rng, 100, 1)
    a = fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, random_state=np.random.default_rng(3))
    b = fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, random_state=3)
    assert_array_equal(a.coef, b.coef)


# --- serial == parallel ----------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 6])
@pytest.mark.parametrize("weighted", [False, True])
def test_batch_serial_parallel_bitwise_any_thread_count(rng, threads, d, weighted):
    n = 70_001  # three chunks
    X, y, _ = make_linear(rng, n, d)
    sw = rng.uniform(0, 2, n) if weighted else None
    ref = fastgd.fit(X, y, epochs=5, sample_weight=sw, parallel=False)
    for k in sorted({1, 2, threads.max}):
        threads.set(min(k, threads.max))
        got = fastgd.fit(X, y, epochs=5, sample_weight=sw, parallel=True)
        assert_array_equal(got.coef, ref.coef)
        assert got.intercept == ref.intercept
        assert_array_equal(got.loss_history, ref.loss_history)
        assert got.learning_rate == ref.learning_rate


@pytest.mark.parametrize("mode", ["minibatch", "sgd"])
def test_parameter_mixing_bitwise_any_thread_count(rng, threads, mode):
    X, y, _ = make_linear(rng, 20_000, 2)
    runs = []
    for k in sorted({1, threads.max}):
        threads.set(k)
        runs.append(fastgd.fit(X, y, mode=mode, tol=None, epochs=3, parallel=True, random_state=1))
    for r in runs[1:]:
        assert_array_equal(r.coef, runs[0].coef)
        assert_array_equal(r.loss_history, runs[0].loss_history)


# --- quality: converges to the least-squares optimum -----------------------------------

@pytest.mark.parametrize("parallel", [False, True])
def test_batch_converges_to_lstsq(rng, parallel):
    X, y, _ = make_linear(rng, 20_000, 4, noise=0.05)
    A = np.column_stack([X, np.ones(len(X))])
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    res = fastgd.fit(X, y, epochs=400, parallel=parallel)
    assert_allclose(res.coef, ref[:4], atol=1e-8)
    assert res.intercept == pytest.approx(ref[4], abs=1e-8)
    assert res.final_loss <= fastgd.mse(X, y, ref[:4], ref[4]) * (1 + 1e-12)


@pytest.mark.parametrize("mode", ["minibatch", "sgd"])
@pytest.mark.parametrize("parallel", [False, True])
def test_stochastic_reach_lstsq_neighbourhood(rng, mode, parallel):
    """Constant-step SGD stalls in a neighbourhood of the optimum whose size scales with
    the learning rate: near lstsq at the automatic rate, about 20x closer at 1/20 of it
    (checked for per-row SGD, which has 20,000 steps an epoch to get there)."""
    X, y, _ = make_linear(rng, 20_000, 4, noise=0.05)
    A = np.column_stack([X, np.ones(len(X))])
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    best = fastgd.mse(X, y, ref[:4], ref[4])
    # minibatch takes 78 steps an epoch (10 per part when mixing in parallel): more epochs
    epochs = 10 if mode == "sgd" else 100
    res = fastgd.fit(X, y, mode=mode, epochs=epochs, parallel=parallel, random_state=0)
    assert_allclose(np.append(res.coef, res.intercept), ref, atol=2e-2)
    assert res.final_loss <= best * 1.25
    if mode == "minibatch":
        return
    slow = fastgd.fit(X, y, mode=mode, epochs=30, parallel=parallel, random_state=0,
                      learning_rate=res.learning_rate / 20)
    assert slow.final_loss <= best * 1.0125


def test_float32_matches_float64(rng):
    X, y, _ = make_linear(rng, 5000, 3)
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    r64 = fastgd.fit(X32.astype(np.float64), y32.astype(np.float64), epochs=50)
    r32 = fastgd.fit(X32, y32, epochs=50)
    assert_allclose(r32.coef, r64.coef, rtol=1e-6)
    assert r32.intercept == pytest.approx(r64.intercept, rel=1e-6)
    assert_allclose(r32.loss_history, r64.loss_history, rtol=1e-6)


def test_weights_equal_repeated_rows(rng):
    """Integer weights w give the same batch fit as repeating each row w times."""
    X, y, _ = make_linear(rng, 80, 2)
    w = rng.integers(0, 4, 80).astype(float)
    w[0] = 1
    rep = np.repeat(np.arange(80), w.astype(int))
    a = fastgd.fit(X, y, sample_weight=w, epochs=30)
    b = fastgd.fit(X[rep], y[rep], epochs=30)
    assert_allclose(a.coef, b.coef, rtol=1e-12)
    assert_allclose(a.loss_history, b.loss_history, rtol=1e-12)
    assert a.learning_rate == pytest.approx(b.learning_rate, rel=1e-12)


# --- auto learning rate ----------------------------------------------------------------

def test_auto_rate_is_inverse_lipschitz(bike):
    x, y = bike
    # issue 4: the automatic batch fit now runs scaled CG; the raw 1/L rule is scale=False + gd
    res = fastgd.fit(x, y, epochs=5, tol=None, scale=False, optimizer="gd")
    A = np.column_stack([x, np.ones_like(x)])
    L = 2 * np.linalg.eigvalsh(A.T @ A / len(x))[-1]
    assert res.learning_rate == pytest.approx(1 / L, rel=1e-12)
    assert np.all(np.diff(res.loss_history) <= 0)  # monotone: cannot diverge


def test_auto_rate_never_diverges_on_badly_scaled_data(rng):
    X = rng.normal(size=(3000, 3)) * np.array([1e-3, 1.0, 1e4]) + np.array([0.0, 50.0, -3e5])
    y = X @ np.array([1.0, -2.0, 3e-4]) + 10.0
    for mode in ("batch", "minibatch", "sgd"):
        res = fastgd.fit(X, y, mode=mode, epochs=20, random_state=0,
                         tol="auto" if mode == "batch" else None)
        assert np.all(np.isfinite(res.loss_history))
        assert res.final_loss < res.loss_history[0]
    res = fastgd.fit(X, y, epochs=50)
    assert np.all(np.diff(res.loss_history) <= 1e-12 * res.loss_history[0])


def test_stochastic_auto_rate_rule(rng):
    X, y, _ = make_linear(rng, 400, 2)
    # issue 4: the automatic stochastic fit now runs scaled and averaged; the raw-data rule
    # is scale=False, average=False (the same rule in scaled coordinates is in
    # tests/test_stochastic.py)
    raw = dict(scale=False, average=False)
    raw["tol"] = None  # (the rate alone: one epoch, no stopping rule to meet)
    res = fastgd.fit(X, y, mode="sgd", epochs=1, **raw)
    assert res.learning_rate == pytest.approx(1 / (2 * ((X ** 2).sum(axis=1).max() + 1)), rel=1e-12)
    res = fastgd.fit(X, y, mode="minibatch", batch_size=8, reduction="sum", epochs=1,
                     fit_intercept=False, **raw)
    assert res.learning_rate == pytest.approx(1 / (2 * 8 * (X ** 2).sum(axis=1).max()), rel=1e-12)


# --- stopping, callback, divergence ----------------------------------------------------

def test_tol_stops_and_reports_converged(rng):
    X, y, _ = make_linear(rng, 1000, 2)
    # the textbook path (numeric rate): stops on the relative change of the loss
    res = fastgd.fit(X, y, learning_rate=0.1, epochs=10_000, tol=1e-10)
    assert res.converged and res.n_epochs < 10_000
    h = res.loss_history
    assert abs(h[-2] - h[-1]) <= 1e-10 * h[-2]
    assert all(abs(h[k - 1] - h[k]) > 1e-10 * h[k - 1] for k in range(1, len(h) - 1))


def test_callback_sees_every_epoch_and_can_stop(rng):
    X, y, _ = make_linear(rng, 300, 2)
    seen = []

    def cb(epoch, coef, intercept, loss):
        seen.append((epoch, coef.copy(), intercept, loss))
        return epoch < 4

    res = fastgd.fit(X, y, learning_rate=0.05, epochs=100, callback=cb)
    assert [s[0] for s in seen] == [1, 2, 3, 4] and res.n_epochs == 4
    assert_array_equal(seen[-1][1], res.coef)
    assert seen[-1][2] == res.intercept and seen[-1][3] == res.final_loss
    assert_array_equal([s[3] for s in seen], res.loss_history[1:])


def test_divergence_raises_with_last_finite_result(bike):
    x, y = bike
    with pytest.raises(fastgd.DivergenceError, match=r"epoch \d+.*learning_rate=0\.001.*'auto'") as info:
        fastgd.fit(x, y, learning_rate=1e-3, epochs=1000)
    err = info.value
    last = err.result
    assert isinstance(last, fastgd.FitResult) and err.learning_rate == 1e-3
    assert last.n_epochs == err.epoch - 1
    assert np.all(np.isfinite(last.coef)) and np.isfinite(last.intercept)
    assert np.all(np.isfinite(last.loss_history))
    # nothing lost: the stored state is the textbook run up to that epoch
    b, m, errors = naive.fit_batch_tutorial(x, y, 1e-3, last.n_epochs)
    assert_allclose([last.intercept, last.slope], [b, m], rtol=1e-10)


@pytest.mark.parametrize("mode", ["minibatch", "sgd"])
def test_divergence_in_stochastic_modes(bike, mode):
    x, y = bike
    with pytest.raises(fastgd.DivergenceError) as info:
        fastgd.fit(x, y, mode=mode, learning_rate=0.05, epochs=50, random_state=0)
    assert np.all(np.isfinite(info.value.result.coef))
    assert np.all(np.isfinite(info.value.result.loss_history))


# --- the result object -----------------------------------------------------------------

def test_result_fields_and_methods(rng):
    X, y, _ = make_linear(rng, 500, 3)
    res = fastgd.fit(X, y, epochs=10)
    assert res.coef.dtype == np.float64 and res.coef.shape == (3,)
    assert isinstance(res.intercept, float) and res.mode == "batch" and res.elapsed_s > 0
    with pytest.raises(AttributeError, match="1-D X.*use .coef"):
        _ = res.slope
    assert_allclose(res.predict(X), X @ res.coef + res.intercept, rtol=1e-14)
    assert res.loss(X, y) == pytest.approx(res.final_loss, rel=1e-12)
    with pytest.raises(ValueError, match="X has 2 feature.*fitted with 3"):
        res.predict(X[:, :2])
    with pytest.raises((AttributeError, TypeError)):
        res.intercept = 3.0  # frozen
    with pytest.raises(ValueError):
        res.coef[0] = 1.0  # read-only


def test_one_d_input_has_slope(rng):
    x = rng.uniform(0, 1, 100)
    res = fastgd.fit(list(x), list(2 * x + 1), epochs=5)  # lists accepted
    assert res.slope == res.coef[0] and res.predict(x).shape == (100,)


def test_init_values_used(rng):
    X, y, _ = make_linear(rng, 50, 2)
    res = fastgd.fit(X, y, learning_rate=1e-9, epochs=1, init_coef=[1.0, 2.0], init_intercept=3.0)
    assert res.loss_history[0] == pytest.approx(fastgd.mse(X, y, [1.0, 2.0], 3.0), rel=1e-14)


def test_mse_sse_match_numpy(rng):
    X, y, _ = make_linear(rng, 100_000, 2)
    w = rng.uniform(0, 1, 100_000)
    c, b = np.array([0.3, -0.2]), 0.1
    r = y - (X @ c + b)
    assert fastgd.mse(X, y, c, b) == pytest.approx(np.mean(r ** 2), rel=1e-12)
    assert fastgd.sse(X, y, c, b) == pytest.approx(np.sum(r ** 2), rel=1e-12)
    assert fastgd.mse(X, y, c, b, sample_weight=w) == pytest.approx(np.sum(w * r ** 2) / w.sum(), rel=1e-12)
    assert fastgd.mse(X, y, c, b, parallel=False) == fastgd.mse(X, y, c, b, parallel=True)


# --- layouts and dtypes ----------------------------------------------------------------

def test_layouts_and_readonly_memmap(rng, tmp_path):
    X, y, _ = make_linear(rng, 400, 3)
    ref = fastgd.fit(X, y, epochs=5)
    fortran = fastgd.fit(np.asfortranarray(X), y, epochs=5)
    assert_array_equal(fortran.coef, ref.coef)
    path = tmp_path / "X.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    assert not mm.flags.writeable
    got = fastgd.fit(mm, y, epochs=5)
    assert_array_equal(got.coef, ref.coef)
    ints = fastgd.fit(np.arange(10), np.arange(10) * 2, epochs=5)  # integer input converted
    flt = fastgd.fit(np.arange(10.0), np.arange(10.0) * 2, epochs=5)
    assert_array_equal(ints.coef, flt.coef)


def test_float32_input_not_copied(rng, monkeypatch):
    """C-contiguous float32/float64 input reaches the kernel as the same buffer."""
    from fastgd import _validation

    for dtype in (np.float32, np.float64):
        X = rng.normal(size=(100, 2)).astype(dtype)
        y = rng.normal(size=100).astype(dtype)
        data = _validation.check_data(X, y)
        assert np.shares_memory(data.X, X) and np.shares_memory(data.y, y)
        x1 = X[:, 0].copy()
        assert np.shares_memory(_validation.check_data(x1, y).X, x1)


# --- the next epoch's permutation, built on a background thread -------------------------

@pytest.mark.parametrize("mode", ["minibatch", "sgd"])
def test_prefetched_permutations_match_per_row_twin(rng, monkeypatch, mode):
    monkeypatch.setattr(_sources.epochs, "PREFETCH_MIN_ROWS", 1)  # prefetch even this small fit
    n, d, epochs = 150, 2, 3
    X, y, _ = make_linear(rng, n, d)
    res = fastgd.fit(X, y, mode=mode, batch_size=None if mode == "sgd" else 8, learning_rate=0.01,
                     epochs=epochs, random_state=5, parallel=False)
    coef = np.zeros(d + 1)
    for perm in _perms(5, n, epochs):
        coef = naive.sgd_epoch(X, y, None, perm, 0.01, 1 if mode == "sgd" else 8, "mean", 1.0, True, coef)
    assert_allclose(np.append(res.coef, res.intercept), coef, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(learning_rate=0.01), dict()])  # raw path, scaled path
def test_prefetch_is_bit_identical_and_leaves_no_thread(rng, monkeypatch, kwargs):
    import threading

    X, y, _ = make_linear(rng, 3000, 3)
    monkeypatch.setattr(_sources.epochs, "PREFETCH_MIN_ROWS", 10**9)
    plain = fastgd.fit(X, y, mode="sgd", tol=None, epochs=4, random_state=2, **kwargs)
    monkeypatch.setattr(_sources.epochs, "PREFETCH_MIN_ROWS", 1)
    before = threading.active_count()
    pre = fastgd.fit(X, y, mode="sgd", tol=None, epochs=4, random_state=2, **kwargs)
    assert_array_equal(pre.coef, plain.coef)
    assert pre.intercept == plain.intercept
    stopped = fastgd.fit(X, y, mode="sgd", epochs=50, random_state=2, callback=lambda *a: False, **kwargs)
    assert stopped.n_epochs == 1
    with pytest.raises(fastgd.DivergenceError):
        fastgd.fit(X * 1e3, y, mode="sgd", tol=None, epochs=5, learning_rate=10.0, random_state=2)
    assert threading.active_count() == before
