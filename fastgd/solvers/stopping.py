"""The batch fits' stopping rule (``tol`` set).

An epoch "improves" when the loss decrease over it, computed as ``0.5 (g_old + g_new) .
(theta_new - theta_old)`` (exact for the quadratic loss and free of the cancellation of a
difference of two large losses), exceeds ``tol * loss``. The fit has converged when BOTH
hold: the last ``n_iter_no_change`` epochs did not improve, and the largest *gradient
cosine* ``|sum_i w_i r_i x_s_ij| / sqrt(SSE * sum_i w_i x_s_ij^2)`` (the cosine between the
residual and feature column j, intercept column included; zero exactly at the
least-squares optimum, scale-free in X and y) is at most ``sqrt(tol)``.
"""
import math

from .scaling import EPS, TINY

#: a largest gradient cosine at this rounding level means the optimum, whatever the
#: last epoch's decrease was.
COS_EXACT = 64 * EPS


class Stopper:
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
        self.reason = None

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
            self.reason = ("optimum: the loss is zero to rounding" if loss <= floor else
                           "optimum: the residual is orthogonal to every column to rounding")
            return True
        if self.quiet >= self.patience and self.last_cos <= self.gtol:
            self.reason = (f"tol: the loss decreased by at most tol={self.tol:g} (relative) in "
                           f"{self.patience} epoch(s) and the largest gradient cosine is "
                           f"{self.last_cos:.2g} <= sqrt(tol)")
            return True
        return False
