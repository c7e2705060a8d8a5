"""Full-batch gradient descent: one epoch, side by side, and the fit machinery around it.

Groups
------
``batch-epoch|n=...|d=...|dtype``
    One epoch (loss and gradient over all rows, at the same point ``ds.coef_test``):
    the bandwidth reference, fastgd's fused pass (serial and parallel, ``obj(coef)``
    without any Python validation), NumPy's vectorised epoch, a PyTorch CPU
    ``torch.optim.SGD`` step and, at the tutorial's size only, the tutorial's pure-Python
    loop.
``batch-fit|...``
    ``fastgd.fit(mode="batch", learning_rate=1/L, epochs=5, tol=None)``, validation and
    the initial pass included; ``bench/report.py`` shows time / epochs per epoch.
``overhead|...``
    ``fit(..., epochs=1)`` against one pure epoch, recorded in ``extra_info``.
"""
import numpy as np
import pytest

import fastgd
from fastgd import _validation as V
from fastgd import solvers as D
from fastgd.sources import ArraySource

from . import _reference
from ._common import (
    FIT_EPOCHS,
    RTOL,
    RTOL_NATIVE,
    best_of,
    check_epoch,
    checked,
    record,
    rel_err,
    timed_min,
)
from ._workloads import TUTORIAL_SIZE, Workload, loss_grad, params, workloads

TUTORIAL = Workload(*TUTORIAL_SIZE, "float64")
#: rounds of the alternating (bandwidth reference, parallel epoch) measurement
INTERLEAVED_REPEATS = 15
EPOCH_WORKLOADS = [TUTORIAL] + workloads()


def _group(benchmark, kind, w):
    benchmark.group = f"{kind}|{w}"


# --------------------------------------------------------------------------------------
# batch-epoch
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("w", params(EPOCH_WORKLOADS))
def test_bandwidth_reference(benchmark, w, ds, warm):
    _group(benchmark, "batch-epoch", w)
    out = np.empty(_reference.n_chunks(w.n))
    ref, scale = ds.checksum

    def check(got):
        # the sum of every element, good to float64 rounding of the partial sums; one
        # skipped element would move it by ~1 against a tolerance of 1e-12 * sum|.|
        assert abs(got - ref) <= 1e-12 * scale, (got, ref)
        return got

    got = checked(benchmark, check, _reference.stream_sum, ds.X, ds.y, out)
    record(benchmark, w, "bandwidth-reference", reference=True, checksum=got)


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("w", params(EPOCH_WORKLOADS))
def test_fastgd_epoch(benchmark, w, ds, warm, parallel):
    """The pure epoch: one fused loss/gradient pass, what ``_fit_batch`` runs per epoch."""
    _group(benchmark, "batch-epoch", w)
    data = V.check_data(ds.X, ds.y, parallel=parallel)
    obj = D.Objective(ArraySource(data, parallel), "mean", True)
    coef = ds.coef_test.copy()

    def check(res):
        return res[0], check_epoch(ds, *res, RTOL[w.dtype])

    loss, err = checked(benchmark, check, obj, coef)
    extra = {}
    if parallel and timed_min(benchmark) is not None:
        # The group's "x ref" compares minima taken minutes apart (other benchmarks run in
        # between and the machine's state drifts). This ratio alternates the two calls
        # back to back, the fairest same-run comparison there is.
        out = np.empty(_reference.n_chunks(w.n))
        t_ref, t_epoch = best_of([lambda: _reference.stream_sum(ds.X, ds.y, out),
                                  lambda: obj(coef)], INTERLEAVED_REPEATS)
        extra["ref_ratio_interleaved"] = t_ref / t_epoch
    record(benchmark, w, f"fastgd-epoch-{'parallel' if parallel else 'serial'}", loss=loss,
           loss_rel_err=err, **extra)


def _numpy_epoch(X, y, w, b):
    """The idiomatic vectorised epoch: residuals, then loss and gradient."""
    n = y.shape[0]
    r = y - (X @ w + b)
    return (r @ r) / n, (-2.0 / n) * (X.T @ r), (-2.0 / n) * r.sum()


def _numpy_epoch_1d(x, y, m, b):
    """The same for one feature, as written for ``y = m x + b``."""
    n = y.shape[0]
    r = y - (m * x + b)
    return (r @ r) / n, (-2.0 / n) * (x @ r), (-2.0 / n) * r.sum()


