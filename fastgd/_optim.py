"""Batch fits in scaled coordinates: the sufficient-statistics (gram) and streaming paths.

Python decides, kernels compute: the streaming oracle makes one compiled pass
(:class:`fastgd._drivers.Objective`) per evaluation; the gram oracle works in O(d^2) from
the moments pass (:func:`fastgd._drivers.moments`). Both present the same interface, so
one optimizer loop drives both and their trajectories agree to rounding.

Coordinates
-----------
The parameters ``theta`` (float64, ``(d + 1,)``) are those of the model on the features
``x_s = (x - m) / s``:

    prediction = x_s . theta[:d] + theta[d]
    raw weights  w = theta[:d] / s,   raw intercept  b = theta[d] - m . w

* ``scale`` on, with intercept: ``m`` = weighted means, ``s`` = weighted standard
  deviations (centring decouples the intercept);
* ``scale`` on, without intercept: ``m = 0`` (the model has no intercept, centring would
  change it), ``s`` = weighted root mean squares (the uncentred second moments);
* ``scale`` off: ``m = 0``, ``s = 1`` (the raw problem).

A column with zero scale keeps ``s = 1``. The loss is the same function of the
predictions in every coordinate system, so loss values are always in the user's units.

Stopping (``tol`` set)
----------------------
An epoch "improves" when the loss decrease over it, computed as ``0.5 (g_old +
g_new) . (theta_new - theta_old)`` (exact for the quadratic loss and free of the
cancellation of a difference of two large losses), exceeds ``tol * loss``. The fit has
converged when BOTH hold: the last ``n_iter_no_change`` epochs did not improve, and the
largest *gradient cosine* ``|sum_i w_i r_i x_s_ij| / sqrt(SSE * sum_i w_i x_s_ij^2)``
(the cosine between the residual and feature column j, intercept column included; zero
exactly at the least-squares optimum, scale-free in X and y) is at most ``sqrt(tol)``.
"""
import math

import numpy as np

from ._drivers import EXPLODE_FACTOR, Diverged
from ._validation import Magnitudes, check_statistics

EPS = np.finfo(np.float64).eps
TINY = np.finfo(np.float64).tiny

#: above this many features, ``L`` comes from a Gershgorin bound instead of eigvalsh
#: (eigvalsh of a 1000 x 1000 matrix: about 0.1 s on the 2-core reference machine).
EIG_MAX_D = 1000
#: condition number assumed for the momentum parameters when eigvalsh is skipped.
KAPPA_FALLBACK = 1e6

#: stream CG: the new point's loss and gradient are interpolated from the trial point when
#: the exact step is within this fraction of the trial step (else one more pass): far
#: extrapolation amplifies the rounding of the gradient difference.
TRIAL_REUSE = 0.25

#: a largest gradient cosine at this rounding level means the optimum, whatever the
#: last epoch's decrease was.
COS_EXACT = 64 * EPS

#: the largest penalty weight (in scaled coordinates) a fit in power-of-two units takes
LAM_MAX = 2.0 ** 600


def _times_power_of_two(a, e, alpha):
    """``a * 2**e`` (``e`` may exceed float64's exponent range); a clear error beyond
    :data:`LAM_MAX`."""
    m, ea = np.frexp(a)
    top = ea + e
    if np.any((m != 0.0) & (top > 600)):
        j = int(np.argmax((m != 0.0) & (top > 600)))
        raise ValueError(
            f"the penalty (alpha={alpha:g}) on the weight of X[:, {j}] outweighs that "
            f"column's data by about 2^{int(top[j])}: its values are so small that any weight "
            "that uses them is penalized out of float64's range. Standardize X before a "
            "penalized fit, drop the column, or lower alpha"
        )
    return np.ldexp(m, np.maximum(top, -1100))


