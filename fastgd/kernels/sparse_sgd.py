"""Stochastic epochs over CSR rows: a step costs O(stored entries of its rows), not O(d).

The update is that of the dense kernels (:func:`fastgd.kernels.sgd._sgd_scaled_epoch_src`:
scaled coordinates, schedules, averaging, penalties, any registered loss), in lazy forms
that touch only the columns a row stores. During one call the scaled parameters are

    theta_j = s (v_j + B u_j)        (j < d),   u_j = -centre_j inv_scale_j,

and the intercept ``theta_d`` is kept as it is:

* **implicit centring**: a scaled feature ``(x_j - m_j) / s_j`` is ``x_j inv_j + u_j``,
  nonzero in every column of a centred fit; its part along the fixed vector ``u`` goes
  into the scalar ``B``, and the prediction's ``sum_j u_j theta_j`` is ``s (Su + B uu)``
  with ``Su = sum_j u_j v_j`` kept up to date as ``v`` changes (O(1) per change);
* **lazy L2 decay**: ``theta_j -= eta lam2 theta_j`` for every column is the scalar
  ``s *= 1 - eta lam2``; a row's gradient enters ``v`` divided by the new ``s``. When
  ``s`` falls below :data:`RESCALE_BELOW` (or a decay factor is not positive), ``v`` is
  rewritten as ``theta`` (O(d), rare);
* **L1 by a cumulative penalty** (the bookkeeping of Tsuruoka, Tsujii and Ananiadou,
  2009): the proximal steps ``soft(theta_j, eta lam1)`` a column misses while no row
  stores it are, in units of ``v``, one step ``soft(v_j, U - U_j)`` with ``U`` the sum
  of ``eta lam1 / s`` over the steps taken and ``U_j`` its value when the column was
  last brought up to date (successive soft thresholds of one sign add up). This is the
  dense proximal step exactly, not Tsuruoka's variant that remembers penalty not
  applied: the fit equals the dense one;
* **lazy averaging** (the bookkeeping of Xu, 2011, and Bottou's averaged SGD): the sum
  of the iterates over the averaged steps is ``v_j Ss - A_j + u_j SB`` (plus the
  intercept's own sum), with ``Ss`` the sum of ``s`` over those steps, ``SB`` the sum of
  ``s B``, and ``A_j`` gathering ``dv * Ss`` at each change ``dv`` of ``v_j``; the
  running average of the earlier steps is merged at the end of the call.

The penalty's weights must be the same for every column (``coords[C_LAM1, :d]`` and
``coords[C_LAM2, :d]`` constant: one scale factor and one cumulative penalty serve all
columns), and the L1 part needs no centring and no averaging (a missed proximal step
moves a centred column, and its average, by amounts that depend on every step): the
caller checks this (:func:`fastgd.solvers.sgd.sparse_refusal`).

At the end of a call (or at a non-finite residual) ``theta`` and its average are written
out in full (O(d)): the state in and out is the dense kernels' ``theta`` and running
average, so parameter mixing, checkpoints and ``partial_fit`` carry it as they carry the
dense state. In exact arithmetic every step equals the dense one; the lazy forms order
the operations differently, so a fit agrees with the dense fit of ``X.toarray()`` to
rounding (about 1e-13 relative after a few epochs), not bit for bit.

One source (:func:`_csr_sgd_src`) compiled per loss and three times over: one row a step
(``_ROWS``: no gradient buffer), batches of rows, and one row a step in raw coordinates
(``_RAW``: ``scale=False`` with no L1 part and no averaging, scikit-learn's SGDRegressor's
update; the scratch is one value a column instead of four).
"""
import math

import numpy as np

from .._config import jit, per_loss, specialize
from .._intrinsics import prefetch
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

