"""Stochastic epochs: plain (mini-)batch SGD on the raw data (serial, or parameter mixing
over fixed parts) and SGD in standardized coordinates (schedules, averaging, penalties,
Huber), both strict IEEE (``fastmath=False``) so the non-finite residual test survives."""
import math

import numpy as np
from numba import prange

from .._config import jit
from .._intrinsics import PREFETCH_DISTANCE, prefetch


@jit(fastmath=False)
def _sgd_part(X, y, sw, perm, start, stop, params, coef, grad):
    """Run the (mini-)batch SGD updates over ``perm[start:stop]`` in place on ``coef``.

    ``params = [learning_rate, batch_size, reduction, weight_scale, fit_intercept]``:
    reduction 0 is the mean loss, 1 the sum; ``weight_scale = n / sum(w)`` (1 when
    unweighted); the intercept ``coef[d]`` is updated only when ``fit_intercept`` is 1. Batches are
    consecutive runs of ``batch_size`` entries of ``perm`` (the last one may be shorter);
    each takes one simultaneous step ``coef -= lr * g`` with the unbiased estimate of the
    full gradient: mean, ``g = -(2 n / (W |B|)) sum_B w r z``; sum, the gradient of the
    batch's SSE ``g = -2 sum_B w r z`` (``z = [x, 1]``). ``grad`` is a float64 ``(d + 1,)``
    work array. Returns ``-1``, or the position in ``perm`` of the first row whose
    residual was not finite (the update stops there).
    """
    d = X.shape[1]
    lr = params[0]
    bs = np.int64(params[1])
    mean = params[2] == 0.0
    wscale = params[3]
    fit_b = params[4] != 0.0
    weighted = sw.shape[0] > 0
    xf = X.reshape(X.shape[0] * d)
    ahead = PREFETCH_DISTANCE
    if bs == 1 and d == 1:
        # one feature: the parameters live in registers. Through memory, every step's
        # dependency chain included a store and a reload (10^7 random rows: 375 ms;
        # in registers: about 220 ms, the cost of the random row access itself).
        base = 2.0 * lr * wscale if mean else 2.0 * lr
        xs = X.reshape(X.shape[0])
        c0 = coef[0]
        c1 = coef[1]
        bad = -1
        for k in range(start, stop):
            if k + ahead < stop:  # (inline: a helper taking the arrays cost refcounts)
                q = perm[k + ahead]
                prefetch(xs, q)
                prefetch(y, q)
                if weighted:
                    prefetch(sw, q)
            i = perm[k]
            xi = np.float64(xs[i])
            r = np.float64(y[i]) - (c0 * xi + c1)
            if not math.isfinite(r):
                bad = k
                break
            step = base * sw[i] * r if weighted else base * r
            c0 += step * xi
            if fit_b:
                c1 += step
        coef[0] = c0
        coef[1] = c1
        return bad
    if d == 1:
        # mini-batches of one feature, parameters in registers likewise
        xs = X.reshape(X.shape[0])
        c0 = coef[0]
        c1 = coef[1]
        bad = -1
        for k0 in range(start, stop, bs):
            k1 = min(k0 + bs, stop)
            g0 = 0.0
            g1 = 0.0
            for k in range(k0, k1):
                if k + ahead < stop:
                    q = perm[k + ahead]
                    prefetch(xs, q)
                    prefetch(y, q)
                    if weighted:
                        prefetch(sw, q)
                i = perm[k]
                xi = np.float64(xs[i])
                r = np.float64(y[i]) - (c0 * xi + c1)
                if not math.isfinite(r):
                    bad = k
                    break
                wr = sw[i] * r if weighted else r
                g0 += wr * xi
                g1 += wr
            if bad >= 0:
                break
            step = 2.0 * lr * wscale / (k1 - k0) if mean else 2.0 * lr
            c0 += step * g0
            if fit_b:
                c1 += step * g1
        coef[0] = c0
        coef[1] = c1
        return bad
    if bs == 1:
        base = 2.0 * lr * wscale if mean else 2.0 * lr
        for k in range(start, stop):
            if k + ahead < stop:
                q = perm[k + ahead]
                prefetch(xf, q * d)
                prefetch(xf, q * d + d - 1)
                prefetch(y, q)
                if weighted:
                    prefetch(sw, q)
            i = perm[k]
            p = coef[d]
            for j in range(d):
                p += np.float64(X[i, j]) * coef[j]
            r = np.float64(y[i]) - p
            if not math.isfinite(r):
                return k
            step = base * sw[i] * r if weighted else base * r
            for j in range(d):
                coef[j] += step * np.float64(X[i, j])
            if fit_b:
                coef[d] += step
        return -1
    for k0 in range(start, stop, bs):
        k1 = min(k0 + bs, stop)
        for j in range(d + 1):
            grad[j] = 0.0
        for k in range(k0, k1):
            if k + ahead < stop:
                q = perm[k + ahead]
                prefetch(xf, q * d)
                prefetch(xf, q * d + d - 1)
                prefetch(y, q)
                if weighted:
                    prefetch(sw, q)
            i = perm[k]
            p = coef[d]
            for j in range(d):
                p += np.float64(X[i, j]) * coef[j]
            r = np.float64(y[i]) - p
            if not math.isfinite(r):
                return k
            wr = sw[i] * r if weighted else r
            for j in range(d):
                grad[j] += wr * np.float64(X[i, j])
            grad[d] += wr
        step = 2.0 * lr * wscale / (k1 - k0) if mean else 2.0 * lr
        for j in range(d):
            coef[j] += step * grad[j]
        if fit_b:
            coef[d] += step * grad[d]
    return -1


