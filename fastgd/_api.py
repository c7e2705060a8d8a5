"""Public functions: :func:`fit`, :func:`mse`, :func:`sse`."""
import time
import warnings

import numpy as np

from . import _drivers, _optim, _sgd
from . import _validation as V
from ._result import ConvergenceWarning, DivergenceError, FitResult

DEFAULT_BATCH_SIZE = 256
#: epochs when the user gives none: the textbook/stochastic runs, then the caps of the
#: automatic batch fit (an iteration on the gram path costs O(d^2), a streaming one a pass).
DEFAULT_EPOCHS = 100
DEFAULT_EPOCHS_GRAM = 10_000
DEFAULT_EPOCHS_STREAM = 1_000
#: default ``tol`` of the automatic batch fit: relative loss decrease per epoch, with the
#: gradient cosine at most ``sqrt(tol)`` (see :mod:`fastgd._optim`).
DEFAULT_TOL = 1e-12
#: default ``tol`` of the adaptive schedule and early stopping (relative improvement).
SGD_TOL = 1e-4
#: the gram path is chosen by ``solver="auto"`` up to this many features: its moments
#: pass costs O(n d^2) once, against O(n d) per streaming CG pass. Measured at n = 2e5
#: (well-conditioned data, default fit, 2 cores): d = 16 gram 43 ms / stream 80 ms,
#: d = 32 72 / 82 ms, d = 50 128 / 95 ms, d = 100 536 / 171 ms. Ill-conditioned data
#: needs more streaming passes, so past the tie the gram path stays one keyword away.
GRAM_MAX_D = 32
#: up to this many features the streaming solver also gathers the full co-moments (their
#: pass costs about as much as the per-column one while it is memory-bound), which lets
#: it finish with the Newton refinement (NIST Wampler1: 5.5 -> 10.5 digits). Above, it
#: gathers per-column moments only: O(n d) instead of O(n d^2).
STREAM_FULL_MOMENTS_MAX_D = 16