class Scaled:
    """The problem's statistics in scaled coordinates, from one moments pass.

    Attributes: ``m``, ``s`` (the coordinates, see the module docstring), ``G`` (the
    weighted Gram matrix of ``[x_s, 1]``, ``(d + 1, d + 1)``; None when ``full`` is
    False), ``Gdiag`` (its diagonal), ``norm`` (1/W for the mean loss, 1 for the sum),
    ``mask`` (1.0 for free parameters, 0.0 for a fixed intercept), ``L`` and ``mu``
    (largest and smallest curvature of the loss over the free parameters), ``sse_floor``
    (an SSE indistinguishable from zero).

    The statistics come from the source's moments pass (which, as the first pass over
    the data, also proves it finite: see :class:`fastgd.sources.Source`).

    ``full=False`` (the streaming solver and the stochastic modes) gathers only the
    per-column means and second moments, O(n d) instead of the O(n d^2) co-moments; ``L``
    is then bounded by the trace of ``G`` (safe for gd/momentum/nesterov, which only the
    user's choice of those optimizers on the streaming path uses; CG needs no ``L``) and
    the final Newton refinement, which solves with ``G``, is not available.
    """

    def __init__(self, source, reduction, fit_intercept, scale, alpha=0.0, l1_ratio=0.0,
                 full=True, rescalable=False, moments=None):
        """``moments``: ``(W, mean, m2)`` (per-column, as ``source.moments(full=False)``
        returns them) to use instead of a pass over ``source``: ``partial_fit``'s
        statistics of every row seen so far (``full`` must then be False)."""
        d = source.d
        if moments is not None:
            W, mean, m2 = moments
            com = None
        elif full:
            W, mean, com = source.moments(full=True)
            m2 = np.diag(com).copy()
        else:
            W, mean, m2 = source.moments(full=False)
            com = None
        check_statistics(W, mean, m2 if com is None else com, rescalable=rescalable)
        # a constant column's centred moments are the rounding of its mean (a column of
        # 0.1s has mean 0.10000000000000002): below (4 eps mean)^2 a column is constant,
        # else its "scaled" values would be rounding noise blown up to unit variance
        flat = m2[:d] <= W * (4.0 * EPS * mean[:d]) ** 2
        if flat.any():
            flat = np.flatnonzero(flat)
            m2 = m2.copy()
            m2[flat] = 0.0
            if com is not None:
                com = com.copy()
                com[flat, :] = 0.0
                com[:, flat] = 0.0
        self.d, self.W = d, W
        self.n_passes = 1
        mu, ybar = mean[:d], mean[d]
        Cyy = m2[d]
        if scale and fit_intercept:
            m = mu.copy()
            var = m2[:d] / W
        elif scale:
            m = np.zeros(d)
            var = m2[:d] / W + mu * mu
        else:
            m = np.zeros(d)
            var = np.ones(d)
        s = np.sqrt(np.maximum(var, 0.0))
        s[~(s > 0.0)] = 1.0
        self.m, self.s = m, s
        delta = (mu - m) / s  # mean of x_s
        self.xbar_s = delta
        self.ybar = ybar
        self.Cyy = Cyy
        self.norm = 1.0 / W if reduction == "mean" else 1.0
        # the penalty alpha * (l1_ratio ||w||_1 + (1 - l1_ratio) / 2 ||w||^2) on the raw
        # weights w = theta / s: per-coordinate weights in scaled coordinates
        self.lam1 = np.zeros(d + 1)
        self.lam2 = np.zeros(d + 1)
        self.lam1[:d] = alpha * l1_ratio / s
        self.lam2[:d] = alpha * (1.0 - l1_ratio) / (s * s)
        if source.units is not None and alpha > 0.0:
            # rows in power-of-two units (x / 2^ex, y / 2^ey; see fastgd._engine.run): the
            # penalty on the raw weights, over the loss's factor 2^(2 ey)
            ex, ey = source.units
            self.lam1[:d] = _times_power_of_two(self.lam1[:d], -ey - ex, alpha)
            self.lam2[:d] = _times_power_of_two(self.lam2[:d], -2 * ex, alpha)
        self.has_l1 = bool(alpha > 0.0 and l1_ratio > 0.0)
        Gdiag = np.empty(d + 1)
        Gdiag[:d] = m2[:d] / (s * s) + W * delta * delta
        Gdiag[d] = W
        self.Gdiag = Gdiag
        if full:
            Cxx, Cxy = com[:d, :d], com[:d, d]
            self.Cxx_s = Cxx / np.outer(s, s)
            self.Cxy_s = Cxy / s
            G = np.empty((d + 1, d + 1))
            G[:d, :d] = self.Cxx_s + W * np.outer(delta, delta)
            G[:d, d] = G[d, :d] = W * delta
            G[d, d] = W
            self.G = G
            self.Gpen = G + np.diag(self.lam2 / (2.0 * self.norm))
        else:
            self.G = self.Gpen = None
        if not (np.isfinite(Gdiag).all() and (self.G is None or np.isfinite(self.Gpen).all())):
            # finite moments, but their products in these coordinates overflow (raw
            # coordinates: W mean^2 beyond 1.8e308)
            if rescalable:
                raise Magnitudes
            bad = [j for j in range(d) if not np.isfinite(Gdiag[j])] or list(range(d))
            names = ", ".join(f"X[:, {j}]" for j in bad)
            raise ValueError(
                f"the sums of squares of {names} overflow float64 in the raw coordinates of "
                "this fit (scale=False; magnitudes beyond about 1e150, or weights too "
                "large): use scale=True (or leave learning_rate='auto'), or rescale the "
                "data, e.g. divide those columns by a power of two such as 2.0**-500"
            )
        self.fit_intercept = fit_intercept
        self.mask = np.ones(d + 1)
        if not fit_intercept:
            self.mask[d] = 0.0
        if not alpha > 0.0:
            # columns that are zero in scaled coordinates (constant, or all zeros): the
            # loss does not depend on their weights, which keep their starting values
            # (a streaming gradient would nudge them by its rounding)
            self.mask[:d][Gdiag[:d] == 0.0] = 0.0
        total = Cyy if fit_intercept else Cyy + W * ybar * ybar
        self.sse_floor = 16.0 * EPS * max(total, np.finfo(np.float64).tiny)
        self.L, self.mu = self._curvature()
        if not (np.isfinite(self.L) and self.L >= TINY and self.mu > 0.0):
            # raw coordinates (scale=False) whose curvature is beyond float64: tiny
            # columns (squares near 1e-300) against the weight total, or huge ones
            if rescalable:
                raise Magnitudes
            raise ValueError(
                f"the curvature of the loss in the raw coordinates of this fit (scale=False) "
                f"is {self.L:.3g}, beyond float64's range: X's values are too small or too "
                "large for unscaled steps; use scale=True (or leave learning_rate='auto'), "
                "or rescale X by a power of two"
            )

    def _curvature(self):
        k = self.d + 1 if self.fit_intercept else self.d
        if self.G is None:
            # trace bound: lambda_max <= trace of the (penalized) Gram matrix
            lmax = float((self.Gdiag + self.lam2 / (2.0 * self.norm))[:k].sum())
            lmin = lmax / KAPPA_FALLBACK
        elif self.d <= EIG_MAX_D:
            # over the coordinates with curvature: a column that is zero in scaled
            # coordinates (constant, or all zeros) never moves and has no say
            live = np.diag(self.Gpen)[:k] > 0.0
            if live.all():
                ev = np.linalg.eigvalsh(self.Gpen[:k, :k])
            elif live.any():
                idx = np.flatnonzero(live)
                ev = np.linalg.eigvalsh(self.Gpen[np.ix_(idx, idx)])
            else:
                ev = [0.0]
            lmax, lmin = float(ev[-1]), float(ev[0])
        else:
            G = self.Gpen[:k, :k]
            lmax = float(np.max(np.abs(G).sum(axis=1)))
            lmin = lmax / KAPPA_FALLBACK
        if not lmax > 0.0:
            # no curvature at all (zero columns and no intercept): the loss does not
            # depend on the free parameters, the gradient is zero, any step is safe
            lmax = lmin = 1.0
        lmin = max(lmin, lmax * 1e-16)
        return 2.0 * self.norm * lmax, 2.0 * self.norm * lmin

    def to_raw(self, theta):
        d = self.d
        coef = np.empty(d + 1)
        coef[:d] = theta[:d] / self.s
        coef[d] = theta[d] - float(self.m @ coef[:d])
        return coef

    def to_scaled(self, coef):
        d = self.d
        theta = np.empty(d + 1)
        theta[:d] = coef[:d] * self.s
        theta[d] = coef[d] + float(self.m @ coef[:d])
        return theta

    def cosine(self, loss, S, floor=None):
        """Largest gradient cosine (see the module docstring) of the free parameters
        (``floor``: the loss below which residuals are rounding, default ``sse_floor``)."""
        sse = max(loss / self.norm, self.sse_floor if floor is None else floor / self.norm, TINY)
        diag = self.Gdiag
        ok = (diag > 0.0) & (self.mask > 0.0)
        if not np.any(ok):
            return 0.0
        return float(np.max(np.abs(S[ok]) / np.sqrt(sse * diag[ok])))


