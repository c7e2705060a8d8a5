"""Mode drivers: Python decides, kernels compute.

Each driver allocates its buffers once per fit and then loops over epochs; all per-row
work happens inside one kernel call per epoch.
"""
import numpy as np

from . import _threads
from ._chunking import mix_parts
from . import losses
from ._config import K as _kernels
from ._validation import check_statistics

#: a loss this many times above the starting loss counts as divergence.
EXPLODE_FACTOR = 1e10


class Diverged(Exception):
    """Internal: raised by a driver; the API turns it into :class:`DivergenceError`."""

    def __init__(self, epoch, coef, history, reason):
        super().__init__(reason)
        self.epoch = epoch
        self.coef = coef
        self.history = history
        self.reason = reason


class Objective:
    """Full-data loss and gradient of the (weighted) squared error, one fused pass.

    ``obj(coef)`` returns ``(loss, grad)`` with ``grad`` float64 ``(d + 1,)`` (the
    intercept's component last, zero when the intercept is not fitted). The pass is the
    source's :meth:`~fastgd.sources.Source.sse_grad` (which also proves the data finite
    on its first call, see there).
    """

    def __init__(self, source, reduction, fit_intercept):
        self.source = source
        self.mean = reduction == "mean"
        self.fit_intercept = fit_intercept

    @property
    def norm(self):
        return 1.0 / self.source.weight_total if self.mean else 1.0

    def sums(self, coef):
        """``[sum w r^2, sum w r, sum w r x_j ...]`` at ``coef``, block partials added in order."""
        return self.source.sse_grad(coef)

    def loss(self, coef):
        return float(self.sums(coef)[0] * self.norm)

    def __call__(self, coef):
        s = self.sums(coef)
        d = self.source.d
        norm = self.norm
        grad = np.empty(d + 1)
        grad[:d] = s[2:] * (-2.0 * norm)
        grad[d] = s[1] * (-2.0 * norm) if self.fit_intercept else 0.0
        return float(s[0] * norm), grad


def auto_learning_rate(source, mode, reduction, fit_intercept, batch_size):
    """The automatic learning rate on the raw data.

    * batch: ``1 / L`` with ``L`` the Lipschitz constant of the gradient, ``2 lambda_max(G)``
      (divided by the weight total for the mean loss), ``G`` the weighted Gram matrix of
      ``[X, 1]`` (of ``X`` alone without intercept). Gradient descent with this step
      decreases the loss at every epoch: it cannot diverge.
    * minibatch / sgd: ``1 / (2 s M)`` with ``M = max_i w_i ||z_i||^2`` and ``s = n / W``
      (mean) or the batch size (sum). Every single update then moves the parameters by at
      most the full correction for its batch: no step can overshoot, whatever the rows
      drawn.
    """
    d = source.d
    if mode == "batch":
        W, mean, com = source.moments(full=True)
        check_statistics(W, mean, com)
        mu = mean[:d]
        G = com[:d, :d] + W * np.outer(mu, mu)
        if fit_intercept:
            G = np.block([[G, W * mu[:, None]], [W * mu[None, :], np.array([[W]])]])
        lam = float(np.linalg.eigvalsh(G)[-1])
        L = 2.0 * lam / W if reduction == "mean" else 2.0 * lam
    else:
        M = source.max_norm(np.zeros(d), np.ones(d), fit_intercept)
        s = source.n / source.weight_total if reduction == "mean" else float(batch_size)
        L = 2.0 * s * M
    return 1.0 / L if L > 0.0 else 1.0


class Epoch:
    """Runs one epoch's blocks through the scaled kernel (serial, or parameter mixing),
    carrying ``state`` (parameters and running average) and the step count ``t``."""

    def __init__(self, d, coords, params, mixing, loss="squared"):
        self.coords, self.params, self.mixing = coords, params, mixing
        self.d = d
        self.loss = loss  # a registered loss's name (blocks elsewhere look it up)
        # one block's share of an epoch: a module-level function, which a source whose
        # blocks live elsewhere sends there by name (fastgd.sources.dask)
        self.block_step = sgd_block

    def run(self, blocks, state, t):
        """Returns ``(t, None)``, or ``(t, row)`` when the residual of global row ``row``
        was not finite (``state`` then holds the parameters before it). ``blocks``: a
        list of ``(block, order)``, or an epoch that runs itself (``blocks.run(self,
        state, t)``: blocks that live elsewhere, :mod:`fastgd.dask`)."""
        if hasattr(blocks, "run"):
            return blocks.run(self, state, t)
        for block, order in blocks:
            t, bad = sgd_block(block.data, order, self.coords, self.params, state, t,
                               self.mixing, self.loss)
            if bad is not None:
                return t, block.offset + bad
        return t, None


