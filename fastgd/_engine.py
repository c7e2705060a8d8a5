"""Run a fit plan over a source: the engines behind every public entry point.

``run(plan, source, coef0)`` picks the engine the plan resolved (``plan.engine``) and
returns a :class:`fastgd.FitResult`. Engines see the plan and the source's passes only:
never an array, a file or a cluster.
"""
import contextlib
import dataclasses
import sys
import time
import warnings

import numpy as np

from . import _threads, losses, solvers
from ._callers import user_level
from ._checkpoint import ENGINES
from ._plan import gram_switch_after
from ._result import (
    ConvergenceWarning,
    DivergenceError,
    FitInterrupted,
    FitResult,
    IllConditionedWarning,
)
from ._validation import DataChanged, Magnitudes
from .sources import exponents, merge_moments, rescaled
from .sources.passes import GRAM_BLAS_MIN_D

#: columns whose largest magnitude lies within 2^-300 .. 2^300 need no new units
UNITS_SAFE_EXP = 300
EPS = float(np.finfo(np.float64).eps)
#: the automatic batch fit solves from the QR statistic (one more pass, and a loss pass)
#: when the estimated condition number of its scaled Hessian exceeds this: beyond, the
#: moments' rounding (kappa * eps) costs digits that lstsq keeps (measured in
#: bench/accuracy.py: ...)
KAPPA_QR = 1e8
#: the fit warns when even the QR solution's weights may be off by more than this
#: (relative; the bound of :func:`fastgd.solvers.qr_solve`)
COND_WARN_ERROR = 1e-6
#: a batch fit of at most this many features runs BLAS on one thread from its first pass
#: to its result (:func:`fastgd._threads.blas_single`), not only during its BLAS pass.
#: OpenBLAS's workers spin for a while after each call that used them: the d x d
#: factorizations after the pass (a Cholesky factor, its inverse, eigvalsh: about 1 ms
#: each at d = 200, no faster on two threads) woke them, and in the next fit's pass they
#: took a core from fastgd's threads. Repeated fits, best of 15, alternated, on the 2-core
#: reference machine (normal equations through BLAS beside): 2 10^4 x 200 29.5-31.6 ->
#: 23.2-23.5 ms (16-17.5), 4 10^4 x 300 112-114 -> 75-80 ms (79), 4 10^4 x 500 229-233 ->
#: 197-198 ms (170); 2 10^5 x 1000 (AR(1) rho = 0.9, best of 3) 3.38-3.40 -> 3.29-3.44 s
#: (2.45), where the factorizations (80 ms on one thread, 45 on two) are lost in the pass.
#: From :data:`fastgd.sources.passes.GRAM_BLAS_MIN_D` features only (the BLAS pass's): below,
#: OpenBLAS runs the tiny factorizations on one thread anyway, and setting the limit
#: (threadpoolctl) cost a fit of 100 x 1 about 6% (0.42 -> 0.45 ms).
BLAS_ONE_THREAD_MAX_D = 500


def _warn_ill_conditioned(cond, err):
    warnings.warn(
        f"the data are nearly collinear: the condition number of the scaled design is about "
        f"{cond:.2g}, so float64 data determine its least-squares weights only to about "
        f"{min(err, 1.0):.1g} (relative), for this fit as for numpy.linalg.lstsq; drop or "
        "combine nearly dependent columns, or add penalty='l2'",
        IllConditionedWarning, stacklevel=user_level(),
    )


def run(plan, source, coef0, *, callback=None, t0=None, progress=False, checkpoint=None,
        resume=None):
    """Fit ``source`` by ``plan`` from the raw parameters ``coef0`` (float64 ``(d + 1,)``:
    weights, then intercept). Raises :class:`fastgd.DivergenceError` (holding the last
    finite state) when the loss becomes non-finite or explodes, and
    :class:`fastgd.FitInterrupted` (holding the result so far) on Ctrl-C. ``progress``:
    True, False or "auto" (a bar on standard error, see :class:`_Monitor`)."""
    t0 = time.perf_counter() if t0 is None else t0
    if checkpoint is not None and plan.engine not in ENGINES:
        raise ValueError(
            f"checkpoints are written by the automatic fits (learning_rate='auto', or "
            f"scale=True); this fit runs the {plan.engine!r} engine (a numeric "
            "learning_rate on unscaled data). Use scale=True, or no checkpoint"
        )
    source.numpy_passes = plan.numpy_passes
    with _Monitor(callback, progress, plan, source) as monitor:
        res = _run(plan, source, coef0, monitor, t0, (checkpoint, resume))
    if monitor.interrupted:
        res = dataclasses.replace(
            res, stop_reason=f"interrupted: Ctrl-C during epoch {res.n_epochs + 1}; the fit "
                             f"stopped at the end of epoch {res.n_epochs}")
        raise FitInterrupted(
            f"fit interrupted (Ctrl-C) after epoch {res.n_epochs}; the parameters reached "
            "are in this exception's .result", res)
    return res


