"""Stochastic epochs: one family, (mini-)batch SGD in standardized coordinates computed on
the fly (schedules, averaging, penalties, any registered loss), serial or parameter mixing
over fixed parts. Plain SGD on the raw data is the identity scaling (centres 0, inverse
scales 1, no penalty, constant rate, no averaging): ``(x - 0) * 1`` is ``x`` exactly, so it
runs the textbook update. Strict IEEE (``fastmath=False``), so the non-finite residual
test survives (under the fast-math flags LLVM removed it, see fastgd._config).

Each epoch kernel is compiled per loss (:func:`sgd_kernels`): the loss's ``psi`` (half its
derivative) is the global ``_PSI`` of a copy of the source, and ``_SQUARED`` says that it
is the identity, so the squared loss's kernels hold no trace of another loss.
"""
import math

import numpy as np

from .._config import jit, per_loss, specialize
from .._intrinsics import PREFETCH_DISTANCE, prefetch
from .._layout import (
    C_CENTRE,
    C_INV_SCALE,
    C_LAM1,
    C_LAM2,
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
    is_identity,
)

#: rebound in each loss's copy of the kernels (see :func:`sgd_kernels`)
_PSI = None
_SQUARED = True
_PLAIN = False
_STEPS_1D = None
_ROWS_PLAIN = None


@jit
def _merge_average(v0, v1, t_start, avg_start, s0, s1, n_new):
    """Merge ``n_new`` iterates summed into ``(s0, s1)`` with the running average
    ``(v0, v1)`` of the ``t_start - avg_start`` steps before them (none if negative)."""
    if n_new == 0:
        return v0, v1
    n_old = max(t_start - avg_start, 0)
    total = n_old + n_new
    return (v0 * n_old + s0) / total, (v1 * n_old + s1) / total


@jit(fastmath=False)
def _soft_threshold(v, tau):
    """``sign(v) max(|v| - tau, 0)`` for ``tau > 0`` (the L1 proximal step); ``v`` as is
    when ``tau <= 0``."""
    if tau > 0.0:
        if v > tau:
            return v - tau
        if v < -tau:
            return v + tau
        return 0.0
    return v


def _steps_1d(X, y, sw, perm, k_lo, k_hi, params, c0, i0, l1, l2, a0, a1, averaging):
    """SGD steps ``k_lo .. k_hi - 1`` of one feature and one row per step, in registers.

    The update of :func:`_sgd_scaled_epoch_src` (``params`` as there; this run's first
    step is number ``params[t0] + k_lo + 1``). With ``averaging`` the iterates after each
    step are summed. Returns ``(a0, a1, bad, s0, s1)``: the parameters, the position of
    the first non-finite residual (``-1`` if none; the parameters are those before it)
    and the sums of the iterates.
    """
    eta0 = params[P_ETA0]
    power_t = params[P_POWER_T]
    t = np.int64(params[P_T0]) + k_lo
    invscaling = params[P_SCHEDULE] != 0.0
    mean = params[P_MEAN] != 0.0
    base = 2.0 * params[P_WSCALE] if mean else 2.0
    fit_b = params[P_FIT_B] != 0.0
    eps = params[P_EPSILON]
    weighted = sw.shape[0] > 0
    decay = l2 > 0.0
    xv = X.reshape(X.shape[0])
    s0 = 0.0
    s1 = 0.0
    if _SQUARED and not (weighted or decay or l1 > 0.0 or invscaling):
        # the default fit (constant rate, squared loss, no weights, no penalty): LLVM did
        # not unswitch the loop below on all those flags (10^7 steps: 428 ms there,
        # about 300 ms here, the cost of the random row access)
        c = base * eta0
        for k in range(k_lo, k_hi):
            if k + PREFETCH_DISTANCE < k_hi:  # (see fastgd._intrinsics)
                q = perm[k + PREFETCH_DISTANCE]
                prefetch(xv, q)
                prefetch(y, q)
            i = perm[k]
            x0 = (np.float64(xv[i]) - c0) * i0
            r = np.float64(y[i]) - (a0 * x0 + a1)
            if not math.isfinite(r):
                return a0, a1, k, s0, s1
            step = c * r
            a0 += step * x0
            if fit_b:
                a1 += step
            if averaging:
                s0 += a0
                s1 += a1
        return a0, a1, -1, s0, s1
    for k in range(k_lo, k_hi):
        if k + PREFETCH_DISTANCE < k_hi:
            q = perm[k + PREFETCH_DISTANCE]
            prefetch(xv, q)
            prefetch(y, q)
            if weighted:
                prefetch(sw, q)
        i = perm[k]
        x0 = (np.float64(xv[i]) - c0) * i0
        r = np.float64(y[i]) - (a0 * x0 + a1)
        if not math.isfinite(r):
            return a0, a1, k, s0, s1
        if not _SQUARED:
            r = _PSI(r, eps)
        t += 1
        eta = eta0 / t ** power_t if invscaling else eta0
        c = base * eta * (sw[i] * r if weighted else r)
        v = a0 + c * x0
        if decay:  # skipped when there is no L2 part: it sat on the dependency chain
            v -= eta * l2 * a0
        a0 = _soft_threshold(v, eta * l1)
        if fit_b:
            a1 += c
        if averaging:
            s0 += a0
            s1 += a1
    return a0, a1, -1, s0, s1


