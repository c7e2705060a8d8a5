"""The batch fit's last word: the QR statistic for ill-conditioned data, the Newton
refinement from the data's exact gradient, and the condition number that decides."""
import math

import numpy as np

from .scaling import EIG_MAX_D, EPS

#: the refinement solves with ``lstsq`` (SVD: the minimum-norm answer of a singular
#: system) up to this many features, with LU (``numpy.linalg.solve``, ``lstsq`` on a
#: singular matrix) above: measured on the 2-core reference machine, lstsq / solve of a
#: (d + 1)-square system: d = 32 0.14 / 0.01 ms, d = 200 17 / 0.3 ms, d = 400 88 / 2 ms,
#: d = 1,000 2.3 s / 0.12 s, d = 3,000 33 s / 1.4 s (the normal equations' own cost at
#: 2 10^5 x 1,000 is a few seconds). A poor LU step is caught like any other: the
#: correction is kept only if the loss it reaches is lower.
REFINE_LSTSQ_MAX_D = 32


def _newton_step(G, S):
    """``G^-1 S`` (see :data:`REFINE_LSTSQ_MAX_D`)."""
    if G.shape[0] <= REFINE_LSTSQ_MAX_D + 1:
        return np.linalg.lstsq(G, S, rcond=None)[0]
    try:
        return np.linalg.solve(G, S)
    except np.linalg.LinAlgError:  # exactly singular
        return np.linalg.lstsq(G, S, rcond=None)[0]


def condition(sc, stop):
    """An estimate of the condition number of the scaled problem's Hessian: from the
    eigenvalues of the Gram matrix when the fit has it, else from the curvatures CG met
    (a lower bound); 1.0 when neither is known."""
    if sc.G is not None and sc.d <= EIG_MAX_D:
        return sc.L / sc.mu
    if stop.curv_max > 0.0 and stop.curv_min > 0.0:
        return stop.curv_max / stop.curv_min
    return 1.0


def qr_solve(sc, source, theta):
    """The least-squares weights (L2 penalty included) in scaled coordinates from the R
    factor of ``[X, 1, y]`` (one pass, see :mod:`fastgd.kernels.qr`), with the accuracy of
    ``numpy.linalg.lstsq``: no squaring of the condition number. The factor is of the raw
    columns: Householder QR is indifferent to their scales, while centring or scaling them
    would round nearly equal columns differently (costing ``eps / gap`` on their weights).
    A fixed intercept (``fit_intercept=False``) keeps its value from ``theta``.

    Returns ``(theta, cond, err)``: the solution, the condition number of the design with
    its columns scaled by ``sc.s`` (that of its scaled R factor, penalty rows included),
    and the first-order bound on the relative error of the scaled weights that rounding
    the data to float64 allows, ``cond eps (1 + cond |r| / (|A| |theta|))`` (the same for
    any backward-stable solver, lstsq included).
    """
    d = sc.d
    k = d + 1 if sc.fit_intercept else d
    raw = sc.to_raw(theta)
    offset = 0.0 if sc.fit_intercept else float(raw[d])
    R = source.qr(np.zeros(d), np.ones(d), sc.fit_intercept, offset)
    # columns that are zero in scaled coordinates (constant ones, absorbed by the
    # intercept, or all zeros) keep their weight, as in the iterations
    live = np.flatnonzero(np.r_[sc.Gdiag[:d] > 0.0, np.ones(k - d, dtype=bool)])
    dead = np.setdiff1d(np.arange(d), live)
    pen = np.sqrt(sc.lam2[:d] / (2.0 * sc.norm)) * sc.s  # on the raw weights
    rows = np.zeros((d, k + 1))
    rows[np.arange(d), np.arange(d)] = pen
    # ||r||^2 + sum lam2 / (2 norm) theta^2: rows pen_j e_j with target 0
    R = np.linalg.qr(np.vstack([R, rows[pen > 0.0]])[:, np.r_[live, k]], mode="r")
    m = live.size
    A, b = R[:, :m], R[:, m]
    raw[live] = np.linalg.lstsq(A, b, rcond=None)[0]
    if sc.fit_intercept and dead.size:
        raw[d] -= float(raw[dead] @ sc.m[dead])
    col = np.ones(m)
    col[live < d] = 1.0 / sc.s[live[live < d]]  # the columns of the scaled design
    sv = np.linalg.svd(A * col, compute_uv=False)
    theta = sc.to_scaled(raw)
    if not (sv.shape[0] == m and sv[-1] > 0.0):
        return theta, math.inf, math.inf
    cond = float(sv[0] / sv[-1])
    rnorm = abs(float(R[m, m])) if R.shape[0] > m else 0.0
    tnorm = float(np.linalg.norm(theta[live]))
    ratio = rnorm / (float(sv[0]) * tnorm) if tnorm > 0.0 else 0.0
    return theta, cond, cond * EPS * (1.0 + cond * ratio)