#: the per-column scratch of a CSR epoch, interleaved: ``_W`` values a column, at these
#: offsets (see :func:`_csr_sgd_src`). The batch kernel takes six: ``v``, the inverse
#: scale, ``u``, the averaging correction ``A``, the cumulative penalty ``U_j`` and the
#: batch's gradient. The per-row kernel needs no gradient, and its ``U_j`` shares the
#: slot of ``A`` (an L1 part runs without averaging: :func:`~fastgd.solvers.sgd.
#: sparse_refusal`), so a column is four values, 32 bytes, aligned: one cache line a
#: stored entry touches, and a scratch of 2^18 columns is 8 MB instead of 12.6 (six
#: values a column spanned two lines for half the columns). Measured on the 2-core
#: reference machine, one epoch of 10^6 rows x 2^18 columns, 20 entries a row: six values
#: a column 0.28-0.29 s, four 0.25-0.28 s in random row order; 0.185 / 0.166 s in stored
#: row order.
_V, _INV, _U, _ACC = range(4)
ROW_LAYOUT = dict(_W=4, _LAST=3, _GRAD=3)
BATCH_LAYOUT = dict(_W=6, _LAST=4, _GRAD=5)
#: the raw kernel's (see :class:`CSRSGDKernels`): ``v`` alone, 8 bytes a column, so that
#: the scratch of 2^18 columns (2 MB) stays in a core's L2 where four values a column
#: (8 MB) do not. The same epoch of 10^6 hashed rows, one process, fastest of five rounds
#: in the epoch's tiled order: 0.161 s with the four values, 0.104 s with ``v`` alone (a
#: compiled read of the same arrays 0.068 s); in stored order 0.141 and 0.076 s (read
#: 0.058 s)
RAW_LAYOUT = dict(_W=1, _LAST=0, _GRAD=0)
#: rebound in each copy (see :class:`CSRSGDKernels`)
_W, _LAST, _GRAD = 6, 4, 5
#: True in the raw copy: unit scales, no centring, no L1 part and no averaging in the call
_RAW = False
#: rows of the ``state`` a CSR epoch takes: the parameters, their running average, and
#: the scratch (up to ``_W`` values a column, plus 64 bytes to align it)
STATE_ROWS = 2 + 6 + 1
#: the scratch starts at a multiple of this many bytes (a cache line)
ALIGN = 64
#: ``v`` is rewritten as ``theta`` when the scale factor falls below this (a penalty of
#: ``eta lam2 = 0.01`` a step gets there after 23,000 steps: one O(d) rewrite each time)
RESCALE_BELOW = 1e-100
#: the row this many steps ahead has its pointer, target and weight prefetched, and
#: the row half as far ahead every cache line of its stored entries (not only the first:
#: a hashed row of 20 entries spans 3 lines of values and 2 of int32 indices). Measured
#: on the 2-core reference machine, one epoch of 10^6 rows x 2^18 columns, 20 entries a
#: row, six rounds each in one process: 0.403-0.444 s (median 0.422) with the first line
#: of a row 16 steps ahead, 0.369-0.396 (0.384) with every line 32/16 steps ahead,
#: 0.366-0.422 (0.393) with every line 16/8 ahead. Prefetching the scratch lines of the
#: columns of a row 2 to 12 steps ahead was slower (0.36-0.54 s), and so was a scratch
#: of 8 values a column (whole cache lines): the rest of the epoch's time is the random
#: access to the scratch of 2^18 columns (12.6 MB, beyond L2), which the same epoch in
#: stored row order still pays (0.24 s, against 0.085 s at 2^10 columns).
CSR_PREFETCH_ROWS = 32
#: the scratch lines of the columns of the row this many steps ahead are prefetched. In
#: rows visited at random (the order of small blocks) it did not pay (above), but in tiles
#: of neighbouring rows (:func:`fastgd.sources.passes.tile_rows`, large CSR blocks) the
#: upcoming row's indices are in cache already: the same epoch, six alternated rounds in
#: one process, 0.231-0.244 s without, 0.205-0.216 s 4 steps ahead (1, 2 and 8 steps:
#: 0.21, 0.20, 0.21 s); in stored row order 0.19 s without, 0.17 s with.
STATE_AHEAD = 4

#: rebound in each loss's copy (see :class:`CSRSGDKernels`)
_PSI = None
_SQUARED = True
_ROWS = True