def fit(X, y, *, mode="batch", learning_rate="auto", epochs=None, batch_size=None, tol="auto",
        fit_intercept=True, sample_weight=None, init_coef=None, init_intercept=0.0,
        reduction="mean", parallel="auto", shuffle=True, random_state=None, callback=None,
        scale="auto", solver="auto", optimizer="auto", n_iter_no_change=1, penalty=None,
        alpha=1e-4, l1_ratio=0.15, learning_rate_schedule="constant", power_t=0.25,
        average="auto", early_stopping=False, validation_fraction=0.1, loss="squared",
        epsilon=0.1):
    """Fit ``y = X @ coef + intercept`` by gradient descent on the squared error.

    Parameters
    ----------
    X : array_like, shape (n,) or (n, d)
        1-D for one feature (``y = m x + c``), 2-D for multiple regression. float32 and
        float64 C-contiguous arrays (read-only ones and memmaps included) are used as
        they are; other layouts and integer/bool dtypes are converted once (a copy).
    y : array_like, shape (n,)
        Targets. If its float dtype differs from X's, both are used as float64.
    mode : {"batch", "minibatch", "sgd"}
        ``"batch"``: one full-gradient step per epoch. ``"minibatch"``: steps on
        ``batch_size`` rows. ``"sgd"``: one row per step.
    learning_rate : float or "auto"
        A positive float is used exactly as given (on the raw data unless ``scale=True``:
        the textbook update). ``"auto"``: batch mode fits in scaled coordinates with
        ``optimizer="cg"`` (see ``scale``, ``optimizer``); with ``optimizer`` gd,
        momentum or nesterov the step is ``1/L`` of the (scaled) problem, which never
        diverges. Stochastic modes use ``1 / (2 s max_i w_i ||[x_i, 1]||^2)``, for which
        no single update can overshoot (``s = n / sum(w)`` for the mean loss, the batch
        size for the sum), computed in the coordinates the fit runs in (scaled ones by
        default, see ``scale``). See ``FitResult.learning_rate``.
    epochs : int >= 1, optional
        The number of epochs when ``tol`` is None, else a cap. Default: 100, except for
        the automatic batch fit (``learning_rate="auto"``): 10,000 on the gram path
        (an iteration costs O(d^2)), 1,000 on the streaming path.
    batch_size : int, optional
        Rows per step in ``"minibatch"`` mode (default 256, at most n). Must be None
        (or 1) in ``"sgd"`` mode and None in ``"batch"`` mode.
    tol : float, None or "auto"
        None runs exactly ``epochs``. ``"auto"`` (default): ``1e-12`` for the automatic
        batch fit, None otherwise. Textbook runs (numeric rate, no scaling) and the
        stochastic modes stop when the relative change of the loss over an epoch falls
        to ``tol``. The other batch fits stop when the loss decrease over each of the
        last ``n_iter_no_change`` epochs is at most ``tol`` times the loss AND the
        largest gradient cosine (the cosine between the residual and each scaled
        column, intercept included: zero exactly at the optimum) is at most
        ``sqrt(tol)``; they then make one refinement pass (exact gradient from the data,
        Newton correction from the sufficient statistics). ``converged=True`` when this
        happened; a ``ConvergenceWarning`` says what to change when ``epochs`` ran out.
    fit_intercept : bool
        Fit ``intercept``; when False it stays at ``init_intercept``.
    sample_weight : array_like, shape (n,), optional
        Non-negative weights, not all zero, in the loss and gradient. The mean loss is
        ``sum(w r^2) / sum(w)``; the stochastic modes step along the unbiased estimate of
        its gradient, ``(n / sum(w)) * mean over the batch of w_i g_i``.
    init_coef : array_like, shape (d,), optional
        Starting weights (default zeros).
    init_intercept : float
        Starting intercept.
    reduction : {"mean", "sum"}
        ``"mean"``: loss ``mean(r^2)``, gradient ``-(2/n) sum r x``. ``"sum"``: the SSE
        and its gradient ``-2 sum r x``.
    parallel : bool or "auto"
        Batch mode: False runs the serial kernel, True the parallel one (bit-identical
        results), ``"auto"`` goes parallel from ``n > 65_536`` rows (three chunks of
        32,768; measured) with more than one numba thread. Stochastic modes: True runs
        parameter mixing (each of up to 8 fixed parts of the permutation runs its own SGD pass from the same start; the
        parts are averaged in order each epoch), a different algorithm from serial SGD
        with its own convergence behaviour, bit-identical for a seed whatever the thread
        count; False and ``"auto"`` run plain serial SGD (``"auto"`` still evaluates the
        per-epoch loss in parallel).
    shuffle : bool
        Stochastic modes: visit rows in a fresh permutation each epoch.
    random_state : int, numpy Generator or None
        Seed of the permutations; the same seed gives bit-identical results.
    callback : callable, optional
        ``callback(epoch, coef, intercept, loss)`` after every epoch; returning
        ``False`` stops the fit.

    scale : bool or "auto"
        Fit in standardized coordinates ``(x - mean) / std`` (weighted;
        ``x / rms`` without intercept, where centring would change the model), from the
        moments pass, without copying the data. Coefficients, intercept and losses are
        reported in the original units. ``"auto"``: on for ``learning_rate="auto"``,
        off for a numeric rate (the textbook update stays exactly reproducible), and off
        for stochastic modes with ``parallel=True`` (parameter mixing of plain SGD).
    solver : {"auto", "stream", "gram"}
        Batch mode, when not the textbook update: ``"gram"`` iterates on the
        sufficient statistics (weighted means and centred co-moments of ``[X, y]``,
        gathered in one compiled pass): O(d^2) per iteration, same trajectory as
        ``"stream"`` to rounding. ``"stream"``: one pass over the data per epoch.
        ``"auto"``: gram up to 32 features (measured: where the two cost the same on
        well-conditioned data), stream above; ``"gram"`` is the robust choice for
        ill-conditioned data at any d (its cost: one O(n d^2) pass).
    optimizer : {"auto", "gd", "momentum", "nesterov", "cg"}
        Batch mode. ``"cg"``: conjugate gradient with exact line search (the default
        with ``learning_rate="auto"``: fewest passes, measured); ``"gd"`` (the default
        with a numeric rate); ``"momentum"`` (heavy ball) and ``"nesterov"`` with their
        optimal parameters from the extreme eigenvalues of the scaled Gram matrix.
    n_iter_no_change : int >= 1
        Epochs without a relative improvement above ``tol`` needed to stop (default 1).
    penalty : {None, "l2", "l1", "elasticnet"}
        Batch mode. Minimizes ``loss + alpha * (l1_ratio * ||coef||_1 + (1 - l1_ratio)
        / 2 * ||coef||^2)`` with ``loss`` per ``reduction`` and ``coef`` in the ORIGINAL
        units (never the intercept), whatever ``scale`` does internally, so the answer
        does not depend on ``scale``. ``"l2"`` sets ``l1_ratio=0``, ``"l1"``
        ``l1_ratio=1``. With the mean loss this is scikit-learn's ``ElasticNet`` /
        ``Lasso`` with ``alpha_sklearn = alpha / 2``; with ``reduction="sum"`` and
        ``"l2"``, ``Ridge`` with ``alpha_sklearn = alpha / 2``. L1 runs proximal gradient
        (soft thresholding; ``optimizer="nesterov"``, accelerated, by default, or
        ``"gd"``). ``loss_history`` then holds the penalized objective.
        In the stochastic modes every step adds the penalty's gradient (L2) and takes the
        soft-threshold step (L1).
    alpha : float >= 0
        Penalty strength (default 1e-4; used only with ``penalty``).
    l1_ratio : float in [0, 1]
        The L1 share of ``"elasticnet"`` (default 0.15).
    learning_rate_schedule : {"constant", "invscaling", "adaptive"}
        Stochastic modes (scikit-learn's meanings; ``t`` counts the steps of the whole
        fit from 1): ``eta0``; ``eta0 / t ** power_t``; or ``eta0`` divided by 5 each
        time ``n_iter_no_change`` consecutive epochs fail to improve the monitored loss
        by more than ``tol`` (relative), stopping once below ``1e-6 eta0``.
    power_t : float >= 0
        Exponent of ``"invscaling"`` (default 0.25).
    average : bool, int or "auto"
        Stochastic modes: report the running average of the iterates (averaged SGD),
        updated after every step; an int ``k`` starts averaging after ``k`` steps.
        ``"auto"``: on for ``mode="sgd"`` with ``learning_rate="auto"`` (serial), else
        off (a mini-batch epoch has too few steps for the average to forget its start).
    early_stopping : bool
        Stochastic modes: hold out ``validation_fraction`` of the rows (drawn from
        ``random_state``), train on the rest, and monitor the validation loss for
        ``tol`` / ``n_iter_no_change`` (``tol="auto"`` means 1e-4 here and for the
        adaptive schedule).
    validation_fraction : float in (0, 1)
        Share of rows held out by ``early_stopping`` (default 0.1).
    loss : {"squared", "huber"}
        ``"huber"``: ``r^2`` for ``|r| <= epsilon``, ``2 epsilon |r| - epsilon^2``
        beyond (the squared loss in the middle, linear in the tails: robust to
        outliers). Batch mode runs it on the streaming path (``optimizer`` nesterov by
        default, gd or momentum); the stochastic modes clip the residual at
        ``epsilon`` in every step.
    epsilon : float > 0
        The Huber threshold, in the units of ``y`` (default 0.1).
    Returns
    -------
    FitResult

    Raises
    ------
    ValueError, TypeError
        Bad input, with what was wrong and how to fix it, before any result exists.
        Shapes, dtypes and parameters are checked before any kernel runs; NaN/inf in
        ``X`` or ``y`` is found by the fit's first pass over the data in batch mode and
        the scaled stochastic modes (no separate pass), up front otherwise.
    DivergenceError
        The loss became non-finite or exploded; ``.result`` holds the last finite state.

    Examples
    --------
    >>> import numpy as np, fastgd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, 10_000)
    >>> y = 3.0 * x + 0.5 + rng.normal(0, 0.01, x.size)
    >>> res = fastgd.fit(x, y)
    >>> round(res.slope, 2), round(res.intercept, 2), res.converged, res.solver, res.optimizer
    (3.0, 0.5, True, 'gram', 'cg')
    """
    t0 = time.perf_counter()
    mode_code = V.check_choice(mode, "mode", V.MODES)
    V.check_choice(reduction, "reduction", V.REDUCTIONS)
    if epochs is not None:
        epochs = V.check_int(epochs, "epochs", 1)
    if not (isinstance(tol, str) and tol == "auto"):
        tol = V.check_positive_float(tol, "tol", allow_none=True)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise TypeError(f"fit_intercept must be True or False, got {fit_intercept!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    if isinstance(learning_rate, str):
        if learning_rate != "auto":
            raise ValueError(
                f"learning_rate must be a positive number or 'auto', got {learning_rate!r}"
            )
    else:
        learning_rate = V.check_positive_float(learning_rate, "learning_rate")
    if parallel not in ("auto", True, False):
        raise ValueError(f"parallel must be True, False or 'auto', got {parallel!r}")
    lr_auto = learning_rate == "auto"
    scale = V.check_flag_or_auto(scale, "scale")
    V.check_choice(solver, "solver", _optim.SOLVERS)
    V.check_choice(optimizer, "optimizer", {"auto": -1, **_optim.OPTIMIZERS})
    n_iter_no_change = V.check_int(n_iter_no_change, "n_iter_no_change", 1)
    if penalty is not None:
        V.check_choice(penalty, "penalty", _optim.PENALTIES)
    alpha = V.check_nonnegative_float(alpha, "alpha")
    l1_ratio = V.check_fraction(l1_ratio, "l1_ratio")
    if penalty is None:
        alpha = 0.0
    elif penalty != "elasticnet":
        l1_ratio = 1.0 if penalty == "l1" else 0.0
    V.check_choice(learning_rate_schedule, "learning_rate_schedule", _sgd.SCHEDULES)
    power_t = V.check_nonnegative_float(power_t, "power_t")
    if isinstance(average, str) and average == "auto":
        # on for per-row SGD only: a mini-batch epoch has n / batch_size steps, and an
        # average over few steps keeps the early iterates' error (5,000 rows, batch 256,
        # 5 epochs: coefficients 20% short averaged, 1% short without)
        average = 0 if (lr_auto and mode_code == 2 and parallel is not True) else False
    elif not isinstance(average, (bool, np.bool_)):
        if isinstance(average, str):
            raise ValueError(f"average must be True, False, 'auto' or an int >= 1, got {average!r}")
        average = V.check_int(average, "average", 1)
    elif average:
        average = 0  # average every step from the first
    else:
        average = False
    if not isinstance(early_stopping, (bool, np.bool_)):
        raise TypeError(f"early_stopping must be True or False, got {early_stopping!r}")
    validation_fraction = V.check_fraction(validation_fraction, "validation_fraction")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            f"validation_fraction must be strictly between 0 and 1, got {validation_fraction!r}"
        )
    V.check_choice(loss, "loss", _sgd.LOSSES)
    epsilon = V.check_positive_float(epsilon, "epsilon")
    extended = (learning_rate_schedule != "constant" or average is not False
                or bool(early_stopping) or alpha > 0.0 or loss != "squared")
    if mode_code == 0 and extended and (learning_rate_schedule != "constant"
                                        or average is not False or early_stopping):
        raise ValueError(
            "learning_rate_schedule, average and early_stopping apply to mode='sgd' and "
            "mode='minibatch'; batch mode stops by tol (leave them at their defaults)"
        )
    huber = loss == "huber"
    if mode_code == 0 and huber:
        if solver == "gram":
            raise ValueError(
                "solver='gram' needs the squared loss (its sufficient statistics); "
                "loss='huber' runs solver='stream' (leave solver='auto')"
            )
        if optimizer == "cg":
            raise ValueError(
                "optimizer='cg' (exact line search on a quadratic) needs the squared loss; "
                "loss='huber' runs 'nesterov' (the default), 'momentum' or 'gd'"
            )
        solver = "stream"
    if mode_code == 0:
        scaled = lr_auto if scale == "auto" else scale
        has_l1 = alpha > 0.0 and l1_ratio > 0.0
        if optimizer == "auto":
            optimizer = ("nesterov" if (has_l1 or huber) else "cg") if lr_auto else "gd"
        if has_l1 and optimizer in ("cg", "momentum"):
            raise ValueError(
                f"penalty={penalty!r} has an L1 part, fitted by proximal gradient steps: "
                f"optimizer must be 'gd' or 'nesterov' (or 'auto'), got {optimizer!r}"
            )
        if optimizer == "cg" and not lr_auto:
            raise ValueError(
                f"optimizer='cg' chooses its own step lengths (exact line search), but "
                f"learning_rate={learning_rate!r} was given; leave learning_rate='auto' or "
                "pick optimizer='gd', 'momentum' or 'nesterov'"
            )
    else:
        for name, value, default in (("solver", solver, "auto"), ("optimizer", optimizer, "auto")):
            if value != default:
                raise ValueError(
                    f"{name}={value!r} applies to mode='batch' only; mode={mode!r} runs "
                    f"(mini-batch) SGD on the raw data: leave {name}={default!r}"
                )
        scaled = (lr_auto and parallel is not True) if scale == "auto" else scale
        optimizer = "sgd"
        extended = extended or scaled
        if extended and parallel is True:
            raise ValueError(
                "parallel=True in the stochastic modes runs parameter mixing of plain SGD on "
                "the raw data; scale, schedules, average, early_stopping, penalties and the "
                "Huber loss run serially: use parallel='auto' or False"
            )

    # mode="batch" and the scaled stochastic modes: the NaN/inf check of X and y rides on
    # the fit's first pass (the moments or the loss at the start: any NaN/inf makes it
    # non-finite, and only then are X and y searched for the error message), instead of
    # a pass of its own: at 10^7 rows that pass cost as much as a batch epoch, and its
    # kernel 0.6 s of a cold start. Plain SGD on the raw data (a numeric rate, or
    # parameter mixing) starts with a max-norm pass that NaN slips through: it checks first.
    deferred = mode_code == 0 or extended
    data = V.check_data(X, y, sample_weight, parallel=parallel, check_finite_xy=not deferred)
    n, d = data.n, data.d
    if mode_code == 0:
        if batch_size is not None:
            raise ValueError(
                f"batch_size={batch_size!r} applies to mode='minibatch'; mode='batch' always "
                "uses all rows (leave batch_size=None)"
            )
        batch_size = n
    elif mode_code == 2:
        if batch_size not in (None, 1):
            raise ValueError(
                f"mode='sgd' steps on one row at a time, got batch_size={batch_size!r}; use "
                "mode='minibatch' for larger batches"
            )
        batch_size = 1
    else:
        if batch_size is None:
            batch_size = min(DEFAULT_BATCH_SIZE, n)
        else:
            batch_size = V.check_int(batch_size, "batch_size", 1, n)
    coef = V.check_init(init_coef, init_intercept, d)

    par_pass = V.use_parallel(parallel, n, d)
    verify = (lambda: V.check_finite_data(data, par_pass)) if deferred else None
    if mode_code != 0 and extended:
        return _fit_sgd(data, mode, learning_rate, epochs, tol, coef, callback, batch_size,
                        reduction, fit_intercept, scaled, par_pass, shuffle, random_state, t0,
                        alpha, l1_ratio, learning_rate_schedule, power_t, average,
                        early_stopping, validation_fraction, loss, epsilon, n_iter_no_change,
                        verify)
    textbook = mode_code != 0 or (not scaled and optimizer == "gd" and not lr_auto
                                  and solver != "gram" and alpha == 0.0 and not huber)
    if textbook:
        return _fit_raw(data, mode, mode_code, learning_rate, epochs, tol, coef, callback,
                        batch_size, reduction, fit_intercept, par_pass, parallel, shuffle,
                        random_state, t0, verify)
    if solver == "auto":
        solver = "gram" if d <= GRAM_MAX_D else "stream"
    if epochs is None:
        epochs = DEFAULT_EPOCHS_GRAM if solver == "gram" else DEFAULT_EPOCHS_STREAM
        if not lr_auto:
            epochs = DEFAULT_EPOCHS
    if isinstance(tol, str):
        tol = DEFAULT_TOL if lr_auto else None
    sc = _optim.Scaled(data, reduction, fit_intercept, scaled, par_pass, alpha, l1_ratio,
                       full=solver == "gram" or d <= STREAM_FULL_MOMENTS_MAX_D, verify=verify)
    if solver == "gram":
        oracle = _optim.GramOracle(sc)
    elif huber:
        oracle = _optim.StreamOracle(sc, _optim.HuberObjective(data, reduction, epsilon, par_pass))
    else:
        oracle = _optim.StreamOracle(sc, _drivers.Objective(data, reduction, fit_intercept, par_pass))
    if alpha > 0.0 and l1_ratio < 1.0:
        oracle = _optim.Penalized(oracle, sc)
    lr = None if lr_auto else learning_rate
    if optimizer == "cg":
        lr_used = 1.0 / sc.L
    else:
        lr_used = _optim.momentum_params(sc, optimizer, lr)[0]
    extra = dict(solver=solver, optimizer=optimizer, scaled=bool(scaled))
    try:
        theta, history, converged, stop = _optim.run(
            oracle, sc, sc.to_scaled(coef), optimizer=optimizer, lr=lr, epochs=epochs, tol=tol,
            n_iter_no_change=n_iter_no_change, callback=callback, quadratic=not huber,
        )
    except _drivers.Diverged as exc:
        last = _make_result(exc.coef, exc.history, False, mode, lr_used, t0, reduction, data,
                            n_passes=sc.n_passes + oracle.n_passes, **extra)
        raise _divergence(exc, lr_used, last) from None
    passes = sc.n_passes + oracle.n_passes
    if converged and not huber and sc.G is not None:
        obj = _drivers.Objective(data, reduction, fit_intercept, par_pass)
        theta, history[-1] = _optim.refine(sc, obj, theta, history[-1])
        passes += 1
    res = _make_result(sc.to_raw(theta), history, converged, mode, lr_used, t0, reduction, data,
                       n_passes=passes, **extra)
    if tol is not None and not converged and res.n_epochs >= epochs:
        warnings.warn(
            f"the fit did not converge in epochs={epochs} (relative loss decrease "
            f"{stop.last_rel:.3g}, largest gradient cosine {stop.last_cos:.3g}; tol={tol:g} "
            f"asks for <= {tol:g} and <= {stop.gtol:.3g}); raise epochs, or use "
            "optimizer='cg' with scale=True, or loosen tol",
            ConvergenceWarning, stacklevel=2,
        )
    return res