def sgd_block(data, order, coords, params, state, t, mixing, loss="squared"):
    """One block's share of a stochastic epoch: its rows in ``order`` through the scaled
    SGD kernel (or parameter mixing over ``mix_parts`` parts of ``order``), from
    ``state`` (updated in place) at step ``t``. Returns ``(t, None)``, or ``(t, row)``
    with ``row`` the block's local row whose residual was not finite (``state`` then
    holds the parameters before it)."""
    d = data.d
    bs = int(params[_kernels.P_BATCH])
    params[_kernels.P_T0] = float(t)
    parts = mix_parts(order.shape[0]) if mixing else 1
    kernel = _kernels.sgd_kernels(losses.get(loss)).choose(d, bs, coords, params)
    if parts == 1:
        if bs > 1 and d > 1:  # the batch kernels take two scratch rows after the state
            work = np.zeros((4, d + 1))
            work[:2] = state
            steps = kernel(data.X, data.y, data.sw, order, coords, params, work)
            state[:] = work[:2]
        else:
            steps = kernel(data.X, data.y, data.sw, order, coords, params, state)
        if steps < 0:
            return t, int(order[-steps - 1])
        return t + steps, None
    steps, states = mix_epoch(kernel, data, order, coords, params, state, parts)
    if np.any(steps < 0):
        size = -(-order.shape[0] // parts)
        p = int(np.argmax(steps < 0))
        return t, int(order[p * size - steps[p] - 1])
    state[0] = states[:, 0].sum(axis=0) / parts
    state[1] = states[:, 1].sum(axis=0) / parts
    return t + int(steps.max()), None


def mix_epoch(kernel, data, order, coords, params, state, parts):
    """Parameter mixing of one epoch: ``order`` cut into ``parts`` contiguous slices of
    ``ceil(m / parts)`` entries; part ``p`` runs the SGD epoch ``kernel`` over its slice
    from ``state`` (parameters and running average), all parts with the same ``params``.
    The parts are tasks of fastgd's threads (:func:`fastgd._threads.run`), each on a copy
    of the state of its own. Returns ``(steps, states)``: each part's return value
    (steps taken, or ``-(k + 1)`` for a non-finite residual at position ``k`` of its
    slice) and its final ``(2, d + 1)`` state; the caller averages them in order, so the
    result does not depend on the thread count.
    """
    m = order.shape[0]
    size = -(-m // parts)
    d1 = state.shape[1]
    # each part's state (and the scratch rows of the batch kernels) in memory of its own,
    # 64 bytes of padding on either side: parts sharing cache lines made an epoch (10^7
    # rows, d = 10) take 398 ms instead of 213 ms (per-row SGD) and 272 instead of about
    # 210 ms (mini-batches of 256)
    buf = np.zeros((parts, 4 * d1 + 16))
    local = [buf[p, 8:8 + 4 * d1].reshape(4, d1) for p in range(parts)]
    steps = np.empty(parts, dtype=np.int64)

    def part(p):
        local[p][0] = state[0]
        local[p][1] = state[1]
        steps[p] = kernel(data.X, data.y, data.sw, order[p * size:min(m, (p + 1) * size)],
                          coords, params, local[p])

    _threads.run(part, parts)
    return steps, np.stack([loc[:2] for loc in local])


def _stopped(history, loss, tol):
    """Relative change of the loss over the last epoch below ``tol``."""
    prev = history[-1]
    return abs(prev - loss) <= tol * max(abs(prev), np.finfo(np.float64).tiny)


def _check_finite_loss(epoch, loss, coef, history, lr):
    if not np.isfinite(loss) or not np.all(np.isfinite(coef)):
        raise Diverged(epoch, None, history, "the loss became non-finite")
    if history[0] > 0.0 and loss > EXPLODE_FACTOR * history[0]:
        raise Diverged(
            epoch, None, history,
            f"the loss exploded from {history[0]:.6g} to {loss:.6g}",
        )


def _end_epoch(epoch, coef, new, new_loss, history, lr, tol, callback):
    """Check and record an epoch that moved ``coef`` to ``new``: ``(done, converged)``.

    Raises :class:`Diverged` with ``coef`` (the last finite parameters) when the loss is
    non-finite or exploded; appends ``new_loss`` to ``history``; calls ``callback`` (a
    ``False`` return ends the fit, not converged); ``tol`` met ends it, converged.
    """
    try:
        _check_finite_loss(epoch, new_loss, new, history, lr)
    except Diverged as exc:
        exc.coef = coef
        raise
    stop = tol is not None and _stopped(history, new_loss, tol)
    history.append(new_loss)
    d = new.shape[0] - 1
    if callback is not None and callback(epoch, new[:d].copy(), float(new[d]), new_loss) is False:
        return True, False
    return stop, stop


def _fit_batch(obj, coef, lr, epochs, tol, callback):
    """Full-batch gradient descent: one fused pass per epoch.

    Returns ``(coef, history, converged)``; raises :class:`Diverged` with the last
    finite parameters.
    """
    loss, grad = obj(coef)
    history = [loss]
    converged = False
    for epoch in range(1, epochs + 1):
        new = coef - lr * grad
        new_loss, new_grad = obj(new)
        done, converged = _end_epoch(epoch, coef, new, new_loss, history, lr, tol, callback)
        coef, grad = new, new_grad
        if done:
            break
    return coef, np.asarray(history), converged


def raw_coords(d):
    """The identity scaling (centres 0, inverse scales 1, no penalty) in the layout of
    the scaled SGD kernel's ``coords``: plain SGD on the raw data."""
    coords = np.zeros((4, d + 1))
    coords[1, :d] = 1.0
    return coords


def raw_params(lr, batch_size, reduction, weight_scale, fit_intercept):
    """The scaled SGD kernel's ``params`` for plain SGD: constant rate ``lr``, no
    averaging, squared loss."""
    params = np.zeros(_kernels.N_PARAMS)
    params[_kernels.P_ETA0] = lr
    params[_kernels.P_BATCH] = float(batch_size)
    params[_kernels.P_MEAN] = 1.0 if reduction == "mean" else 0.0
    params[_kernels.P_WSCALE] = weight_scale
    params[_kernels.P_FIT_B] = 1.0 if fit_intercept else 0.0
    params[_kernels.P_AVG_START] = float(np.iinfo(np.int64).max // 2)
    return params


def _fit_stochastic(obj, coef, lr, epochs, tol, callback, *, batch_size, reduction,
                    fit_intercept, mixing, shuffle, rng, parallel):
    """Mini-batch / SGD epochs on the raw data: the SGD kernel at the identity scaling,
    each block's share of an epoch in one kernel call.

    With ``mixing`` each block's rows run as parameter mixing: ``mix_parts(m)`` parts,
    each an SGD pass over its slice of the block's permutation from the same start,
    averaged in order. Rows are visited in the order the source's
    :meth:`~fastgd.sources.Source.epochs` gives (for arrays a permutation drawn afresh
    each epoch by the compiled bucket shuffle from a 63-bit seed taken from ``rng``;
    serial SGD builds the next one on a background thread); the data is never copied or
    reordered.
    """
    source = obj.source
    d = source.d
    wscale = source.n / source.weight_total if reduction == "mean" else 1.0
    runner = Epoch(d, raw_coords(d), raw_params(lr, batch_size, reduction, wscale,
                                                fit_intercept), mixing)
    state = np.empty((2, d + 1))
    loss = obj.loss(coef)
    history = [loss]
    converged = False
    with source.epochs(rng, shuffle, parallel, prefetch=not mixing) as epochs_:
        for epoch in range(1, epochs + 1):
            state[0] = coef
            state[1] = coef
            _, bad_row = runner.run(epochs_.next(), state, 0)
            if bad_row is not None:
                raise Diverged(epoch, coef, history,
                               f"a residual became non-finite at row {bad_row}")
            new = state[0].copy()
            new_loss = obj.loss(new)
            done, converged = _end_epoch(epoch, coef, new, new_loss, history, lr, tol, callback)
            coef = new
            if done:
                break
    return coef, np.asarray(history), converged
