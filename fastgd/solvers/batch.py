"""The batch optimizers: one epoch is one step of the whole data's gradient.

Each optimizer is a subclass of :class:`BatchSolver` registered in :data:`OPTIMIZERS`
under the name ``optimizer=`` takes, with the capabilities the plan checks
(:attr:`~BatchSolver.quadratic_only`, :attr:`~BatchSolver.handles_l1`,
:attr:`~BatchSolver.takes_learning_rate`). An optimizer implements :meth:`step` only:
from the point ``theta`` and its gradient sums ``S`` (see :mod:`fastgd.solvers.oracles`)
to the next point and its loss and sums. :class:`BatchSolver` does the rest: the
penalty's L1 part, the loss decrease the stopping rule measures
(:mod:`fastgd.solvers.stopping`), the history and the checkpoint state.

All work in scaled coordinates (:class:`fastgd.solvers.scaling.Scaled`); the gradient is
``g = -2 norm S``.
"""
import math

import numpy as np

from .base import EXPLODE_FACTOR, Solver, check_loss
from .oracles import soft_threshold
from .stopping import Stopper

#: stream CG: the new point's loss and gradient are interpolated from the trial point when
#: the exact step is within this fraction of the trial step (else one more pass): far
#: extrapolation amplifies the rounding of the gradient difference.
TRIAL_REUSE = 0.25

#: CG on the sufficient statistics (the gram path, or a streaming fit once it has moved
#: there) to a tolerance is preconditioned by the inverse of the Gram matrix up to this
#: many features: its first step is the Newton step, and it stops after one or two
#: iterations, where plain CG took about the square root of the condition number in
#: iterations. The inverse costs O(d^3) once, an iteration O(d^2) and a Python loop
#: turn. Measured on the 2-core reference machine: the iterations of a 2 10^4 x 200 fit
#: of AR(1) rho = 0.99 columns, 172 plain, 16 ms, now 2 iterations, 2.5 ms with the
#: preconditioner (a Cholesky factor and its inverse, about the cost of
#: ``numpy.linalg.inv``, which on d + 1 squared takes: d = 200 4 ms, 500 14 ms, 1,000
#: 58 ms, 2,000 0.37 s, 4,000 1.9 s, where a plain iteration costs 0.7 and 3.2 ms: above
#: 1,000 the preconditioner could cost more than the iterations it saves).
PCG_MAX_D = 1000

#: the loop's state a checkpoint holds (see fastgd._checkpoint), with the stopping
#: rule's counters under "stop"
RUN_STATE = ("theta", "loss", "S", "pen1", "history", "y_pt", "S_y", "prev", "t", "p", "g_old")
STOP_STATE = ("quiet", "last_cos", "last_rel", "curv_min", "curv_max")


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