def _run(plan, source, coef0, callback, t0, ckpt):
    engine = {"textbook": _run_raw, "sgd_raw": _run_raw, "sgd_scaled": _run_sgd,
              "batch": _run_batch}[plan.engine]
    # Every intermediate overflow or 0/0 is caught where it matters (divergence checks,
    # the finiteness of the result below), so NumPy's RuntimeWarnings would only leak
    # noise, and under np.seterr(all="raise") turn a clear outcome into a
    # FloatingPointError from deep inside.
    with np.errstate(all="ignore"), _blas_threads(plan):
        try:
            try:
                res = engine(plan, source, coef0, callback, t0, *ckpt)
            except Magnitudes:
                res = _run_in_units(engine, plan, source, coef0, callback, t0, ckpt)
            _check_finite_result(res, source)
        except (DivergenceError, ValueError) as err:
            _check_unchanged(source, err)
            if isinstance(err, DivergenceError):
                _check_finite_result(err.result, source)
            raise
    return res


def _blas_threads(plan):
    """The context a fit of ``plan`` runs in: BLAS on one thread for a batch fit of
    ``GRAM_BLAS_MIN_D`` to :data:`BLAS_ONE_THREAD_MAX_D` features (see there), else nothing
    changed."""
    d = plan.facts.d
    if (plan.engine == "batch" and d is not None
            and GRAM_BLAS_MIN_D <= d <= BLAS_ONE_THREAD_MAX_D):
        return _threads.blas_single()
    return contextlib.nullcontext()


def _check_unchanged(source, err):
    """A fit that failed on data it had proved finite: if NaN or inf has appeared in the
    data since (written by a callback, or another thread), say that, not "diverged"."""
    if isinstance(err, DataChanged) or not (source.verified and source.reiterable):
        return
    source.verified = False
    try:
        source.check_finite()
    except DataChanged:  # a file rewritten: its own message says so
        raise
    except ValueError as exc:
        found = str(exc).split("; drop or impute")[0]
        raise ValueError(
            f"the data changed during the fit: they were finite when it began, and now "
            f"{found}. Do not write to X or y while a fit runs (e.g. from a callback or "
            "another thread); pass a copy if they must change"
        ) from None
    finally:
        source.verified = True


#: a fit takes over Ctrl-C once it has run this long (seconds)
WATCH_AFTER_S = 0.05


