"""Mode drivers: Python decides, kernels compute.

Each driver allocates its buffers once per fit and then loops over epochs; all per-row
work happens inside one kernel call per epoch.
"""
import numpy as np

from . import kernels as _kernels
from ._chunking import mix_parts, moment_layout, n_chunks, perm_layout

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
    intercept's component last, zero when the intercept is not fitted).

    ``verify``: for data whose finiteness was not checked yet, a callable that checks it
    (raising ``ValueError`` on NaN/inf). It runs when the first pass gives a non-finite
    sum; a finite first pass proves the data finite (any NaN or inf in ``X`` or ``y``
    makes ``sum w r^2`` NaN or inf), so later passes need no check.
    """

    def __init__(self, data, reduction, fit_intercept, parallel, verify=None):
        self.data = data
        self.kernel = _kernels.sse_grad_kernel(data.d, data.sw.shape[0] > 0, parallel)
        self.out = np.empty((n_chunks(data.n), data.d + 2))
        self.norm = 1.0 / data.weight_total if reduction == "mean" else 1.0
        self.fit_intercept = fit_intercept
        self.parallel = parallel
        self.verify = verify

    def sums(self, coef):
        """``[sum w r^2, sum w r, sum w r x_j ...]`` at ``coef``, chunk rows added in order."""
        d = self.data
        self.kernel(d.X, d.y, d.sw, coef, self.out)
        s = self.out.sum(axis=0)
        if self.verify is not None:
            if not np.isfinite(s).all():
                self.verify()
            self.verify = None
        return s

    def loss(self, coef):
        return float(self.sums(coef)[0] * self.norm)

    def __call__(self, coef):
        s = self.sums(coef)
        d = self.data.d
        grad = np.empty(d + 1)
        grad[:d] = s[2:] * (-2.0 * self.norm)
        grad[d] = s[1] * (-2.0 * self.norm) if self.fit_intercept else 0.0
        return float(s[0] * self.norm), grad


def moments(data, parallel):
    """Weighted mean and centred co-moment of ``z = [x, y]`` in one compiled pass.

    Returns ``(W, mean (d + 1,), comoment (d + 1, d + 1))``; per-block statistics are
    merged exactly (pairwise-update formulas) in block order, so the result does not
    depend on the thread count.
    """
    n, d = data.X.shape
    k = d + 1
    n_blocks, sub_rows = moment_layout(n, d)
    out = np.empty((n_blocks, 1 + k + k * k))
    _kernels.SERIAL_PARALLEL["moments"][int(parallel)](data.X, data.y, data.sw, sub_rows, out)
    mean = np.empty(k)
    com = np.empty((k, k))
    W = _kernels._combine_moments(out, k, mean, com)
    return W, mean, com


def moments_diag(data, parallel):
    """``(W, mean (d + 1,), m2 (d + 1,))``: the diagonal of :func:`moments` in O(n d).

    Blocks are merged in order with the same pairwise-update formula.
    """
    n, d = data.X.shape
    k = d + 1
    n_blocks, sub_rows = moment_layout(n, 1)
    out = np.empty((n_blocks, 1 + 2 * k))
    _kernels.SERIAL_PARALLEL["moments_diag"][int(parallel)](data.X, data.y, data.sw, sub_rows, out)
    W = 0.0
    mean = np.zeros(k)
    m2 = np.zeros(k)
    # NaN/inf data gives NaN/inf blocks: the caller checks the result (Scaled's verify),
    # NumPy need not warn on the way
    with np.errstate(invalid="ignore", over="ignore"):
        for row in out:
            Wb = row[0]
            if Wb > 0.0:
                Wt = W + Wb
                delta = row[1:1 + k] - mean
                m2 += row[1 + k:] + (W * Wb / Wt) * delta * delta
                mean += delta * (Wb / Wt)
                W = Wt
    return W, mean, m2


def max_step_norm(data, centres, inv_scales, fit_intercept, parallel):
    """``max_i w_i ||[(x_i - centres) * inv_scales, 1]||^2`` in one compiled pass.

    The largest curvature one SGD step can meet (the intercept's 1 only when fitted).
    """
    d = data.d
    coords = np.zeros((2, d + 1))
    coords[0, :d] = centres
    coords[0, d] = 1.0 if fit_intercept else 0.0
    coords[1, :d] = inv_scales
    out = np.empty(n_chunks(data.n))
    _kernels.SERIAL_PARALLEL["max_norm"][int(parallel)](data.X, data.sw, coords, out)
    return float(out.max())


def auto_learning_rate(data, mode, reduction, fit_intercept, batch_size, parallel):
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
    d = data.d
    if mode == "batch":
        W, mean, com = moments(data, parallel)
        mu = mean[:d]
        G = com[:d, :d] + W * np.outer(mu, mu)
        if fit_intercept:
            G = np.block([[G, W * mu[:, None]], [W * mu[None, :], np.array([[W]])]])
        lam = float(np.linalg.eigvalsh(G)[-1])
        L = 2.0 * lam / W if reduction == "mean" else 2.0 * lam
    else:
        M = max_step_norm(data, np.zeros(d), np.ones(d), fit_intercept, parallel)
        s = data.n / data.weight_total if reduction == "mean" else float(batch_size)
        L = 2.0 * s * M
    return 1.0 / L if L > 0.0 else 1.0


def epoch_seed(rng):
    """The seed of one epoch's permutation, drawn from the fit's generator."""
    return int(rng.integers(0, 2**63 - 1))


#: from this many rows, serial SGD builds the next epoch's permutation on a background
#: thread while the current epoch runs. Measured per epoch (2 cores, d = 1), without /
#: with: 4e6 rows raw SGD 150 / 105 ms, default (scaled, averaged) 145 / 131 ms; 1e6
#: rows raw 18 / 13 ms but default 14 / 17 ms (the data sits in cache, the epoch is as
#: short as the serial permutation, and the background thread then contends with the
#: parallel loss pass). Hence only for data well beyond the caches.
PREFETCH_MIN_ROWS = 1 << 21


class Permutations:
    """The visiting order of each epoch of a stochastic fit: ``next()`` returns it.

    Epoch ``k`` visits ``permutation(seed_k)`` with ``seed_k`` the ``k``-th draw of
    :func:`epoch_seed` from ``rng`` (``arange(m)`` without ``shuffle``). With
    ``prefetch`` (serial SGD, which keeps one core busy), the next epoch's permutation is
    built by the serial kernel on a background thread while the caller runs the current
    epoch: the kernel is compiled ``nogil``, so the two really run at once, and the
    result is the same permutation as without prefetching. Two buffers alternate, so
    memory is ``2 m`` int64. Use as a context manager (the thread is joined on exit).
    """

    def __init__(self, m, rng, shuffle, parallel, prefetch):
        self.m, self.rng, self.shuffle = m, rng, shuffle
        self.n_buckets, self.n_chunks = perm_layout(m)
        self.prefetch = bool(prefetch and shuffle and m >= PREFETCH_MIN_ROWS)
        variant = 0 if self.prefetch else int(parallel)
        self.kernel = _kernels.SERIAL_PARALLEL["permutation"][variant]
        self.buffers = [np.arange(m, dtype=np.int64)]
        self.pool = self.pending = None
        if self.prefetch:
            from concurrent.futures import ThreadPoolExecutor

            self.buffers.append(np.empty(m, dtype=np.int64))
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastgd-perm")
        self.turn = 0

    def _build(self, buf, seed):
        self.kernel(buf, seed, self.n_buckets, self.n_chunks)
        return buf

    def next(self):
        if not self.shuffle:
            return self.buffers[0]
        if not self.prefetch:
            return self._build(self.buffers[0], epoch_seed(self.rng))
        if self.pending is None:  # first epoch: nothing built ahead yet
            self._build(self.buffers[self.turn], epoch_seed(self.rng))
        else:
            self.pending.result()  # the buffer built during the previous epoch
        current = self.buffers[self.turn]
        self.turn ^= 1
        self.pending = self.pool.submit(self._build, self.buffers[self.turn], epoch_seed(self.rng))
        return current

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        return False


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
                    fit_intercept, parallel, shuffle, rng):
    """Mini-batch / SGD epochs, each entirely inside one kernel call.

    With ``parallel`` the epoch runs as parameter mixing: ``mix_parts(n)`` parts, each an
    SGD pass over its slice of the permutation from the same start, averaged in order.
    Rows are visited through an index permutation, drawn afresh each epoch by the
    compiled bucket shuffle from a 63-bit seed taken from ``rng`` (serial SGD builds the
    next one on a background thread, see :class:`Permutations`); the data is never
    copied or reordered.
    """
    data = obj.data
    n, d = data.n, data.d
    parts = mix_parts(n) if parallel else 1
    kernel = _kernels.SERIAL_PARALLEL["sgd_epoch"][int(parallel)]
    perms = Permutations(n, rng, shuffle, obj.parallel, prefetch=not parallel)
    params = np.array([
        lr, float(batch_size), 0.0 if reduction == "mean" else 1.0,
        n / data.weight_total if reduction == "mean" else 1.0, float(fit_intercept),
    ])
    out = np.empty((parts, d + 2))
    loss = obj.loss(coef)
    history = [loss]
    converged = False
    with perms:
        for epoch in range(1, epochs + 1):
            perm = perms.next()
            kernel(data.X, data.y, data.sw, perm, params, coef, out)
            bad = out[:, d + 1]
            if np.any(bad >= 0):
                k = int(bad[bad >= 0][0])
                raise Diverged(epoch, coef, history,
                               f"a residual became non-finite at row {int(perm[k])}")
            new = out[:, : d + 1].sum(axis=0) / parts
            new_loss = obj.loss(new)
            done, converged = _end_epoch(epoch, coef, new, new_loss, history, lr, tol, callback)
            coef = new
            if done:
                break
    return coef, np.asarray(history), converged