def _fit_sgd(data, mode, learning_rate, epochs, tol, coef, callback, batch_size, reduction,
             fit_intercept, scaled, par_pass, shuffle, random_state, t0, alpha, l1_ratio,
             schedule, power_t, average, early_stopping, validation_fraction, loss, epsilon,
             n_iter_no_change, verify=None):
    """Stochastic modes with scaling, schedules, averaging, early stopping, penalties, Huber.

    ``verify``: the deferred NaN/inf check of X and y, run by :class:`fastgd._optim.Scaled`
    when its moments pass (the first pass over the data) is not finite."""
    if epochs is None:
        epochs = DEFAULT_EPOCHS
    if isinstance(tol, str):
        tol = SGD_TOL if (schedule == "adaptive" or early_stopping) else None
    elif tol is None and (schedule == "adaptive" or early_stopping):
        raise ValueError(
            "learning_rate_schedule='adaptive' and early_stopping need tol (the improvement "
            "that counts); leave tol='auto' (1e-4) or give a number"
        )
    sc = _optim.Scaled(data, reduction, fit_intercept, scaled, par_pass, alpha, l1_ratio,
                       full=False, verify=verify)
    passes = 1
    if learning_rate == "auto":
        eta0 = _sgd.auto_eta0(data, sc, reduction, batch_size)
        passes += 1
    else:
        eta0 = learning_rate
    extra = dict(solver="stream", optimizer="sgd", scaled=bool(scaled))
    try:
        theta, history, converged, p, _ = _sgd.fit_sgd(
            data, sc, sc.to_scaled(coef), eta0=eta0, schedule=schedule, power_t=power_t,
            average=average, epochs=epochs, tol=tol, n_iter_no_change=n_iter_no_change,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            batch_size=batch_size, reduction=reduction, huber=loss == "huber", epsilon=epsilon,
            shuffle=bool(shuffle), rng=np.random.default_rng(random_state), par_pass=par_pass,
            callback=callback,
        )
    except _drivers.Diverged as exc:
        last = _make_result(exc.coef, exc.history, False, mode, eta0, t0, reduction, data,
                            n_passes=passes + 2 * (len(exc.history) - 1), **extra)
        raise _divergence(exc, eta0, last) from None
    return _make_result(sc.to_raw(theta), history, converged, mode, eta0, t0, reduction, data,
                        n_passes=passes + p, **extra)


