"""The extended stochastic driver: scaled SGD, schedules, averaging, early stopping.

Python decides, kernels compute: one call of
:func:`fastgd.kernels.sgd._sgd_scaled_epoch_serial` per epoch, then one loss pass.

Schedules (scikit-learn's meanings; ``t`` counts the steps of the whole fit from 1):

* ``"constant"``: ``eta = eta0``;
* ``"invscaling"``: ``eta = eta0 / t ** power_t``;
* ``"adaptive"``: ``eta = eta0`` as long as the monitored loss (training objective, or
  the validation loss with ``early_stopping``) keeps improving; each time
  ``n_iter_no_change`` consecutive epochs fail to improve the best value by more than
  ``tol`` (relative), ``eta`` is divided by 5; the fit stops (converged) once ``eta``
  falls below ``1e-6 * eta0``.

With the other schedules and ``tol`` set, the fit stops (converged) after
``n_iter_no_change`` consecutive epochs without a relative improvement above ``tol``.
"""
import numpy as np

from . import kernels as _kernels
from . import kernels as K
from ._chunking import perm_layout
from ._drivers import EXPLODE_FACTOR, Diverged, Objective, Permutations, epoch_seed, max_step_norm
from ._optim import HuberObjective

SCHEDULES = {"constant": 0, "invscaling": 1, "adaptive": 2}
LOSSES = {"squared": 0, "huber": 1}


class FullLoss:
    """Objective on all rows (squared or Huber loss, per ``obj``, plus the penalty) by the
    compiled (parallel) streaming pass."""

    def __init__(self, obj, sc):
        self.obj, self.sc = obj, sc

    def __call__(self, coef, theta):
        sc = self.sc
        return float(self.obj.loss(coef) + sc.lam1 @ np.abs(theta)
                     + 0.5 * sc.lam2 @ (theta * theta))


class SubsetLoss:
    """Objective (per ``reduction``) of raw parameters on a subset of rows, plus penalty."""

    def __init__(self, data, idx, reduction, huber, epsilon, sc):
        self.data, self.idx = data, idx
        self.params = np.array([1.0 if huber else 0.0, epsilon])
        self.out = np.empty(2)
        self.mean = reduction == "mean"
        self.sc = sc

    def __call__(self, coef, theta):
        d = self.data
        K._subset_loss_serial(d.X, d.y, d.sw, self.idx, coef, self.params, self.out)
        loss = self.out[0] / self.out[1] if self.mean else self.out[0]
        sc = self.sc
        return float(loss + sc.lam1 @ np.abs(theta) + 0.5 * sc.lam2 @ (theta * theta))


def max_scaled_norm(data, sc):
    """``max_i w_i ||[x_s_i, 1]||^2`` (1 for the intercept column only when fitted)."""
    return max_step_norm(data, sc.m, 1.0 / sc.s, sc.fit_intercept, sc.parallel)


def auto_eta0(data, sc, reduction, batch_size):
    """``1 / (2 s max_i w_i ||z_s_i||^2)`` in scaled coordinates (the no-overshoot rule)."""
    M = max_scaled_norm(data, sc)
    s = data.n / data.weight_total if reduction == "mean" else float(batch_size)
    return 1.0 / (2.0 * s * M) if M > 0.0 else 1.0


