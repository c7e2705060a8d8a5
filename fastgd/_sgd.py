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

from ._config import K
from ._drivers import EXPLODE_FACTOR, Diverged, Epoch, Objective
from ._optim import LossObjective

class FullLoss:
    """Objective on all rows (squared or Huber loss, per ``obj``, plus the penalty) by the
    source's compiled streaming pass."""

    def __init__(self, obj, sc):
        self.obj, self.sc = obj, sc

    def __call__(self, coef, theta):
        sc = self.sc
        return float(self.obj.loss(coef) + sc.lam1 @ np.abs(theta)
                     + 0.5 * sc.lam2 @ (theta * theta))


class SubsetLoss:
    """Objective (per ``reduction``) of raw parameters on a subset of rows (``idx``: one
    index array per block of the source), plus the penalty."""

    def __init__(self, source, idx, reduction, loss, epsilon, sc):
        self.source, self.idx = source, idx
        self.loss, self.epsilon = loss, epsilon
        self.mean = reduction == "mean"
        self.sc = sc

    def __call__(self, coef, theta):
        s, w = self.source.subset_loss(self.idx, coef, self.loss, self.epsilon)
        loss = s / w if self.mean else s
        sc = self.sc
        return float(loss + sc.lam1 @ np.abs(theta) + 0.5 * sc.lam2 @ (theta * theta))


def auto_eta0(source, sc, reduction, batch_size, loss):
    """``1 / (k s max_i w_i ||z_s_i||^2 + max_j lam2_j)`` in scaled coordinates, ``k`` the
    loss's curvature (``sup loss''``: 2 for the squared and Huber losses): the
    no-overshoot rule for the loss's step plus the L2 decay ``theta_j -= eta lam2_j
    theta_j`` of the same step (without the decay's term, ``penalty="l2", alpha=100``
    made the decay factor negative and the automatic rate diverged)."""
    M = source.max_norm(sc.m, 1.0 / sc.s, sc.fit_intercept)
    s = source.n / source.weight_total if reduction == "mean" else float(batch_size)
    curvature = loss.curvature * s * M + float(sc.lam2.max())
    return 1.0 / curvature if curvature > 0.0 else 1.0