class _Monitor:
    """What runs after every epoch besides the user's callback: Ctrl-C and the progress
    bar. It is the callback the engines call (they stop when it returns False).

    * SIGINT (in the main thread, from the first epoch that ends 0.05 s into the fit):
      the first Ctrl-C asks the fit to stop at the end of the current epoch (``run`` then
      raises :class:`fastgd.FitInterrupted` with the result); a second one interrupts at
      once, as usual.
    * ``progress``: a tqdm bar on standard error (epochs, loss, rows per second).
      ``"auto"`` shows it on a terminal only, and only once the fit has run for a
      second; ``True`` always; ``False`` never. tqdm is optional: without it,
      ``progress=True`` is an ImportError naming the extra, ``"auto"`` shows nothing.
    """

    def __init__(self, callback, progress, plan, source):
        self.user = callback
        self.interrupted = False
        self.bar = None
        self.previous = None
        self.progress = progress
        self.total = plan.epochs
        self.rows = source.rows_known
        self.t = time.perf_counter()

    def _watch_ctrl_c(self):
        """Take over SIGINT (main thread only). Done after the first epoch that ends past
        :data:`WATCH_AFTER_S`: short fits never pay for it (two calls of
        ``signal.signal`` cost about as much as a 1000-row fit)."""
        import signal
        import threading

        self.watching = True
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._on_sigint)
            except (ValueError, OSError):  # not settable here (embedded interpreters)
                self.previous = None

    def __enter__(self):
        self.watching = False
        if self.progress is True or (self.progress == "auto" and sys.stderr.isatty()):
            try:
                from tqdm.auto import tqdm
            except ImportError:
                if self.progress is True:
                    raise ImportError('progress=True needs tqdm, an optional extra: '
                                      'pip install "fastgd[progress]"') from None
            else:
                self.bar = tqdm(total=self.total, unit="epoch", file=sys.stderr,
                                delay=0.0 if self.progress is True else 1.0, leave=False,
                                dynamic_ncols=True)
        return self

    def __exit__(self, *exc):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.bar is not None:
            self.bar.close()
        return False

    def _on_sigint(self, signum, frame):
        if self.interrupted:  # the second Ctrl-C: at once
            raise KeyboardInterrupt
        self.interrupted = True

    def __call__(self, epoch, coef, intercept, loss):
        if not self.watching and time.perf_counter() - self.t > WATCH_AFTER_S:
            self._watch_ctrl_c()
        if self.bar is not None:
            self.bar.update(1)
            now = time.perf_counter()
            post = {"loss": f"{loss:.6g}"}
            if self.rows:
                post["rows/s"] = f"{self.rows * epoch / max(now - self.t, 1e-9):.3g}"
            self.bar.set_postfix(post, refresh=False)
        if self.user is not None and self.user(epoch, coef, intercept, loss) is False:
            return False
        return not self.interrupted


def _rescalable(plan, source):
    """Whether extreme magnitudes may be fitted in power-of-two units: the scaled engines
    (whose iterations do not depend on the units of the columns) or an automatic rate,
    over a source that can be read again and is not in new units already."""
    return (source.units is None and source.reiterable
            and (plan.scaled or plan.learning_rate is None)
            and losses.get(plan.loss).scales_with_y)


def _run_in_units(engine, plan, source, coef0, callback, t0, ckpt=(None, None)):
    """Fit data whose magnitudes the sums of squares cannot hold (beyond about 1e120, or
    below about 1e-120, see :func:`fastgd._validation.check_statistics`).

    One max-abs pass gives each column of ``[X, y]`` a power of two ``2^e`` near its
    largest magnitude. The rows divided by those powers (exactly) are the same problem in
    other units: the weights of the fit on them are ``coef_j / 2^(ey - ex_j)`` and the
    intercept ``intercept / 2^ey``, the loss is the raw loss over ``2^(2 ey)``, the Huber
    threshold ``epsilon / 2^ey`` and the penalty's weights follow (see
    :class:`fastgd.solvers.Scaled`). The result is mapped back exactly; coefficients or a
    loss beyond float64's range are a clear ``ValueError``.
    """
    d = source.d
    e = exponents(source.max_abs())
    if np.all(np.abs(e) <= UNITS_SAFE_EXP):
        # ordinary magnitudes after all (zero or constant columns): the data as it is
        source.units = (np.zeros(d, dtype=np.int64), 0)
        return engine(plan, source, coef0, callback, t0, *ckpt)
    src = rescaled(source, e[:d], e[d])
    ex, ey = src.units
    shift = ey - ex
    c0 = np.empty_like(coef0)
    c0[:d] = np.ldexp(coef0[:d], -shift)
    c0[d] = np.ldexp(coef0[d], -ey)
    inner_plan = dataclasses.replace(plan, epsilon=float(np.ldexp(plan.epsilon, -ey)))
    cb = None
    if callback is not None:
        def cb(epoch, coef, intercept, loss):
            return callback(epoch, np.ldexp(coef, shift), float(np.ldexp(intercept, ey)),
                            float(np.ldexp(loss, 2 * ey)))
    try:
        res = engine(inner_plan, src, c0, cb, t0, *ckpt)
    except DivergenceError as err:
        err.result = _from_units(err.result, plan, shift, ey, source)
        raise
    return _from_units(res, plan, shift, ey, source)