def _rows_epoch(X, y, sw, perm, coords, params, state):
    """:func:`_sgd_scaled_epoch_src` with one row a step and ``d > 1`` columns: no gradient
    buffer; each scaled feature is recomputed in the update instead of stored (the same
    value, so the same results as a batch of one row), and the penalty's two steps are
    skipped when no coordinate has a penalty. Plain SGD on the raw data runs
    :func:`_rows_plain_epoch` instead (chosen in Python: a scaled fit does not compile
    it, 0.3 to 0.4 s on a cold start)."""
    d = X.shape[1]
    m = perm.shape[0]
    eta0 = params[P_ETA0]
    power_t = params[P_POWER_T]
    t = np.int64(params[P_T0])
    invscaling = params[P_SCHEDULE] != 0.0
    mean = params[P_MEAN] != 0.0
    wscale = params[P_WSCALE]
    fit_b = params[P_FIT_B] != 0.0
    avg_start = np.int64(params[P_AVG_START])
    eps = params[P_EPSILON]
    weighted = sw.shape[0] > 0
    theta = state[0]
    avg = state[1]
    cen = coords[C_CENTRE]
    inv = coords[C_INV_SCALE]
    lam1 = coords[C_LAM1]
    lam2 = coords[C_LAM2]
    penalized = False
    for j in range(d):
        if lam1[j] != 0.0 or lam2[j] != 0.0:
            penalized = True
    xf = X.reshape(X.shape[0] * d)
    for k in range(m):
        if k + PREFETCH_DISTANCE < m:  # (see fastgd._intrinsics)
            q = perm[k + PREFETCH_DISTANCE]
            prefetch(xf, q * d)
            prefetch(xf, q * d + d - 1)
            prefetch(y, q)
            if weighted:
                prefetch(sw, q)
        i = perm[k]
        p = theta[d]
        for j in range(d):
            p += ((np.float64(X[i, j]) - cen[j]) * inv[j]) * theta[j]
        r = np.float64(y[i]) - p
        if not math.isfinite(r):
            return -(k + 1)
        if not _SQUARED:
            r = _PSI(r, eps)
        wr = sw[i] * r if weighted else r
        t += 1
        eta = eta0 / t ** power_t if invscaling else eta0
        c = 2.0 * eta * wscale / 1 if mean else 2.0 * eta
        if penalized:
            for j in range(d):
                v = theta[j] + c * (wr * ((np.float64(X[i, j]) - cen[j]) * inv[j]))
                v -= eta * lam2[j] * theta[j]
                theta[j] = _soft_threshold(v, eta * lam1[j])
        else:
            for j in range(d):
                theta[j] += c * (wr * ((np.float64(X[i, j]) - cen[j]) * inv[j]))
        if fit_b:
            theta[d] += c * wr
        if t > avg_start:
            a = 1.0 / (t - avg_start)
            for j in range(d + 1):
                avg[j] += a * (theta[j] - avg[j])
    return m


