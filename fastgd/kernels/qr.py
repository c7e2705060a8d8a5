"""The R factor of ``[x_s, 1, y]``: a one-pass QR statistic (TSQR).

The moments (:mod:`.moments`) square the condition number of the problem: solving from
them loses twice the digits a QR factorization loses. The R factor of the weighted,
scaled design ``A = sqrt(w) [(x - centres) * inv_scales, 1, y]`` is a statistic of the
same kind (``A^T A = R^T R``, mergeable block by block, one pass) that does not: the
least-squares weights solve ``R[:k, :k] theta = R[:k, k]``, with the accuracy of
``numpy.linalg.lstsq`` on the whole data. Per slice of rows, LAPACK's Householder QR
(through ``numpy.linalg.qr``); the slices' R factors merge by the QR of their stack, in
slice order (tall-skinny QR), so the result depends on the data and the slicing only.

Plain NumPy, not Numba: the work is LAPACK's, on slices of ``SLICE_ROWS`` rows.
"""
import numpy as np

#: rows per QR slice: large enough for LAPACK's blocked code, small enough that the
#: slice's scaled copy (``SLICE_ROWS * (d + 2)`` float64) stays in cache
SLICE_ROWS = 4096


def r_factor(X, y, sw, centres, inv_scales, intercept, offset=0.0, R=None):
    """The R factor of ``sqrt(w) [(X - centres) * inv_scales, 1, y - offset]`` (the column
    of ones only with ``intercept``) merged onto ``R`` (None: the first rows), slice by
    slice.

    Returns an upper triangular ``(m, k + 1)`` array, ``k`` the number of design columns
    and ``m = min(rows seen, k + 1)``.
    """
    n, d = X.shape
    k = d + 1 if intercept else d
    A = np.empty((min(SLICE_ROWS, n), k + 1))
    for lo in range(0, n, SLICE_ROWS):
        hi = min(n, lo + SLICE_ROWS)
        a = A[:hi - lo]
        np.subtract(X[lo:hi], centres, out=a[:, :d])
        a[:, :d] *= inv_scales
        if intercept:
            a[:, d] = 1.0
        np.subtract(y[lo:hi], offset, out=a[:, k])
        if sw.shape[0]:
            a *= np.sqrt(sw[lo:hi])[:, None]
        Rs = np.linalg.qr(a, mode="r")
        R = Rs if R is None else np.linalg.qr(np.vstack([R, Rs]), mode="r")
    return R