def _divergence(exc, lr, last):
    return DivergenceError(
        f"the fit diverged in epoch {exc.epoch} with learning_rate={lr:.6g} "
        f"({exc.reason}); use a smaller learning rate or learning_rate='auto'. The last "
        "finite state is in this exception's .result",
        epoch=exc.epoch, learning_rate=lr, result=last,
    )


def _fit_raw(data, mode, mode_code, learning_rate, epochs, tol, coef, callback, batch_size,
             reduction, fit_intercept, par_pass, parallel, shuffle, random_state, t0,
             verify=None):
    """The textbook update on the raw data (numeric rate) and the stochastic modes.

    ``verify``: the deferred NaN/inf check of X and y (mode="batch" only), run by the
    Objective if its first pass is not finite."""
    if epochs is None:
        epochs = DEFAULT_EPOCHS
    if isinstance(tol, str):
        tol = None
    passes = 0
    if learning_rate == "auto":
        learning_rate = _drivers.auto_learning_rate(
            data, mode, reduction, fit_intercept, batch_size, par_pass
        )
        passes = 1
    per_epoch = 1 if mode_code == 0 else 2  # stochastic: the SGD pass, then the loss pass
    obj = _drivers.Objective(data, reduction, fit_intercept, par_pass, verify=verify)
    extra = dict(solver="stream", optimizer="gd" if mode_code == 0 else "sgd", scaled=False)
    try:
        if mode_code == 0:
            coef, history, converged = _drivers._fit_batch(
                obj, coef, learning_rate, epochs, tol, callback
            )
        else:
            coef, history, converged = _drivers._fit_stochastic(
                obj, coef, learning_rate, epochs, tol, callback,
                batch_size=batch_size, reduction=reduction, fit_intercept=fit_intercept,
                parallel=parallel is True, shuffle=bool(shuffle),
                rng=np.random.default_rng(random_state),
            )
    except _drivers.Diverged as exc:
        last = _make_result(exc.coef, exc.history, False, mode, learning_rate, t0, reduction,
                            data, n_passes=passes + 1 + per_epoch * (len(exc.history) - 1),
                            **extra)
        raise _divergence(exc, learning_rate, last) from None
    res = _make_result(coef, history, converged, mode, learning_rate, t0, reduction, data,
                       n_passes=passes + 1 + per_epoch * (len(history) - 1), **extra)
    if tol is not None and not converged and res.n_epochs >= epochs:
        warnings.warn(
            f"the fit did not converge in epochs={epochs} (relative loss change over the last "
            f"epoch above tol={tol:g}); raise epochs, loosen tol, or for mode='batch' use "
            "learning_rate='auto' (scaled conjugate gradient)",
            ConvergenceWarning, stacklevel=3,
        )
    return res