def _sgd_epoch_src(X, y, sw, perm, params, coef0, out):
    """One epoch of (mini-)batch SGD over ``perm``, split into ``out.shape[0]`` parts.

    Each part runs its own SGD pass over its contiguous slice of ``perm`` starting from
    ``coef0``; ``out`` (float64 ``(n_parts, d + 2)``) receives each part's final
    parameters in ``out[p, :d + 1]`` and in ``out[p, d + 1]`` the position in ``perm``
    where a non-finite residual stopped it (``-1`` if none). With one part this is plain
    serial SGD; with several parts the driver averages the rows (parameter mixing).
    """
    n_parts = out.shape[0]
    m = perm.shape[0]
    d = X.shape[1]
    size = (m + n_parts - 1) // n_parts
    for p in prange(n_parts):
        row = out[p]
        for j in range(d + 1):
            row[j] = coef0[j]
        grad = np.zeros(d + 1)
        bad = _sgd_part(X, y, sw, perm, p * size, min(m, (p + 1) * size), params, row[: d + 1], grad)
        row[d + 1] = bad


_sgd_epoch_serial = jit(_sgd_epoch_src, parallel=False)


_sgd_epoch_parallel = jit(_sgd_epoch_src, parallel=True)


#: layout of ``params`` of :func:`_sgd_scaled_epoch_serial`
P_ETA0, P_POWER_T, P_T0, P_SCHEDULE, P_BATCH, P_MEAN, P_WSCALE, P_FIT_B, P_AVG_START, \
    P_HUBER, P_EPSILON = range(11)


N_PARAMS = 11


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


@jit(fastmath=False)
def _steps_1d(X, y, sw, perm, k_lo, k_hi, params, c0, i0, l1, l2, a0, a1, averaging):
    """SGD steps ``k_lo .. k_hi - 1`` of one feature and one row per step, in registers.

    The update of :func:`_sgd_scaled_epoch_src` (``params`` as there; this run's first
    step is number ``params[t0] + k_lo + 1``). With ``averaging`` the iterates after each
    step are summed. Returns ``(a0, a1, bad, s0, s1)``: the parameters, the position of
    the first non-finite residual (``-1`` if none; the parameters are those before it)
    and the sums of the iterates.
    """
    eta0 = params[0]
    power_t = params[1]
    t = np.int64(params[2]) + k_lo
    invscaling = params[3] != 0.0
    mean = params[5] != 0.0
    base = 2.0 * params[6] if mean else 2.0
    fit_b = params[7] != 0.0
    huber = params[9] != 0.0
    eps = params[10]
    weighted = sw.shape[0] > 0
    decay = l2 > 0.0
    xv = X.reshape(X.shape[0])
    s0 = 0.0
    s1 = 0.0
    if not (huber or weighted or decay or l1 > 0.0 or invscaling):
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
        if huber:
            r = min(max(r, -eps), eps)
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


