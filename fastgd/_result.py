"""The result of a fit and the exceptions and warnings fastgd raises."""
from dataclasses import dataclass, field, fields

import numpy as np

from ._frames import check_feature_names, column_names
from ._metrics import mse, sse
from ._validation import CSR, check_X, use_parallel


class DivergenceError(ArithmeticError):
    """The loss became non-finite or exploded during a fit.

    Attributes
    ----------
    epoch : int
        The epoch (1-based) during which the divergence was detected.
    learning_rate : float
        The numeric learning rate in use.
    result : FitResult
        The last finite state of the fit (parameters and loss history up to the epoch
        before the divergence). Nothing is lost: no NaN is ever stored in it.
    """

    def __init__(self, message, *, epoch, learning_rate, result):
        super().__init__(message)
        self.epoch = epoch
        self.learning_rate = learning_rate
        self.result = result

    def __reduce__(self):
        # keyword-only arguments: the default (cls, args) reduction would lose them, so
        # the error could not cross a process boundary (process pools, Dask)
        return (_rebuild_divergence, (str(self), self.epoch, self.learning_rate, self.result))


def _rebuild_divergence(message, epoch, learning_rate, result):
    return DivergenceError(message, epoch=epoch, learning_rate=learning_rate, result=result)


class FitInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during a fit: the fit stopped at the end of the epoch it was in.
    ``.result`` is the :class:`FitResult` of the parameters reached (``converged`` False),
    so an interrupted long fit loses nothing. A second Ctrl-C interrupts at once."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result

    def __reduce__(self):
        return (FitInterrupted, (str(self), self.result))


class ConvergenceWarning(UserWarning):
    """A fit with ``tol`` set ran out of epochs before meeting the tolerance, or its
    answer may be inaccurate (see :class:`IllConditionedWarning`)."""


class IllConditionedWarning(ConvergenceWarning):
    """The data are so nearly collinear that float64 determines the least-squares
    weights only roughly: the message gives the estimated condition number and the
    relative accuracy it allows (the same for ``numpy.linalg.lstsq``)."""