def fit_sgd(data, sc, theta, *, eta0, schedule, power_t, average, epochs, tol,
            n_iter_no_change, early_stopping, validation_fraction, batch_size, reduction,
            huber, epsilon, shuffle, rng, par_pass, callback):
    """Run the epochs; returns ``(theta_reported, history, converged, n_passes, eta_final)``.

    ``history`` holds the training objective (full data, or the training rows with
    ``early_stopping``) at the start and after each epoch, at the reported parameters
    (the average once averaging has started).
    """
    n, d = data.n, data.d
    mean = reduction == "mean"
    if early_stopping:
        n_val = max(1, int(round(validation_fraction * n)))
        if n_val >= n:
            raise ValueError(
                f"validation_fraction={validation_fraction} leaves no training rows out of "
                f"{n}; use a smaller fraction"
            )
        split = np.empty(n, dtype=np.int64)
        nb, nc = perm_layout(n)
        _kernels.SERIAL_PARALLEL["permutation"][int(par_pass)](split, epoch_seed(rng), nb, nc)
        val_idx, train_idx = split[:n_val].copy(), split[n_val:].copy()
    else:
        train_idx, val_idx = None, None  # all rows: perm indexes the data directly
    m = n if train_idx is None else train_idx.shape[0]
    perms = Permutations(m, rng, shuffle, par_pass, prefetch=True)
    # early stopping visits the training rows: train_idx[perm], gathered into one buffer
    rows = np.empty(m, dtype=np.int64) if early_stopping else None
    if early_stopping:
        train_loss = SubsetLoss(data, train_idx, reduction, huber, epsilon, sc)
    elif huber:
        train_loss = FullLoss(HuberObjective(data, reduction, epsilon, par_pass), sc)
    else:
        train_loss = FullLoss(Objective(data, reduction, sc.fit_intercept, par_pass), sc)
    val_loss = SubsetLoss(data, val_idx, reduction, huber, epsilon, sc) if early_stopping else None
    coords = np.zeros((4, d + 1))
    coords[0, :d] = sc.m
    coords[1, :d] = 1.0 / sc.s
    coords[2] = sc.lam1
    coords[3] = sc.lam2
    W_train = data.weight_total if not early_stopping else (
        float(data.sw[train_idx].sum()) if data.sw.shape[0] else float(m))
    params = np.zeros(K.N_PARAMS)
    params[K.P_ETA0] = eta0
    params[K.P_POWER_T] = power_t
    params[K.P_SCHEDULE] = 1.0 if schedule == "invscaling" else 0.0
    params[K.P_BATCH] = float(batch_size)
    params[K.P_MEAN] = 1.0 if mean else 0.0
    params[K.P_WSCALE] = m / W_train if mean else 1.0
    params[K.P_FIT_B] = 1.0 if sc.fit_intercept else 0.0
    params[K.P_AVG_START] = float(average) if average is not False else float(np.iinfo(np.int64).max // 2)
    params[K.P_HUBER] = 1.0 if huber else 0.0
    params[K.P_EPSILON] = epsilon
    state = np.empty((2, d + 1))
    state[0] = theta
    state[1] = theta
    t = 0
    passes = 0

    def reported():
        return state[1] if (average is not False and t > params[K.P_AVG_START]) else state[0]

    loss = train_loss(sc.to_raw(theta), theta)
    passes += 1
    history = [loss]
    monitor = val_loss(sc.to_raw(theta), theta) if early_stopping else loss
    best = monitor
    quiet = 0
    eta = eta0
    converged = False
    with perms:
        for epoch in range(1, epochs + 1):
            perm = perms.next()
            if early_stopping:
                np.take(train_idx, perm, out=rows)
            else:
                rows = perm
            params[K.P_T0] = float(t)
            params[K.P_ETA0] = eta
            prev = state.copy()
            steps = K._sgd_scaled_epoch_serial(data.X, data.y, data.sw, rows, coords, params, state)
            passes += 1
            if steps < 0:
                k = -steps - 1
                raise Diverged(epoch, sc.to_raw(reported_of(prev, average, t, params)), history,
                               f"a residual became non-finite at row {int(rows[k])}")
            t += steps
            th = reported()
            coef = sc.to_raw(th)
            new_loss = train_loss(coef, th)
            passes += 1
            if not np.isfinite(new_loss) or (history[0] > 0 and new_loss > EXPLODE_FACTOR * history[0]):
                raise Diverged(epoch, sc.to_raw(reported_of(prev, average, t - steps, params)),
                               history, "the loss became non-finite" if not np.isfinite(new_loss)
                               else f"the loss exploded from {history[0]:.6g} to {new_loss:.6g}")
            history.append(new_loss)
            if early_stopping:
                monitor = val_loss(coef, th)
            else:
                monitor = new_loss
            stop = False
            if tol is not None:
                if monitor < best - tol * abs(best):
                    quiet = 0
                else:
                    quiet += 1
                best = min(best, monitor)
                if quiet >= n_iter_no_change:
                    if schedule == "adaptive":
                        eta /= 5.0
                        quiet = 0
                        stop = eta < 1e-6 * eta0
                    else:
                        stop = True
            if callback is not None and callback(epoch, coef[:d].copy(), float(coef[d]), new_loss) is False:
                break
            if stop:
                converged = True
                break
    return reported().copy(), np.asarray(history), converged, passes, eta


def reported_of(state, average, t, params):
    return state[1] if (average is not False and t > params[K.P_AVG_START]) else state[0]
