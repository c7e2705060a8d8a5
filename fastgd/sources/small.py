"""The passes over a small block, in NumPy: no kernel to compile.

A block of at most :data:`SMALL_VALUES` values (``rows x (columns + 1)``) runs its passes
here instead of through the compiled kernels. The first fit in a new process (a fresh
container, a CI job, a pipeline worker without a kernel cache) then compiles nothing for
small data: measured on the 2-core reference machine, the default fit of 10^5 rows took
10 to 14 s from a cold cache when it compiled its moments and gradient kernels; NumPy's
passes over 10^6 values take about a millisecond. Larger blocks, where the compiled,
fused, threaded passes pay for their compilation within a few passes (and are cached for
the next process), use the kernels.

Each function returns what the matching per-block function of :mod:`fastgd.sources.passes`
returns, from the same algorithm: sums accumulated in float64, the moments two-pass and
shifted by the block's first row (a constant column has exactly zero variance), the
co-moments merged by the callers as before. Their sums are rounded differently from the
kernels' (NumPy and BLAS add in other orders), to within a few ulps; the choice of path
depends on the block's shape only, so a fit's result does not depend on anything else.
Tests compare the two paths to 1e-12 (``tests/test_small.py``).

No reduction over rows goes through BLAS: OpenBLAS splits a dot product or a
vector-matrix product over its threads and adds the parts, so ``r @ X`` and ``r @ r``
changed in the last bits with ``OPENBLAS_NUM_THREADS`` (1 against 2, measured), and a fit
would depend on the machine's core count (Dask workers run OpenBLAS on one thread).
Sums over rows are ``np.sum`` (pairwise) or ``np.einsum`` (NumPy's own loops, one
thread); ``X @ coef`` stays BLAS, each row's product of length ``d`` being computed
whole by one thread (the same bits on 1 to 8 threads, measured).
"""
import functools

import numpy as np

from .._layout import C_CENTRE, C_INV_SCALE

#: a block of at most this many values (``n * (d + 1)``) runs its passes in NumPy: up to
#: 2^20 values a NumPy pass takes a few milliseconds, less than compiling a kernel (0.3
#: to 1 s each, cold)
SMALL_VALUES = 1 << 20
#: and its co-moments (``n * (d + 1)^2`` products, in ``np.einsum``'s loops: about 1 ns
#: each) at most this many
SMALL_PRODUCTS = 1 << 22


def is_small(n, d):
    """Whether a block of ``n`` rows and ``d`` columns runs its passes here."""
    return n * (d + 1) <= SMALL_VALUES


def is_small_gram(n, d):
    """Whether a block of ``n`` rows and ``d`` columns gathers its co-moments here."""
    return is_small(n, d) and n * (d + 1) ** 2 <= SMALL_PRODUCTS


def _quiet(func):
    """Overflow and 0/0 give inf and NaN here as in the kernels, for the callers to find
    (a non-finite sum proves non-finite data, or magnitudes to refit in other units):
    NumPy must not warn about them, nor raise under ``np.seterr(all="raise")``."""

    @functools.wraps(func)
    def quiet(*args):
        with np.errstate(all="ignore"):
            return func(*args)

    return quiet


def _rows(data):
    """``(X, y, w)`` as aligned float64 arrays (``w`` None when unweighted).

    An array not aligned to its item size (a Dask block unpickled at an odd offset) is
    copied: NumPy reduces such an array through its buffers, in pieces, so ``np.sum``
    of the same values gave other bits than on an aligned copy (seen: two runs of one
    dask fit differed in the last bit)."""
    X, y = data.X, data.y
    if not (X.dtype == np.float64 and X.flags.aligned):
        X = X.astype(np.float64)
    if not (y.dtype == np.float64 and y.flags.aligned):
        y = y.astype(np.float64)
    w = data.sw if data.sw.flags.aligned else data.sw.copy()
    return X, y, (w if w.shape[0] else None)


