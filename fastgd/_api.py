"""Public functions: :func:`fit`, :func:`mse`, :func:`sse`."""
import time

import numpy as np

from . import _drivers
from . import _validation as V
from ._result import DivergenceError, FitResult

DEFAULT_BATCH_SIZE = 256


def fit(X, y, *, mode="batch", learning_rate="auto", epochs=100, batch_size=None, tol=None,
        fit_intercept=True, sample_weight=None, init_coef=None, init_intercept=0.0,
        reduction="mean", parallel="auto", shuffle=True, random_state=None, callback=None):
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
        A positive float is used exactly as given, on the raw data (the textbook update).
        ``"auto"``: batch mode uses ``1/L`` (``L`` the Lipschitz constant of the
        gradient), which never diverges; stochastic modes use ``1 / (2 s max_i w_i
        ||[x_i, 1]||^2)``, for which no single update can overshoot (``s = n / sum(w)``
        for the mean loss, the batch size for the sum). See ``FitResult.learning_rate``.
    epochs : int >= 1
        Number of epochs (the exact count when ``tol`` is None, else a cap).
    batch_size : int, optional
        Rows per step in ``"minibatch"`` mode (default 256, at most n). Must be None
        (or 1) in ``"sgd"`` mode and None in ``"batch"`` mode.
    tol : float, optional
        Stop when the relative change of the loss over an epoch falls to ``tol`` or
        below (``converged=True``). None runs exactly ``epochs``.
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
        results), ``"auto"`` goes parallel from ``n * d >= 200_000`` with more than one
        numba thread. Stochastic modes: True runs parameter mixing (each of up to 8
        fixed parts of the permutation runs its own SGD pass from the same start; the
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

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError, TypeError
        Bad input, with what was wrong and how to fix it, before any kernel runs.
    DivergenceError
        The loss became non-finite or exploded; ``.result`` holds the last finite state.

    Examples
    --------
    >>> import numpy as np, fastgd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, 10_000)
    >>> y = 3.0 * x + 0.5 + rng.normal(0, 0.01, x.size)
    >>> res = fastgd.fit(x, y, epochs=500, tol=1e-12)
    >>> round(res.slope, 2), round(res.intercept, 2)
    (3.0, 0.5)
    """
    t0 = time.perf_counter()
    mode_code = V.check_choice(mode, "mode", V.MODES)
    V.check_choice(reduction, "reduction", V.REDUCTIONS)
    epochs = V.check_int(epochs, "epochs", 1)
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

    data = V.check_data(X, y, sample_weight, parallel=parallel)
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
    if learning_rate == "auto":
        learning_rate = _drivers.auto_learning_rate(
            data, mode, reduction, fit_intercept, batch_size, par_pass
        )
    obj = _drivers.Objective(data, reduction, fit_intercept, par_pass)
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
        last = _make_result(exc.coef, exc.history, False, mode, learning_rate, t0, reduction, data)
        raise DivergenceError(
            f"the fit diverged in epoch {exc.epoch} with learning_rate={learning_rate:.6g} "
            f"({exc.reason}); use a smaller learning rate or learning_rate='auto'. The last "
            "finite state is in this exception's .result",
            epoch=exc.epoch, learning_rate=learning_rate, result=last,
        ) from None
    return _make_result(coef, history, converged, mode, learning_rate, t0, reduction, data)


def _make_result(coef, history, converged, mode, lr, t0, reduction, data):
    d = data.d
    return FitResult(
        coef=coef[:d], intercept=float(coef[d]), loss_history=np.asarray(history, dtype=np.float64),
        n_epochs=len(history) - 1, converged=bool(converged), mode=mode,
        learning_rate=float(lr), elapsed_s=time.perf_counter() - t0, reduction=reduction,
        one_d=data.one_d,
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