def raw_state_rows(d):
    """Rows of the ``state`` the raw kernel takes at ``d`` columns: the parameters, their
    running average and one value a column from a 64-byte boundary (4 rows from d = 6;
    the scratch rows of the others are not touched by it, so it runs with
    :data:`STATE_ROWS` too)."""
    return 2 + -(-(d + ALIGN // 8) // (d + 1))


@jit(fastmath=False, inline=True)
def _soft(v, tau):
    """``sign(v) max(|v| - tau, 0)`` for ``tau > 0``; ``v`` as is when ``tau <= 0``."""
    if tau > 0.0:
        if v > tau:
            return v - tau
        if v < -tau:
            return v + tau
        return 0.0
    return v


def _csr_sgd_src(X, y, sw, perm, coords, params, state):
    """One epoch of (mini-)batch SGD in scaled coordinates over the CSR rows ``perm``.

    Parameters
    ----------
    X : tuple ``(indptr, indices, values)``, the CSR arrays (see :mod:`.sparse`).
    y, sw : float64 ``(n,)``; the weights, or ``(0,)`` for unit weights.
    perm : int64 ``(m,)``, the rows to visit in order.
    coords, params : as for :func:`fastgd.kernels.sgd._sgd_scaled_epoch_src`, with the
        penalty's weights the same for every column (see the module docstring).
    state : float64 ``(STATE_ROWS, d + 1)``, C-contiguous, read and written: row 0
        ``theta``, row 1 its running average (as for the dense kernels); the other rows
        are scratch (any values in, garbage out): per column, interleaved (``_W``
        values a column, the layout above, from the first 64-byte boundary past the
        first two rows), so that a stored entry touches one cache line (three separate
        rows made an epoch of 10^6 hashed rows 1.6x slower).

    Returns the number of steps taken, or ``-(k + 1)`` when the residual of ``perm[k]``
    was not finite (``state`` then holds the parameters and average before its step).
    """
    indptr, indices, values = X
    d = coords.shape[1] - 1
    m = perm.shape[0]
    eta0 = params[P_ETA0]
    power_t = params[P_POWER_T]
    t = np.int64(params[P_T0])
    t_start = t
    invscaling = params[P_SCHEDULE] != 0.0
    bs = np.int64(1) if _ROWS else np.int64(params[P_BATCH])
    mean = params[P_MEAN] != 0.0
    wscale = params[P_WSCALE]
    fit_b = params[P_FIT_B] != 0.0
    avg_start = np.int64(params[P_AVG_START])
    eps = params[P_EPSILON]
    weighted = sw.shape[0] > 0
    lam1 = coords[C_LAM1, 0]
    lam2 = coords[C_LAM2, 0]
    l1 = lam1 > 0.0 and not _RAW
    theta = state[0]
    avg = state[1]
    if _LAST == _ACC and l1 and avg_start < t_start + m:
        raise ValueError("the per-row CSR kernel runs an L1 penalty without averaging")
    if _RAW and (lam1 > 0.0 or avg_start < t_start + m):
        raise ValueError("the raw CSR kernel runs neither an L1 part nor averaging")
    flat = state.reshape(state.shape[0] * (d + 1))
    start = 2 * (d + 1)
    start += ((-(state.ctypes.data + 8 * start)) % ALIGN) // 8
    if start + _W * d > flat.shape[0]:
        raise ValueError("the state has too few rows for this kernel's scratch")
    wk = flat[start:start + _W * d]
    su = 0.0
    uu = 0.0
    for j in range(d):
        q = _W * j
        wk[q + _V] = theta[j]
        if not _RAW:
            u = -coords[C_CENTRE, j] * coords[C_INV_SCALE, j]
            wk[q + _INV] = coords[C_INV_SCALE, j]
            wk[q + _U] = u
            wk[q + _ACC] = 0.0
            wk[q + _LAST] = 0.0
            wk[q + _GRAD] = 0.0
            su += u * theta[j]
            uu += u * u
    centred = uu != 0.0 and not _RAW
    b = theta[d]
    s = 1.0
    B = 0.0
    U = 0.0
    Ss = 0.0  # sum of s over the averaged steps of this call
    SB = 0.0  # sum of s B over them
    Sd = 0.0  # sum of the intercept over them
    n_new = 0
    bad = -1
    steps = 0
    ahead = CSR_PREFETCH_ROWS
    half = ahead // 2
    for k0 in range(0, m, bs):
        k1 = min(k0 + bs, m)
        gb = 0.0
        wr = 0.0
        for k in range(k0, k1):
            # the row CSR_PREFETCH_ROWS ahead: its pointers; half as far: its entries
            if k + ahead < m:
                q = perm[k + ahead]
                prefetch(indptr, q)
                prefetch(y, q)
                if weighted:
                    prefetch(sw, q)
            if k + half < m:
                q = perm[k + half]
                lo2 = indptr[q]
                hi2 = indptr[q + 1]
                # a line's worth apart, up to the line of the last entry (a prefetch past
                # the row, or the array, is harmless: see fastgd._intrinsics)
                for e in range(lo2, hi2 + 7, 8):  # 8 float64 values a cache line
                    prefetch(values, e)
                # a cache line holds 16 int32 or 8 int64 indices: a literal step each (a
                # step computed from the itemsize cost an integer division a row)
                if indices.itemsize == 4:
                    for e in range(lo2, hi2 + 15, 16):
                        prefetch(indices, e)
                else:
                    for e in range(lo2, hi2 + 7, 8):
                        prefetch(indices, e)
            if STATE_AHEAD > 0 and k + STATE_AHEAD < m:
                q = perm[k + STATE_AHEAD]
                for e in range(indptr[q], indptr[q + 1]):
                    prefetch(wk, _W * indices[e])
            i = perm[k]
            lo = indptr[i]
            hi = indptr[i + 1]
            p = b + s * (su + B * uu) if centred else b
            for e in range(lo, hi):
                q = _W * indices[e]
                if l1 and wk[q + _LAST] != U:  # the proximal steps the column missed
                    wk[q + _V] = _soft(wk[q + _V], U - wk[q + _LAST])
                    wk[q + _LAST] = U
                if _RAW:  # (a unit scale: the general form's product by 1.0, the same bits)
                    p += values[e] * (s * wk[q + _V])
                elif centred:
                    p += values[e] * wk[q + _INV] * (s * (wk[q + _V] + B * wk[q + _U]))
                else:
                    p += values[e] * wk[q + _INV] * (s * wk[q + _V])
            r = np.float64(y[i]) - p
            if not math.isfinite(r):
                bad = k
                break
            if not _SQUARED:
                r = _PSI(r, eps)
            wr = sw[i] * r if weighted else r
            if not _ROWS:
                for e in range(lo, hi):
                    wk[_W * indices[e] + _GRAD] += wr * values[e]
                gb += wr
        if bad >= 0:
            break
        t += 1
        steps += 1
        eta = eta0 / t ** power_t if invscaling else eta0
        c = 2.0 * eta * wscale / (k1 - k0) if mean else 2.0 * eta
        a = 1.0 - eta * lam2
        if not (a > 0.0 and s * a >= RESCALE_BELOW):
            # rewrite v as theta (s = 1, B = 0), the averaging sums so far moved into A
            su = 0.0
            for j in range(d):
                q = _W * j
                if l1:
                    wk[q + _V] = _soft(wk[q + _V], U - wk[q + _LAST])
                    wk[q + _LAST] = 0.0
                u = 0.0 if _RAW else wk[q + _U]
                if n_new > 0 and not _RAW:
                    wk[q + _ACC] = -(wk[q + _V] * Ss - wk[q + _ACC] + u * SB)
                v = s * (wk[q + _V] + B * u)
                if not a > 0.0:  # the decay of this step, in full
                    v *= a
                wk[q + _V] = v
                su += u * v
            s = 1.0
            B = 0.0
            U = 0.0
            Ss = 0.0
            SB = 0.0
            if a > 0.0:
                s = a
        else:
            s *= a
        cs = c / s
        if _ROWS:
            gb = wr
        if centred:
            B += cs * gb
        tau = eta * lam1 / s
        i0 = perm[k0]
        for k in range(k0, k1):
            if not _ROWS:
                i0 = perm[k]
            for e in range(indptr[i0], indptr[i0 + 1]):
                q = _W * indices[e]
                if _RAW:
                    dv = cs * (wr * values[e])
                elif _ROWS:
                    dv = cs * (wr * values[e]) * wk[q + _INV]
                else:
                    if wk[q + _GRAD] == 0.0:  # applied already (or nothing to apply)
                        continue
                    dv = cs * wk[q + _GRAD] * wk[q + _INV]
                    wk[q + _GRAD] = 0.0
                old = wk[q + _V]
                nv = old + dv
                if l1:
                    nv = _soft(nv, U + tau - wk[q + _LAST])
                    wk[q + _LAST] = U + tau
                wk[q + _V] = nv
                if centred:
                    su += wk[q + _U] * (nv - old)
                if Ss != 0.0 and not _RAW:
                    wk[q + _ACC] += (nv - old) * Ss
        U += tau
        if fit_b:
            b += c * gb
        if t > avg_start and not _RAW:
            Ss += s
            SB += s * B
            Sd += b
            n_new += 1
    # write theta and its average out in full
    n_old = max(t_start - avg_start, 0)
    total = n_old + n_new
    for j in range(d):
        q = _W * j
        v = wk[q + _V]
        if l1:
            v = _soft(v, U - wk[q + _LAST])
        u = 0.0 if _RAW else wk[q + _U]
        if n_new > 0 and not _RAW:
            avg[j] = (avg[j] * n_old + (v * Ss - wk[q + _ACC] + u * SB)) / total
        theta[j] = s * (v + B * u)
    theta[d] = b
    if n_new > 0:
        avg[d] = (avg[d] * n_old + Sd) / total
    return -(bad + 1) if bad >= 0 else steps


class CSRSGDKernels:
    """The CSR epoch kernels of one loss, with the signature of :func:`_csr_sgd_src`:
    ``rows`` (one row a step), ``batches`` (batches of rows) and ``raw`` (one row a step
    in raw coordinates: every scale 1, no centring, no L1 part, no averaging; the scratch
    is ``v`` alone, :data:`RAW_LAYOUT`, and its steps are the bits of ``rows`` on the same
    call). Each compiles on its first call (a fit compiles the one it runs)."""

    def __init__(self, loss):
        suffix = f"_{loss.name}_{loss.key()}"
        consts = dict(_PSI=jit(loss.psi, fastmath=False), _SQUARED=bool(loss.sufficient_statistics))
        self.rows = jit(specialize(_csr_sgd_src, suffix + "_rows", _ROWS=True, **ROW_LAYOUT,
                                   **consts), fastmath=False)
        self.batches = jit(specialize(_csr_sgd_src, suffix + "_batches", _ROWS=False,
                                      **BATCH_LAYOUT, **consts), fastmath=False)
        self.raw = jit(specialize(_csr_sgd_src, suffix + "_raw", _ROWS=True, _RAW=True,
                                  **RAW_LAYOUT, **consts), fastmath=False)

    def choose(self, batch_size, coords=None, params=None, m=0):
        """The kernel of ``batch_size`` rows a step; ``raw`` when, given the ``coords``
        and ``params`` of a call over ``m`` rows, it applies (checked in O(d))."""
        if batch_size != 1:
            return self.batches
        if coords is not None and is_raw(coords, params, m):
            return self.raw
        return self.rows


def is_raw(coords, params, m):
    """Whether a call over ``m`` rows with these ``coords`` and ``params`` is in raw
    coordinates with no L1 part and no averaging (the :attr:`CSRSGDKernels.raw` kernel's
    conditions)."""
    return bool(coords[C_LAM1, 0] == 0.0 and params[P_AVG_START] >= params[P_T0] + m
                and is_identity(coords))


#: the :class:`CSRSGDKernels` of a loss (a :class:`fastgd.losses.Loss`), made once per loss
csr_sgd_kernels = per_loss(CSRSGDKernels)