@_quiet
def residuals(data, coef):
    """``(r, X, w)``: the residuals ``y - (X @ coef[:d] + coef[d])`` in float64."""
    X, y, w = _rows(data)
    d = data.d
    r = y - (X @ coef[:d] + coef[d])
    return r, X, w


@_quiet
def sse_grad(data, coef):
    """``[sum w r^2, sum w r, sum w r x_j ...]`` (float64 ``(d + 2,)``)."""
    r, X, w = residuals(data, coef)
    wr = r if w is None else w * r
    out = np.empty(data.d + 2)
    out[0] = np.sum(wr * r)
    out[1] = np.sum(wr)
    out[2:] = np.einsum("i,ij->j", wr, X)
    return out


@_quiet
def loss_grad(data, coef, loss, c):
    """``[sum w loss(r), sum w psi(r), sum w psi(r) x_j ...]`` of a registered ``loss``
    (:mod:`fastgd.losses`) with parameter ``c``, from its NumPy functions."""
    r, X, w = residuals(data, coef)
    h = loss.value_np(r, c)
    psi = loss.psi_np(r, c)
    if w is not None:
        h = w * h
        psi = w * psi
    out = np.empty(data.d + 2)
    out[0] = np.sum(h)
    out[1] = np.sum(psi)
    out[2:] = np.einsum("i,ij->j", psi, X)
    return out


@_quiet
def moments(data, full):
    """The block's ``[W, mean, com]`` row (see :func:`fastgd.sources.moments_part`):
    weighted means of ``z = [x, y]`` (sums of the values shifted by the first row, so a
    constant column's mean is exactly its value) and the centred co-moment matrix
    ``sum w (z - mean)(z - mean)^T`` (``full``) or its diagonal."""
    X, y, w = _rows(data)
    n, d = data.n, data.d
    k = d + 1
    empty = np.concatenate([[0.0], np.zeros(k), np.zeros(k * k if full else k)])
    if n == 0:
        return empty
    Z = np.empty((n, k))
    Z[:, :d] = X
    Z[:, d] = y
    D = np.subtract(Z, Z[0])  # shifted by the first row
    if w is None:
        W = float(n)
        mean = Z[0] + D.sum(axis=0) / W
    else:
        W = float(w.sum())
        if not W > 0.0:
            return empty
        mean = Z[0] + np.einsum("i,ij->j", w, D) / W
    np.subtract(Z, mean, out=D)  # centred: one rounding from the values given
    wD = D if w is None else w[:, None] * D
    com = np.einsum("ij,ik->jk", D, wD) if full else np.einsum("ij,ij->j", wD, D)
    return np.concatenate([[W], mean, com.ravel()])


@_quiet
def max_norm(data, coords):
    """``max_i w_i (||(x_i - c) * v||^2 + e)`` over the rows of positive weight (``coords``
    as for :func:`fastgd.kernels.moments._max_norm_src`: rows 0 and 1 and the
    intercept's column)."""
    X, _, w = _rows(data)
    d = data.d
    cen, inv = coords[C_CENTRE, :d], coords[C_INV_SCALE, :d]
    q = (((X - cen) * inv) ** 2).sum(axis=1) + coords[C_INV_SCALE, d]
    if w is not None:
        q = np.where(w > 0.0, w * q, 0.0)
    return float(max(q.max(), 0.0))


@_quiet
def subset_loss(data, rows, coef, loss, c):
    """``(sum w loss(r), sum w)`` over the rows ``rows`` (int64 indices)."""
    X, y, w = _rows(data)
    d = data.d
    r = y[rows] - (X[rows] @ coef[:d] + coef[d])
    v = loss.value_np(r, c)
    if w is None:
        return float(np.sum(v)), float(rows.shape[0])
    ws = w[rows]
    return float(np.sum(ws * v)), float(np.sum(ws))