@pytest.mark.parametrize("w", params(EPOCH_WORKLOADS))
def test_numpy_epoch(benchmark, w, ds, warm):
    """NumPy in the data's dtype (parameters cast to it, so float32 stays float32)."""
    _group(benchmark, "batch-epoch", w)
    dt = np.dtype(w.dtype)
    c = ds.coef_test.astype(dt)
    if w.d == 1:
        fn, args = _numpy_epoch_1d, (ds.x1, ds.y, c[0], c[1])
    else:
        fn, args = _numpy_epoch, (ds.X, ds.y, c[:w.d], c[w.d])

    def check(res):
        loss, gw, gb = res
        grad = np.append(np.float64(gw), np.float64(gb))
        return float(loss), check_epoch(ds, float(loss), grad, RTOL_NATIVE[w.dtype])

    loss, err = checked(benchmark, check, fn, *args)
    record(benchmark, w, "numpy", loss=loss, loss_rel_err=err)


@pytest.mark.parametrize("w", params(EPOCH_WORKLOADS))
def test_torch_step(benchmark, w, ds, warm):
    """PyTorch CPU: forward, MSE loss, backward, ``torch.optim.SGD`` step.

    The parameters are reset to ``ds.coef_test`` at the start of every call (d + 1
    values), so each timed call is the same step as fastgd's epoch."""
    torch = pytest.importorskip("torch")
    _group(benchmark, "batch-epoch", w)
    tdt = getattr(torch, w.dtype)
    Xt = torch.from_numpy(ds.X)  # shares memory: no copy
    yt = torch.from_numpy(ds.y)
    c0 = torch.from_numpy(ds.coef_test).to(tdt)
    wt = torch.zeros(w.d, dtype=tdt, requires_grad=True)
    bt = torch.zeros((), dtype=tdt, requires_grad=True)
    lr = 1.0 / ds.lipschitz
    opt = torch.optim.SGD([wt, bt], lr=lr)

    def step():
        with torch.no_grad():
            wt.copy_(c0[:w.d])
            bt.copy_(c0[w.d])
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(Xt @ wt + bt, yt)
        loss.backward()
        opt.step()
        return loss.item()

    def check(loss):
        ref_loss, ref_grad = ds.at_test
        err = rel_err(loss, ref_loss)
        rtol = RTOL_NATIVE[w.dtype]
        assert err <= rtol, (loss, ref_loss)
        got = np.append(wt.detach().double().numpy(), float(bt.detach()))
        want = ds.coef_test - lr * ref_grad
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))
        return loss, err

    loss, err = checked(benchmark, check, step)
    record(benchmark, w, "torch-sgd-step", loss=loss, loss_rel_err=err,
           torch_threads=torch.get_num_threads(), torch_version=torch.__version__)


def _tutorial_step(b_current, m_current, points, learning_rate):
    """The tutorial's ``step_gradient``, verbatim in substance: one Python-level loop."""
    b_gradient = 0
    m_gradient = 0
    N = float(len(points))
    for i in range(0, len(points)):
        x = points[i][0]
        y = points[i][1]
        b_gradient += -(2 / N) * (y - ((m_current * x) + b_current))
        m_gradient += -(2 / N) * x * (y - ((m_current * x) + b_current))
    new_b = b_current - (learning_rate * b_gradient)
    new_m = m_current - (learning_rate * m_gradient)
    return new_b, new_m, b_gradient, m_gradient


def _tutorial_error(b, m, points):
    total = 0
    for i in range(0, len(points)):
        x = points[i][0]
        y = points[i][1]
        total += (y - (m * x + b)) ** 2
    return total / float(len(points))


@pytest.mark.parametrize("points_as", ["list", "ndarray"])
@pytest.mark.parametrize("w", params([TUTORIAL]))
def test_python_loop(benchmark, w, ds, warm, points_as):
    """The tutorial's loop. ``ndarray``: ``points`` is the (n, 2) array the tutorial loads
    (``points[i][0]`` yields NumPy scalars); ``list``: Python floats, the loop's best case.
    It computes the gradient only (the tutorial evaluates the error separately)."""
    _group(benchmark, "batch-epoch", w)
    pts = np.column_stack([ds.x1, ds.y])
    points = pts.tolist() if points_as == "list" else pts
    m, b = float(ds.coef_test[0]), float(ds.coef_test[1])
    lr = 1.0 / ds.lipschitz
    ref_loss, ref_grad = ds.at_test

    def check(res):
        grad = [res[3], res[2]]
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-10 * np.abs(ref_grad).max())

    checked(benchmark, check, _tutorial_step, b, m, points, lr)
    loss = float(_tutorial_error(b, m, points))
    assert rel_err(loss, ref_loss) <= 1e-10
    t = timed_min(benchmark)
    record(benchmark, w, f"python-loop-{points_as}", loss=loss, computes="gradient only",
           ns_per_row=None if t is None else 1e9 * t / w.n)