def _rows_plain(X, y, sw, perm, params, theta, avg, t, avg_start):
    """:func:`_rows_epoch` at the identity scaling without penalty, Huber or schedule:
    plain SGD on the raw data, the same arithmetic without the scaling's no-ops (10^7
    rows, d = 10: 475 ms a permuted epoch through the scaled loop, about 420 ms here)."""
    d = X.shape[1]
    m = perm.shape[0]
    mean = params[P_MEAN] != 0.0
    fit_b = params[P_FIT_B] != 0.0
    weighted = sw.shape[0] > 0
    c = 2.0 * params[P_ETA0] * params[P_WSCALE] / 1 if mean else 2.0 * params[P_ETA0]
    xf = X.reshape(X.shape[0] * d)
    for k in range(m):
        if k + PREFETCH_DISTANCE < m:
            q = perm[k + PREFETCH_DISTANCE]
            prefetch(xf, q * d)
            prefetch(xf, q * d + d - 1)
            prefetch(y, q)
            if weighted:
                prefetch(sw, q)
        i = perm[k]
        p = theta[d]
        for j in range(d):
            p += np.float64(X[i, j]) * theta[j]
        r = np.float64(y[i]) - p
        if not math.isfinite(r):
            return -(k + 1)
        wr = sw[i] * r if weighted else r
        for j in range(d):
            theta[j] += c * (wr * np.float64(X[i, j]))
        if fit_b:
            theta[d] += c * wr
        t += 1
        if t > avg_start:
            a = 1.0 / (t - avg_start)
            for j in range(d + 1):
                avg[j] += a * (theta[j] - avg[j])
    return m


def _rows_plain_epoch(X, y, sw, perm, coords, params, state):
    """:func:`_sgd_scaled_epoch_src` with one row a step and ``d > 1`` columns at the
    identity scaling without penalty, Huber loss or schedule (``coords`` ignored): plain
    SGD on the raw data (:func:`_rows_plain`)."""
    return _ROWS_PLAIN(X, y, sw, perm, params, state[0], state[1], np.int64(params[P_T0]),
                       np.int64(params[P_AVG_START]))


def plain_rows(coords, params, d):
    """Whether one-row steps over ``d > 1`` columns of the squared loss run
    :func:`_rows_plain_epoch`: the identity scaling (centres 0, inverse scales 1), no
    penalty and a constant rate (then ``(x - 0) * 1`` is ``x`` and the scaled loop's
    extra work is no-ops). Python-side, in NumPy."""
    return (is_identity(coords) and not coords[C_LAM1:C_LAM2 + 1, :d].any()
            and params[P_SCHEDULE] == 0.0)


def plain_batches(coords, params, d):
    """Whether batches over ``d > 1`` columns run the raw-rows loop of
    :func:`_epoch_batches` (squared loss): the identity scaling."""
    return is_identity(coords)


def _batches_1d_epoch(X, y, sw, perm, coords, params, state):
    """:func:`_sgd_scaled_epoch_src` with one column and batches of ``bs > 1`` rows: the
    parameters and the batch's gradient in registers (same arithmetic as the generic
    loop, without its loads and stores through memory)."""
    m = perm.shape[0]
    eta0 = params[P_ETA0]
    power_t = params[P_POWER_T]
    t = np.int64(params[P_T0])
    invscaling = params[P_SCHEDULE] != 0.0
    bs = np.int64(params[P_BATCH])
    mean = params[P_MEAN] != 0.0
    wscale = params[P_WSCALE]
    fit_b = params[P_FIT_B] != 0.0
    avg_start = np.int64(params[P_AVG_START])
    eps = params[P_EPSILON]
    weighted = sw.shape[0] > 0
    theta = state[0]
    avg = state[1]
    c0 = coords[C_CENTRE, 0]
    i0 = coords[C_INV_SCALE, 0]
    l1 = coords[C_LAM1, 0]
    l2 = coords[C_LAM2, 0]
    xv = X.reshape(X.shape[0])
    a0 = theta[0]
    a1 = theta[1]
    steps = 0
    for k0 in range(0, m, bs):
        k1 = min(k0 + bs, m)
        g0 = 0.0
        g1 = 0.0
        for k in range(k0, k1):
            if k + PREFETCH_DISTANCE < m:
                q = perm[k + PREFETCH_DISTANCE]
                prefetch(xv, q)
                prefetch(y, q)
                if weighted:
                    prefetch(sw, q)
            i = perm[k]
            x0 = (np.float64(xv[i]) - c0) * i0
            r = np.float64(y[i]) - (a1 + x0 * a0)
            if not math.isfinite(r):
                theta[0] = a0
                theta[1] = a1
                return -(k + 1)
            if not _SQUARED:
                r = _PSI(r, eps)
            wr = sw[i] * r if weighted else r
            g0 += wr * x0
            g1 += wr
        t += 1
        steps += 1
        eta = eta0 / t ** power_t if invscaling else eta0
        c = 2.0 * eta * wscale / (k1 - k0) if mean else 2.0 * eta
        v = a0 + c * g0
        v -= eta * l2 * a0
        a0 = _soft_threshold(v, eta * l1)
        if fit_b:
            a1 += c * g1
        if t > avg_start:
            a = 1.0 / (t - avg_start)
            avg[0] += a * (a0 - avg[0])
            avg[1] += a * (a1 - avg[1])
    theta[0] = a0
    theta[1] = a1
    return steps