def _from_units(res, plan, shift, ey, source):
    coef = np.ldexp(res.coef, shift)
    intercept = float(np.ldexp(res.intercept, ey))
    history = np.ldexp(res.loss_history, 2 * ey)
    big = [j for j in range(coef.shape[0]) if not np.isfinite(coef[j])]
    if big:
        j = big[0]
        raise ValueError(
            f"the fitted weight of X[:, {j}] is about 2^{int(np.frexp(res.coef[j])[1] + shift[j])}"
            ", beyond float64's range (1.8e308): that column's values are too small, or y's "
            "too large, for their ratio to be a float64; rescale them (e.g. multiply "
            f"X[:, {j}] by a power of two), fit, and scale the weight back"
        )
    if not np.isfinite(intercept) or not np.isfinite(history).all():
        raise ValueError(
            f"the loss of the fit is about 2^{int(np.frexp(res.loss_history[-1])[1] + 2 * ey)}, "
            "beyond float64's range (1.8e308): the residuals are as large as about "
            f"2^{(int(np.frexp(res.loss_history[-1])[1]) + 2 * ey) // 2}; divide y by a power "
            "of two (e.g. y * 2.0**-600), fit, and scale the coefficients back"
        )
    # the weights mapped back can lose bits the fit in units had (a weight near float64's
    # subnormal range): the reported loss is the loss of the weights returned, measured
    history[-1] = _raw_loss(plan, source, np.r_[coef, intercept])
    if not np.isfinite(history[-1]):
        raise ValueError(
            "the loss of the fit overflows float64 on the data as given: its residuals are "
            "beyond about 1e154; divide y by a power of two (e.g. y * 2.0**-600), fit, and "
            "scale the coefficients back"
        )
    return dataclasses.replace(res, coef=coef, intercept=intercept, loss_history=history,
                               plan=plan)


def _raw_loss(plan, source, coef):
    """The objective at the raw parameters ``coef`` (one pass over ``source``)."""
    loss = solvers.objective(source, plan, losses.get(plan.loss)).loss(coef)
    if plan.alpha > 0.0:
        w = coef[:-1]
        loss += plan.alpha * (plan.l1_ratio * float(np.abs(w).sum())
                              + 0.5 * (1.0 - plan.l1_ratio) * float(w @ w))
    return loss


def _check_finite_result(res, source):
    """A result is finite, or the fit raises: never NaN called converged."""
    if (np.isfinite(res.coef).all() and np.isfinite(res.intercept)
            and np.isfinite(res.loss_history).all()):
        return
    if not np.isfinite(res.loss_history[0]):
        raise ValueError(
            "the loss at the starting point is not finite in float64: the data's magnitudes "
            "(or init_coef / init_intercept) make the sums of squares overflow; start from "
            "smaller values, or rescale X and y (e.g. divide by a power of two) and scale "
            "the coefficients back"
        )
    raise ValueError(
        "the fit produced non-finite values: the sums of squares of this data overflow "
        "float64 (magnitudes beyond about 1e150 in X or y); rescale X and y, e.g. divide "
        "them by a power of two, and scale the coefficients back"
    )


def _result(plan, source, coef, history, converged, lr, t0, *, n_passes, reason=None):
    d = source.d
    return FitResult(
        coef=coef[:d], intercept=float(coef[d]), loss_history=np.asarray(history, dtype=np.float64),
        n_epochs=len(history) - 1, converged=bool(converged), mode=plan.mode,
        learning_rate=float(lr), elapsed_s=time.perf_counter() - t0, reduction=plan.reduction,
        one_d=source.one_d, solver=plan.solver, optimizer=plan.optimizer, n_passes=int(n_passes),
        scaled=plan.scaled, plan=plan, stop_reason=reason,
    )


def _divergence(exc, lr, last):
    last = dataclasses.replace(last, stop_reason=f"diverged: {exc.reason} in epoch {exc.epoch}")
    return DivergenceError(
        f"the fit diverged in epoch {exc.epoch} with learning_rate={lr:.6g} "
        f"({exc.reason}); use a smaller learning rate or learning_rate='auto'. The last "
        "finite state is in this exception's .result",
        epoch=exc.epoch, learning_rate=lr, result=last,
    )