class GramOracle:
    """Loss and gradient in O(d^2) from the sufficient statistics (squared loss)."""

    def __init__(self, sc):
        self.sc = sc
        self.n_passes = 0

    def hess(self, p):
        """Hessian-vector product ``2 norm G p`` over the free parameters."""
        sc = self.sc
        return (2.0 * sc.norm) * (sc.G @ (p * sc.mask)) * sc.mask

    def __call__(self, theta):
        """``(loss, S)`` with ``S = sum_i w_i r_i [x_s_i, 1]`` (the gradient is ``-2 norm S``).

        Centred form: the loss is ``Cyy - 2 w.c + w'Cw + W rbar^2`` with ``rbar`` the
        mean residual, accurate to about ``eps * Cyy`` (no ``sum y^2`` cancellation).
        """
        sc = self.sc
        d = sc.d
        w = theta[:d]
        Cw = sc.Cxx_s @ w
        rbar = sc.ybar - float(sc.xbar_s @ w) - theta[d]
        centred = sc.Cyy - 2.0 * float(w @ sc.Cxy_s) + float(w @ Cw)
        sse = max(centred, 0.0) + sc.W * rbar * rbar
        S = np.empty(d + 1)
        S[:d] = sc.Cxy_s - Cw + sc.W * rbar * sc.xbar_s
        S[d] = sc.W * rbar
        return sse * sc.norm, S * sc.mask