class BatchSolver(Solver):
    """A batch optimizer over an oracle (see the module docstring).

    ``oracle``: scaled parameters to ``(loss, S)``; ``sc``: the problem's
    :class:`~fastgd.solvers.scaling.Scaled` statistics; ``theta``: the starting point;
    ``lr``: the user's learning rate (None: the optimizer's own); ``loss``: the
    :class:`fastgd.losses.Loss` (its capabilities: an exact decrease for a quadratic,
    the bound of ``psi`` for the stopping rule, the curvature for the step).
    """

    engine = "batch"
    #: the name ``optimizer=`` takes
    name = None
    #: needs the squared loss (an exact line search on a quadratic)
    quadratic_only = False
    #: fits an L1 penalty (by proximal steps)
    handles_l1 = True
    #: takes a numeric learning rate (else it chooses its own steps)
    takes_learning_rate = True

    def __init__(self, oracle, sc, theta, *, lr, tol, n_iter_no_change, loss, epsilon):
        super().__init__()
        self.oracle, self.sc, self.theta = oracle, sc, theta
        self.quadratic = loss.sufficient_statistics
        psi_cap = None
        if not self.quadratic:
            bound = loss.psi_bound(epsilon)
            psi_cap = None if bound is None else bound * bound * sc.W * sc.norm
        self.stop = Stopper(sc, tol, n_iter_no_change, psi_cap)
        self.tol = tol
        self.g2 = -2.0 * sc.norm  # gradient = g2 * S
        self.step_size, self.beta = momentum_params(sc, self.name, lr, loss.curvature)
        # the state of every optimizer (one layout, so that checkpoints have one format)
        self.prev = theta.copy()
        self.y_pt = theta
        self.t = 1.0 / sc.L  # cg: trial step
        self.p = None
        self.g_old = None

    @property
    def learning_rate(self):
        """The step the fit reports as its learning rate."""
        return self.step_size

    @property
    def n_passes(self):
        return self.oracle.n_passes

    def begin(self):
        theta = self.theta
        self.loss, self.S = self.oracle(theta)
        self.pen1 = float(self.sc.lam1 @ np.abs(theta))
        self.history = [self.loss + self.pen1]
        self.y_pt, self.S_y = theta, self.S

    def step(self, k):
        """Epoch ``k``'s step: ``(new, new_loss, new_S)``, or None when the fit is over
        before it (``self.converged`` says whether that is convergence)."""
        raise NotImplementedError

    def check(self, k, new_loss):
        """Divergence (a numeric rate too large): :func:`fastgd.solvers.base.check_loss`
        with the last point's raw parameters."""
        if not np.isfinite(new_loss) or (self.history[0] > 0 and
                                         new_loss > EXPLODE_FACTOR * self.history[0]):
            check_loss(k, new_loss, self.history, self.sc.to_raw(self.theta))

    def epoch(self, k):
        out = self.step(k)
        if out is None:
            return None
        new, new_loss, new_S = out
        sc, g2, theta = self.sc, self.g2, self.theta
        if self.quadratic:
            dec = 0.5 * float((g2 * self.S + g2 * new_S) @ (theta - new))
        else:  # losses from passes, accurate to the rounding of the residuals
            dec = self.loss - new_loss
        S_stop = new_S
        if sc.has_l1:
            new_pen1 = float(sc.lam1 @ np.abs(new))
            dec += self.pen1 - new_pen1
            self.pen1 = new_pen1
            # the proximal-gradient mapping: zero exactly at the penalized optimum
            step = self.step_size
            gm = (new - soft_threshold(new - step * g2 * new_S, step * sc.lam1)) / step
            S_stop = gm * sc.mask / g2
        self.theta, self.loss, self.S = new, new_loss, new_S
        self.history.append(self.loss + self.pen1)
        done = self.stop.update(dec, self.loss + self.pen1, S_stop)
        if done:
            self.reason = self.stop.reason
        return done

    def coef(self):
        return self.sc.to_raw(self.theta)

    def snapshot(self, k):
        state = {key: getattr(self, key) for key in RUN_STATE}
        state["history"] = np.asarray(self.history)
        state["stop"] = {key: getattr(self.stop, key) for key in STOP_STATE}
        state["n_passes"] = self.oracle.n_passes
        state["gram_from"] = int(getattr(self.base_oracle, "switched_at", None) or 0)
        state["epoch"] = k
        return state

    @property
    def base_oracle(self):
        """The oracle under the penalty's L2 part (:class:`~fastgd.solvers.oracles.Penalized`)."""
        return getattr(self.oracle, "base", self.oracle)

    def restore(self, state):
        for key in RUN_STATE:
            setattr(self, key, state[key])
        self.history = list(state["history"])
        for key in STOP_STATE:
            setattr(self.stop, key, state["stop"][key])
        base = self.base_oracle
        base.n_passes = state["n_passes"]
        if state.get("gram_from", 0) and hasattr(base, "resume_moved"):
            base.resume_moved(state["gram_from"])
        return state["epoch"]