def _epoch_1d(X, y, sw, perm, coords, params, state):
    """:func:`_sgd_scaled_epoch_src` with one column and one row a step.

    Everything in registers (a generic loop through memory took 320 ms for 3 epochs of
    10^6 rows, this one about half). The steps before averaging starts and those after
    run as two loops: a per-step "t > avg_start" test cost 60 ms per 10^7 steps even when
    never true.
    """
    m = perm.shape[0]
    t_start = np.int64(params[P_T0])
    avg_start = np.int64(params[P_AVG_START])
    theta = state[0]
    avg = state[1]
    c0, i0 = coords[C_CENTRE, 0], coords[C_INV_SCALE, 0]
    l1, l2 = coords[C_LAM1, 0], coords[C_LAM2, 0]
    v0, v1 = avg[0], avg[1]
    split = min(m, max(0, avg_start - t_start))  # steps taken before averaging
    a0, a1, bad, s0, s1 = _STEPS_1D(X, y, sw, perm, 0, split, params, c0, i0, l1, l2,
                                    theta[0], theta[1], False)
    n_avg = 0
    if bad < 0 and split < m:
        a0, a1, bad, s0, s1 = _STEPS_1D(X, y, sw, perm, split, m, params, c0, i0, l1, l2,
                                        a0, a1, True)
        n_avg = (bad if bad >= 0 else m) - split
    theta[0], theta[1] = a0, a1
    avg[0], avg[1] = _merge_average(v0, v1, t_start, avg_start, s0, s1, n_avg)
    return -(bad + 1) if bad >= 0 else m


def _epoch_batches(X, y, sw, perm, coords, params, state):
    """:func:`_sgd_scaled_epoch_src` with batches of ``bs > 1`` rows and ``d > 1`` columns.

    Compiled twice for the squared loss from this one source: with ``_PLAIN`` False, the
    scaled loop; with ``_PLAIN`` True (the identity scaling, chosen in Python by
    :func:`plain_batches`), the gradient of the raw rows. numba prunes the branch on the
    constant, so each kernel holds one loop (the scaled fit does not compile the raw one:
    0.3 to 0.5 s on a cold start). ``state`` has four rows: the last two are scratch.
    """
    d = X.shape[1]
    m = perm.shape[0]
    eta0 = params[P_ETA0]
    power_t = params[P_POWER_T]
    t = np.int64(params[P_T0])
    invscaling = params[P_SCHEDULE] != 0.0
    bs = np.int64(params[P_BATCH])
    mean = params[P_MEAN] != 0.0
    wscale = params[P_WSCALE]
    fit_b = params[P_FIT_B] != 0.0
    avg_start = np.int64(params[P_AVG_START])
    eps = params[P_EPSILON]
    weighted = sw.shape[0] > 0
    theta = state[0]
    avg = state[1]
    cen = coords[C_CENTRE]
    inv = coords[C_INV_SCALE]
    lam1 = coords[C_LAM1]
    lam2 = coords[C_LAM2]
    xf = X.reshape(X.shape[0] * d)
    g = state[2, :d + 1]  # scratch rows from the caller (a kernel that allocates nothing
    xs = state[3, :d]     # compiles 0.15 s faster)
    steps = 0
    for k0 in range(0, m, bs):
        k1 = min(k0 + bs, m)
        for j in range(d + 1):
            g[j] = 0.0
        if _PLAIN:
            # the identity scaling: the same sums as below with xs = x (10^7 rows,
            # d = 10, batches of 256: 438 ms an epoch through the scaled loop, 423 ms
            # here, as fast as the raw kernel this family replaced)
            for k in range(k0, k1):
                if k + PREFETCH_DISTANCE < m:
                    q = perm[k + PREFETCH_DISTANCE]
                    prefetch(xf, q * d)
                    prefetch(xf, q * d + d - 1)
                    prefetch(y, q)
                    if weighted:
                        prefetch(sw, q)
                i = perm[k]
                p = theta[d]
                for j in range(d):
                    p += np.float64(X[i, j]) * theta[j]
                r = np.float64(y[i]) - p
                if not math.isfinite(r):
                    return -(k + 1)
                wr = sw[i] * r if weighted else r
                for j in range(d):
                    g[j] += wr * np.float64(X[i, j])
                g[d] += wr
        else:
            for k in range(k0, k1):
                if k + PREFETCH_DISTANCE < m:
                    q = perm[k + PREFETCH_DISTANCE]
                    prefetch(xf, q * d)
                    prefetch(xf, q * d + d - 1)
                    prefetch(y, q)
                    if weighted:
                        prefetch(sw, q)
                i = perm[k]
                p = theta[d]
                for j in range(d):
                    xs[j] = (np.float64(X[i, j]) - cen[j]) * inv[j]
                    p += xs[j] * theta[j]
                r = np.float64(y[i]) - p
                if not math.isfinite(r):
                    return -(k + 1)
                if not _SQUARED:
                    r = _PSI(r, eps)
                wr = sw[i] * r if weighted else r
                for j in range(d):
                    g[j] += wr * xs[j]
                g[d] += wr
        t += 1
        steps += 1
        eta = eta0 / t ** power_t if invscaling else eta0
        c = 2.0 * eta * wscale / (k1 - k0) if mean else 2.0 * eta
        for j in range(d):
            v = theta[j] + c * g[j]
            v -= eta * lam2[j] * theta[j]
            theta[j] = _soft_threshold(v, eta * lam1[j])
        if fit_b:
            theta[d] += c * g[d]
        if t > avg_start:
            a = 1.0 / (t - avg_start)
            for j in range(d + 1):
                avg[j] += a * (theta[j] - avg[j])
    return steps