# --------------------------------------------------------------------------------------
# batch-fit: the public fit, K epochs
# --------------------------------------------------------------------------------------


def _numpy_gd(ds, lr, epochs):
    """Reference gradient descent from zero in float64 NumPy: the final ``coef``
    (memoised on the dataset: serial and parallel share it)."""
    key = ("gd", lr, epochs)
    if key not in ds.memo:
        coef = np.zeros(ds.d + 1)
        for _ in range(epochs):
            coef = coef - lr * loss_grad(ds.X, ds.y, coef)[1]
        ds.memo[key] = coef
    return ds.memo[key]


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("w", params(workloads()))
def test_fastgd_fit_batch(benchmark, w, ds, warm, parallel):
    """``fit(mode="batch", learning_rate=1/L, epochs=5, tol=None)``: K + 1 passes (the
    starting point's included) plus validation; checked against NumPy gradient descent."""
    _group(benchmark, "batch-fit", w)
    lr = 1.0 / ds.lipschitz

    def run():
        return fastgd.fit(ds.X if w.d > 1 else ds.x1, ds.y, mode="batch", learning_rate=lr,
                          epochs=FIT_EPOCHS, tol=None, parallel=parallel)

    want = _numpy_gd(ds, lr, FIT_EPOCHS)

    def check(res):
        np.testing.assert_allclose(np.append(res.coef, res.intercept), want, rtol=1e-9, atol=1e-12)
        assert res.n_epochs == FIT_EPOCHS
        return res

    res = checked(benchmark, check, run)
    record(benchmark, w, f"fastgd-fit-{'parallel' if parallel else 'serial'}",
           loss=res.final_loss, epochs=FIT_EPOCHS, n_passes=res.n_passes)


# --------------------------------------------------------------------------------------
# overhead: fit(epochs=1) - one pure epoch
# --------------------------------------------------------------------------------------

OVERHEAD_WORKLOADS = [Workload(10**5, 1, "float64")] + workloads(
    sizes=((10**7, 1), (10**7, 10)))


@pytest.mark.parametrize("w", params(OVERHEAD_WORKLOADS))
def test_fit_overhead(benchmark, w, ds, warm):
    """Time ``fit(mode="batch", learning_rate=1/L, epochs=1, tol=None)`` (parallel
    "auto"); ``extra_info`` holds, best of interleaved runs: the fit, one pure epoch, a
    stand-alone ``check_data`` (with its NaN/inf pass, which ``fit`` in batch mode folds
    into its first pass), ``n_passes`` (2: the loss and gradient at the start and after
    the step) and ``overhead_s`` = fit - n_passes * epoch: the time ``fit`` spends
    around its kernels (validation, allocation, Python)."""
    _group(benchmark, "overhead", w)
    X = ds.X if w.d > 1 else ds.x1
    lr = 1.0 / ds.lipschitz
    par = V.use_parallel("auto", w.n, w.d)
    obj = D.Objective(ArraySource(V.check_data(X, ds.y), par), "mean", True)
    coef = np.zeros(w.d + 1)

    def run():
        return fastgd.fit(X, ds.y, mode="batch", learning_rate=lr, epochs=1, tol=None)

    want = _numpy_gd(ds, lr, 1)

    def check(res):
        np.testing.assert_allclose(np.append(res.coef, res.intercept), want, rtol=1e-9, atol=1e-12)
        return res

    res = checked(benchmark, check, run)
    repeats = 1 if benchmark.disabled else 7
    fit_s, epoch_s, valid_s = best_of(
        [run, lambda: obj(coef), lambda: V.check_data(X, ds.y)], repeats)
    record(benchmark, w, "fastgd-fit-epochs=1", loss=res.final_loss, parallel=par,
           fit_s=fit_s, epoch_s=epoch_s, validation_s=valid_s,
           overhead_s=fit_s - res.n_passes * epoch_s, n_passes=res.n_passes)
