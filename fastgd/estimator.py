"""``GDRegressor``: fastgd as a scikit-learn estimator (``pip install "fastgd[sklearn]"``).

A thin front end: its parameters are the rows of the fit plan's table
(:data:`fastgd._plan.PARAMS`, plus ``warm_start``), ``fit`` and ``partial_fit`` validate
the data the scikit-learn way and hand it to the same plan, source and engine as
:func:`fastgd.fit`. No fitting logic lives here.
"""
import numbers
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.exceptions import DataConversionWarning, NotFittedError
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "fastgd.GDRegressor needs scikit-learn, which is an optional extra: "
        'pip install "fastgd[sklearn]"'
    ) from exc

from . import _frames
from . import _validation as V
from . import dask as _dask
from ._api import _partial_epoch, fit
from ._plan import PARAMS, check_entry

__all__ = ["GDRegressor"]


class GDRegressor(RegressorMixin, BaseEstimator):
    """Linear regression fitted by fastgd's gradient descent, as a scikit-learn estimator.

    The parameters are those of :func:`fastgd.fit` (same names, defaults and meaning; its
    docstring gives the details), plus ``warm_start``. They are validated at ``fit``,
    never in ``__init__``. The default fit is the least-squares solution (batch mode,
    scaled conjugate gradient on the sufficient statistics, a refinement pass);
    ``mode="sgd"`` / ``"minibatch"`` run the compiled stochastic passes.

    Parameters
    ----------
    mode : {"batch", "minibatch", "sgd"}, default "batch"
        ``"batch"``: one full-gradient step per epoch; ``"minibatch"``: steps on
        ``batch_size`` rows; ``"sgd"``: one row per step.
    learning_rate : float or "auto", default "auto"
        A positive float is used exactly as given. ``"auto"``: computed from the data so
        that the fit cannot diverge (batch mode: conjugate gradient with exact line
        search, or ``1/L`` for the other optimizers; stochastic modes: a step no single
        row can overshoot), in the scaled coordinates by default.
    epochs : int >= 1 or None, default None
        The number of epochs when ``tol`` is None, else a cap. None: 100, except for the
        automatic batch fit: 10,000 on the gram path, 1,000 on the streaming path.
    batch_size : int >= 1 or None, default None
        Rows per step in ``"minibatch"`` mode (None: 256, at most the number of rows).
        Must be None (or 1) in ``"sgd"`` mode and None in ``"batch"`` mode.
    tol : float >= 0, None or "auto", default "auto"
        The stopping tolerance (see :func:`fastgd.fit` for each mode's rule); None or 0
        runs exactly ``epochs``. ``"auto"``: 1e-12 for the automatic batch fit, 1e-4
        for the stochastic modes in scaled coordinates (the default SGD and mini-batch
        fits stop by themselves), None for the textbook runs (a numeric rate on
        unscaled data).
    fit_intercept : bool, default True
        Fit ``intercept_``; when False it stays at its start (0, or the previous fit's
        with ``warm_start``).
    reduction : {"mean", "sum"}, default "mean"
        The loss minimized: ``"mean"``, the weighted mean of the per-row losses,
        ``sum(w loss(r)) / sum(w)``; ``"sum"``, their weighted sum. The penalty is added
        to either.
    parallel : bool or "auto", default "auto"
        Batch mode: whether the passes run on fastgd's threads (bit-identical results
        either way); ``"auto"``: from 2^21 values (rows x (columns + 1)) when there is
        more than one thread. Stochastic modes: True runs parameter mixing (parts of
        each epoch fitted on the threads and averaged: another algorithm), False plain
        serial SGD; ``"auto"``: mixing for per-row SGD with the automatic rate from
        200,000 rows, serial otherwise.
    shuffle : bool, default True
        Stochastic modes: visit the rows in a fresh permutation each epoch.
    random_state : int, numpy Generator or None, default None
        Seed of the permutations and of the ``early_stopping`` split: the same seed
        gives bit-identical fits. A Generator is copied (its state at ``fit``; it is
        never drawn from). None draws fresh entropy once per fit, recorded in
        ``result_.plan.random_state``.
    scale : bool or "auto", default "auto"
        Fit in standardized coordinates, without copying the data (coefficients are
        reported in the original units). ``"auto"``: on with ``learning_rate="auto"``,
        off with a numeric rate (the textbook update stays exactly reproducible).
    solver : {"auto", "stream", "gram"}, default "auto"
        Batch mode: ``"gram"`` iterates on the sufficient statistics (one pass over the
        data, then O(d^2) per iteration); ``"stream"`` makes a pass per epoch.
        ``"auto"``: gram up to 500 features within the budget of its d x d statistics
        (``fastgd._plan.GRAM_MAX_BYTES``), stream above (and for non-squared losses),
        moving to the gram path when streaming CG needs more than ``max(20, d // 20)``
        passes, predicted from its first iterations (dense rows, within the budget).
    optimizer : {"auto", "gd", "momentum", "nesterov", "cg"}, default "auto"
        Batch mode: the optimizer. ``"auto"``: ``"cg"`` with ``learning_rate="auto"``
        (``"nesterov"`` with an L1 part in the penalty or a loss other than squared),
        ``"gd"`` with a numeric rate.
    n_iter_no_change : int >= 1 or "auto", default "auto"
        Epochs without an improvement above ``tol`` needed to stop. ``"auto"``: 1 in
        batch mode, 3 in the stochastic modes (one epoch may not improve by noise).
    penalty : {None, "l2", "l1", "elasticnet"}, default None
        Adds ``alpha * (l1_ratio * ||coef||_1 + (1 - l1_ratio) / 2 * ||coef||^2)`` to the
        loss, ``coef`` in the original units (never the intercept). ``"l2"`` sets
        ``l1_ratio=0``, ``"l1"`` ``l1_ratio=1``.
    alpha : float >= 0, default 1e-4
        Penalty strength, used only with ``penalty`` (with the mean loss,
        scikit-learn's ``ElasticNet`` / ``Lasso`` with ``alpha / 2``).
    l1_ratio : float in [0, 1], default 0.15
        The L1 share of ``"elasticnet"``.
    learning_rate_schedule : {"constant", "invscaling", "adaptive"}, default "constant"
        Stochastic modes, with scikit-learn's meanings: ``eta0``;
        ``eta0 / t ** power_t`` (``t`` counting the steps); or ``eta0`` divided by 5 each
        time ``n_iter_no_change`` epochs fail to improve the loss by ``tol``.
    power_t : float >= 0, default 0.25
        The exponent of ``"invscaling"``.
    average : bool, int or "auto", default "auto"
        Stochastic modes: report the running average of the iterates (averaged SGD);
        an int ``k`` starts averaging after ``k`` steps. ``"auto"``: on for
        ``mode="sgd"`` with ``learning_rate="auto"``, off otherwise.
    early_stopping : bool, default False
        Stochastic modes: hold out ``validation_fraction`` of the rows (drawn from
        ``random_state``), train on the rest and stop on the held-out loss (``tol``,
        ``n_iter_no_change``).
    validation_fraction : float in (0, 1), default 0.1
        The share of rows held out by ``early_stopping``.
    loss : str, default "squared"
        A registered loss (:mod:`fastgd.losses`): ``"squared"``, ``"huber"`` (squared
        in the middle, linear beyond ``epsilon``: robust to outliers), or one added
        with :func:`fastgd.losses.register`.
    epsilon : float > 0, default 0.1
        The Huber threshold, in the units of ``y`` (ignored by the squared loss).
    warm_start : bool, default False
        ``fit`` starts from the previous ``coef_`` and ``intercept_`` instead of zero
        (True or False only; validated at ``fit``). A warm start on data with another
        number of features is a ``ValueError`` (as for scikit-learn's
        ``SGDRegressor``): set ``warm_start=False`` to start from zero.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The fitted weights, in the units of ``X``.
    intercept_ : float
        The fitted intercept.
    n_iter_ : int
        Epochs run by the last ``fit`` (for ``partial_fit``: epochs run in all).
    loss_curve_ : ndarray
        The loss before the first epoch and after each one (``FitResult.loss_history``;
        for ``partial_fit``: the loss of each call's rows after that call).
    n_features_in_ : int
        The number of features seen by ``fit``.
    feature_names_in_ : ndarray of str
        The column names, when fitted on a data frame with string column names.
    result_ : fastgd.FitResult
        The full result of the last ``fit`` or ``partial_fit`` call (plan included).

    Notes
    -----
    ``partial_fit(X, y)`` runs one epoch of the estimator's stochastic mode over the rows
    given (with ``mode="batch"``: one full-gradient step over them, a mini-batch the size
    of the call), in the order given (``shuffle`` applies within the call), continuing
    from the
    previous call's state: the weights, the step count (for
    ``learning_rate_schedule="invscaling"``), the running average (``average``), the
    learning rate and the scaling statistics. The scaling (column means and standard
    deviations, with ``scale``) comes from the weighted moments of every row seen so far,
    merged call by call; when a call's rows change it, the weights and their average
    move to the new coordinates (the same model), and the average starts again if the
    change is material. The automatic rate is the smallest of the calls' safe rates, each
    computed over its own rows in those coordinates: it never grows. So a first call of
    one row, or with a constant column, does not make later calls diverge. With
    ``shuffle=False``, a numeric ``learning_rate`` and ``scale=False``, calls on
    consecutive parts of the data take exactly the steps of one epoch over the whole
    (tested). A call that raises (e.g. ``DivergenceError`` with a numeric rate too large
    for its rows) leaves the estimator as it was before the call.
    ``early_stopping`` and ``learning_rate_schedule="adaptive"`` need epochs and are
    refused by ``partial_fit``.

    ``fit``, ``predict`` and ``score`` also take dask arrays and DataFrames: the fit runs
    on the dask cluster (:mod:`fastgd.dask`), ``predict`` returns a lazy dask array and
    ``score`` reduces on the cluster; ``partial_fit`` takes rows in memory only.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd import GDRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 3))
    >>> y = X @ [1.0, 2.0, 3.0] + 0.5
    >>> est = GDRegressor().fit(X, y)
    >>> np.round(est.coef_, 6).tolist(), round(est.intercept_, 6)
    ([1.0, 2.0, 3.0], 0.5)
    """

    def __init__(self, *, mode="batch", learning_rate="auto", epochs=None, batch_size=None,
                 tol="auto", fit_intercept=True, reduction="mean", parallel="auto",
                 shuffle=True, random_state=None, scale="auto", solver="auto",
                 optimizer="auto", n_iter_no_change="auto", penalty=None, alpha=1e-4,
                 l1_ratio=0.15, learning_rate_schedule="constant", power_t=0.25,
                 average="auto", early_stopping=False, validation_fraction=0.1,
                 loss="squared", epsilon=0.1, warm_start=False):
        self.mode = mode
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.reduction = reduction
        self.parallel = parallel
        self.shuffle = shuffle
        self.random_state = random_state
        self.scale = scale
        self.solver = solver
        self.optimizer = optimizer
        self.n_iter_no_change = n_iter_no_change
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.learning_rate_schedule = learning_rate_schedule
        self.power_t = power_t
        self.average = average
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.loss = loss
        self.epsilon = epsilon
        self.warm_start = warm_start

    # -- the plan's settings -------------------------------------------------------------

    def _settings(self):
        """The fit plan's keywords: every row of the plan's table, from the parameters."""
        params = self.get_params(deep=False)
        return {p.name: params[p.name] for p in PARAMS}

    # -- fitting -------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the linear model to ``X`` and ``y`` with the estimator's settings.

        Starts from zero (from the previous fit with ``warm_start=True``) and forgets any
        ``partial_fit`` state.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            The features: arrays, data frames (string column names are kept in
            ``feature_names_in_``), or dask arrays and DataFrames (fitted on the
            cluster). NaN or inf is a ``ValueError``.
        y : array_like of shape (n_samples,)
            The targets.
        sample_weight : array_like of shape (n_samples,), optional
            Non-negative weights, not all zero (default None: every row weighs 1).

        Returns
        -------
        GDRegressor
            The estimator itself, fitted.
        """
        return self._fit(X, y, sample_weight, partial=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of the stochastic mode over these rows, continuing from the last call.

        See the class notes for what carries over between calls; with
        ``mode="batch"``, one full-gradient step over the rows given.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            The rows of this call, in memory (arrays or data frames; not dask), with the
            features of the first call. NaN or inf is a ``ValueError``.
        y : array_like of shape (n_samples,)
            Their targets.
        sample_weight : array_like of shape (n_samples,), optional
            Non-negative weights of these rows (default None: every row weighs 1).

        Returns
        -------
        GDRegressor
            The estimator itself, updated.
        """
        return self._fit(X, y, sample_weight, partial=True)

    def _fit(self, X, y, sample_weight, *, partial):
        warm_start = check_entry(warm_start=self.warm_start)
        first = not (partial and hasattr(self, "_partial_state"))
        # what validating the data resets, restored if the warm start is refused below
        seen = {k: getattr(self, k) for k in ("n_features_in_", "feature_names_in_")
                if hasattr(self, k)}
        if any(_dask.is_dask(a) for a in (X, y, sample_weight)):
            # the blocks stay on the cluster (fastgd.dask): only the metadata is read here
            if partial:
                raise TypeError(
                    "partial_fit takes rows in memory; for a dask array call fit (every mode "
                    "runs on the cluster), or feed its blocks one by one: "
                    "partial_fit(X.blocks[k].compute(), y.blocks[k].compute())"
                )
            self._check_names(_frames.column_names(X), reset=True)
            self.n_features_in_ = X.shape[1] if getattr(X, "ndim", 0) == 2 else 1
            sw = sample_weight
        else:
            X, y, sw = self._validate_fit_data(X, y, sample_weight, reset=first)
        warm = hasattr(self, "coef_") and (warm_start or not first)
        if warm and self.coef_.shape[0] != self.n_features_in_:
            # scikit-learn's SGDRegressor refuses this too: the previous coefficients do
            # not fit the new columns, and starting from zero is not what was asked for
            got = self.n_features_in_
            for k in ("n_features_in_", "feature_names_in_"):
                if hasattr(self, k):
                    delattr(self, k)
            for k, v in seen.items():
                setattr(self, k, v)
            raise ValueError(
                f"warm_start=True starts this fit from the previous fit's "
                f"{self.coef_.shape[0]} coefficient(s), but X has {got} feature(s); set "
                "warm_start=False to fit the new features from zero"
            )
        init = (self.coef_, self.intercept_) if warm else (None, 0.0)
        if partial:
            state = None if first else self._partial_state
            res, state = _partial_epoch(X, y, sample_weight=sw, state=state, init_coef=init[0],
                                        init_intercept=init[1], **self._settings())
            self._partial_state = state
            self.n_iter_ = (0 if first else self.n_iter_) + 1
            history = [] if first else list(self.loss_curve_)
            self.loss_curve_ = np.asarray(history + [res.final_loss])
        else:
            if hasattr(self, "_partial_state"):
                del self._partial_state
            res = fit(X, y, sample_weight=sw, init_coef=init[0], init_intercept=init[1],
                      **self._settings())
            self.n_iter_ = res.n_epochs
            self.loss_curve_ = np.asarray(res.loss_history)
        self.coef_ = np.array(res.coef)
        self.intercept_ = float(res.intercept)
        self.result_ = res
        return self

    # -- predicting ----------------------------------------------------------------------

    def predict(self, X):
        """Predict ``X @ coef_ + intercept_``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Rows with the features seen in ``fit`` (a data frame's column names are
            checked against ``feature_names_in_``); a dask array or DataFrame gives a
            lazy result. NaN or inf is a ``ValueError``.

        Returns
        -------
        ndarray of float64, shape (n_samples,), or dask array
            The predictions; for a dask array or DataFrame, a lazy dask array.
        """
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )
        if _dask.is_dask(X):
            self._check_names(_frames.column_names(X), reset=False)
            return _dask.predict(X, self.coef_, self.intercept_)
        X = self._validate_X(X, reset=False)
        if V.is_sparse(X):  # O(nnz), never densified
            from .sources import csr

            X2, _ = V.check_X(X)
            return csr.predict(X2, self.coef_, self.intercept_,
                               V.use_parallel("auto", X2.nnz + X2.shape[0], 0))
        X = np.ascontiguousarray(X)
        V.check_finite(X, "X", V.use_parallel("auto", X.shape[0], X.shape[1]))
        return X.astype(np.float64, copy=False) @ self.coef_ + self.intercept_

    def score(self, X, y, sample_weight=None):
        """The coefficient of determination R² of the predictions on ``(X, y)``.

        Scikit-learn's definition, ``1 - sum(w (y - pred)^2) / sum(w (y - mean(y))^2)``
        (weighted mean). For dask inputs it is reduced on the cluster: only two sums come
        back.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Rows with the features seen in ``fit``, or a dask array or DataFrame.
        y : array_like of shape (n_samples,)
            Their targets.
        sample_weight : array_like of shape (n_samples,), optional
            Weights of the rows in both sums (default None: every row weighs 1).

        Returns
        -------
        float
            R², at most 1 (1 for a perfect fit; it can be negative).
        """
        if not any(_dask.is_dask(a) for a in (X, y, sample_weight)):
            return super().score(X, y, sample_weight=sample_weight)
        import dask

        from .sources.dask import inputs

        _, yd, swd, _, _ = inputs(X, y, sample_weight)
        pred = self.predict(X)
        pred = pred.rechunk((yd.chunks[0],)) if pred.chunks[0] != yd.chunks[0] else pred
        w = 1.0 if swd is None else swd
        wsum = yd.shape[0] if swd is None else swd.sum()
        mean = (w * yd).sum() / wsum
        u, v = dask.compute((w * (yd - pred) ** 2).sum(), (w * (yd - mean) ** 2).sum())
        if v == 0.0:
            return 1.0 if u == 0.0 else 0.0
        return float(1.0 - u / v)

    # -- scikit-learn's conventions --------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        # scipy.sparse X in every mode (read as CSR), except the penalized stochastic fits
        # the lazy CSR epochs refuse (fastgd.solvers.sgd.sparse_refusal): a penalty with
        # scale on (or auto), or an L1 part with averaging
        refused = (self.mode != "batch" and self.penalty is not None
                   and (self.scale is not False
                        or (self.penalty != "l2" and self.average is not False)))
        tags.input_tags.sparse = not refused
        return tags

    def _validate_fit_data(self, X, y, sample_weight, *, reset):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        X = self._validate_X(X, reset=reset)
        y = _as_array(y, "y")
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change "
                "the shape of y to (n_samples,), for example using ravel().",
                DataConversionWarning, stacklevel=3,
            )
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(
                f"y should be a 1d array (one target per sample), got an array of shape "
                f"{y.shape}; fit one estimator per target column"
            )
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: X has "
                f"{X.shape[0]} rows, y has {y.shape[0]}"
            )
        if sample_weight is not None and not isinstance(sample_weight, numbers.Number):
            sample_weight = _as_array(sample_weight, "sample_weight")
        elif sample_weight is not None:
            sample_weight = np.full(X.shape[0], float(sample_weight))
        return X, y, sample_weight

    def _validate_X(self, X, *, reset):
        names = _frames.column_names(X)
        self._check_names(names, reset)
        if not V.is_sparse(X):  # a scipy.sparse X is passed on as it is (read as CSR)
            X = _as_array(X, "X")
        if X.ndim != 2:
            raise ValueError(
                f"Expected 2D array, got {X.ndim}D array instead: "
                f"{type(self).__name__} takes X of shape (n_samples, n_features). Reshape "
                "your data either using array.reshape(-1, 1) if your data has a single "
                "feature or array.reshape(1, -1) if it contains a single sample."
            )
        if X.shape[0] == 0:
            raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
                             "of 1 is required.")
        if X.shape[1] == 0:
            raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                             "of 1 is required.")
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X

    def _check_names(self, names, reset):
        if reset:
            if names is not None:
                self.feature_names_in_ = np.array(names, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return
        _frames.check_feature_names(getattr(self, "feature_names_in_", None), names,
                                    owner=type(self).__name__)


def _as_array(a, name):
    """fastgd's conversion (frames, sparse and object arrays handled), with scikit-learn's
    message for complex data (a ``ValueError`` there, fastgd's ``TypeError`` here)."""
    try:
        return V.as_float_array(a, name)
    except TypeError as exc:
        if "complex" in str(exc):
            raise ValueError(f"Complex data not supported: {exc}") from None
        raise
