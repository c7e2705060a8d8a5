"""The stochastic solvers: one epoch is one visit of every row, in steps of a few rows.

Python decides, kernels compute: each block's share of an epoch is one call of the SGD
kernel of the fit's loss (:func:`sgd_block`, or parameter mixing of it,
:func:`mix_epoch`), then one loss pass measures the epoch.

:class:`StochasticSolver` (the ``"sgd_scaled"`` engine) runs in scaled coordinates with
schedules, averaging, early stopping and penalties. Schedules (scikit-learn's meanings;
``t`` counts the steps of the whole fit from 1):

* ``"constant"``: ``eta = eta0``;
* ``"invscaling"``: ``eta = eta0 / t ** power_t``;
* ``"adaptive"``: ``eta = eta0`` as long as the monitored loss (training objective, or
  the validation loss with ``early_stopping``) keeps improving; each time
  ``n_iter_no_change`` consecutive epochs fail to improve the best value by more than
  ``tol`` (relative), ``eta`` is divided by 5; the fit stops (converged) once ``eta``
  falls below ``1e-6 * eta0``.

With the other schedules and ``tol`` set, the fit stops (converged) after
``n_iter_no_change`` consecutive epochs without a relative improvement above ``tol``.

The plain stochastic modes on the raw data (a numeric rate, nothing else) are
:class:`fastgd.solvers.textbook.PlainSGD`, the same kernels at the identity scaling.
"""
import numpy as np

from .. import _threads, losses
from .._chunking import mix_parts
from .._config import K
from .._layout import (
    N_PARAMS,
    P_AVG_START,
    P_BATCH,
    P_EPSILON,
    P_ETA0,
    P_FIT_B,
    P_MEAN,
    P_POWER_T,
    P_SCHEDULE,
    P_T0,
    P_WSCALE,
    make_coords,
)
from .base import Diverged, Solver, check_loss
from .oracles import objective


class Epoch:
    """Runs one epoch's blocks through the SGD kernel of ``loss`` (a registered loss's
    name; serial, or parameter mixing), carrying ``state`` (parameters and running
    average) and the step count ``t``."""

    def __init__(self, d, coords, params, mixing, loss="squared"):
        self.coords, self.params, self.mixing = coords, params, mixing
        self.d = d
        self.loss = loss
        # the scratch rows of the kernels that take them, kept from epoch to epoch: a new
        # buffer each epoch paid its page faults again (19 MB at 2^18 CSR columns)
        self.scratch = {}
        # one block's share of an epoch: a module-level function, which a source whose
        # blocks live elsewhere sends there by name (fastgd.sources.dask)
        self.block_step = sgd_block

    def run(self, blocks, state, t):
        """Returns ``(t, None)``, or ``(t, row)`` when the residual of global row ``row``
        was not finite (``state`` then holds the parameters before it). ``blocks``: a
        list of ``(block, order)``, or an epoch that runs itself (``blocks.run(self,
        state, t)``: blocks that live elsewhere, :mod:`fastgd.sources.dask`)."""
        if hasattr(blocks, "run"):
            return blocks.run(self, state, t)
        for block, order in blocks:
            t, bad = sgd_block(block.data, order, self.coords, self.params, state, t,
                               self.mixing, self.loss, self.scratch)
            if bad is not None:
                return t, block.offset + bad
        return t, None


