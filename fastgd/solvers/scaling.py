"""The problem in scaled coordinates: the statistics of one moments pass (:class:`Scaled`).

The batch optimizers and the scaled stochastic modes work on the parameters of the model
on standardized features; this module holds the coordinates, the penalty's weights in
them and the curvature of the loss (see :mod:`fastgd.solvers.batch` for the stopping rule).

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
"""
import numpy as np

from .._validation import Magnitudes, check_statistics

EPS = np.finfo(np.float64).eps
TINY = np.finfo(np.float64).tiny

#: above this many features, ``L`` comes from a Gershgorin bound instead of eigvalsh
#: (eigvalsh of a 1000 x 1000 matrix: about 0.1 s on the 2-core reference machine).
EIG_MAX_D = 1000
#: condition number assumed for the momentum parameters when eigvalsh is skipped.
KAPPA_FALLBACK = 1e6

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
        check_statistics(W, mean, m2 if com is None else com, rescalable=rescalable,
                         max_abs=source.max_abs)
        # a constant column's centred moments are the rounding of its mean (a column of
        # 0.1s has mean 0.10000000000000002): below (4 eps mean)^2 a column is constant,
        # else its "scaled" values would be rounding noise blown up to unit variance
        flat = m2[:d] <= W * (4.0 * EPS * mean[:d]) ** 2
        self._flat = np.flatnonzero(flat)
        self._rescalable = rescalable
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
            self._set_full(com)
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

    def _set_full(self, com):
        """The statistics of the gram path from the co-moment ``com`` (``(d + 1)^2``,
        its constant columns zeroed) in these coordinates."""
        d, W, s, delta = self.d, self.W, self.s, self.xbar_s
        Cxx, Cxy = com[:d, :d], com[:d, d]
        self.Cxx_s = Cxx / np.outer(s, s)
        self.Cxy_s = Cxy / s
        G = np.empty((d + 1, d + 1))
        G[:d, :d] = self.Cxx_s + W * np.outer(delta, delta)
        G[:d, d] = G[d, :d] = W * delta
        G[d, d] = W
        self.G = G
        self.Gpen = G + np.diag(self.lam2 / (2.0 * self.norm))

    def add_full(self, source):
        """Gather the full co-moments of ``source`` (the rows these statistics came from:
        one pass, counted in :attr:`n_passes`) and set the gram path's statistics in the
        same coordinates (``m``, ``s``, the weight and means unchanged), so that a
        streaming fit can go on with its iterations on them (see
        :class:`fastgd.solvers.oracles.SwitchingOracle`). ``L`` and ``mu`` become the
        extreme eigenvalues instead of the trace bound."""
        W, _, com = source.moments(full=True)
        com = com.copy()
        com[self._flat, :] = 0.0
        com[:, self._flat] = 0.0
        self._set_full(com)
        self.n_passes += 1
        if not np.isfinite(self.Gpen).all():  # (the diagonal pass found them finite)
            if self._rescalable:
                raise Magnitudes
            raise ValueError("the co-moments of the data overflow float64 in the coordinates "
                             "of this fit: use scale=True, or rescale the data")
        self.L, self.mu = self._curvature()

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