def fit_sgd(source, sc, theta, *, eta0, schedule, power_t, average, epochs, tol,
            n_iter_no_change, early_stopping, validation_fraction, batch_size, reduction,
            loss, epsilon, shuffle, rng, par_pass, callback, mixing=False,
            average_after_epochs=0, resume=None, checkpoint=None, restart=None):
    """Run the epochs; returns ``(theta_reported, history, converged, n_passes, eta_final)``.

    ``history`` holds the training objective (full data, or the training rows with
    ``early_stopping``) at the start and after each epoch, at the reported parameters
    (the average once averaging has started). With ``mixing`` each block's share of an
    epoch runs as parameter mixing (:func:`fastgd._drivers.mix_epoch`).
    ``average_after_epochs = k > 0``: averaging starts after the first ``k`` epochs (at
    the step count reached then), whatever ``average`` says.

    ``resume`` (``partial_fit``): a dict carried from call to call. Empty on the first
    call; on return it holds the kernel state (parameters and running average), the step
    count and the step at which averaging starts, and a later call continues from them
    (``theta`` is then ignored).

    ``checkpoint`` (a :class:`fastgd._checkpoint.Checkpointer`) receives the state every
    few epochs; ``restart`` (such a state) continues the fit from it: the random stream
    is replayed (the epochs' visiting orders are drawn again, not run) so that the
    epochs after it see the orders of the uninterrupted fit.
    """
    d = source.d
    mean = reduction == "mean"
    if early_stopping:
        split = source.split(validation_fraction, rng, par_pass)
        train_idx = [t for t, _ in split]
        val_idx = [v for _, v in split]
        m = sum(t.shape[0] for t in train_idx)
        W_train = source.subset_weight(train_idx) if source.weighted else float(m)
        if not W_train > 0.0 or (source.weighted and not source.subset_weight(val_idx) > 0.0):
            which = "training" if not W_train > 0.0 else "validation"
            raise ValueError(
                f"early_stopping: the {which} rows drawn with validation_fraction="
                f"{validation_fraction} have zero total weight, so there is nothing to "
                f"{'fit' if which == 'training' else 'monitor'}; give more rows a positive "
                "weight, change validation_fraction or random_state, or drop early_stopping"
            )
        val_loss = SubsetLoss(source, val_idx, reduction, loss, epsilon, sc)
    else:
        train_idx = None
        m = source.n
        W_train = source.weight_total
        val_loss = None
    # the reported loss is the full data's (FitResult.loss_history), held-out rows included:
    # the loss of the returned coefficients on the data given
    obj = (Objective(source, reduction, sc.fit_intercept) if loss.sufficient_statistics
           else LossObjective(source, reduction, loss, epsilon))
    train_loss = FullLoss(obj, sc)
    coords = np.zeros((4, d + 1))
    coords[0, :d] = sc.m
    coords[1, :d] = 1.0 / sc.s
    coords[2] = sc.lam1
    coords[3] = sc.lam2
    params = np.zeros(K.N_PARAMS)
    params[K.P_ETA0] = eta0
    params[K.P_POWER_T] = power_t
    params[K.P_SCHEDULE] = 1.0 if schedule == "invscaling" else 0.0
    params[K.P_BATCH] = float(batch_size)
    params[K.P_MEAN] = 1.0 if mean else 0.0
    params[K.P_WSCALE] = m / W_train if mean else 1.0
    params[K.P_FIT_B] = 1.0 if sc.fit_intercept else 0.0
    never = float(np.iinfo(np.int64).max // 2)
    if average_after_epochs:
        average = 0
    params[K.P_AVG_START] = never if (average is False or average_after_epochs) else float(average)
    params[K.P_EPSILON] = epsilon
    runner = Epoch(d, coords, params, mixing, loss.name)
    state = np.empty((2, d + 1))
    state[0] = theta
    state[1] = theta
    t = 0
    if resume:
        state[:] = resume["state"]
        t = resume["t"]
        params[K.P_AVG_START] = resume["avg_start"]
    passes = 0
    avg_start = params[K.P_AVG_START]

    def reported(st, t):
        return st[1] if (average is not False and t > avg_start) else st[0]

    th0 = reported(state, t)
    loss = train_loss(sc.to_raw(th0), th0)
    passes += 1
    history = [loss]
    monitor = val_loss(sc.to_raw(th0), th0) if early_stopping else loss
    best = monitor
    quiet = 0
    eta = eta0
    converged = False
    start = 1
    if restart is not None:
        state[:] = restart["state"]
        t, eta, quiet, best = int(restart["t"]), restart["eta"], int(restart["quiet"]), restart["best"]
        params[K.P_AVG_START] = avg_start = restart["avg_start"]
        history = list(restart["history"])
        passes = int(restart["passes"])
        start = int(restart["epoch"]) + 1
    with source.epochs(rng, shuffle, par_pass, prefetch=not mixing, rows=train_idx) as epochs_:
        for _ in range(start - 1):  # replay the random stream of the epochs already run
            epochs_.skip()
        for epoch in range(start, epochs + 1):
            blocks = epochs_.next()
            params[K.P_ETA0] = eta
            prev, t_prev = state.copy(), t
            t, bad_row = runner.run(blocks, state, t)
            passes += 1
            if bad_row is not None:
                raise Diverged(epoch, sc.to_raw(reported(prev, t_prev)), history,
                               f"a residual became non-finite at row {bad_row}")
            if epoch == average_after_epochs:
                params[K.P_AVG_START] = avg_start = float(t)
                state[1] = state[0]
            th = reported(state, t)
            coef = sc.to_raw(th)
            new_loss = train_loss(coef, th)
            passes += 1
            if not np.isfinite(new_loss) or (history[0] > 0 and new_loss > EXPLODE_FACTOR * history[0]):
                raise Diverged(epoch, sc.to_raw(reported(prev, t_prev)),
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
            if checkpoint is not None and checkpoint.due(epoch):
                checkpoint.save("sgd_scaled", epoch, {
                    "state": state, "t": t, "eta": eta, "quiet": quiet, "best": best,
                    "avg_start": avg_start, "history": np.asarray(history),
                    "passes": passes, "epoch": epoch})
    if resume is not None:
        resume.update(state=state.copy(), t=t, avg_start=avg_start)
    return reported(state, t).copy(), np.asarray(history), converged, passes, eta