def _make_result(coef, history, converged, mode, lr, t0, reduction, data, *, n_passes, solver,
                 optimizer, scaled):
    d = data.d
    return FitResult(
        coef=coef[:d], intercept=float(coef[d]), loss_history=np.asarray(history, dtype=np.float64),
        n_epochs=len(history) - 1, converged=bool(converged), mode=mode,
        learning_rate=float(lr), elapsed_s=time.perf_counter() - t0, reduction=reduction,
        one_d=data.one_d, solver=solver, optimizer=optimizer, n_passes=int(n_passes),
        scaled=scaled,
    )


def _loss(X, y, coef, intercept, sample_weight, parallel, reduction):
    data = V.check_data(X, y, sample_weight, parallel=parallel)
    c = np.asarray(coef, dtype=np.float64).reshape(-1)
    if c.shape[0] != data.d:
        raise ValueError(f"coef has {c.shape[0]} value(s) but X has {data.d} feature(s)")
    if not np.all(np.isfinite(c)) or not np.isfinite(intercept):
        raise ValueError("coef and intercept must be finite")
    full = np.append(c, float(intercept))
    obj = _drivers.Objective(data, reduction, True, V.use_parallel(parallel, data.n, data.d))
    return obj.loss(full)


def mse(X, y, coef, intercept=0.0, *, sample_weight=None, parallel="auto"):
    """Mean squared error ``sum(w r^2) / sum(w)`` of ``r = y - (X @ coef + intercept)``.

    One compiled pass (parallel for large data), no temporaries of size n, float64
    accumulation.

    Examples
    --------
    >>> import fastgd
    >>> fastgd.mse([1.0, 2.0], [3.0, 5.0], coef=[2.0], intercept=1.0)
    0.0
    """
    return _loss(X, y, coef, intercept, sample_weight, parallel, "mean")


def sse(X, y, coef, intercept=0.0, *, sample_weight=None, parallel="auto"):
    """Sum of squared errors ``sum(w r^2)``; see :func:`mse`.

    Examples
    --------
    >>> import fastgd
    >>> fastgd.sse([1.0, 2.0], [3.0, 6.0], coef=[2.0], intercept=1.0)
    1.0
    """
    return _loss(X, y, coef, intercept, sample_weight, parallel, "sum")
