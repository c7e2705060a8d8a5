"""Public entry points: :func:`fit` (arrays, frames, dask collections),
:func:`fit_chunks` (blocks of rows) and :func:`resume` (a checkpoint).

Each reads: open a source (:func:`fastgd.sources.open_source`), build the plan from its
facts (:mod:`fastgd._plan`), run the one entry pipeline (:mod:`fastgd._pipeline`).
"""
import dataclasses
import time

from . import _pipeline as pipeline
from . import _validation as V
from ._checkpoint import read as read_checkpoint
from ._engine import run_partial
from ._metrics import mse, sse
from ._plan import FitPlan, check_entry
from .sources import open_source, reopen

__all__ = ["fit", "fit_chunks", "resume", "mse", "sse"]


def fit(X, y, *, mode="batch", learning_rate="auto", epochs=None, batch_size=None, tol="auto",
        fit_intercept=True, sample_weight=None, init_coef=None, init_intercept=0.0,
        reduction="mean", parallel="auto", shuffle=True, random_state=None, callback=None,
        scale="auto", solver="auto", optimizer="auto", n_iter_no_change="auto", penalty=None,
        alpha=1e-4, l1_ratio=0.15, learning_rate_schedule="constant", power_t=0.25,
        average="auto", early_stopping=False, validation_fraction=0.1, loss="squared",
        epsilon=0.1, progress="auto", checkpoint=None, checkpoint_every=1, overwrite=False):
    """Fit ``y = X @ coef + intercept`` by gradient descent on the squared error.

    Parameters
    ----------
    X : array_like, shape (n,) or (n, d)
        1-D for one feature (``y = m x + c``), 2-D for multiple regression. float32 and
        float64 C-contiguous arrays (read-only ones and memmaps included) are used as
        they are; other layouts and integer/bool dtypes are converted once (a copy).
        pandas and polars DataFrames and Series and pyarrow Tables and arrays are
        accepted too (numeric columns; missing values count as NaN, which is refused
        with its row; string column names are kept in ``FitResult.feature_names``).
        dask arrays and DataFrames run on the current dask scheduler, the blocks staying
        on the workers (see :mod:`fastgd.dask`; ``y`` and ``sample_weight`` may then be
        dask or NumPy). scipy.sparse matrices and arrays are read as CSR in O(nnz) per
        pass, never densified (other formats converted once), in every mode: the
        stochastic steps cost O(nnz of their rows), a penalty there needs
        ``scale=False`` (see "Sparse and hashed features" in the README). A dask array
        of scipy.sparse blocks runs the same CSR passes on its workers.
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
    tol : float >= 0, None or "auto"
        None (or 0) runs exactly ``epochs``. ``"auto"`` (default): ``1e-12`` for the
        automatic batch fit; ``1e-4`` for the stochastic modes in scaled coordinates (the
        default SGD and mini-batch fits, which thus stop by themselves); None for the
        textbook runs (a numeric rate on unscaled data, batch or stochastic), which run
        exactly ``epochs``. Textbook runs with ``tol`` stop when the relative change of
        the loss over an epoch falls to ``tol``. The scaled stochastic fits stop when
        the monitored loss (the full-data loss of the reported parameters, the running
        average once averaging has started; the held-out loss with ``early_stopping``)
        fails to improve on its best by more than ``tol`` (relative) in
        ``n_iter_no_change`` consecutive epochs. The other batch fits stop when the loss
        decrease over each of the
        last ``n_iter_no_change`` epochs is at most ``tol`` times the loss AND the
        largest gradient cosine (the cosine between the residual and each scaled
        column, intercept included: zero exactly at the optimum) is at most
        ``sqrt(tol)``; they then make one refinement pass (exact gradient from the data,
        Newton correction from the sufficient statistics). ``converged=True`` when this
        happened; a ``ConvergenceWarning`` says what to change when ``epochs`` ran out,
        and ``result.stop_reason`` says why every fit ended.
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
        Batch mode: False runs every pass on the calling thread, True on fastgd's threads
        too (:func:`fastgd.set_num_threads`; the fixed chunks of a pass are shared out,
        so the results are bit-identical), ``"auto"`` goes parallel for blocks of at
        least 2^21 values (rows x (columns + 1); measured: below, handing work to a
        thread costs more than it saves) when there is more than one thread. Stochastic
        modes: True runs parameter mixing (each of up to 8 fixed parts of the permutation
        runs its own SGD pass from the same start, on fastgd's threads; the parts are
        averaged in order each epoch), a different algorithm from serial SGD with its
        own convergence behaviour, bit-identical for a seed whatever the thread count;
        False runs plain serial SGD; ``"auto"`` runs mixing for per-row SGD with the
        automatic rate on dense X from 200,000 rows (faster, and as accurate: measured),
        serial SGD otherwise (sparse X: each part would set up the state of every column),
        and its loss passes in parallel as in batch mode.
    shuffle : bool
        Stochastic modes: visit rows in a fresh permutation each epoch.
    random_state : int, numpy Generator or None
        Seed of the permutations; the same seed gives bit-identical results. A Generator
        (over one of numpy's bit generators) is copied: the fit starts from its state at
        the call and never draws from it, so the same Generator gives the same fit, and
        checkpoints, model files and ``plan.to_dict()`` store that state (a plain dict).
        None draws fresh entropy once per fit, recorded in ``result.plan.random_state``
        (pass it back to repeat the fit; a checkpoint resumes the same stream).
    callback : callable, optional
        ``callback(epoch, coef, intercept, loss)`` after every epoch; returning
        ``False`` stops the fit.
    scale : bool or "auto"
        Fit in standardized coordinates ``(x - mean) / std`` (weighted;
        ``x / rms`` without intercept, where centring would change the model), from the
        moments pass, without copying the data. Coefficients, intercept and losses are
        reported in the original units. ``"auto"``: on for ``learning_rate="auto"`` (in
        every mode, parameter mixing included), off for a numeric rate (the textbook
        update, and plain SGD, stay exactly reproducible).
    solver : {"auto", "stream", "gram"}
        Batch mode, when not the textbook update: ``"gram"`` iterates on the
        sufficient statistics (weighted means and centred co-moments of ``[X, y]``,
        gathered in one pass: compiled up to 31 features, BLAS from 32): O(d^2) per
        iteration, same trajectory as ``"stream"`` to rounding. ``"stream"``: one pass
        over the data per epoch. ``"auto"``: gram up to 500 features (measured: at
        most twice a streaming fit of well-conditioned data, far faster on correlated
        columns, whose streaming passes grow with the condition number) within the
        memory budget of its d x d statistics (``fastgd._plan.GRAM_MAX_BYTES``, 2 GiB),
        stream above, moving to the gram path within the budget when the squared-loss
        CG fit of dense rows needs more than ``max(20, d // 20)`` passes (predicted
        from its first iterations, ``fastgd._plan.gram_switch_after``: correlated
        columns; the stop reason says so); ``"gram"`` is the robust choice for
        ill-conditioned data at any d within that budget (its cost: one O(n d^2)
        pass), and is refused past it.
    optimizer : {"auto", "gd", "momentum", "nesterov", "cg"}
        Batch mode. ``"cg"``: conjugate gradient with exact line search (the default
        with ``learning_rate="auto"``: fewest passes, measured); ``"gd"`` (the default
        with a numeric rate); ``"momentum"`` (heavy ball) and ``"nesterov"`` with their
        optimal parameters from the extreme eigenvalues of the scaled Gram matrix.
    n_iter_no_change : int >= 1 or "auto"
        Epochs without a relative improvement above ``tol`` needed to stop. ``"auto"``
        (default): 1 in batch mode (its rules measure exact decreases), 3 in the
        stochastic modes (one epoch that does not improve may be the iterates' noise).
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
        adaptive schedule). Memory: the training and held-out row indices and each
        epoch's order over the training rows are int64 arrays, about 30 bytes per row
        in all (120 MB at 4 million rows, 600 MB at 20 million; without early stopping,
        the epoch orders alone: 8 to 16 bytes per row).
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
    progress : bool or "auto"
        A progress bar on standard error (epochs, loss, rows per second; needs tqdm, the
        ``progress`` extra). ``"auto"`` (default) shows it on a terminal, once the fit
        has run for a second. Ctrl-C stops any fit at the end of the current epoch and
        raises :class:`fastgd.FitInterrupted`, whose ``.result`` holds the parameters
        reached (a second Ctrl-C interrupts at once).
    checkpoint : str or path-like, optional
        Write the full state of the fit to this file every ``checkpoint_every`` epochs
        (atomically: a killed process leaves a valid checkpoint); :func:`fastgd.resume`
        continues from it and returns what the uninterrupted fit returns, bit for bit.
        The automatic batch fit and the stochastic modes (scaled: the default) write
        checkpoints; the textbook runs on unscaled data refuse them. The path is
        checked before the fit starts: a folder, a missing or read-only folder, or an
        existing file that is not a fastgd checkpoint (nor empty) is a ``ValueError``.
    checkpoint_every : int >= 1
        Epochs between two checkpoints (default 1).
    overwrite : bool
        Whether ``checkpoint`` may replace an existing file that is not a fastgd
        checkpoint (default False: such a file is someone's data). A checkpoint is
        always replaced: that is how a fit updates it.

    Returns
    -------
    FitResult
        With ``result.plan``, the validated :class:`fastgd.FitPlan` the fit ran.

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
    settings = dict(
        mode=mode, learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, tol=tol,
        fit_intercept=fit_intercept, reduction=reduction, parallel=parallel, shuffle=shuffle,
        random_state=random_state, scale=scale, solver=solver, optimizer=optimizer,
        n_iter_no_change=n_iter_no_change, penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
        learning_rate_schedule=learning_rate_schedule, power_t=power_t, average=average,
        early_stopping=early_stopping, validation_fraction=validation_fraction, loss=loss,
        epsilon=epsilon)
    callback, progress, checkpoint_every = check_entry(
        callback=callback, progress=progress, checkpoint_every=checkpoint_every)
    # NaN/inf in X and y: batch mode and the scaled stochastic modes find it in their first
    # pass (a separate check would cost as much as a batch epoch); plain SGD checks first
    source = open_source(X, y, sample_weight, parallel=parallel)
    plan = FitPlan.build(source.facts(), **settings)
    return pipeline.start(source, plan, init_coef=init_coef, init_intercept=init_intercept,
                          callback=callback, progress=progress, checkpoint=checkpoint,
                          checkpoint_every=checkpoint_every, overwrite=overwrite, t0=t0)


def resume(path, X=None, y=None, *, sample_weight=None, chunks=None, callback=None,
           progress="auto", checkpoint_every=None):
    """Continue the fit whose checkpoint is at ``path``, to the result it would have had.

    The checkpoint is one that ``fit(..., checkpoint=path)``, ``fit_chunks`` or
    ``fit_file(..., checkpoint=path)`` wrote. The result is what the uninterrupted fit
    returns, bit for bit (``elapsed_s`` aside). The fit goes on writing its checkpoint to
    ``path`` (every ``checkpoint_every`` epochs, by default as before).

    The checkpoint is checked field by field before anything runs (see
    :func:`fastgd._checkpoint.read`): a damaged or edited file, or one from a newer
    fastgd, is one ``ValueError`` naming the file and the field.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file. It stores the plan (every setting of the fit), the state
        reached and a fingerprint of the data, not the data itself.
    X : array_like, dask collection or None, optional
        A fit of arrays or data frames needs the same ``X`` again (other rows, features,
        dtype, or values, compared through a fingerprint of sampled rows, are a
        ``ValueError``); a fit of dask collections needs them again, chunked as they were
        (the fingerprint is hashed on the workers: nothing is gathered). None (default)
        for a fit of a file, which is opened again from the path stored in the
        checkpoint (a file changed since is refused), and for a :func:`fit_chunks` fit.
    y : array_like, dask collection or None, optional
        The targets, with ``X``: the same as in the interrupted fit. None (default)
        when ``X`` is None.
    sample_weight : array_like or None, optional
        The weights of an array or dask fit, the same again (default None: the fit had
        none). A file fit reads its weight column again and a :func:`fit_chunks` fit
        takes its weights from the blocks: both refuse ``sample_weight``.
    chunks : list of tuples, callable or None, optional
        A :func:`fit_chunks` fit's blocks, the same ones in the same order (default
        None: not a fit of blocks). A one-shot iterator cannot be resumed (a fit of one
        refuses ``checkpoint=``).
    callback : callable, optional
        ``callback(epoch, coef, intercept, loss)`` after every epoch run from here on,
        as for :func:`fit` (the checkpoint cannot store one; default None: none).
        Returning ``False`` stops the fit.
    progress : bool or "auto"
        The progress bar, as for :func:`fit` (default ``"auto"``: on a terminal, once
        the fit has run for a second).
    checkpoint_every : int >= 1, optional
        Epochs between two writes of the checkpoint from here on. Default None: the
        interval the interrupted fit used.

    Returns
    -------
    FitResult
        The result of the whole fit, as the uninterrupted fit returns it (its
        ``loss_history`` starts at the original start, its ``n_epochs`` counts every
        epoch).

    Raises
    ------
    ValueError
        A damaged, edited or newer checkpoint (naming the field), or data other than
        the checkpoint's (naming what differs).
    TypeError
        Data of another kind than the checkpoint's (e.g. ``X`` and ``y`` for a fit of a
        file): the message says what to pass instead.
    """
    t0 = time.perf_counter()
    callback, progress, checkpoint_every = check_entry(
        callback=callback, progress=progress, resume_checkpoint_every=checkpoint_every)
    doc = read_checkpoint(path)
    try:
        source = reopen(doc["fingerprint"], X, y, sample_weight, chunks=chunks,
                        parallel=doc["plan"]["settings"]["parallel"])
    except TypeError as exc:
        raise TypeError(f"{path}: {exc}") from None
    return pipeline.resume(source, doc, path, callback=callback, progress=progress,
                           checkpoint_every=checkpoint_every, t0=t0)


def fit_chunks(chunks, *, sample_weight=None, init_coef=None, init_intercept=0.0, callback=None,
               progress="auto", **fit_kwargs):
    """Fit rows that arrive in blocks: the same fits as :func:`fit`, block by block.

    Parameters
    ----------
    chunks : list of tuples, callable, or iterator
        Blocks ``(X, y)`` or ``(X, y, sample_weight)``, each validated like the arrays of
        :func:`fit` (every block with the columns and dtype of the first, at least one
        row, weights in every block or none):

        * a list (or tuple) of blocks: random access, any number of passes;
        * a callable returning a fresh iterator of the blocks on every call (e.g. a
          function reading a file chunk by chunk): any number of passes, blocks in the
          order it yields them;
        * a one-shot iterator (a generator): one pass only, enough for the default batch
          fit on the sufficient statistics (``solver="gram"``, the squared loss); any
          other fit raises ``TypeError`` before reading a block beyond the first.
    sample_weight : None
        Must stay None (anything else is a ``TypeError``): weights come with the
        blocks, as the third element of each tuple.
    init_coef : array_like, shape (d,), optional
        Starting weights (default zeros), as for :func:`fit`.
    init_intercept : float
        Starting intercept (default 0.0), as for :func:`fit`.
    callback : callable, optional
        ``callback(epoch, coef, intercept, loss)`` after every epoch; returning ``False``
        stops the fit (default None: none), as for :func:`fit`.
    progress : bool or "auto"
        The progress bar, as for :func:`fit` (default ``"auto"``: on a terminal, once
        the fit has run for a second).
    **fit_kwargs
        The other keywords of :func:`fit` (``mode``, ``learning_rate``, ``epochs``, ...),
        with the same defaults and meanings; ``checkpoint``, ``checkpoint_every`` and
        ``overwrite`` too, for a list of blocks or a callable:
        ``fastgd.resume(path, chunks=...)`` continues with the same blocks.

    Notes
    -----
    * **Batch mode** accumulates the exact full-data sums block by block (each block's
      partials from the compiled kernels, added in block order): for the same rows the
      result equals :func:`fit` on the concatenated arrays to rounding (1e-12 relative,
      tested at uneven block boundaries) for every solver, optimizer, penalty and the
      Huber loss. The gram path gathers its statistics in one pass; over a re-iterable
      source it then makes the refinement pass :func:`fit` makes (from a one-shot
      iterator it ends on the statistics, ``n_passes == 1``).
    * **Stochastic modes** shuffle at two levels, both drawn from ``random_state``: the
      order of the blocks (for a list; a callable's blocks come in the order it yields
      them) and the rows within each block (a fresh permutation per block and epoch).
      This is not a global shuffle: rows of one block are visited together, so blocks
      sorted by ``y`` or by time give each epoch a drift a global shuffle would not have.
      Shuffle the rows before splitting them into blocks when that matters. A
      mini-batch never spans two blocks (the last batch of a block may be shorter).
      ``early_stopping`` holds out ``validation_fraction`` of each block's rows.
    * NaN/inf, blocks of other widths or dtypes, empty blocks and bad weights raise
      ``ValueError``/``TypeError`` naming the block.

    Returns
    -------
    FitResult
        As :func:`fit` returns it, with ``n_rows`` the rows of all the blocks.

    Examples
    --------
    >>> import numpy as np, fastgd
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(10_000, 2)); y = X @ [1.0, -2.0] + 3.0
    >>> blocks = [(X[i:i + 3000], y[i:i + 3000]) for i in range(0, 10_000, 3000)]
    >>> res = fastgd.fit_chunks(blocks)
    >>> np.round(res.coef, 8).tolist(), round(res.intercept, 8)
    ([1.0, -2.0], 3.0)
    """
    t0 = time.perf_counter()
    if sample_weight is not None:
        raise TypeError("fit_chunks takes the weights with the blocks: give (X, y, sample_weight) "
                        "tuples instead of sample_weight=")
    checkpoint = fit_kwargs.pop("checkpoint", None)
    overwrite = fit_kwargs.pop("overwrite", False)
    callback, progress, every = check_entry(
        callback=callback, progress=progress,
        checkpoint_every=fit_kwargs.pop("checkpoint_every", 1))
    source = open_source(chunks=chunks, parallel=fit_kwargs.get("parallel", "auto"))
    plan = FitPlan.build(source.facts(), **fit_kwargs)
    if not source.reiterable and not plan.single_pass:
        raise TypeError(
            f"chunks is a one-shot iterator (e.g. a generator), but this fit (mode={plan.mode!r}, "
            f"engine {plan.engine!r}, solver={plan.solver!r}) needs several passes over the data; "
            "pass a list of blocks or a callable that returns a fresh iterator on every call "
            "(one pass suffices only for the default batch fit, solver='gram')"
        )
    return pipeline.start(source, plan, init_coef=init_coef, init_intercept=init_intercept,
                          callback=callback, progress=progress, checkpoint=checkpoint,
                          checkpoint_every=every, overwrite=overwrite, t0=t0)


def _partial_epoch(X, y, *, sample_weight=None, state=None, init_coef=None, init_intercept=0.0,
                   **settings):
    """One epoch of a stochastic mode over ``(X, y)``, continuing ``state`` (None on the
    first call): ``GDRegressor.partial_fit``. Returns ``(FitResult, state)``."""
    source = open_source(X, y, sample_weight, parallel=settings.get("parallel", "auto"),
                         check_finite=True)
    if source.kind != "arrays":
        raise TypeError("partial_fit takes rows in memory (arrays or data frames)")
    settings = dict(settings, epochs=1, tol=None)
    if settings.get("mode", "batch") == "batch":
        # a batch step over the rows given: one mini-batch the size of the call
        settings.update(mode="minibatch", batch_size=source.n)
        for key in ("solver", "optimizer"):
            if settings.get(key, "auto") != "auto":
                raise ValueError(
                    f"partial_fit with mode='batch' takes one gradient step over the rows "
                    f"given, which has no {key}; leave {key}='auto' or call fit"
                )
    if settings.get("early_stopping") or settings.get("learning_rate_schedule") == "adaptive":
        raise ValueError(
            "partial_fit runs one epoch per call: early_stopping and "
            "learning_rate_schedule='adaptive' need several epochs over the same rows; "
            "use fit, or another schedule"
        )
    plan = FitPlan.build(source.facts(), **settings)
    # one epoch per call, serial: parameter mixing would average parts of each call
    plan = dataclasses.replace(plan, mixing=False, average_after_epochs=0)
    coef = V.check_init(init_coef, init_intercept, source.d)
    state = {} if state is None else state
    res = run_partial(plan, source, coef, state)
    return pipeline._described(res, source, source.n), state