class LossObjective:
    """A registered loss (:mod:`fastgd.losses`) in the layout of
    :class:`fastgd._drivers.Objective` (``sums``, ``loss``): ``sum w loss(r)`` reduced by
    ``reduction``, from the source's compiled pass of that loss."""

    def __init__(self, source, reduction, loss, epsilon):
        self.source = source
        self.loss_fn = loss
        self.epsilon = epsilon
        self.mean = reduction == "mean"

    @property
    def norm(self):
        return 1.0 / self.source.weight_total if self.mean else 1.0

    def sums(self, coef):
        return self.source.loss_grad(coef, self.loss_fn, self.epsilon)

    def loss(self, coef):
        return float(self.sums(coef)[0] * self.norm)


class Penalized:
    """An oracle plus the L2 part of the penalty, ``0.5 sum lam2 theta^2`` (smooth)."""

    def __init__(self, base, sc):
        self.base, self.sc = base, sc
        self.hess = None if base.hess is None else self._hess
        self.obj = getattr(base, "obj", None)

    @property
    def n_passes(self):
        return self.base.n_passes

    def _hess(self, p):
        return self.base.hess(p) + self.sc.lam2 * p

    def __call__(self, theta):
        loss, S = self.base(theta)
        lam2 = self.sc.lam2
        return (loss + 0.5 * float(lam2 @ (theta * theta)),
                S - lam2 * theta / (2.0 * self.sc.norm))


def soft_threshold(z, tau):
    """``sign(z) max(|z| - tau, 0)``: the proximal map of ``tau |.|_1``."""
    return np.sign(z) * np.maximum(np.abs(z) - tau, 0.0)


class StreamOracle:
    """Loss and gradient by one compiled pass over the data, transformed in O(d)."""

    def __init__(self, sc, obj):
        self.sc, self.obj = sc, obj
        self.n_passes = 0
        self.hess = None

    def __call__(self, theta):
        sc = self.sc
        d = sc.d
        sums = self.obj.sums(sc.to_raw(theta))
        self.n_passes += 1
        S = np.empty(d + 1)
        S[:d] = (sums[2:] - sc.m * sums[1]) / sc.s
        S[d] = sums[1]
        return float(sums[0]) * sc.norm, S * sc.mask


def momentum_params(sc, optimizer, lr, curvature=2.0):
    """``(step, beta)`` of gd / heavy-ball momentum / Nesterov on the scaled problem;
    ``curvature``: the loss's ``sup loss''`` (2 for the squared loss, whose curvature
    ``sc.L`` and ``sc.mu`` are)."""
    L, mu = sc.L * (curvature / 2.0), sc.mu * (curvature / 2.0)
    rk = math.sqrt(L / mu)
    if optimizer == "momentum":
        step = 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2 if lr is None else lr
        return step, ((rk - 1.0) / (rk + 1.0)) ** 2
    step = 1.0 / L if lr is None else lr
    if optimizer == "nesterov":
        return step, (rk - 1.0) / (rk + 1.0)
    return step, 0.0


