"""What the batch optimizers evaluate: the loss and its gradient sums at a point.

An oracle maps scaled parameters ``theta`` to ``(loss, S)``, ``S = sum_i w_i psi(r_i)
[x_s_i, 1]`` (the gradient is ``-2 norm S``): :class:`GramOracle` in O(d^2) from the
sufficient statistics (the squared loss), :class:`StreamOracle` by one pass of the source
(any loss, through an objective: :class:`Objective` for the squared loss, whose passes are
the fused kernels of its own, :class:`LossObjective` for another), :class:`Penalized` adds
the L2 part of the penalty. All present the same interface, so one optimizer loop drives
them and the gram and streaming trajectories agree to rounding.
"""
import math

import numpy as np

from .. import losses


class Objective:
    """Full-data loss and gradient of the (weighted) squared error, one fused pass.

    ``obj(coef)`` returns ``(loss, grad)`` with ``grad`` float64 ``(d + 1,)`` (the
    intercept's component last, zero when the intercept is not fitted). The pass is the
    source's :meth:`~fastgd.sources.Source.sse_grad` (which also proves the data finite
    on its first call, see there).
    """

    def __init__(self, source, reduction, fit_intercept):
        self.source = source
        self.mean = reduction == "mean"
        self.fit_intercept = fit_intercept

    @property
    def norm(self):
        return 1.0 / self.source.weight_total if self.mean else 1.0

    def sums(self, coef):
        """``[sum w r^2, sum w r, sum w r x_j ...]`` at ``coef``, block partials added in order."""
        return self.source.sse_grad(coef)

    def loss(self, coef):
        """The loss alone (the source's loss pass: no gradient where that saves work)."""
        return float(self.source.loss(coef, losses.get("squared"), 0.0) * self.norm)

    def __call__(self, coef):
        s = self.sums(coef)
        d = self.source.d
        norm = self.norm
        grad = np.empty(d + 1)
        grad[:d] = s[2:] * (-2.0 * norm)
        grad[d] = s[1] * (-2.0 * norm) if self.fit_intercept else 0.0
        return float(s[0] * norm), grad


def objective(source, plan, loss):
    """The objective of ``loss`` (a :class:`fastgd.losses.Loss`) over ``source``."""
    if loss.sufficient_statistics:
        return Objective(source, plan.reduction, plan.fit_intercept)
    return LossObjective(source, plan.reduction, loss, plan.epsilon)


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
    :class:`fastgd.solvers.oracles.Objective` (``sums``, ``loss``): ``sum w loss(r)`` reduced by
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
        """The loss alone (the source's loss pass: no gradient where that saves work)."""
        return float(self.source.loss(coef, self.loss_fn, self.epsilon) * self.norm)


class Penalized:
    """An oracle plus the L2 part of the penalty, ``0.5 sum lam2 theta^2`` (smooth)."""

    def __init__(self, base, sc):
        self.base, self.sc = base, sc
        self.obj = getattr(base, "obj", None)

    @property
    def hess(self):
        return None if self.base.hess is None else self._hess

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


#: :meth:`SwitchingOracle.predicted_passes`: from this many iterations, over the last
#: this many decreases of the loss
PREDICT_AFTER = 5
PREDICT_SPAN = 4


#: :meth:`SwitchingOracle.start`: CG runs on a sample of this many rows per
#: feature, spread over the data, before the first pass; only where those rows are at
#: most :data:`PROBE_MAX_FRACTION` of the data (their d x d product then costs that
#: fraction of the gram pass), and the fit moves at once when the sample's fit has not
#: converged after :data:`PROBE_FACTOR` times the passes the move is worth
PROBE_ROWS_PER_FEATURE = 4
PROBE_MAX_FRACTION = 1.0 / 32.0
PROBE_FACTOR = 2