def refine(sc, obj, theta, loss):
    """One streaming pass at ``theta`` and a Newton correction from the sufficient statistics.

    The gram path's gradient ``c - G theta`` carries the rounding of the accumulated
    statistics (about ``eps * |c|``); a pass computes it from the residuals themselves,
    about ``eps * |r| |x|``. Solving ``G delta = S`` with that gradient (iterative
    refinement) brings the gram fit to the accuracy of the streaming one: on NIST
    Wampler1 from 6.3 to the digits of ``numpy.linalg.lstsq``. The loss is a quadratic, so
    the new loss is ``loss(theta) - norm * S . delta`` exactly.

    With an L1 penalty the correction is restricted to the nonzero weights and kept only
    when no sign changes (the objective is quadratic there).

    The new loss is an estimate from the statistics, accurate to about ``kappa * eps``
    of the decrease (``kappa`` the condition number). Where that could exceed 1e-13 of
    the loss, a second pass measures it, so that the reported loss is the loss of the
    returned weights (and the correction is dropped if it did not lower it). Not
    covered: the residuals' own rounding, about ``eps (|y| + |X w| + |b|)`` each, which
    a measurement carries too; in a near-exact fit (residuals 1/20,000 of those terms)
    estimate and measurement then differ by about 1e-12 of the loss (see the loss
    contract in ``tests/test_fuzz.py``).

    Returns ``(theta, loss, passes)``.
    """
    d = sc.d
    sums = obj.sums(sc.to_raw(theta))
    S = np.empty(d + 1)
    S[:d] = (sums[2:] - sc.m * sums[1]) / sc.s
    S[d] = sums[1]
    # the penalty's gradient; the L1 part on the active set (nonzero weights), where the
    # objective is a quadratic as long as no sign changes
    S -= (sc.lam2 * theta + sc.lam1 * np.sign(theta)) / (2.0 * sc.norm)
    free = (sc.mask > 0.0) & ((sc.lam1 == 0.0) | (theta != 0.0))
    base = (float(sums[0]) * sc.norm + 0.5 * float(sc.lam2 @ (theta * theta))
            + float(sc.lam1 @ np.abs(theta)))
    if not (np.isfinite(sc.Gpen).all() and np.isfinite(S).all()):
        return theta, base, 1  # never hand LAPACK a non-finite matrix (it hung on one)
    delta = np.zeros(d + 1)
    if free.all():
        delta[:] = _newton_step(sc.Gpen, S)
    else:
        delta[free] = _newton_step(sc.Gpen[np.ix_(free, free)], S[free])
    new_loss = base - sc.norm * float(S @ delta)
    new = theta + delta
    l1 = free & (sc.lam1 > 0.0)
    if not (np.all(np.isfinite(delta)) and new_loss <= base
            and np.all(np.sign(new[l1]) == np.sign(theta[l1]))):
        return theta, base, 1
    if (base - new_loss) * min(1.0, sc.L / sc.mu * EPS) <= 1e-13 * new_loss:
        return new, max(new_loss, 0.0), 1
    sums = obj.sums(sc.to_raw(new))
    exact = (float(sums[0]) * sc.norm + 0.5 * float(sc.lam2 @ (new * new))
             + float(sc.lam1 @ np.abs(new)))
    if not exact <= base:
        return theta, base, 2
    return new, exact, 2