_EPOCH_1D = _ROWS = _ROWS_PLAIN_EPOCH = _BATCHES_1D = _BATCHES = _BATCHES_PLAIN = None


def _sgd_scaled_epoch_src(X, y, sw, perm, coords, params, state):
    """One epoch of (mini-)batch SGD in scaled coordinates over ``perm``.

    Parameters
    ----------
    X, y, sw : the data (see the module docstring).
    perm : int64 ``(m,)``, the rows to visit in order (``m <= n``).
    coords : float64 ``(N_COORDS, d + 1)``, by the names ``C_*`` of
        :mod:`fastgd._layout`: the centres ``m``, the inverse scales ``1 / s``
        and ``lam1``, ``lam2`` (per-coordinate L1 and L2 penalty weights in scaled
        coordinates). A scaled feature is ``(x_j - m_j) / s_j``.
    params : float64 ``(N_PARAMS,)``, by the names ``P_*`` of
        :mod:`fastgd._layout`: ``eta0, power_t, t0, schedule (0 constant, 1
        invscaling), batch_size, mean (1) / sum (0), weight_scale, fit_intercept,
        avg_start, epsilon`` (the loss's parameter). Step
        ``t`` (1-based, counted over the whole fit: this epoch's first step is ``t0 + 1``)
        uses ``eta0`` or ``eta0 / t ** power_t``.
    state : float64 ``(2, d + 1)`` or ``(4, d + 1)``, read and written: row 0 the
        parameters ``theta`` (weights, then intercept), row 1 their running average over
        the steps after ``avg_start`` (unchanged while ``t <= avg_start``); the batch
        kernels over several columns use rows 2 and 3 as scratch (four rows required).

    Each batch ``B`` takes ``theta += eta * c * sum_B w_i psi(r_i) z_i`` with ``z = [x_s,
    1]``, ``c = 2 weight_scale / |B|`` (mean) or ``2`` (sum), ``psi`` the loss's half
    derivative (``r`` for the squared loss, ``clip(r, -epsilon, epsilon)`` for Huber),
    then the L2 decay ``theta_j -= eta lam2_j theta_j`` and the L1 proximal step
    ``theta_j = soft(theta_j, eta lam1_j)``.

    Returns the number of steps taken, or ``-(k + 1)`` when the residual of ``perm[k]``
    was not finite (the epoch stops there).

    The four paths (one column and one row a step; one row, several columns; batches of
    one column; batches of several columns) are kernels of their own; this dispatcher,
    which compiles all four, is the reference the tests use, and fit picks the one path
    it needs with :meth:`SGDKernels.choose`.
    """
    d = X.shape[1]
    bs = np.int64(params[P_BATCH])
    if d == 1 and bs == 1:
        return _EPOCH_1D(X, y, sw, perm, coords, params, state)
    if bs == 1:
        plain = _SQUARED and params[P_SCHEDULE] == 0.0
        for j in range(d):
            if (coords[C_CENTRE, j] != 0.0 or coords[C_INV_SCALE, j] != 1.0
                    or coords[C_LAM1, j] != 0.0 or coords[C_LAM2, j] != 0.0):
                plain = False
        if plain:
            return _ROWS_PLAIN_EPOCH(X, y, sw, perm, coords, params, state)
        return _ROWS(X, y, sw, perm, coords, params, state)
    if d == 1:
        return _BATCHES_1D(X, y, sw, perm, coords, params, state)
    identity = _SQUARED
    for j in range(d):
        if coords[C_CENTRE, j] != 0.0 or coords[C_INV_SCALE, j] != 1.0:
            identity = False
    work = np.zeros((4, d + 1))
    work[:2] = state[:2]
    if identity:
        steps = _BATCHES_PLAIN(X, y, sw, perm, coords, params, work)
    else:
        steps = _BATCHES(X, y, sw, perm, coords, params, work)
    state[:2] = work[:2]
    return steps


