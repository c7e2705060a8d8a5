"""Stochastic modes: one SGD / mini-batch epoch side by side, and the fit around them.

Groups
------
``sgd-epoch|...`` / ``minibatch-epoch|...``
    One epoch from zero at fastgd's automatic stochastic learning rate: fastgd's pure
    epoch as its driver runs it (a fresh compiled permutation, then one kernel call),
    serial and parameter-mixing; scikit-learn's ``SGDRegressor`` with ``max_iter=1`` and
    the same step (``eta0 = 2 lr``: its squared loss is halved); for mini-batches, the
    idiomatic NumPy loop over batches of 256.
``sgd-fit|...`` / ``minibatch-fit|...``
    ``fastgd.fit(mode=..., epochs=5, tol=None)``, each epoch's loss pass included;
    ``bench/report.py`` divides by the epochs.

There is no pure-Python or NumPy per-row SGD contender: a Python-level step per row
costs microseconds, seconds per epoch from n = 10^6 on.
"""
import warnings

import numpy as np
import pytest

import fastgd
from fastgd import _chunking as C
from fastgd import _validation as V
from fastgd import kernels as K
from fastgd import solvers as D
from fastgd.losses import get as get_loss
from fastgd.solvers import sgd as S
from fastgd.solvers import textbook as T
from fastgd.sources import ArraySource, epoch_seed, permutation

from ._common import FIT_EPOCHS, RTOL, checked, record, rel_err
from ._workloads import mse, params, peer_ok, workloads

BATCH_SIZE = 256  # fastgd's default mini-batch
MODES = {"sgd": 1, "minibatch": BATCH_SIZE}


def _lr(ds, mode):
    """fastgd's automatic stochastic learning rate (one moments pass, memoised)."""
    key = ("lr", mode)
    if key not in ds.memo:
        data = V.check_data(ds.X, ds.y)
        ds.memo[key] = D.auto_learning_rate(ArraySource(data, False), mode, "mean", True,
                                            MODES[mode])
    return ds.memo[key]


def _check_progress(ds, coef):
    """One epoch from zero must leave a finite loss below the starting loss."""
    loss = mse(ds.X, ds.y, coef)
    assert np.isfinite(loss) and loss < ds.at_zero[0], (loss, ds.at_zero[0])
    return loss


class PureEpoch:
    """One stochastic epoch exactly as ``fastgd.solvers.textbook.PlainSGD`` runs it (plain
    SGD with a numeric rate): a fresh permutation from a seed drawn off the generator,
    one kernel call, the parts averaged (one part when serial). ``mixing`` is
    ``fit(parallel=True)``."""

    def __init__(self, ds, mode, mixing, lr, seed):
        n, d = ds.n, ds.d
        self.data = V.check_data(ds.X, ds.y, parallel=mixing)
        self.parts = C.mix_parts(n) if mixing else 1
        self.mixing = mixing
        self.perm = np.arange(n, dtype=np.int64)
        # the one SGD kernel family at the identity scaling, as fit runs plain SGD
        self.coords = T.raw_coords(d)
        self.params = T.raw_params(lr, MODES[mode], "mean", 1.0, True)
        self.kernel = K.sgd_kernels(get_loss("squared")).choose(d, MODES[mode], self.coords,
                                                                self.params)
        self.state = np.zeros((4, d + 1))  # the parameters, their average, two scratch rows
        self.rng = np.random.default_rng(seed)
        self.d = d

    def __call__(self):
        dat = self.data
        permutation(dat.n, epoch_seed(self.rng), self.mixing, out=self.perm)
        self.state[:] = 0.0
        if self.parts == 1:
            steps = np.array([self.kernel(dat.X, dat.y, dat.sw, self.perm, self.coords,
                                          self.params, self.state)])
            states = self.state[None]
        else:
            steps, states = S.mix_epoch(self.kernel, dat, self.perm, self.coords, self.params,
                                        self.state, self.parts)
        if np.any(steps < 0):
            raise FloatingPointError("a residual became non-finite")
        return states[:, 0].sum(axis=0) / self.parts


