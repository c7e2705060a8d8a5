"""Losses of given parameters on given data: :func:`mse` and :func:`sse`."""
import numbers

import numpy as np

from . import _validation as V
from ._drivers import Objective
from ._plan import check_entry
from ._sources import ArraySource


def _loss(X, y, coef, intercept, sample_weight, parallel, reduction):
    from . import dask as _dask

    parallel = check_entry(parallel=parallel)

    if any(_dask.is_dask(a) for a in (X, y, sample_weight)):
        # the blocks' partial sums on the cluster; a non-finite sum (NaN/inf in the
        # data) makes the source look for the block and row to name
        source, _ = _dask.source_for(X, y, sample_weight)
        d = source.d
    else:
        data = V.check_data(X, y, sample_weight, parallel=parallel)
        d = data.d
        source = None
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
    full = np.append(c, float(intercept))
    if source is None:
        source = ArraySource(data, V.use_parallel(parallel, data.n, data.d), verified=True)
    return Objective(source, reduction, True).loss(full)


def mse(X, y, coef, intercept=0.0, *, sample_weight=None, parallel="auto"):
    """Mean squared error ``sum(w r^2) / sum(w)`` of ``r = y - (X @ coef + intercept)``.

    One compiled pass (parallel for large data), no temporaries of size n, float64
    accumulation. Dask arrays and DataFrames are reduced on the cluster, only the blocks'
    sums coming back.

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