def sgd_block(data, order, coords, params, state, t, mixing, loss="squared", scratch=None):
    """One block's share of a stochastic epoch: its rows in ``order`` through the SGD
    kernel of ``loss`` (a registered loss's name; the CSR kernels of
    :mod:`fastgd.kernels.sparse_sgd` for a sparse block), or parameter mixing over
    ``mix_parts`` parts of ``order``, from ``state`` (updated in place) at step ``t``.
    ``scratch``: a dict that keeps the kernels' scratch rows between calls (by shape).
    Returns ``(t, None)``, or ``(t, row)`` with ``row`` the block's local row whose
    residual was not finite (``state`` then holds the parameters before it)."""
    d = data.d
    bs = int(params[P_BATCH])
    params[P_T0] = float(t)
    parts = mix_parts(order.shape[0]) if mixing else 1
    kernel, X, rows = _kernel_of(data, d, bs, coords, params, loss, order.shape[0])
    if parts == 1:
        if rows > 2:  # kernels that take scratch rows after the state (any values in)
            shape = (rows, d + 1)
            work = scratch.get(shape) if scratch is not None else None
            if work is None:
                work = np.empty(shape)
                if scratch is not None:
                    scratch.clear()
                    scratch[shape] = work
            work[:2] = state
            steps = kernel(X, data.y, data.sw, order, coords, params, work)
            state[:] = work[:2]
        else:
            steps = kernel(X, data.y, data.sw, order, coords, params, state)
        if steps < 0:
            return t, int(order[-steps - 1])
        return t + steps, None
    steps, states = mix_epoch(kernel, data, order, coords, params, state, parts, X, rows)
    if np.any(steps < 0):
        size = -(-order.shape[0] // parts)
        p = int(np.argmax(steps < 0))
        return t, int(order[p * size - steps[p] - 1])
    state[0] = states[:, 0].sum(axis=0) / parts
    state[1] = states[:, 1].sum(axis=0) / parts
    return t + int(steps.max()), None


def _kernel_of(data, d, bs, coords, params, loss, m):
    """``(kernel, X, rows)``: the epoch kernel of the block (over ``m`` rows), the X it
    reads (a CSR block: the tuple of its arrays) and the rows of state it takes (2, or
    more with scratch)."""
    if data.sparse:
        kernels = K.csr_sgd_kernels(losses.get(loss))
        kernel = kernels.choose(bs, coords, params, m)
        X = data.X
        rows = (K.sparse_sgd.raw_state_rows(d) if kernel is kernels.raw else
                K.sparse_sgd.STATE_ROWS)
        return kernel, (X.indptr, X.indices, X.values), rows
    kernel = K.sgd_kernels(losses.get(loss)).choose(d, bs, coords, params)
    return kernel, data.X, 4 if (bs > 1 and d > 1) else 2


def mix_epoch(kernel, data, order, coords, params, state, parts, X=None, rows=4):
    """Parameter mixing of one epoch: ``order`` cut into ``parts`` contiguous slices of
    ``ceil(m / parts)`` entries; part ``p`` runs the SGD epoch ``kernel`` over its slice
    from ``state`` (parameters and running average), all parts with the same ``params``.
    The parts are tasks of fastgd's threads (:func:`fastgd._threads.run`), each on a copy
    of the state of its own. Returns ``(steps, states)``: each part's return value
    (steps taken, or ``-(k + 1)`` for a non-finite residual at position ``k`` of its
    slice) and its final ``(2, d + 1)`` state; the caller averages them in order, so the
    result does not depend on the thread count. ``X``: what the kernel reads (``data.X``
    when None); ``rows``: the rows of state it takes (scratch included).
    """
    X = data.X if X is None else X
    m = order.shape[0]
    size = -(-m // parts)
    d1 = state.shape[1]
    # each part's state (and the scratch rows of the batch kernels) in memory of its own,
    # 64 bytes of padding on either side: parts sharing cache lines made an epoch (10^7
    # rows, d = 10) take 398 ms instead of 213 ms (per-row SGD) and 272 instead of about
    # 210 ms (mini-batches of 256)
    buf = np.zeros((parts, rows * d1 + 16))
    local = [buf[p, 8:8 + rows * d1].reshape(rows, d1) for p in range(parts)]
    steps = np.empty(parts, dtype=np.int64)

    def part(p):
        local[p][0] = state[0]
        local[p][1] = state[1]
        steps[p] = kernel(X, data.y, data.sw, order[p * size:min(m, (p + 1) * size)],
                          coords, params, local[p])

    _threads.run(part, parts)
    return steps, np.stack([loc[:2] for loc in local])


def sparse_refusal(plan, sc):
    """Why the lazy CSR epochs (:mod:`fastgd.kernels.sparse_sgd`) cannot run this plan's
    penalty in the coordinates ``sc`` (a :class:`~fastgd.solvers.scaling.Scaled`), as a
    ``TypeError`` to raise, or None when they can.

    The lazy forms hold one decay factor and one cumulative L1 penalty for all columns,
    so the penalty's weights in scaled coordinates must be equal (``scale=False``: the
    penalty on the raw weights, as scikit-learn's SGDRegressor has it; with ``scale=True``
    the weights are ``alpha / s_j`` and ``alpha / s_j^2``, one per column). The L1 part
    also needs no centring and no averaging: a proximal step a column misses while no row
    stores it moves a centred column, or its running average, by amounts no scalar
    summarises. Those fits are refused rather than run in O(d) a row."""
    d = sc.d
    if not (sc.lam1[:d].any() or sc.lam2[:d].any()):
        return None
    name = {0.0: "l2", 1.0: "l1"}.get(plan.l1_ratio, "elasticnet")
    what = f"penalty={name!r} in mode={plan.mode!r} on scipy.sparse X"
    if not (np.all(sc.lam1[:d] == sc.lam1[0]) and np.all(sc.lam2[:d] == sc.lam2[0])):
        return TypeError(
            f"{what} is not implemented with scale=True: in scaled coordinates the penalty "
            "differs per column, which has no O(nnz)-per-row lazy form; pass scale=False "
            "(the penalty on the raw weights, as scikit-learn's SGDRegressor), or fit with "
            "mode='batch', or pass X.toarray() if the dense matrix fits in memory")
    if sc.lam1[:d].any() and np.any(sc.m != 0.0):
        return TypeError(
            f"{what} with an L1 part is not implemented with centred columns (scale=True "
            "with fit_intercept=True); pass scale=False, or mode='batch'")
    if sc.lam1[:d].any() and (plan.average is not False or plan.average_after_epochs):
        return TypeError(
            f"{what} with an L1 part is not implemented with averaging (average="
            f"{plan.average!r}): the average of the iterates that the lazy L1 steps skip has "
            "no O(nnz) form; pass average=False, or mode='batch'")
    return None


class FullLoss:
    """The objective on all rows (the fit's loss by the source's compiled pass, plus the
    penalty) at raw parameters ``coef`` (``theta``: the same in scaled coordinates)."""

    def __init__(self, obj, sc):
        self.obj, self.sc = obj, sc

    def __call__(self, coef, theta):
        sc = self.sc
        return float(self.obj.loss(coef) + sc.lam1 @ np.abs(theta)
                     + 0.5 * sc.lam2 @ (theta * theta))


class SubsetLoss:
    """The objective (per ``reduction``) on a subset of rows (``idx``: one index array per
    block of the source), plus the penalty."""

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


class StochasticSolver(Solver):
    """SGD / mini-batch epochs in scaled coordinates (see the module docstring).

    ``plan``: the fit plan (schedule, averaging, early stopping, batch size, loss);
    ``sc``: the :class:`~fastgd.solvers.scaling.Scaled` statistics; ``theta``: the start;
    ``eta0``: the rate; ``rng``: the fit's random stream. ``epochs`` and ``tol`` are the
    plan's unless given (``partial_fit`` runs one epoch without a stopping rule).

    :attr:`history` holds the training objective (full data, or the training rows with
    ``early_stopping``) at the start and after each epoch, at the reported parameters
    (the average once averaging has started). With ``plan.mixing`` each block's share of
    an epoch runs as parameter mixing (:func:`mix_epoch`); ``plan.average_after_epochs =
    k > 0``: averaging starts after the first ``k`` epochs (at the step count reached
    then), whatever ``plan.average`` says.

    ``carry`` (``partial_fit``): a dict carried from call to call. Empty on the first
    call; :meth:`carried` gives what the next call continues from (the kernel state, the
    step count and the step at which averaging starts; ``theta`` is then ignored).

    Checkpoints hold the kernel state, the step count, the schedule's rate and
    counters; a restart replays the random stream (the epochs' visiting orders are drawn
    again, not run) so that the epochs after it see the orders of the uninterrupted fit.
    """

    engine = "sgd_scaled"

    def __init__(self, source, plan, sc, theta, eta0, rng, *, tol=..., carry=None):
        super().__init__()
        self.source, self.plan, self.sc = source, plan, sc
        self.eta0 = self.eta = eta0
        self.rng = rng
        self.tol = plan.tol if tol is ... else tol
        self.loss_fn = loss = losses.get(plan.loss)
        d = source.d
        mean = plan.reduction == "mean"
        parallel = bool(plan.parallel)
        if plan.early_stopping:
            split = source.split(plan.validation_fraction, rng, parallel)
            self.train_idx = [t for t, _ in split]
            val_idx = [v for _, v in split]
            m = sum(t.shape[0] for t in self.train_idx)
            W_train = source.subset_weight(self.train_idx) if source.weighted else float(m)
            if not W_train > 0.0 or (source.weighted and
                                     not source.subset_weight(val_idx) > 0.0):
                which = "training" if not W_train > 0.0 else "validation"
                raise ValueError(
                    f"early_stopping: the {which} rows drawn with validation_fraction="
                    f"{plan.validation_fraction} have zero total weight, so there is nothing to "
                    f"{'fit' if which == 'training' else 'monitor'}; give more rows a positive "
                    "weight, change validation_fraction or random_state, or drop early_stopping"
                )
            self.val_loss = SubsetLoss(source, val_idx, plan.reduction, loss, plan.epsilon, sc)
        else:
            self.train_idx = None
            m = source.n
            W_train = source.weight_total
            self.val_loss = None
        # the reported loss is the full data's (FitResult.loss_history), held-out rows
        # included: the loss of the returned coefficients on the data given
        self.train_loss = FullLoss(objective(source, plan, loss), sc)
        if source.sparse:
            refusal = sparse_refusal(plan, sc)
            if refusal is not None:
                raise refusal
        coords = make_coords(sc.m, 1.0 / sc.s, sc.fit_intercept, sc.lam1, sc.lam2)
        params = np.zeros(N_PARAMS)
        params[P_ETA0] = eta0
        params[P_POWER_T] = plan.power_t
        params[P_SCHEDULE] = 1.0 if plan.schedule == "invscaling" else 0.0
        params[P_BATCH] = float(plan.batch_size)
        params[P_MEAN] = 1.0 if mean else 0.0
        params[P_WSCALE] = m / W_train if mean else 1.0
        params[P_FIT_B] = 1.0 if sc.fit_intercept else 0.0
        never = float(np.iinfo(np.int64).max // 2)
        self.average = 0 if plan.average_after_epochs else plan.average
        params[P_AVG_START] = (never if (self.average is False or plan.average_after_epochs)
                                 else float(self.average))
        params[P_EPSILON] = plan.epsilon
        self.params = params
        self.runner = Epoch(d, coords, params, plan.mixing, loss.name)
        self.state = np.empty((2, d + 1))
        self.state[0] = theta
        self.state[1] = theta
        self.t = 0
        if carry:
            self.state[:] = carry["state"]
            self.t = carry["t"]
            params[P_AVG_START] = carry["avg_start"]
        self.avg_start = params[P_AVG_START]
        self.passes = 0

    @property
    def n_passes(self):
        return self.passes

    def reported(self, state=None, t=None):
        """The parameters the fit reports: the running average once it has started."""
        state = self.state if state is None else state
        t = self.t if t is None else t
        return state[1] if (self.average is not False and t > self.avg_start) else state[0]

    def coef(self):
        return self.sc.to_raw(self.reported())

    def carried(self):
        """What the next ``partial_fit`` call continues from."""
        return {"state": self.state.copy(), "t": self.t, "avg_start": self.avg_start}

    def opened(self):
        plan = self.plan
        self.stream = self.source.epochs(self.rng, plan.shuffle, bool(plan.parallel),
                                         prefetch=not plan.mixing, rows=self.train_idx)
        return self.stream

    def begin(self):
        th0 = self.reported()
        coef = self.sc.to_raw(th0)
        loss = self.train_loss(coef, th0)
        self.passes += 1
        self.history = [loss]
        self.best = self.val_loss(coef, th0) if self.val_loss is not None else loss
        self.quiet = 0

    def epoch(self, k):
        sc, plan, params = self.sc, self.plan, self.params
        blocks = self.stream.next()
        params[P_ETA0] = self.eta
        prev, t_prev = self.state.copy(), self.t
        self.t, bad_row = self.runner.run(blocks, self.state, self.t)
        self.passes += 1
        if bad_row is not None:
            raise Diverged(k, sc.to_raw(self.reported(prev, t_prev)), self.history,
                           f"a residual became non-finite at row {bad_row}")
        if k == plan.average_after_epochs:
            params[P_AVG_START] = self.avg_start = float(self.t)
            self.state[1] = self.state[0]
        th = self.reported()
        coef = sc.to_raw(th)
        new_loss = self.train_loss(coef, th)
        self.passes += 1
        check_loss(k, new_loss, self.history, sc.to_raw(self.reported(prev, t_prev)))
        self.history.append(new_loss)
        monitor = self.val_loss(coef, th) if self.val_loss is not None else new_loss
        return self._stopping(monitor)

    def _stopping(self, monitor):
        tol = self.tol
        if tol is None:
            return False
        best = self.best
        self.quiet = 0 if monitor < best - tol * abs(best) else self.quiet + 1
        self.best = min(best, monitor)
        patience = self.plan.n_iter_no_change
        if self.quiet < patience:
            return False
        which = "held-out" if self.val_loss is not None else "full-data"
        if self.plan.schedule == "adaptive":
            self.eta /= 5.0
            self.quiet = 0
            if self.eta < 1e-6 * self.eta0:
                self.reason = (f"schedule: the adaptive rate fell below 1e-6 of eta0 "
                               f"({self.eta:.3g}) without the {which} loss improving by "
                               f"more than tol={tol:g} (relative)")
                return True
            return False
        code = "early_stopping" if self.val_loss is not None else "tol"
        self.reason = (f"{code}: the {which} loss improved by less than tol={tol:g} "
                       f"(relative) in {patience} consecutive epoch(s)")
        return True

    def snapshot(self, k):
        return {"state": self.state, "t": self.t, "eta": self.eta, "quiet": self.quiet,
                "best": self.best, "avg_start": self.avg_start,
                "history": np.asarray(self.history), "passes": self.passes, "epoch": k}

    def restore(self, state):
        self.state[:] = state["state"]
        self.t, self.eta = int(state["t"]), state["eta"]
        self.quiet, self.best = int(state["quiet"]), state["best"]
        self.params[P_AVG_START] = self.avg_start = state["avg_start"]
        self.history = list(state["history"])
        self.passes = int(state["passes"])
        epoch = int(state["epoch"])
        for _ in range(epoch):  # replay the random stream of the epochs already run
            self.stream.skip()
        return epoch