def _run_raw(plan, source, coef, callback, t0, checkpoint=None, restart=None):
    """The textbook update on the raw data and its stochastic forms: a numeric rate (the
    automatic rate runs the other engines, :func:`fastgd._plan._rule_engine`)."""
    batch = plan.mode == "batch"
    if not batch:
        # plain SGD starts with an SGD epoch, which NaN can slip through: check first
        source.check_finite()
    lr = plan.learning_rate
    per_epoch = 1 if batch else 2  # stochastic: the SGD pass, then the loss pass
    obj = solvers.Objective(source, plan.reduction, plan.fit_intercept)
    if batch:
        solver = solvers.Textbook(obj, coef, lr, plan.tol)
    else:
        solver = solvers.PlainSGD(
            obj, coef, lr, plan.tol, batch_size=plan.batch_size, reduction=plan.reduction,
            fit_intercept=plan.fit_intercept, mixing=plan.mixing, shuffle=plan.shuffle,
            rng=plan.rng(), parallel=bool(plan.parallel))
    try:
        converged = solver.run(plan.epochs, callback)
    except solvers.Diverged as exc:
        last = _result(plan, source, exc.coef, exc.history, False, lr, t0,
                       n_passes=1 + per_epoch * (len(exc.history) - 1))
        raise _divergence(exc, lr, last) from None
    history = solver.history
    res = _result(plan, source, solver.coef(), history, converged, lr, t0,
                  n_passes=1 + per_epoch * (len(history) - 1), reason=solver.reason)
    if plan.tol is not None and not converged and res.n_epochs >= plan.epochs:
        advice = ["raise epochs", "loosen tol"]
        advice.append("or use learning_rate='auto' ("
                      + ("scaled conjugate gradient: the optimum in a few passes)" if batch else
                         "scaled SGD with a safe rate and averaging)"))
        warnings.warn(
            f"the fit did not converge in epochs={plan.epochs} (relative loss change over the "
            f"last epoch above tol={plan.tol:g}); " + ", ".join(advice),
            ConvergenceWarning, stacklevel=user_level(),
        )
    _warn_if_worse(plan, source, res, lambda: 2.0 * solvers.auto_learning_rate(
        source, plan.mode, plan.reduction, plan.fit_intercept, plan.batch_size))
    return res


def _run_sgd(plan, source, coef, callback, t0, checkpoint=None, restart=None):
    """Stochastic modes with scaling, schedules, averaging, early stopping, penalties,
    other losses, serial or parameter mixing. The moments pass comes first and proves the
    data finite."""
    sc = solvers.Scaled(source, plan.reduction, plan.fit_intercept, plan.scaled, plan.alpha,
                        plan.l1_ratio, full=False, rescalable=_rescalable(plan, source))
    passes = 1
    eta0 = plan.learning_rate
    if eta0 is None:
        eta0 = solvers.auto_eta0(source, sc, plan.reduction, plan.batch_size,
                                 losses.get(plan.loss))
        passes += 1
    solver = solvers.StochasticSolver(source, plan, sc, sc.to_scaled(coef), eta0, plan.rng())
    try:
        converged = solver.run(plan.epochs, callback, checkpoint, restart)
    except solvers.Diverged as exc:
        last = _result(plan, source, exc.coef, exc.history, False, eta0, t0,
                       n_passes=passes + 2 * (len(exc.history) - 1))
        raise _divergence(exc, eta0, last) from None
    res = _result(plan, source, solver.coef(), solver.history, converged, eta0, t0,
                  n_passes=passes + solver.n_passes, reason=solver.reason)
    if plan.tol is not None and not converged and res.n_epochs >= plan.epochs:
        advice = ["raise epochs (this fit ran all of them)", "loosen tol"]
        if plan.average is False:
            advice.append("average the iterates (average=True: less noise at the end)")
        if plan.learning_rate is not None:
            advice.append("try learning_rate='auto'")
        advice.append("or, for the exact optimum of data that fits in a pass, mode='batch'")
        warnings.warn(
            f"the {plan.mode} fit did not meet its stopping rule in epochs={plan.epochs} "
            f"(the loss still improved by more than tol={plan.tol:g}, relative, within "
            f"n_iter_no_change={plan.n_iter_no_change} epochs): " + ", ".join(advice)
            + "; tol=None runs exactly epochs without this warning",
            ConvergenceWarning, stacklevel=user_level(),
        )
    _warn_if_worse(plan, source, res, lambda: 2.0 * solvers.auto_eta0(
        source, sc, plan.reduction, plan.batch_size, losses.get(plan.loss)))
    return res


