"""Losses of given parameters on given data: :func:`mse` and :func:`sse`."""
import numbers

import numpy as np

from . import _validation as V
from .sources import open_source


def _loss(X, y, coef, intercept, sample_weight, parallel, reduction):
    # one pass of the source, wherever the rows are (on a dask cluster: the blocks'
    # partial sums; a non-finite sum makes the source look for the block and row to name)
    source = open_source(X, y, sample_weight, parallel=V.check_parallel(parallel),
                         check_finite=True)
    d = source.d
    raw = np.asarray(coef)
    if raw.dtype.kind not in "fiub":
        raise TypeError(f"coef must be real numbers, one per feature, got {coef!r:.80}")
    c = raw.astype(np.float64).reshape(-1)
    if c.shape[0] != d:
        raise ValueError(f"coef has {c.shape[0]} value(s) but X has {d} feature(s)")
    if isinstance(intercept, (bool, np.bool_)) or not isinstance(intercept, numbers.Real):
        raise TypeError(f"intercept must be a real number, got {intercept!r}")
    if not np.all(np.isfinite(c)) or not np.isfinite(intercept):
        raise ValueError("coef and intercept must be finite")
    sums = source.sse_grad(np.append(c, float(intercept)))
    # (the expression of the fits' losses: mse equals a fit's final loss bit for bit)
    norm = 1.0 / source.weight_total if reduction == "mean" else 1.0
    return float(sums[0] * norm)


def mse(X, y, coef, intercept=0.0, *, sample_weight=None, parallel="auto"):
    """Mean squared error ``sum(w r^2) / sum(w)`` of ``r = y - (X @ coef + intercept)``.

    One compiled pass (parallel for large data), no temporaries of size n, float64
    accumulation. Dask arrays and DataFrames are reduced on the cluster, only the blocks'
    sums coming back. The expression is that of the fits' losses: ``mse`` of a fit's
    parameters equals its ``final_loss`` bit for bit (squared loss, no penalty, mean
    reduction).

    Parameters
    ----------
    X : array_like, shape (n,) or (n, d)
        The features, as :func:`fastgd.fit` takes them (arrays, data frames, Arrow
        tables, dask collections, scipy.sparse matrices). NaN or inf is a
        ``ValueError`` naming the row.
    y : array_like, shape (n,)
        The targets.
    coef : array_like, shape (d,)
        The weights, one real number per feature, finite.
    intercept : float
        The intercept, finite (default 0.0).
    sample_weight : array_like, shape (n,), optional
        Non-negative weights, not all zero (default None: every row weighs 1).
    parallel : bool or "auto"
        Run the pass on fastgd's threads (:func:`fastgd.set_num_threads`); the result is
        bit-identical either way. ``"auto"`` (default): parallel for at least 2^21 values
        (rows x (columns + 1)) when there is more than one thread, as in :func:`fastgd.fit`.

    Returns
    -------
    float
        The weighted mean of the squared residuals.

    Examples
    --------
    >>> import fastgd
    >>> fastgd.mse([1.0, 2.0], [3.0, 5.0], coef=[2.0], intercept=1.0)
    0.0
    """
    return _loss(X, y, coef, intercept, sample_weight, parallel, "mean")


def sse(X, y, coef, intercept=0.0, *, sample_weight=None, parallel="auto"):
    """Sum of squared errors ``sum(w r^2)`` of ``r = y - (X @ coef + intercept)``.

    The same pass as :func:`mse`, without the division by ``sum(w)``: a fit's
    ``final_loss`` with ``reduction="sum"``.

    Parameters
    ----------
    X : array_like, shape (n,) or (n, d)
        The features, as :func:`fastgd.fit` takes them (arrays, data frames, Arrow
        tables, dask collections, scipy.sparse matrices). NaN or inf is a
        ``ValueError`` naming the row.
    y : array_like, shape (n,)
        The targets.
    coef : array_like, shape (d,)
        The weights, one real number per feature, finite.
    intercept : float
        The intercept, finite (default 0.0).
    sample_weight : array_like, shape (n,), optional
        Non-negative weights, not all zero (default None: every row weighs 1).
    parallel : bool or "auto"
        Run the pass on fastgd's threads; the result is bit-identical either way.
        ``"auto"`` (default): parallel for at least 2^21 values (rows x (columns + 1))
        when there is more than one thread.

    Returns
    -------
    float
        The weighted sum of the squared residuals.

    Examples
    --------
    >>> import fastgd
    >>> fastgd.sse([1.0, 2.0], [3.0, 6.0], coef=[2.0], intercept=1.0)
    1.0
    """
    return _loss(X, y, coef, intercept, sample_weight, parallel, "sum")
