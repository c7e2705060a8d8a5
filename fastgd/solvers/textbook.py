"""The textbook updates on the raw data: a numeric learning rate and nothing else.

:class:`Textbook` is the derivation's batch gradient descent, ``theta -= alpha *
gradient`` with simultaneous updates, one fused pass per epoch (the ``"textbook"``
engine); :class:`PlainSGD` its mini-batch and stochastic forms (the ``"sgd_raw"``
engine), the SGD kernels at the identity scaling. Both stop, with ``tol`` set, when the
relative change of the loss over an epoch is at most ``tol``.
"""
import numpy as np

from .._layout import N_PARAMS, P_AVG_START, P_BATCH, P_ETA0, P_FIT_B, P_MEAN, P_WSCALE, make_coords
from .._validation import check_statistics
from .base import EXPLODE_FACTOR, Diverged, Solver
from .sgd import Epoch


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


def raw_coords(d, fit_intercept=True):
    """The identity scaling (centres 0, inverse scales 1, no penalty) in the layout of
    the SGD kernels' ``coords``: plain SGD on the raw data."""
    return make_coords(np.zeros(d), np.ones(d), fit_intercept)


def raw_params(lr, batch_size, reduction, weight_scale, fit_intercept):
    """The SGD kernels' ``params`` for plain SGD: constant rate ``lr``, no averaging,
    squared loss."""
    params = np.zeros(N_PARAMS)
    params[P_ETA0] = lr
    params[P_BATCH] = float(batch_size)
    params[P_MEAN] = 1.0 if reduction == "mean" else 0.0
    params[P_WSCALE] = weight_scale
    params[P_FIT_B] = 1.0 if fit_intercept else 0.0
    params[P_AVG_START] = float(np.iinfo(np.int64).max // 2)
    return params


class _RawSolver(Solver):
    """What the textbook updates share: the raw parameters, the loss check and the
    relative-change stopping rule."""

    def __init__(self, obj, coef, lr, tol):
        super().__init__()
        self.obj, self.coef_, self.lr, self.tol = obj, coef, lr, tol

    def coef(self):
        return self.coef_

    def accept(self, k, new, new_loss):
        """Check and record an epoch that moved the parameters to ``new``; returns
        whether ``tol`` is met. Raises :class:`Diverged` with the last finite parameters
        when the loss is non-finite or exploded."""
        history = self.history
        if not (np.isfinite(new_loss) and np.all(np.isfinite(new))):
            raise Diverged(k, self.coef_, history, "the loss became non-finite")
        if history[0] > 0.0 and new_loss > EXPLODE_FACTOR * history[0]:
            raise Diverged(k, self.coef_, history,
                           f"the loss exploded from {history[0]:.6g} to {new_loss:.6g}")
        prev = history[-1]
        stop = (self.tol is not None and
                abs(prev - new_loss) <= self.tol * max(abs(prev), np.finfo(np.float64).tiny))
        history.append(new_loss)
        self.coef_ = new
        if stop:
            self.reason = (f"tol: the loss changed by at most tol={self.tol:g} (relative) over "
                           f"epoch {k}")
        return stop


class Textbook(_RawSolver):
    """Full-batch gradient descent on the raw data: one fused pass per epoch (``obj``:
    :class:`fastgd.solvers.oracles.Objective`, the loss and gradient at a point)."""

    def begin(self):
        loss, self.grad = self.obj(self.coef_)
        self.history = [loss]

    def epoch(self, k):
        new = self.coef_ - self.lr * self.grad
        new_loss, new_grad = self.obj(new)
        stop = self.accept(k, new, new_loss)
        self.grad = new_grad
        return stop


class PlainSGD(_RawSolver):
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

    def __init__(self, obj, coef, lr, tol, *, batch_size, reduction, fit_intercept, mixing,
                 shuffle, rng, parallel):
        super().__init__(obj, coef, lr, tol)
        source = obj.source
        d = source.d
        wscale = source.n / source.weight_total if reduction == "mean" else 1.0
        params = raw_params(lr, batch_size, reduction, wscale, fit_intercept)
        self.runner = Epoch(d, raw_coords(d, fit_intercept), params, mixing)
        self.state = np.empty((2, d + 1))
        self.stream_args = (rng, shuffle, parallel, not mixing)

    def opened(self):
        rng, shuffle, parallel, prefetch = self.stream_args
        self.stream = self.obj.source.epochs(rng, shuffle, parallel, prefetch=prefetch)
        return self.stream

    def begin(self):
        self.history = [self.obj.loss(self.coef_)]

    def epoch(self, k):
        state = self.state
        state[0] = self.coef_
        state[1] = self.coef_
        _, bad_row = self.runner.run(self.stream.next(), state, 0)
        if bad_row is not None:
            raise Diverged(k, self.coef_, self.history,
                           f"a residual became non-finite at row {bad_row}")
        new = state[0].copy()
        return self.accept(k, new, self.obj.loss(new))