@pytest.mark.parametrize("mixing", [False, True], ids=["serial", "mixing"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("w", params(workloads()))
def test_fastgd_epoch(benchmark, w, ds, warm, mode, mixing):
    benchmark.group = f"{mode}-epoch|{w}"
    lr = _lr(ds, mode)
    seed = 7
    epoch = PureEpoch(ds, mode, mixing, lr, seed)
    got = epoch()
    # the pure epoch is the public fit's first epoch, bit for bit
    kw = dict(batch_size=BATCH_SIZE) if mode == "minibatch" else {}
    res = fastgd.fit(ds.X if w.d > 1 else ds.x1, ds.y, mode=mode, learning_rate=lr, epochs=1,
                     tol=None, parallel=mixing, random_state=seed, **kw)
    assert np.array_equal(got, np.append(res.coef, res.intercept)), (got, res.coef, res.intercept)
    _check_progress(ds, got)
    loss = _check_progress(ds, benchmark(epoch))
    record(benchmark, w, f"fastgd-{'mixing' if mixing else 'serial'}", loss=loss,
           learning_rate=lr, parts=epoch.parts)


@pytest.mark.parametrize("w", params(workloads(where=peer_ok)))
def test_sklearn_sgd_epoch(benchmark, w, ds, warm):
    """``SGDRegressor(max_iter=1, tol=None).fit``: validation (a float64 copy of float32
    X) and setup included, as ``fastgd.fit(epochs=1)`` would include its own."""
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDRegressor

    benchmark.group = f"sgd-epoch|{w}"
    lr = _lr(ds, "sgd")

    def run():
        est = SGDRegressor(loss="squared_error", penalty=None, learning_rate="constant",
                           eta0=2.0 * lr, max_iter=1, tol=None, shuffle=True, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return est.fit(ds.X, ds.y)

    def coef(est):
        return np.append(est.coef_, est.intercept_)

    loss = checked(benchmark, lambda est: _check_progress(ds, coef(est)), run)
    record(benchmark, w, "sklearn-sgd-epoch", loss=loss, learning_rate=lr)


def _numpy_minibatch_epoch(X, y, coef0, lr, batch_size, rng):
    """The idiomatic NumPy mini-batch epoch, in the data's dtype: permute, then per batch
    gather rows, residuals and the update ``w += (2 lr / |B|) X_B^T r``."""
    d = X.shape[1]
    w = coef0[:d].astype(X.dtype)
    b = X.dtype.type(coef0[d])
    perm = rng.permutation(y.shape[0])
    for k in range(0, y.shape[0], batch_size):
        idx = perm[k:k + batch_size]
        Xb = X[idx]
        r = y[idx] - (Xb @ w + b)
        s = 2.0 * lr / idx.shape[0]
        w += s * (Xb.T @ r)
        b += s * r.sum()
    return np.append(np.float64(w), np.float64(b))


@pytest.mark.parametrize("w", params(workloads()))
def test_numpy_minibatch_epoch(benchmark, w, ds, warm):
    benchmark.group = f"minibatch-epoch|{w}"
    lr = _lr(ds, "minibatch")
    rng = np.random.default_rng(0)
    args = (ds.X, ds.y, np.zeros(w.d + 1), lr, BATCH_SIZE, rng)
    loss = checked(benchmark, lambda c: _check_progress(ds, c), _numpy_minibatch_epoch, *args)
    record(benchmark, w, "numpy-minibatch", loss=loss, learning_rate=lr)


@pytest.mark.parametrize("parallel", [False, "auto", True], ids=["serial", "auto", "mixing"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("w", params(workloads()))
def test_fastgd_fit(benchmark, w, ds, warm, mode, parallel):
    """``fit(mode=..., learning_rate=<auto rate>, epochs=5, tol=None)``: validation, then
    per epoch a permutation, the SGD pass and the loss pass. "auto" is the default:
    serial SGD with the loss pass (and permutation) in parallel."""
    benchmark.group = f"{mode}-fit|{w}"
    lr = _lr(ds, mode)

    def run():
        return fastgd.fit(ds.X if w.d > 1 else ds.x1, ds.y, mode=mode, learning_rate=lr,
                          epochs=FIT_EPOCHS, tol=None, parallel=parallel, random_state=0)

    def check(res):
        assert res.n_epochs == FIT_EPOCHS
        loss = mse(ds.X, ds.y, np.append(res.coef, res.intercept))
        assert rel_err(res.final_loss, loss) <= RTOL[w.dtype], (res.final_loss, loss)
        assert loss < ds.at_zero[0]
        return res, loss

    res, loss = checked(benchmark, check, run)
    record(benchmark, w, f"fastgd-fit-{'mixing' if parallel is True else parallel or 'serial'}",
           loss=loss, epochs=FIT_EPOCHS, learning_rate=lr, n_passes=res.n_passes)
