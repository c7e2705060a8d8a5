"""The block passes over a CSR block (a :class:`fastgd._validation.Data` whose ``X`` is a
:class:`fastgd._validation.CSR`): the same per-block functions as the dense ones of
:mod:`fastgd.sources.passes`, which hand a sparse block to the function of the same name
here. Each returns what its dense twin returns, from the CSR kernels
(:mod:`fastgd.kernels.sparse`), in O(nnz) per pass and O(d) memory: X is never
densified (the QR statistic aside, which factors slices of at most
:data:`QR_SLICE_VALUES` values, dense, as LAPACK needs them).
"""
import hashlib

import numpy as np

from .. import _threads, losses
from .. import _validation as V
from .._chunking import csr_chunks, n_chunks
from .._config import CHUNK_ROWS, K, _LazyModule

#: the one-pass QR statistic (plain NumPy; only ill-conditioned fits need it)
KQR = _LazyModule("fastgd.kernels.qr")
#: at most this many values of X (rows x columns) are densified at once for the QR statistic
QR_SLICE_VALUES = 1 << 20


def _arrays(data):
    X = data.X
    return X.indptr, X.indices, X.values, data.y, data.sw


def loss_part(data, parallel, coef, loss, c):
    """``[sum w loss(r), sum w psi(r), sum w psi(r) x_j ...]`` of the block (``loss`` a
    :class:`fastgd.losses.Loss`; the squared loss gives the ``sse_grad`` sums)."""
    out = np.empty((csr_chunks(data.n, data.d + 2), data.d + 2))
    loss_pass(data, parallel, coef, loss, c, out)
    return out.sum(axis=0)


def loss_pass(data, parallel, coef, loss, c, out):
    """:func:`loss_part` into the caller's per-chunk buffer ``out`` (float64
    ``(csr_chunks(n, d + 2), d + 2)``, allocated once per fit by an in-memory source)."""
    _threads.run_chunks(K.csr_loss_kernel(loss).grad,
                        (*_arrays(data), coef, np.array([c]), out), out.shape[0], parallel)


def loss_value(data, parallel, coef, loss, c, out=None):
    """``sum w loss(r)`` over the block (``loss`` a :class:`fastgd.losses.Loss`): the loss
    alone, without the gradient :func:`loss_part` scatters over every column. The same
    chunks as :func:`loss_part`, their sums added in chunk order as ``out.sum(axis=0)``
    adds its rows: the value of ``loss_part(...)[0]`` to rounding (the compiler's FMAs
    differ, see :func:`fastgd.kernels.sparse._csr_loss_src`), serial and parallel
    bit-identical. ``out``: the caller's per-chunk buffer (float64
    ``(csr_chunks(n, d + 2),)``), or None."""
    if out is None:
        out = np.empty(csr_chunks(data.n, data.d + 2))
    _threads.run_chunks(K.csr_loss_kernel(loss).value,
                        (*_arrays(data), coef, np.array([c]), out), out.shape[0], parallel)
    total = out[0]
    for s in out[1:]:  # in order (np.sum would add pairwise)
        total += s
    return float(total)


def subset_loss(data, idx, coef, loss, c):
    """``(sum w loss(r), sum w)`` over the block's rows ``idx`` (int64): early stopping's
    held-out loss, O(stored entries of those rows)."""
    out = np.empty(2)
    K.csr_loss_kernel(loss).subset(*_arrays(data), idx, coef, np.array([c]), out)
    return out[0], out[1]


def sse_part(data, parallel, coef):
    return loss_part(data, parallel, coef, losses.get("squared"), 0.0)


def moment_rows(data, parallel, full):
    """The block's per-chunk moment rows ``[W, mean, com]`` (``com`` full or its
    diagonal), in the layout the merge of :func:`fastgd.sources.passes.merge_moments`
    reads."""
    k = data.d + 1
    width = 1 + k + k * k if full else 1 + 2 * k
    out = np.empty((csr_chunks(data.n, width), width))
    _threads.run_chunks(K._csr_moments, (*_arrays(data), data.d, out), out.shape[0], parallel)
    return out


def max_norm_part(data, parallel, coords):
    out = np.empty(csr_chunks(data.n, 1))
    X = data.X
    _threads.run_chunks(K._csr_row_norms, (X.indptr, X.indices, X.values, data.sw, coords, out),
                        out.shape[0], parallel)
    return float(out.max())


def qr_part(data, parallel, centres, inv_scales, intercept, offset):
    """The R factor of the block's scaled design, from slices of rows densified one at a
    time (at most :data:`QR_SLICE_VALUES` values each) and merged in order."""
    X = data.X
    n, d = X.shape
    rows = max(1, QR_SLICE_VALUES // d)
    workers = _threads.get_num_threads() if parallel else 1
    R = None
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        dense = dense_rows(X, lo, hi)
        sw = data.sw[lo:hi] if data.sw.shape[0] else data.sw
        R = KQR.r_factor(dense, data.y[lo:hi], sw, centres, inv_scales, intercept, offset,
                         R=R, workers=workers)
    return R


def dense_rows(X, lo, hi):
    """Rows ``lo:hi`` of the CSR ``X`` as a dense float64 array."""
    a, b = int(X.indptr[lo]), int(X.indptr[hi])
    out = np.zeros((hi - lo, X.shape[1]))
    rows = np.repeat(np.arange(hi - lo), np.diff(X.indptr[lo:hi + 1]))
    out[rows, X.indices[a:b]] = X.values[a:b]
    return out


def max_abs_part(data, parallel):
    top = np.zeros(data.d + 1)
    K._csr_max_abs(data.X.indices, data.X.values, top)
    top[data.d] = float(np.abs(data.y).max())
    return top


def sampled_hash(data, count):
    """sha256 (hex) of ``count`` rows spread over the block: their columns, values,
    targets and weights (the CSR twin of :func:`fastgd.sources.passes.sampled_hash`)."""
    X = data.X
    n = data.n
    rows = np.unique(np.linspace(0, n - 1, min(n, count)).astype(np.int64))
    h = hashlib.sha256()
    for i in rows:
        a, b = int(X.indptr[i]), int(X.indptr[i + 1])
        h.update(np.int64(b - a).tobytes())
        h.update(X.indices[a:b].astype(np.int64).tobytes())
        h.update(X.values[a:b].tobytes())
    h.update(np.ascontiguousarray(data.y[rows]).tobytes())
    if data.sw.shape[0]:
        h.update(np.ascontiguousarray(data.sw[rows]).tobytes())
    return h.hexdigest()


def in_units(data, units):
    """The block with column ``j`` divided by ``2**ex[j]`` and y by ``2**ey`` (exact)."""
    ex, ey = units
    X = data.X
    values = np.ldexp(X.values, -ex[X.indices])
    return V.Data(V.CSR(X.indptr, X.indices, values, X.shape),
                  np.ldexp(data.y, -ey, dtype=np.float64), data.sw, data.weight_total, False)


def predict(X, coef, intercept, parallel):
    """``X @ coef + intercept`` (float64 ``(n,)``) of a :class:`fastgd._validation.CSR`,
    in O(nnz), row by row (each row's sum in its stored order, as in the loss pass)."""
    n = X.shape[0]
    out = np.empty(n)
    c = np.append(np.asarray(coef, dtype=np.float64), float(intercept))
    _threads.run_chunks(K._csr_predict, (X.indptr, X.indices, X.values, c, CHUNK_ROWS, out),
                        n_chunks(n), parallel)
    return out
