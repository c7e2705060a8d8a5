"""The R factor of ``[x_s, 1, y]``: a one-pass QR statistic (TSQR).

The moments (:mod:`.moments`) square the condition number of the problem: solving from
them loses twice the digits a QR factorization loses. The R factor of the weighted,
scaled design ``A = sqrt(w) [(x - centres) * inv_scales, 1, y - offset]`` is a statistic
of the same kind (``A^T A = R^T R``, mergeable block by block, one pass) that does not:
the least-squares weights solve ``R[:k, :k] theta = R[:k, k]``, with the accuracy of
``numpy.linalg.lstsq`` on the whole data. Per slice of rows, LAPACK's Householder QR
(through ``numpy.linalg.qr``); the slices' R factors merge by the QR of their stack, in
slice order (tall-skinny QR), so the result depends on the data and the slicing only,
never on the number of threads that factor the slices.

Plain NumPy, not Numba: the work is LAPACK's, which releases the GIL, so narrow slices
are factored on ``workers`` of fastgd's threads at once (wider ones are threaded inside LAPACK).
"""
import numpy as np

from .. import _threads

#: rows per QR slice (measured at 10^6 rows, d = 2 / 8 / 40: 1,024 rows 90 / 158 /
#: 1,119 ms, 4,096 72 / 153 / 1,019, 16,384 75 / 139 / 810, 65,536 87 / 159 / 1,184)
SLICE_ROWS = 16384


#: slices are factored on several threads up to this many columns of ``[x, 1, y]``:
#: measured at 10^6 rows on 2 cores, one thread / two: d = 1 25 / 20 ms, d = 2 62 / 32 ms,
#: d = 3 50 / 45 ms, d = 4 59 / 61 ms, d = 8 109 / 115 ms, d = 40 757 / 853 ms (from
#: d = 4 LAPACK's own threads are busy already)
THREADED_MAX_COLS = 5


def _slice_r(X, y, sw, centres, inv_scales, intercept, offset, lo, hi):
    d = X.shape[1]
    k = d + 1 if intercept else d
    a = np.empty((hi - lo, k + 1))
    np.subtract(X[lo:hi], centres, out=a[:, :d])
    a[:, :d] *= inv_scales
    if intercept:
        a[:, d] = 1.0
    np.subtract(y[lo:hi], offset, out=a[:, k])
    if sw.shape[0]:
        a *= np.sqrt(sw[lo:hi])[:, None]
    return np.linalg.qr(a, mode="r")


def r_factor(X, y, sw, centres, inv_scales, intercept, offset=0.0, R=None, workers=1):
    """The R factor of ``sqrt(w) [(X - centres) * inv_scales, 1, y - offset]`` (the column
    of ones only with ``intercept``) merged onto ``R`` (None: the first rows), slice by
    slice, the slices factored on ``workers`` threads.

    Returns an upper triangular ``(m, k + 1)`` array, ``k`` the number of design columns
    and ``m = min(rows seen, k + 1)``.
    """
    n = X.shape[0]
    bounds = [(lo, min(n, lo + SLICE_ROWS)) for lo in range(0, n, SLICE_ROWS)]
    args = (X, y, sw, centres, inv_scales, intercept, offset)
    if workers > 1 and len(bounds) > 1 and X.shape[1] + 2 <= THREADED_MAX_COLS:
        parts = [None] * len(bounds)

        def task(i):
            parts[i] = _slice_r(*args, *bounds[i])

        _threads.run(task, len(bounds), workers)
    else:
        parts = (_slice_r(*args, *b) for b in bounds)
    for Rs in parts:
        R = merge(R, Rs)
    return R


def merge(R, Rs):
    """The R factor of the rows behind ``R`` followed by those behind ``Rs`` (``R`` None:
    ``Rs``): the QR of their stack."""
    return Rs if R is None else np.linalg.qr(np.vstack([R, Rs]), mode="r")