def sample_fit(X, y, sw, sc, tol, cap):
    """CG on the least-squares fit of the rows ``X, y`` (weights ``sw``) in the
    coordinates of the streaming fit (``sc``'s centres, scales and mask: columns of unit
    variance, the intercept a column of ones), until an iteration lowers the loss by at
    most ``tol`` times its value or ``cap`` iterations have run. Returns ``(k, theta)``:
    the iterations (``cap + 1`` when not converged) and the last iterate in ``sc``'s
    scaled coordinates (the sample's optimum when converged); None where the sample
    decides nothing (no weight, products that are not finite, no curvature where there
    is a gradient).

    ``X`` (float64, a sample's own copy) is overwritten. The rows are scaled in float64
    (any magnitudes: ``sc`` brings the columns to unit variance, ``y`` is divided by its
    spread) and multiplied in float32, half the time of float64 (18 against 36 ms for
    4,000 x 1,000): the count needs the spectrum's shape, not its last digits; CG then
    runs in float64 on that symmetric matrix. Without an intercept ``y`` is not centred
    (the intercept stays where it is)."""
    m, d = X.shape
    W = float(sw.sum())
    if not W > 0.0 or m == 0:
        return None
    inv_s = 1.0 / sc.s
    Z = np.empty((m, d + 2), dtype=np.float32)
    np.multiply(X, inv_s, out=X)
    np.subtract(X, sc.m * inv_s, out=Z[:, :d], casting="same_kind")
    Z[:, d] = 1.0
    yc = sc.ybar if sc.fit_intercept else 0.0
    t = y - yc
    spread = math.sqrt(float(sw @ (t * t)) / W)
    ys = spread if spread > 0.0 and math.isfinite(spread) else 1.0
    np.multiply(t, 1.0 / ys, out=Z[:, d + 1], casting="same_kind")
    if not np.all(sw == 1.0):
        Z *= np.sqrt(sw).astype(np.float32)[:, None]
    A = (Z.T @ Z).astype(np.float64)  # [[H, b], [b^T, y^T y]]
    if not np.isfinite(A).all():
        return None
    mask = sc.mask
    H = A[:d + 1, :d + 1] * np.outer(mask, mask)
    b = A[:d + 1, d + 1] * mask
    loss = float(A[d + 1, d + 1])
    w = np.zeros(d + 1)
    r, p = b.copy(), b.copy()
    rr = float(r @ r)
    k = 0
    while k < cap:
        k += 1
        if not rr > 0.0:  # the sample's optimum, exactly
            break
        Hp = H @ p
        pHp = float(p @ Hp)
        if not pHp > 0.0:
            return None
        alpha = rr / pHp
        w += alpha * p
        r -= alpha * Hp
        loss -= alpha * rr  # CG's decrease of the loss at this step, exactly
        if alpha * rr <= tol * loss:
            break
        rr, rr_old = float(r @ r), rr
        p = r + (rr / rr_old) * p
    else:
        k = cap + 1
    # t ~ w . [x_s, 1]: in the fit's coordinates y ~ ys w . [x_s, 1] + yc
    theta = w * ys
    theta[d] += yc
    return k, theta