def run_partial(plan, source, coef0, state):
    """One epoch of a stochastic mode over ``source``, continuing ``state`` (a dict; empty
    on the first call): the engine of ``GDRegressor.partial_fit``. ``state`` is updated
    only when the call succeeds: a call that raises leaves it as it was.

    What carries from call to call: the parameters, the running average and the step
    count; the weighted moments of every row seen (merged pairwise, as blocks are), from
    which the scaling comes (with ``scale``); and the automatic rate, the smallest of the
    calls' safe rates (each call's :func:`fastgd.solvers.auto_eta0` over its own rows, in the
    coordinates of the merged moments): safe for every row seen, and never growing. When
    a call's rows change the scaling (the first call had one row, or a column constant
    over its rows), the parameters and their average move to the new coordinates through
    the raw ones: the same model, in the units the rows now call for (and when the scaling
    changes materially, see :func:`_rescaled_materially`, the running average starts
    again there). So no call fixes the problem's statistics for the calls after it.
    Without scaling the coordinates
    never change, and with a numeric rate calls on consecutive parts of the rows take the
    steps of one call on the whole (``shuffle=False``).

    Returns the :class:`fastgd.FitResult` of this call's epoch (its loss history: this
    call's rows before and after the epoch)."""
    t0 = time.perf_counter()
    d = source.d
    with np.errstate(all="ignore"):
        W, mean, m2 = source.moments(full=False)
        if state:
            W0, mean0, m20 = state["moments"]
            rows = np.stack([np.r_[W0, mean0, m20], np.r_[W, mean, m2]])
            W, mean, m2 = merge_moments(rows, d + 1, False)
        sc = solvers.Scaled(source, plan.reduction, plan.fit_intercept, plan.scaled,
                            plan.alpha, plan.l1_ratio, full=False, moments=(W, mean, m2))
        eta0 = plan.learning_rate
        if eta0 is None:
            eta0 = solvers.auto_eta0(source, sc, plan.reduction, plan.batch_size,
                                     losses.get(plan.loss))
            if state:
                eta0 = min(eta0, state["eta0"])
        carry = {}
        if state:
            carry = dict(state["sgd"])
            old = state["sc"]
            if not (np.array_equal(old.m, sc.m) and np.array_equal(old.s, sc.s)):
                carry["state"] = np.stack([sc.to_scaled(old.to_raw(row))
                                           for row in carry["state"]])
                if _rescaled_materially(old, sc):
                    # the rows so far described another problem (a column constant over
                    # them, a single row): the average of the iterates on it would keep
                    # their error for many calls (one 500-row call with a constant column,
                    # then 20,000 rows: 500x the optimal loss averaged, 1.1x restarted);
                    # averaging starts again from here (an "average=k" start not yet
                    # reached stays as it is)
                    carry["state"][1] = carry["state"][0]
                    carry["avg_start"] = max(carry["avg_start"], float(carry["t"]))
        solver = solvers.StochasticSolver(source, plan, sc, sc.to_scaled(coef0), eta0,
                                          plan.rng(), tol=None, carry=carry)
        try:
            solver.run(1)
        except solvers.Diverged as exc:
            last = _result(plan, source, exc.coef, exc.history, False, eta0, t0, n_passes=2)
            err = _partial_divergence(exc, plan, eta0, last)
            _check_finite_result(err.result, source)
            raise err from None
        res = _result(plan, source, solver.coef(), solver.history, False, eta0, t0,
                      n_passes=solver.n_passes, reason="epochs: one epoch of partial_fit")
        _check_finite_result(res, source)
        sgd = solver.carried()
    state.update(moments=(W, mean, m2), sc=sc, eta0=eta0, sgd=sgd)
    return res


#: partial_fit: the scaling of a column changed "materially" when its scale changes by
#: more than this factor either way, or its centre moves by more than its new scale: a
#: stream of rows from one distribution moves neither after its first calls (their
#: estimates converge), a first call of a few rows or with a constant column does
RESCALE_FACTOR = 2.0


