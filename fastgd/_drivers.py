"""Mode drivers: Python decides, kernels compute.

Each driver allocates its buffers once per fit and then loops over epochs; all per-row
work happens inside one kernel call per epoch.
"""
import numpy as np

from . import kernels as _kernels
from ._chunking import mix_parts

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
    source's :meth:`~fastgd._sources.Source.sse_grad` (which also proves the data finite
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


def _fit_stochastic(obj, coef, lr, epochs, tol, callback, *, batch_size, reduction,
                    fit_intercept, mixing, shuffle, rng, parallel):
    """Mini-batch / SGD epochs on the raw data, each block's share in one kernel call.

    With ``mixing`` each block's rows run as parameter mixing: ``mix_parts(m)`` parts,
    each an SGD pass over its slice of the block's permutation from the same start,
    averaged in order. Rows are visited in the order the source's
    :meth:`~fastgd._sources.Source.epochs` gives (for arrays a permutation drawn afresh
    each epoch by the compiled bucket shuffle from a 63-bit seed taken from ``rng``;
    serial SGD builds the next one on a background thread); the data is never copied or
    reordered.
    """
    source = obj.source
    d = source.d
    kernel = _kernels.SERIAL_PARALLEL["sgd_epoch"][int(mixing)]
    params = np.array([
        lr, float(batch_size), 0.0 if reduction == "mean" else 1.0,
        source.n / source.weight_total if reduction == "mean" else 1.0, float(fit_intercept),
    ])
    loss = obj.loss(coef)
    history = [loss]
    converged = False
    with source.epochs(rng, shuffle, parallel, prefetch=not mixing) as epochs_:
        for epoch in range(1, epochs + 1):
            new = coef
            for block, order in epochs_.next():
                data = block.data
                parts = mix_parts(order.shape[0]) if mixing else 1
                out = np.empty((parts, d + 2))
                kernel(data.X, data.y, data.sw, order, params, new, out)
                bad = out[:, d + 1]
                if np.any(bad >= 0):
                    k = int(bad[bad >= 0][0])
                    raise Diverged(epoch, coef, history, "a residual became non-finite at row "
                                   f"{block.offset + int(order[k])}")
                new = out[:, : d + 1].sum(axis=0) / parts
            new_loss = obj.loss(new)
            done, converged = _end_epoch(epoch, coef, new, new_loss, history, lr, tol, callback)
            coef = new
            if done:
                break
    return coef, np.asarray(history), converged
