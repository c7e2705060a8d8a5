"""Numba kernels of the extended stochastic modes: pure array functions, nothing else.

Same conventions as :mod:`fastgd._kernels` (``X`` C-contiguous ``(n, d)`` float32/float64,
``sw`` float64 ``(n,)`` or ``(0,)`` for unit weights, float64 accumulation). These kernels
add what the plain SGD epoch of :mod:`fastgd._kernels` does not do: steps in standardized
coordinates computed on the fly (no copy of X), a per-step learning-rate schedule,
iterate averaging after every step, a per-step L2 decay and L1 proximal step, and the
Huber loss.

The SGD epoch is compiled serial only: every step depends on the previous one (the
parallel stochastic mode of :mod:`fastgd._kernels` is a different algorithm, parameter
mixing), and strict (``fastmath=False``) like the plain SGD kernel, so the non-finite
residual test survives. The Huber loss/gradient pass is chunked like the squared-loss
pass and compiled twice (serial and parallel, bit-identical).
"""
import math

import numpy as np
from numba import prange

from ._config import jit
from ._intrinsics import PREFETCH_DISTANCE, prefetch

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


def _subset_loss_src(X, y, sw, idx, coef, params, out):
    """``out[0] = sum w loss(r)``, ``out[1] = sum w`` over the rows ``idx`` (raw ``coef``).

    ``params = [huber (1) / squared (0), epsilon]``; the Huber loss is ``r^2`` for
    ``|r| <= epsilon`` and ``2 epsilon |r| - epsilon^2`` beyond (it equals the squared
    loss in the middle and has the gradient ``-2 clip(r) x``).
    """
    d = X.shape[1]
    huber = params[0] != 0.0
    eps = params[1]
    weighted = sw.shape[0] > 0
    s = 0.0
    wsum = 0.0
    for k in range(idx.shape[0]):
        i = idx[k]
        p = coef[d]
        for j in range(d):
            p += np.float64(X[i, j]) * coef[j]
        r = np.float64(y[i]) - p
        a = abs(r)
        v = 2.0 * eps * a - eps * eps if (huber and a > eps) else r * r
        w = sw[i] if weighted else 1.0
        s += w * v
        wsum += w
    out[0] = s
    out[1] = wsum


_sgd_scaled_epoch_serial = jit(_sgd_scaled_epoch_src, parallel=False, fastmath=False)
_subset_loss_serial = jit(_subset_loss_src, parallel=False)


# ---------------------------------------------------------------------------------------
# Huber loss and gradient: one fused streaming pass, serial and parallel
# ---------------------------------------------------------------------------------------

def _huber_grad_chunk(X, y, sw, coef, eps, start, stop, row):
    """Accumulate ``[sum w h(r), sum w psi(r), sum w psi(r) x_j ...]`` over rows
    ``start:stop`` into ``row`` (``h(r) = r^2`` for ``|r| <= eps``, ``2 eps |r| - eps^2``
    beyond; ``psi(r) = clip(r, -eps, eps)``, so the gradient is ``-2 sum w psi z``)."""
    d = X.shape[1]
    weighted = sw.shape[0] > 0
    for j in range(d + 2):
        row[j] = 0.0
    for i in range(start, stop):
        p = coef[d]
        for j in range(d):
            p += np.float64(X[i, j]) * coef[j]
        r = np.float64(y[i]) - p
        a = abs(r)
        if a <= eps:
            h = r * r
            psi = r
        else:
            h = 2.0 * eps * a - eps * eps
            psi = eps if r > 0 else -eps
        w = sw[i] if weighted else 1.0
        row[0] += w * h
        row[1] += w * psi
        for j in range(d):
            row[2 + j] += w * psi * np.float64(X[i, j])


_huber_grad_chunk_jit = jit(_huber_grad_chunk)


def _huber_grad_src(X, y, sw, coef, params, out):
    """Huber loss/gradient sums at ``coef`` (float64 ``(d + 1,)``), one row of ``out``
    (float64 ``(n_chunks, d + 2)``) per fixed chunk of ``ceil(n / n_chunks)`` rows, in
    the layout of :func:`fastgd._kernels._sse_grad_src`; ``params = [epsilon]``. The
    driver sums the rows in order: serial and parallel are bit-identical."""
    n = X.shape[0]
    k = out.shape[0]
    size = (n + k - 1) // k
    for c in prange(k):
        _huber_grad_chunk_jit(X, y, sw, coef, params[0], c * size, min(n, (c + 1) * size), out[c])


_huber_grad_serial = jit(_huber_grad_src, parallel=False)
_huber_grad_parallel = jit(_huber_grad_src, parallel=True)
HUBER_GRAD = (_huber_grad_serial, _huber_grad_parallel)