@dataclass(frozen=True, eq=False)
class FitResult:
    """What :func:`fastgd.fit` returns (immutable; arrays are read-only).

    The fitting functions build it (and :func:`fastgd.load`, from a model file); each
    parameter below is kept as the attribute of the same name (``coef`` and
    ``loss_history`` as read-only float64 copies, ``intercept`` as a float). The
    properties :attr:`slope` and :attr:`final_loss` and the methods :meth:`predict`,
    :meth:`loss` and :meth:`save` use them.

    Parameters
    ----------
    coef : ndarray of float64, shape (d,)
        Fitted weights, in the units of the data given to ``fit``.
    intercept : float
        Fitted intercept ``c`` (``b``).
    loss_history : ndarray of float64, shape (n_epochs + 1,)
        Full-data loss (per ``reduction``) at the initial parameters, then after every
        epoch. A model read by :func:`fastgd.load` holds the final loss only (shape
        ``(1,)``: model files keep no history), and its repr says so.
    n_epochs : int
        Epochs run.
    converged : bool
        True when the fit stopped because ``tol`` was met.
    mode : str or None
        ``"batch"``, ``"minibatch"`` or ``"sgd"`` (None for a loaded model without a
        plan).
    learning_rate : float
        The numeric learning rate used (the resolved value when ``"auto"`` was asked;
        NaN for a loaded model).
    elapsed_s : float
        Wall time of the fit in seconds, validation included.
    reduction : str
        ``"mean"`` or ``"sum"``: how ``loss_history`` and :meth:`loss` reduce (default
        ``"mean"``).
    one_d : bool
        Whether X was 1-D (one feature given as a vector): :attr:`slope` applies
        (default False).
    solver : str
        ``"gram"`` (iterations from the sufficient statistics, O(d^2) each) or
        ``"stream"`` (one pass over the data per evaluation; the default).
    optimizer : str
        ``"gd"``, ``"momentum"``, ``"nesterov"``, ``"cg"``, or ``"sgd"`` for the
        stochastic modes (default ``"gd"``).
    n_passes : int
        Passes over the data the fit made (the moments pass, loss/gradient passes,
        stochastic epochs and their loss passes; default 0).
    scaled : bool
        True when the fit ran in internally standardized coordinates (the results are
        reported in the original units all the same; default False).
    plan : FitPlan or None
        The validated plan the fit ran: every setting, with each "auto" resolved and the
        rule that resolved it (``plan.reasons``); ``plan.to_dict()`` is a plain dict
        (default None).
    feature_names : tuple of str or None
        The column names of X when it was a data frame or Arrow table with string
        column names (pandas, polars, pyarrow), in the order of ``coef``; for
        :func:`fastgd.fit_file`, the names of the ``x`` columns (default None).
    n_rows : int or None
        Rows fitted (None for a result loaded from a model file).
    stop_reason : str or None
        Why the fit ended, as ``"code: details"``; the code is ``"tol"`` (the stopping
        rule was met), ``"optimum"`` (exactly at the optimum, to rounding),
        ``"early_stopping"`` (the held-out loss stopped improving), ``"schedule"`` (the
        adaptive rate ran out), ``"epochs"`` (all ``epochs`` ran: with ``tol`` set, a
        :class:`ConvergenceWarning` says so too), ``"callback"`` (the callback returned
        False), ``"interrupted"`` (Ctrl-C) or ``"diverged"`` (the result a
        :class:`DivergenceError` holds). None for a model loaded from a file.
    """

    coef: np.ndarray
    intercept: float
    loss_history: np.ndarray
    n_epochs: int
    converged: bool
    mode: str
    learning_rate: float
    elapsed_s: float
    reduction: str = "mean"
    one_d: bool = field(default=False, repr=False)
    solver: str = "stream"
    optimizer: str = "gd"
    n_passes: int = 0
    scaled: bool = False
    plan: object = field(default=None, repr=False)
    feature_names: object = field(default=None, repr=False)
    n_rows: object = field(default=None, repr=False)
    stop_reason: object = field(default=None, repr=False)

    def __repr__(self):
        # the dataclass's fields, with arrays summarised as NumPy does for long ones (the
        # first and last three values, and the shape): a fit of 10^5 epochs prints one
        # short line, not its whole loss history
        parts = []
        for f in fields(self):
            if not f.repr:
                continue
            v = getattr(self, f.name)
            text = _summary(v) if isinstance(v, np.ndarray) else repr(v)
            if f.name == "loss_history" and v.shape[0] == 1 and self.n_epochs > 0:
                text += " (the final loss only: a loaded model; model files keep no history)"
            parts.append(f"{f.name}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __post_init__(self):
        for name in ("coef", "loss_history"):
            arr = np.array(getattr(self, name), dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "intercept", float(self.intercept))

    @property
    def slope(self):
        """``coef[0]``: the ``m`` of ``y = m x + c``; only for a 1-D (one-feature) X."""
        if not self.one_d:
            raise AttributeError(
                f"slope is defined only for a fit on 1-D X (one feature); this fit has "
                f"{self.coef.shape[0]} feature(s) given as a 2-D array: use .coef"
            )
        return float(self.coef[0])

    @property
    def final_loss(self):
        """The loss after the last epoch (``loss_history[-1]``)."""
        return float(self.loss_history[-1])

    def predict(self, X):
        """Predictions ``X @ coef + intercept``.

        Parameters
        ----------
        X : array_like or scipy.sparse matrix, shape (n,) or (n, d)
            Same features as in the fit, in the same order (a sparse X is read in
            O(nnz), never densified). A data frame's column names
            are checked against ``feature_names``: other names, or the same names in
            another order, are a ``ValueError`` (never reordered silently); names on one
            side only give a ``UserWarning`` (the columns are then taken by position),
            as in scikit-learn.

        Returns
        -------
        ndarray of float64, shape (n,), or dask array
            The predictions; for a dask array or DataFrame ``X``, a lazy dask array (one
            task per block: the data stay on the cluster).

        Examples
        --------
        >>> import fastgd
        >>> res = fastgd.fit([0.0, 1.0, 2.0], [1.0, 3.0, 5.0], tol=1e-14, epochs=10_000)
        >>> res.predict([3.0]).round(6)
        array([7.])
        """
        from .sources import dask as _dask

        self._check_names(X)
        if _dask.is_dask(X):
            return _dask.predict(X, self.coef, self.intercept)
        X2, _ = check_X(X, n_features=self.coef.shape[0])
        if isinstance(X2, CSR):  # a scipy.sparse X: O(nnz), never densified
            from .sources import csr

            return csr.predict(X2, self.coef, self.intercept,
                               use_parallel("auto", X2.nnz + X2.shape[0], 0))
        return X2.astype(np.float64, copy=False) @ self.coef + self.intercept

    def _check_names(self, X):
        """Column names of a frame ``X`` against ``feature_names`` (see
        :func:`fastgd._frames.check_feature_names`: checked, never used to reorder)."""
        check_feature_names(self.feature_names, column_names(X), owner="this FitResult")

    def save(self, path, overwrite=False):
        """Write this result as a JSON model file, atomically (see :func:`fastgd.io.save`).

        The file holds the coefficients, intercept, feature names, the plan's settings and
        the fastgd version; :func:`fastgd.load` reads it back.

        Parameters
        ----------
        path : str or path-like
            The model file to write. An existing model file (or an empty file) is
            replaced; a folder, a missing folder or one that is not writable raises
            ``ValueError`` before anything is written.
        overwrite : bool
            Whether an existing file that is not a fastgd model file may be replaced
            (default False: such a file raises ``ValueError``).
        """
        from ._model import save

        save(self, path, overwrite=overwrite)

    def loss(self, X, y, sample_weight=None):
        """The loss of these parameters on ``(X, y)``, reduced like ``loss_history``.

        The squared error, whatever loss the fit minimized, without the penalty:
        :func:`fastgd.mse` for ``reduction="mean"``, :func:`fastgd.sse` for ``"sum"``.

        Parameters
        ----------
        X : array_like, shape (n,) or (n, d)
            Rows with the fit's features, in the fit's order (a data frame's column names
            are checked against ``feature_names``, as in :meth:`predict`); dask arrays
            and DataFrames are reduced on the cluster.
        y : array_like, shape (n,)
            The targets.
        sample_weight : array_like, shape (n,), optional
            Non-negative weights, not all zero (default None: every row weighs 1).

        Returns
        -------
        float
            ``sum(w r^2) / sum(w)`` (``reduction="mean"``) or ``sum(w r^2)``
            (``"sum"``) of ``r = y - (X @ coef + intercept)``.

        Examples
        --------
        >>> import fastgd
        >>> res = fastgd.fit([0.0, 1.0], [1.0, 3.0], learning_rate=0.1, epochs=1)
        >>> float(res.loss([0.0, 1.0], [1.0, 3.0])) == res.final_loss
        True
        """
        self._check_names(X)
        f = mse if self.reduction == "mean" else sse
        return f(X, y, self.coef, self.intercept, sample_weight=sample_weight)


#: arrays longer than this are summarised in a FitResult's repr
REPR_ITEMS = 8


def _summary(a):
    """``array([a, b, c, ..., x, y, z], shape=(n,))`` for a long 1-D array (NumPy's own
    summary, on one line, whatever NumPy's print options), the whole array otherwise."""
    body = np.array2string(a, threshold=REPR_ITEMS, edgeitems=3, separator=", ",
                           max_line_width=1 << 30)
    shape = f", shape={a.shape}" if a.size > REPR_ITEMS else ""
    return f"array({body}{shape})"