class _Stopper:
    def __init__(self, sc, tol, n_iter_no_change, psi_cap=None):
        self.sc, self.tol, self.patience = sc, tol, n_iter_no_change
        # Huber: the cosine compares the gradient sum_i psi(r_i) x_i with sum psi^2, which
        # the loss overstates where residuals pass epsilon (h(r) >= psi(r)^2, by a factor
        # 2 |r| / epsilon); psi^2 <= epsilon^2 caps it (as a loss: epsilon^2 W norm)
        self.psi_cap = psi_cap
        self.gtol = math.sqrt(tol) if tol is not None else None
        self.quiet = 0
        self.last_cos = float("nan")
        self.last_rel = float("nan")
        # the extreme curvatures p.Hp / p.p met along CG's directions: their ratio is a
        # lower bound of the condition number of the (scaled) Hessian
        self.curv_min = math.inf
        self.curv_max = 0.0

    def curvature(self, pHp, pp):
        if pp > 0.0 and pHp > 0.0:
            self.curv_min = min(self.curv_min, pHp / pp)
            self.curv_max = max(self.curv_max, pHp / pp)

    def update(self, dec, loss, S):
        if self.tol is None:
            return False
        floor = self.sc.sse_floor * self.sc.norm
        if self.psi_cap is not None:
            # Huber: a tiny loss can be epsilon times large residuals, not an exact fit
            floor = min(floor, 16.0 * EPS * self.psi_cap)
        self.last_rel = dec / max(loss, floor, TINY)
        self.quiet = self.quiet + 1 if self.last_rel <= self.tol else 0
        if self.psi_cap is None:
            self.last_cos = self.sc.cosine(loss, S)
        else:
            self.last_cos = self.sc.cosine(min(loss, self.psi_cap), S, floor)
        if loss <= floor or self.last_cos <= COS_EXACT:
            # an exact fit, or a residual orthogonal to every column to rounding: the
            # optimum (the relative decrease can still be large: it is the step that got
            # there, e.g. CG's first step when d = 1)
            return True
        return self.quiet >= self.patience and self.last_cos <= self.gtol


#: the loop's state a checkpoint holds (see fastgd._checkpoint)
_RUN_STATE = ("theta", "loss", "S", "pen1", "history", "y_pt", "S_y", "prev", "t", "p",
              "g_old")
_STOP_STATE = ("quiet", "last_cos", "last_rel", "curv_min", "curv_max")