class SwitchingOracle:
    """A :class:`StreamOracle` that moves to the sufficient statistics once its passes
    reach ``after`` (about what the gram pass costs), or as soon as its loss history
    predicts more passes than that (:meth:`predicted_passes`): one pass gathers the full
    co-moments (:meth:`fastgd.solvers.Scaled.add_full`) and the evaluations from then on
    are :class:`GramOracle`'s, O(d^2) and no pass.

    Streaming CG's passes grow with the condition number of the data (about its square
    root), a gram pass costs the same whatever it is: a well-conditioned fit converges
    in fewer passes than ``after`` and never switches, an ill-conditioned one pays at most
    ``after`` passes more than the gram path (see :func:`fastgd._plan.gram_switch_after`).
    The switch happens between iterations: CG reads :attr:`hess` once at the start of
    each (its Hessian-vector products come from the statistics after the switch). Only
    stream passes count in :attr:`n_passes` (the moments pass counts in ``sc``), so that
    a checkpoint resumes with the same switch."""

    def __init__(self, stream, sc, source, after, tol=None):
        self.stream, self.sc, self.source, self.after = stream, sc, source, after
        self.tol = tol
        self.obj = stream.obj
        self.gram = None
        self.switched_at = None  # the stream passes before the switch
        #: the sample's CG iterations (:meth:`start`), None before or without
        self.sampled = None
        self.resumed_at = None  # the same, from a checkpoint (see resume_moved)
        #: the solver whose loss history predicts the passes left (set by the engine)
        self.solver = None

    def predicted_passes(self):
        """The passes the streaming fit would take in all, extrapolated from its last
        :data:`PREDICT_SPAN` decreases of the loss (CG's linear rate: each decrease a
        factor ``q`` of the one before) to the first below ``tol`` times the loss, or None
        before :data:`PREDICT_AFTER` iterations (or without a stopping rule, or when the
        decreases are not all positive). The threshold is taken at the current loss,
        which goes on falling: a slight underestimate (q = 0.95: 450 passes predicted,
        454 by the sequence). Measured (2 10^4 x 600, AR(1) columns; from the
        fifth iteration): rho = 0 predicted 11 iterations, took 11; rho = 0.5: 30, took
        30; rho = 0.9: 42 to 218, took 135; rho = 0.99: 49 to 229, took 315."""
        h = getattr(self.solver, "history", None)
        if self.tol is None or h is None or len(h) <= PREDICT_AFTER:
            return None
        dec = [h[i - 1] - h[i] for i in range(len(h) - PREDICT_SPAN, len(h))]
        if not min(dec) > 0.0:
            return None
        q = (dec[-1] / dec[0]) ** (1.0 / (PREDICT_SPAN - 1))
        done = self.stream.n_passes
        if not q < 1.0:
            return math.inf
        left = max(math.log(self.tol * abs(h[-1]) / dec[-1]) / math.log(q), 0.0)
        return done + left * done / (len(h) - 1)

    @property
    def n_passes(self):
        return self.stream.n_passes

    @n_passes.setter
    def n_passes(self, value):  # (a checkpoint's count, restored)
        self.stream.n_passes = value

    def resume_moved(self, passes):
        """A checkpoint of a fit that had moved after ``passes`` stream passes: move at
        the next iteration, whatever the history predicts now."""
        self.resumed_at = passes

    def start(self, theta, replace=True):
        """Probe the data before the first pass (the engine calls this once, before the
        solver's first evaluation; without the call the fit decides from its passes
        alone): CG on a sample of the rows
        (:func:`sample_fit`: :data:`PROBE_ROWS_PER_FEATURE` rows per feature, spread
        evenly). When it takes more than :data:`PROBE_FACTOR` times ``after`` iterations
        the fit moves to the statistics at once, without the passes the loss history needs
        first (5 to 8 passes of the whole data). Returns the point to start from: the
        sample's fit where ``replace`` (the caller's point is the default start) and the
        sample gave one, else ``theta``.

        A sample of ``m = 4 d`` rows is worse conditioned than the data (its spectrum
        spreads, as random matrices' do), so its fit takes more iterations than the
        streaming fit's passes where the data is well conditioned, about as many where it
        is not. Measured on AR(1) columns (sample iterations; streaming passes of the whole
        fit at 5 10^4 rows, see :data:`fastgd._plan.GRAM_SWITCH_MIN_PASSES`): d = 1000:
        rho = 0 29 (14), 0.5 55 (about 40), 0.9 232 (218 to 258), 0.99 over 400; d = 600:
        28, 53, 206, over 400. The threshold (``2 after``: 100 at d = 1000, 60 at d = 600)
        moves rho = 0.9 and 0.99 at once, never rho = 0; the rest is left to
        :meth:`predicted_passes`. The sample's optimum is a start much closer to the
        data's than zero (its excess loss about ``d / (m - d)`` of the noise's), which
        saves well-conditioned fits a few passes. The sample costs ``m d^2`` operations
        through BLAS (50 to 80 ms at d = 1000 on the 2-core reference machine) and is
        taken where its rows are at most :data:`PROBE_MAX_FRACTION` of the data and in
        memory; elsewhere the fit decides from its passes alone. It holds the sample
        (``4 d`` rows in float64, and in float32) and three ``(d + 2)^2`` matrices: about
        nine d x d matrices of float64, within the budget of the gram path it may move to
        (it runs only where that move is allowed, :func:`fastgd._plan.gram_switch_after`).
        The probe decides nothing about the answer: a wrong guess costs time, never
        accuracy."""
        src = self.source
        m = PROBE_ROWS_PER_FEATURE * src.d
        if (self.tol is None or self.resumed_at is not None or not src.rows_in_memory
                or src.sparse or src.n is None or m > PROBE_MAX_FRACTION * src.n):
            return theta
        cap = PROBE_FACTOR * self.after
        got = sample_fit(*src.sample(m), self.sc, self.tol, cap)
        if got is None:
            return theta
        self.sampled, start = got
        if self.sampled > cap:
            self._move()
        if not (replace and np.isfinite(start).all()):
            return theta
        mask = self.sc.mask
        return start * mask + theta * (1.0 - mask)

    def _due(self):
        if self.resumed_at is not None or self.stream.n_passes >= self.after:
            return True
        predicted = self.predicted_passes()
        return predicted is not None and predicted > self.after

    def _move(self):
        self.sc.add_full(self.source)
        self.gram = GramOracle(self.sc)
        self.switched_at = self.resumed_at or self.stream.n_passes

    @property
    def hess(self):
        if self.gram is None and self._due():
            self._move()
        return None if self.gram is None else self.gram.hess

    def __call__(self, theta):
        return self.stream(theta) if self.gram is None else self.gram(theta)


def batch_oracle(plan, source, sc, loss, switch_after=None):
    """The oracle of a batch fit by ``plan``: the sufficient statistics (``solver="gram"``,
    the squared loss) or a pass of ``loss`` per evaluation (moving to the statistics
    after ``switch_after`` passes, or when predicted: :class:`SwitchingOracle`; the plan's
    rule is :func:`fastgd._plan.gram_switch_after`), plus the penalty's L2 part."""
    if plan.solver == "gram":
        oracle = GramOracle(sc)
    else:
        oracle = StreamOracle(sc, objective(source, plan, loss))
        if switch_after is not None and source.reiterable:
            oracle = SwitchingOracle(oracle, sc, source, switch_after, plan.tol)
    if plan.alpha > 0.0 and plan.l1_ratio < 1.0:
        oracle = Penalized(oracle, sc)
    return oracle