def _sgd_scaled_epoch_src(X, y, sw, perm, coords, params, state):
    """One epoch of (mini-)batch SGD in scaled coordinates over ``perm``.

    Parameters
    ----------
    X, y, sw : the data (see the module docstring).
    perm : int64 ``(m,)``, the rows to visit in order (``m <= n``).
    coords : float64 ``(4, d + 1)``: rows ``m`` (centres, ``m[d]`` unused), ``1 / s``
        (inverse scales), ``lam1`` and ``lam2`` (per-coordinate L1 and L2 penalty
        weights in scaled coordinates; zero for the intercept). A scaled feature is
        ``(x_j - m_j) / s_j``.
    params : float64 ``(11,)``: ``eta0, power_t, t0, schedule (0 constant, 1
        invscaling), batch_size, mean (1) / sum (0), weight_scale, fit_intercept,
        avg_start, huber (1) / squared (0), epsilon``. Step ``t`` (1-based, counted
        over the whole fit: this epoch's first step is ``t0 + 1``) uses ``eta0`` or
        ``eta0 / t ** power_t``.
    state : float64 ``(2, d + 1)``, read and written: row 0 the parameters ``theta``
        (weights, then intercept), row 1 their running average over the steps after
        ``avg_start`` (unchanged while ``t <= avg_start``).

    Each batch ``B`` takes ``theta += eta * c * sum_B w_i psi(r_i) z_i`` with ``z = [x_s,
    1]``, ``c = 2 weight_scale / |B|`` (mean) or ``2`` (sum), ``psi(r) = r`` (squared) or
    ``clip(r, -epsilon, epsilon)`` (Huber), then the L2 decay ``theta_j -= eta lam2_j
    theta_j`` and the L1 proximal step ``theta_j = soft(theta_j, eta lam1_j)``.

    Returns the number of steps taken, or ``-(k + 1)`` when the residual of ``perm[k]``
    was not finite (the epoch stops there).
    """
    d = X.shape[1]
    m = perm.shape[0]
    eta0 = params[0]
    power_t = params[1]
    t = np.int64(params[2])
    invscaling = params[3] != 0.0
    bs = np.int64(params[4])
    mean = params[5] != 0.0
    wscale = params[6]
    fit_b = params[7] != 0.0
    avg_start = np.int64(params[8])
    huber = params[9] != 0.0
    eps = params[10]
    weighted = sw.shape[0] > 0
    theta = state[0]
    avg = state[1]
    cen = coords[0]
    inv = coords[1]
    lam1 = coords[2]
    lam2 = coords[3]
    if d == 1 and bs == 1:
        # one feature, one row per step: everything in registers (a generic loop through
        # memory took 320 ms for 3 epochs of 10^6 rows, this one about half). The steps
        # before averaging starts and those after run as two loops: a per-step
        # "t > avg_start" test cost 60 ms per 10^7 steps even when never true.
        c0, i0 = cen[0], inv[0]
        v0, v1 = avg[0], avg[1]
        t_start = t
        split = min(m, max(0, avg_start - t_start))  # steps taken before averaging
        a0, a1, bad, s0, s1 = _steps_1d(X, y, sw, perm, 0, split, params, c0, i0, lam1[0],
                                        lam2[0], theta[0], theta[1], False)
        n_avg = 0
        if bad < 0 and split < m:
            a0, a1, bad, s0, s1 = _steps_1d(X, y, sw, perm, split, m, params, c0, i0, lam1[0],
                                            lam2[0], a0, a1, True)
            n_avg = (bad if bad >= 0 else m) - split
        theta[0], theta[1] = a0, a1
        avg[0], avg[1] = _merge_average(v0, v1, t_start, avg_start, s0, s1, n_avg)
        return -(bad + 1) if bad >= 0 else m
    g = np.zeros(d + 1)
    xs = np.empty(d)
    xf = X.reshape(X.shape[0] * d)
    steps = 0
    for k0 in range(0, m, bs):
        k1 = min(k0 + bs, m)
        for j in range(d + 1):
            g[j] = 0.0
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
            if huber:
                r = min(max(r, -eps), eps)
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


_sgd_scaled_epoch_serial = jit(_sgd_scaled_epoch_src, parallel=False, fastmath=False)


def _sgd_scaled_mix_src(X, y, sw, perm, coords, params, states, steps):
    """Parameter mixing of :func:`_sgd_scaled_epoch_src`: ``states.shape[0]`` parts.

    ``perm`` is cut into ``P = states.shape[0]`` contiguous parts of ``ceil(m / P)``
    entries; part ``p`` runs the scaled SGD epoch over its slice on ``states[p]`` (float64
    ``(P, 2, d + 1)``, each a copy of the same start: parameters and running average),
    with the same ``params`` (all parts start at step ``params[t0]``). ``steps`` (int64
    ``(P,)``) receives each part's return value (steps taken, or ``-(k + 1)`` for a
    non-finite residual at position ``k`` of its slice). The driver averages the parts in
    order; the result does not depend on the thread count.
    """
    parts = states.shape[0]
    m = perm.shape[0]
    size = (m + parts - 1) // parts
    for p in prange(parts):
        steps[p] = _sgd_scaled_epoch_serial(X, y, sw, perm[p * size:min(m, (p + 1) * size)],
                                            coords, params, states[p])


_sgd_scaled_mix_parallel = jit(_sgd_scaled_mix_src, parallel=True, fastmath=False)