def run(oracle, sc, theta, *, optimizer, lr, epochs, tol, n_iter_no_change, callback,
        quadratic=True, psi_bound=None, curvature=2.0, checkpoint=None, resume=None):
    """The optimizer loop in scaled coordinates (``psi_bound``: ``sup |psi|`` of a
    non-quadratic loss, for the stopping rule; ``curvature``: its ``sup loss''``). ``checkpoint`` (a :class:`fastgd._checkpoint.Checkpointer`) receives
    the loop's state every few epochs; ``resume`` (such a state) continues from it.

    Returns ``(theta, history, converged, stopper)``; raises :class:`Diverged` (with the
    last finite raw parameters) when a numeric learning rate makes the loss explode.
    """
    d = sc.d
    mask = sc.mask
    g2 = -2.0 * sc.norm  # gradient = g2 * S
    lam1 = sc.lam1
    loss, S = oracle(theta)
    pen1 = float(lam1 @ np.abs(theta))
    history = [loss + pen1]
    y_pt, S_y = theta, S
    stop = _Stopper(sc, tol, n_iter_no_change,
                    None if psi_bound is None else psi_bound * psi_bound * sc.W * sc.norm)
    converged = False
    prev = theta.copy()
    step, beta = ((None, None) if optimizer == "cg" else
                  momentum_params(sc, optimizer, lr, curvature))
    t = 1.0 / sc.L  # cg: trial step
    p = None
    g_old = None
    start = 1
    if resume is not None:
        theta, loss, S, pen1 = resume["theta"], resume["loss"], resume["S"], resume["pen1"]
        history, y_pt, S_y = list(resume["history"]), resume["y_pt"], resume["S_y"]
        prev, t, p, g_old = resume["prev"], resume["t"], resume["p"], resume["g_old"]
        for key in _STOP_STATE:
            setattr(stop, key, resume["stop"][key])
        getattr(oracle, "base", oracle).n_passes = resume["n_passes"]
        start = resume["epoch"] + 1
    for epoch in range(start, epochs + 1):
        if optimizer == "cg":
            g = g2 * S
            if p is None:
                p = -g
            else:
                gg_old = float(g_old @ g_old)
                b = float(g @ (g - g_old)) / gg_old if gg_old > 0.0 else 0.0
                p = -g + max(b, 0.0) * p
            p *= mask
            gp = float(g @ p)
            if not gp < 0.0:  # not a descent direction: restart along -g
                p = -g * mask
                gp = float(g @ p)
                if not gp < 0.0:  # zero gradient: exactly at the optimum
                    converged = tol is not None
                    break
            if oracle.hess is not None:  # gram: H p directly, O(d^2)
                Hp = oracle.hess(p)
            else:  # stream: one pass at a trial point; the gradient is affine in theta
                t_loss, t_S = oracle(theta + t * p)
                Hp = (g2 * t_S - g) / t
            pHp = float(p @ Hp)
            stop.curvature(pHp, float(p @ p))
            if not pHp > 0.0:  # no curvature left along p (rounding level)
                converged = tol is not None
                break
            alpha = -gp / pHp
            new = theta + alpha * p
            if oracle.hess is None and abs(alpha - t) <= TRIAL_REUSE * t:
                # close to the trial point: interpolate from it (exact for a quadratic)
                new_g = g2 * t_S + (alpha - t) * Hp
                new_loss = t_loss + 0.5 * (alpha - t) * float((g2 * t_S + new_g) @ p)
                new_S = new_g / g2
            else:
                new_loss, new_S = oracle(new)
            g_old = g
            t = alpha
        elif sc.has_l1:  # proximal gradient (ISTA) / accelerated (FISTA)
            g = g2 * S_y
            new = soft_threshold(y_pt - step * g, step * lam1)
            new = new * mask + theta * (1.0 - mask)
            new_loss, new_S = oracle(new)
            _check(epoch, new_loss, history, sc, theta)
            if optimizer == "nesterov":
                y_pt = new + beta * (new - theta)
                y_pt = y_pt * mask + theta * (1.0 - mask)
                _, S_y = oracle(y_pt)
            else:
                y_pt, S_y = new, new_S
        else:
            g = g2 * S
            if optimizer == "gd":
                new = theta - step * g
            elif optimizer == "momentum":
                new = theta - step * g + beta * (theta - prev)
            else:  # Nesterov, look-ahead form: the tracked point is where g is taken
                v = theta - prev
                v_new = beta * v - step * g
                new = theta + beta * v_new - step * g
            new = new * mask + theta * (1.0 - mask)
            new_loss, new_S = oracle(new)
            _check(epoch, new_loss, history, sc, theta)
            if optimizer == "nesterov":
                prev = new - v_new
            else:
                prev = theta
        if quadratic:
            dec = 0.5 * float((g2 * S + g2 * new_S) @ (theta - new))
        else:  # Huber: losses from passes, accurate to rounding of the residuals
            dec = loss - new_loss
        S_stop = new_S
        if sc.has_l1:
            new_pen1 = float(lam1 @ np.abs(new))
            dec += pen1 - new_pen1
            pen1 = new_pen1
            # the proximal-gradient mapping: zero exactly at the penalized optimum
            gm = (new - soft_threshold(new - step * g2 * new_S, step * lam1)) / step
            S_stop = gm * mask / g2
        theta, loss, S = new, new_loss, new_S
        history.append(loss + pen1)
        done = stop.update(dec, loss + pen1, S_stop)
        if callback is not None:
            coef = sc.to_raw(theta)
            if callback(epoch, coef[:d].copy(), float(coef[d]), history[-1]) is False:
                break
        if done:
            converged = True
            break
        if checkpoint is not None and checkpoint.due(epoch):
            local = locals()
            state = {k: local[k] for k in _RUN_STATE}
            state["history"] = np.asarray(history)
            state["stop"] = {k: getattr(stop, k) for k in _STOP_STATE}
            state["n_passes"] = oracle.n_passes
            state["epoch"] = epoch
            checkpoint.save("batch", epoch, state)
    return theta, np.asarray(history), converged, stop


def _check(epoch, new_loss, history, sc, theta):
    if not np.isfinite(new_loss) or (history[0] > 0 and new_loss > EXPLODE_FACTOR * history[0]):
        raise Diverged(epoch, sc.to_raw(theta), history,
                       "the loss became non-finite" if not np.isfinite(new_loss)
                       else f"the loss exploded from {history[0]:.6g} to {new_loss:.6g}")


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
        delta[:] = np.linalg.lstsq(sc.Gpen, S, rcond=None)[0]
    else:
        delta[free] = np.linalg.lstsq(sc.Gpen[np.ix_(free, free)], S[free], rcond=None)[0]
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