def _rescaled_materially(old, new):
    ratio = new.s / old.s
    return bool(np.any(ratio > RESCALE_FACTOR) or np.any(ratio < 1.0 / RESCALE_FACTOR)
                or np.any(np.abs(new.m - old.m) > new.s))


def _partial_divergence(exc, plan, eta, last):
    """The divergence of one ``partial_fit`` call, with advice for ``partial_fit``."""
    if plan.learning_rate is not None:
        advice = ("use a smaller learning_rate, or learning_rate='auto' (a rate safe for the "
                  "rows of every call, computed as they arrive)")
    else:
        advice = ("the automatic rate is safe for every row seen, so this call's rows are far "
                  "outside those before (an extreme row, or magnitudes float64 cannot square): "
                  "check them, or standardize X (e.g. a StandardScaler fitted on a "
                  "representative sample) before partial_fit")
    return DivergenceError(
        f"partial_fit diverged on this call's rows (epoch {exc.epoch}) with learning_rate="
        f"{eta:.6g} ({exc.reason}); {advice}. The estimator keeps its state from before this "
        "call; the last finite state of this call is in this exception's .result",
        epoch=exc.epoch, learning_rate=eta, result=last,
    )


def _run_batch(plan, source, coef, callback, t0, checkpoint=None, restart=None):
    """Batch optimizers in scaled coordinates: the gram path (iterations on the
    sufficient statistics) or the streaming path (one pass per evaluation)."""
    loss = losses.get(plan.loss)
    quadratic = loss.sufficient_statistics  # the squared loss (CG, gram, QR, refinement)
    sc = solvers.Scaled(source, plan.reduction, plan.fit_intercept, plan.scaled, plan.alpha,
                        plan.l1_ratio, full=plan.full_moments,
                        rescalable=_rescalable(plan, source))
    oracle = solvers.batch_oracle(plan, source, sc, loss, gram_switch_after(plan))
    theta0 = sc.to_scaled(coef)
    base = getattr(oracle, "base", oracle)
    if isinstance(base, solvers.SwitchingOracle):
        # a sample of the rows may move the fit to the statistics at once, and gives a
        # start closer than zero (not where the user gave one, or a checkpoint will)
        theta0 = base.start(theta0, replace=restart is None and not np.any(coef))
    solver = solvers.OPTIMIZERS[plan.optimizer](
        oracle, sc, theta0, lr=plan.learning_rate, tol=plan.tol,
        n_iter_no_change=plan.n_iter_no_change, loss=loss, epsilon=plan.epsilon)
    lr_used = solver.learning_rate
    switching = solver.base_oracle
    if not isinstance(switching, solvers.SwitchingOracle):
        switching = None
    else:
        switching.solver = solver  # its loss history predicts the passes left
    try:
        converged = solver.run(plan.epochs, callback, checkpoint, restart)
    except solvers.Diverged as exc:
        last = _result(plan, source, exc.coef, exc.history, False, lr_used, t0,
                       n_passes=sc.n_passes + oracle.n_passes)
        raise _divergence(exc, lr_used, last) from None
    theta, history, stop = solver.theta, np.asarray(solver.history), solver.stop
    reason = solver.reason
    if switching is not None and switching.switched_at is not None and reason:
        if switching.switched_at == 0 and switching.sampled is not None:
            reason += (" (CG on a sample of the rows took more than "
                       f"{switching.sampled - 1} iterations: the fit moved to the d x d "
                       "statistics before its first streaming pass; see "
                       "fastgd.solvers.oracles.SwitchingOracle.start)")
        else:
            reason += (f" (streaming CG moved to the d x d statistics after "
                       f"{switching.switched_at} passes: see fastgd._plan.gram_switch_after)")
    passes = sc.n_passes + oracle.n_passes
    kappa = solvers.condition(sc, stop)
    if (plan.tol is not None and quadratic and not sc.has_l1 and source.reiterable
            and kappa > KAPPA_QR):
        # ill-conditioned: the statistics (and the iterations on them) lose
        # kappa * eps; the one-pass QR statistic solves with lstsq's accuracy, and a loss
        # pass reports the loss of the solution itself
        theta, cond, err = solvers.qr_solve(sc, source, theta)
        obj = solvers.Objective(source, plan.reduction, plan.fit_intercept)
        history[-1] = obj.loss(sc.to_raw(theta)) + 0.5 * float(sc.lam2 @ (theta * theta))
        passes += 2
        converged = True
        reason = (f"optimum: solved from the QR factor of the data (ill-conditioned: "
                  f"condition number about {cond:.2g})")
        if err > COND_WARN_ERROR:
            _warn_ill_conditioned(cond, err)
    elif converged and quadratic and sc.G is not None and source.reiterable:
        # one more pass: the exact gradient from the residuals and a Newton correction
        # (a one-shot stream of blocks has been read already: the fit ends on the
        # statistics, see fastgd.fit_chunks)
        obj = solvers.Objective(source, plan.reduction, plan.fit_intercept)
        theta, history[-1], n = solvers.refine(sc, obj, theta, history[-1])
        passes += n
    res = _result(plan, source, sc.to_raw(theta), history, converged, lr_used, t0,
                  n_passes=passes, reason=reason)
    if plan.tol is not None and not converged and res.n_epochs >= plan.epochs:
        warnings.warn(
            f"the fit did not converge in epochs={plan.epochs} (relative loss decrease "
            f"{stop.last_rel:.3g}, largest gradient cosine {stop.last_cos:.3g}; tol={plan.tol:g} "
            f"asks for <= {plan.tol:g} and <= {stop.gtol:.3g}); "
            + ", ".join(_batch_advice(plan, quadratic, sc.has_l1)),
            ConvergenceWarning, stacklevel=user_level(),
        )
    if plan.learning_rate is not None:
        # gradient descent's limit 2/L (L: the loss's largest curvature, from the moments)
        _warn_if_worse(plan, source, res, lambda: 2.0 / (sc.L * loss.curvature / 2.0))
    return res