class SGDKernels:
    """The epoch kernels of one loss (see :func:`sgd_kernels`): ``epoch_1d`` (one column,
    one row a step), ``rows`` and ``rows_plain`` (several columns, one row), ``batches_1d``,
    ``batches`` and ``batches_plain`` (batches), and ``any``, the dispatcher of the four
    shapes that the tests use as the reference. Each is compiled on its first call."""

    def __init__(self, loss):
        suffix = f"_{loss.name}_{loss.key()}"
        squared = bool(loss.sufficient_statistics)
        consts = dict(_PSI=jit(loss.psi, fastmath=False), _SQUARED=squared)
        steps = jit(specialize(_steps_1d, suffix, **consts), fastmath=False)
        self.epoch_1d = jit(specialize(_epoch_1d, suffix, _STEPS_1D=steps), fastmath=False)
        self.rows = jit(specialize(_rows_epoch, suffix, **consts), fastmath=False)
        self.batches_1d = jit(specialize(_batches_1d_epoch, suffix, **consts), fastmath=False)
        self.batches = jit(specialize(_epoch_batches, suffix + "_scaled", _PLAIN=False,
                                      **consts), fastmath=False)
        # plain SGD on the raw data exists for the squared loss only (the plan runs every
        # other loss in scaled coordinates)
        self.rows_plain = _PLAIN_ROWS if squared else None
        self.batches_plain = (jit(specialize(_epoch_batches, suffix + "_plain", _PLAIN=True,
                                             **consts), fastmath=False) if squared else None)
        self.any = jit(specialize(
            _sgd_scaled_epoch_src, suffix, _EPOCH_1D=self.epoch_1d, _ROWS=self.rows,
            _ROWS_PLAIN_EPOCH=self.rows_plain or self.rows, _BATCHES_1D=self.batches_1d,
            _BATCHES=self.batches, _BATCHES_PLAIN=self.batches_plain or self.batches,
            _SQUARED=squared), fastmath=False)

    def choose(self, d, batch_size, coords=None, params=None):
        """The kernel of ``d`` columns and ``batch_size`` rows a step, given the epoch's
        ``coords`` and ``params`` (plain SGD on the raw data has kernels of its own)."""
        if d == 1:
            return self.epoch_1d if batch_size == 1 else self.batches_1d
        if batch_size == 1:
            plain = (self.rows_plain is not None and coords is not None
                     and plain_rows(coords, params, d))
            return self.rows_plain if plain else self.rows
        plain = (self.batches_plain is not None and coords is not None
                 and plain_batches(coords, params, d))
        return self.batches_plain if plain else self.batches


_PLAIN_ROWS = jit(specialize(_rows_plain_epoch, "_raw",
                             _ROWS_PLAIN=jit(_rows_plain, fastmath=False)), fastmath=False)
#: the :class:`SGDKernels` of a loss (a :class:`fastgd.losses.Loss`), made once per loss;
#: each kernel compiles on its first call
sgd_kernels = per_loss(SGDKernels)