class ConjugateGradient(BatchSolver):
    """Linear conjugate gradient (Polak-Ribiere+, restarted on a non-descent direction)
    with the exact line search of a quadratic: ``H p`` from the statistics (gram), or from
    the gradient at a trial point, one pass (stream; the next point's loss and gradient
    are interpolated from it when the step lands near it, :data:`TRIAL_REUSE`).

    On the statistics, a fit to a tolerance is preconditioned by the inverse of the
    penalized Gram matrix (:data:`PCG_MAX_D`): the same iterations, the same stopping
    rule, in one or two steps. A fit of a fixed number of epochs (``tol=None``) runs
    plain CG, whose trajectory the streaming path repeats to rounding."""

    name = "cg"
    quadratic_only = True
    handles_l1 = False
    takes_learning_rate = False

    def __init__(self, oracle, sc, theta, **kw):
        super().__init__(oracle, sc, theta, **kw)
        self.precondition = self.tol is not None and sc.d <= PCG_MAX_D
        self._R = None  # the preconditioner, once the statistics are there; False: none

    @property
    def learning_rate(self):
        return 1.0 / self.sc.L

    def preconditioner(self):
        """``R`` with ``R^T R`` the inverse of the penalized Gram matrix over the free
        parameters (zero elsewhere): ``R`` is the inverse of its Cholesky factor, so that
        ``R^T R`` is positive semidefinite however the matrix rounds, and every direction
        a descent direction. None where CG runs plain (see the class docstring), the
        statistics are not there yet, or the matrix is not positive definite to working
        precision. The preconditioner changes the directions only: the exact line search
        and the stopping rule are those of plain CG, and a poor one costs iterations, not
        accuracy."""
        if not self.precondition or self._R is False or self.oracle.hess is None:
            return None
        if self._R is None:
            sc = self.sc
            free = np.flatnonzero(sc.mask > 0.0)
            self._R = False
            if sc.Gpen is None or free.size == 0:
                return None
            try:
                inv = np.linalg.inv(np.linalg.cholesky(sc.Gpen[np.ix_(free, free)]))
            except np.linalg.LinAlgError:  # not positive definite in float64: plain CG
                return None
            if not np.isfinite(inv).all():
                return None
            R = np.zeros((free.size, sc.d + 1))
            R[:, free] = inv
            self._R = R
        return self._R

    def step(self, k):
        oracle, g2, theta, mask = self.oracle, self.g2, self.theta, self.sc.mask
        g = g2 * self.S
        R = self.preconditioner()
        z = g if R is None else R.T @ (R @ g)
        if self.p is None:
            p = -z
        else:
            g_old = self.g_old
            z_old = g_old if R is None else R.T @ (R @ g_old)
            zg_old = float(z_old @ g_old)
            b = float(z @ (g - g_old)) / zg_old if zg_old > 0.0 else 0.0
            p = -z + max(b, 0.0) * self.p
        p *= mask
        self.p = p
        gp = float(g @ p)
        if not gp < 0.0:  # not a descent direction: restart along -g
            p = self.p = -g * mask
            gp = float(g @ p)
            if not gp < 0.0:  # zero gradient: exactly at the optimum
                self.converged = self.tol is not None
                self.reason = "optimum: the gradient is exactly zero"
                return None
        t = self.t
        if oracle.hess is not None:  # gram: H p directly, O(d^2)
            Hp = oracle.hess(p)
        else:  # stream: one pass at a trial point; the gradient is affine in theta
            t_loss, t_S = oracle(theta + t * p)
            Hp = (g2 * t_S - g) / t
        pHp = float(p @ Hp)
        self.stop.curvature(pHp, float(p @ p))
        if not pHp > 0.0:  # no curvature left along p (rounding level)
            self.converged = self.tol is not None
            self.reason = "optimum: no curvature left along the search direction (rounding)"
            return None
        alpha = -gp / pHp
        new = theta + alpha * p
        if oracle.hess is None and abs(alpha - t) <= TRIAL_REUSE * t:
            # close to the trial point: interpolate from it (exact for a quadratic)
            new_g = g2 * t_S + (alpha - t) * Hp
            new_loss = t_loss + 0.5 * (alpha - t) * float((g2 * t_S + new_g) @ p)
            new_S = new_g / g2
        else:
            new_loss, new_S = oracle(new)
        self.g_old = g
        self.t = alpha
        return new, new_loss, new_S


class GradientDescent(BatchSolver):
    """Gradient descent with the step ``1 / L`` (or the user's); with an L1 penalty,
    proximal gradient (ISTA), accelerated (FISTA) by :class:`Nesterov`."""

    name = "gd"

    def step(self, k):
        if self.sc.has_l1:
            return self._proximal(k)
        g = self.g2 * self.S
        new = self.move(g)
        new = new * self.sc.mask + self.theta * (1.0 - self.sc.mask)
        new_loss, new_S = self.oracle(new)
        self.check(k, new_loss)
        self.moved(new)
        return new, new_loss, new_S

    def move(self, g):
        return self.theta - self.step_size * g

    def moved(self, new):
        self.prev = self.theta

    def _proximal(self, k):
        sc, step, theta = self.sc, self.step_size, self.theta
        g = self.g2 * self.S_y
        new = soft_threshold(self.y_pt - step * g, step * sc.lam1)
        new = new * sc.mask + theta * (1.0 - sc.mask)
        new_loss, new_S = self.oracle(new)
        self.check(k, new_loss)
        self.look_ahead(new, new_S)
        return new, new_loss, new_S

    def look_ahead(self, new, new_S):
        self.y_pt, self.S_y = new, new_S


class Momentum(GradientDescent):
    """Heavy-ball momentum with the optimal step and momentum of a quadratic of the
    problem's curvatures."""

    name = "momentum"
    handles_l1 = False

    def move(self, g):
        theta = self.theta
        return theta - self.step_size * g + self.beta * (theta - self.prev)


class Nesterov(GradientDescent):
    """Nesterov's accelerated gradient (look-ahead form: the tracked point is where the
    gradient is taken); with an L1 penalty, FISTA's extrapolated proximal steps."""

    name = "nesterov"

    def move(self, g):
        theta, beta, step = self.theta, self.beta, self.step_size
        v = theta - self.prev
        self._v_new = beta * v - step * g
        return theta + beta * self._v_new - step * g

    def moved(self, new):
        self.prev = new - self._v_new

    def look_ahead(self, new, new_S):
        sc = self.sc
        y_pt = new + self.beta * (new - self.theta)
        self.y_pt = y_pt * sc.mask + self.theta * (1.0 - sc.mask)
        _, self.S_y = self.oracle(self.y_pt)


#: the batch optimizers by the name ``optimizer=`` takes
OPTIMIZERS = {cls.name: cls for cls in (GradientDescent, Momentum, Nesterov, ConjugateGradient)}