def _batch_advice(plan, quadratic, has_l1):
    """What may make a batch fit that ran out of epochs converge, from the plan that ran
    (never advice it followed already)."""
    advice = ["raise epochs"]
    cg_allowed = quadratic and not has_l1
    if plan.optimizer != "cg" and cg_allowed:
        advice.append("use optimizer='cg'"
                      + (" (with learning_rate='auto')" if plan.learning_rate is not None
                         else "") + ": the fewest passes on the squared loss")
    elif plan.optimizer not in ("cg", "nesterov") and not cg_allowed:
        advice.append("use optimizer='nesterov' (accelerated)")
    if not plan.scaled:
        advice.append("use scale=True (steps fitted to each column's scale)")
    if plan.learning_rate is not None and plan.optimizer != "cg":
        advice.append("leave learning_rate='auto' (the step from the data's curvature)")
    advice.append("or loosen tol")
    return advice


#: a numeric learning rate "made the fit worse" when the final loss is above the starting
#: loss, or this many times the best loss the fit reached
WORSE_FACTOR = 10.0


def _warn_if_worse(plan, source, res, stable_limit):
    """A numeric learning rate whose fit ended worse than it began (or far above the best
    loss it reached): warn, with the stable limit of this data (``stable_limit()``: a
    pass over the data, made only here) and the automatic rate as the way out."""
    if plan.learning_rate is None or res.n_epochs == 0:
        return
    h = res.loss_history
    final, start, best = float(h[-1]), float(h[0]), float(h.min())
    if not (final > start or final > WORSE_FACTOR * best):
        return
    what = ("above its starting loss" if final > start else
            f"{final / best:.3g} times the best loss it reached")
    ref = start if final > start else best
    try:
        limit = float(stable_limit())
    except (ValueError, ArithmeticError):  # statistics beyond float64: no figure to give
        limit = float("nan")
    where = ("above" if plan.learning_rate > limit else "within") if limit == limit else "near"
    how = ("2/L, with L the loss's largest curvature, from the data's moments"
           if plan.mode == "batch" else
           "twice the rate at which no single step overshoots its rows, from the largest "
           "row norm")
    warnings.warn(
        f"the fit ended with a loss of {final:.6g}, {what} ({ref:.6g}): learning_rate="
        f"{plan.learning_rate:g} is {where} the stable limit for this data, about {limit:.3g} "
        f"({how}); use a smaller rate, or learning_rate='auto' (the step from the data)",
        ConvergenceWarning, stacklevel=user_level(),
    )
