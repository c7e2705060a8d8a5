"""Weighted means and centred co-moments of ``z = [x, y]`` through BLAS: the gram path's
one pass over wide data.

The compiled moments pass (:func:`fastgd.kernels.moments._moments_src`) forms each
co-moment entry as a dot product in a Numba loop, memory-bound on the slice in cache:
about 1.5 GFLOP/s on one core of the 2-core reference machine, so that at d = 100 the
gram path cost more than streaming CG's passes on well-conditioned data. The same
statistics are the product ``D^T D`` of the centred slice ``D``, which BLAS forms at the
machine's arithmetic speed (its ``syrk``: NumPy's matmul of a matrix's transpose with
the matrix itself calls it). Per slice of rows:

1. the slice is copied into a float64 scratch (``z - z_0``, shifted by its first row:
   the weighted mean is then ``z_0 + sum w (z - z_0) / W``, and a constant column's is
   exactly its value, as in :func:`fastgd.kernels.moments._weighted_means`);
2. the scratch is overwritten with the centred slice ``z - mean`` (one rounding from the
   values given; weighted: rows times ``sqrt(w)``);
3. one more scratch row, ``sqrt(f) (mean - M)``, carries the merge with the block's
   statistics so far (Chan et al.'s pairwise update: ``W, M`` the weight and mean so far,
   ``f = (W / (W + W_s)) W_s``), so that one ``syrk`` gives ``C_s + f delta delta^T``,
   which is added to the block's co-moment.

Slices, blocks and the order of every sum are functions of ``n`` and ``d`` only
(:func:`fastgd._chunking.gram_layout`): a block's slices are merged in order by
whichever thread runs the block, each block writes its own row of ``out``, and the
caller merges the rows in order, so the result does not depend on the number of
threads. Column sums over rows are NumPy's own loops (``sum(axis=0)``, ``einsum``),
never BLAS. BLAS must run each call on one thread (the caller sees to it, see
:func:`fastgd._threads.blas_single`): OpenBLAS's ``syrk`` gave other bits on 1, 2, 3, 4
and 8 threads from d = 100 (measured). The scratch arrays are aligned to 64 bytes, so
that a BLAS whose kernels depend on the alignment (MKL) sees the same layout each time.

Plain NumPy, not Numba: nothing to compile (a cold start compiles no moments kernel for
such a fit), and BLAS releases the GIL, so blocks run on fastgd's threads at once.
"""
import numpy as np

from .. import _threads


def _aligned(shape):
    """An uninitialized C-contiguous float64 array whose data starts at a multiple of 64
    bytes."""
    size = shape[0] * shape[1]
    buf = np.empty(size + 8)
    start = (-buf.ctypes.data % 64) // 8
    return buf[start:start + size].reshape(shape)


def _block(X, y, sw, lo, hi, rows, row, buffers):
    """The statistics of rows ``lo:hi`` into ``row`` (float64 ``1 + k + k*k``: the weight
    total, the mean of ``z``, the co-moment ``sum w (z - mean)(z - mean)^T``, full and
    symmetric); slices of ``rows`` rows merged in order. ``buffers``: ``(scratch, prod)``,
    float64 ``(rows + 1, k)`` at least and ``(k, k)``, any values."""
    d = X.shape[1]
    k = d + 1
    weighted = sw.shape[0] > 0
    row[:] = 0.0
    mean = row[1:1 + k]
    com = row[1 + k:].reshape(k, k)
    if hi <= lo:
        return
    scratch, prod = buffers
    slice_mean = np.empty(k)
    W = 0.0
    for s in range(lo, hi, rows):
        e = min(hi, s + rows)
        m = e - s
        D = scratch[:m]
        # 1. the slice's weighted mean, from values shifted by its first row
        np.subtract(X[s:e], X[s], out=D[:, :d], dtype=np.float64)
        np.subtract(y[s:e], y[s], out=D[:, d], dtype=np.float64)
        if weighted:
            w = sw[s:e]
            Ws = float(np.sum(w))
            if not Ws > 0.0:  # rows of zero weight only: nothing to merge
                continue
            total = np.einsum("i,ij->j", w, D)
        else:
            Ws = float(m)
            total = D.sum(axis=0)
        slice_mean[:d] = X[s]
        slice_mean[d] = y[s]
        slice_mean += total / Ws
        # 2. centred, one rounding from the data
        np.subtract(X[s:e], slice_mean[:d], out=D[:, :d], dtype=np.float64)
        np.subtract(y[s:e], slice_mean[d], out=D[:, d], dtype=np.float64)
        if weighted:
            D *= np.sqrt(w)[:, None]
        # 3. the merge's rank-one term as one more row
        Wt = W + Ws
        delta = slice_mean - mean
        f = (W / Wt) * Ws
        scratch[m] = np.sqrt(f) * delta
        A = scratch[:m + 1]
        np.matmul(A.T, A, out=prod)  # BLAS syrk: the sum of the rows' outer products
        com += prod
        mean += delta * (Ws / Wt)
        W = Wt
    row[0] = W


def comoments(X, y, sw, n_blocks, rows, workers=1):
    """Weighted means and centred co-moments of ``z = [X, y]``, per block.

    Parameters
    ----------
    X : ndarray, float32 or float64, (n, d), C-contiguous
    y : ndarray, the dtype of X, (n,)
    sw : ndarray, float64, (n,) or (0,)
        The sample weights, or an empty array for "all ones".
    n_blocks, rows : int
        The layout (:func:`fastgd._chunking.gram_layout`): ``n_blocks`` blocks of
        ``ceil(n / n_blocks)`` rows (the last shorter), each in slices of ``rows`` rows.
    workers : int
        Blocks run on this many of fastgd's threads (the calling one included).

    Returns
    -------
    ndarray, float64, (n_blocks, 1 + k + k*k), ``k = d + 1``
        Row ``b``: ``[W, mean (k), com (k*k)]`` of block ``b`` (``com`` full and
        symmetric), to be merged in row order
        (:func:`fastgd.sources.passes.merge_moments`). Non-finite data gives non-finite
        statistics, without a warning (the caller finds the row).
    """
    n, d = X.shape
    k = d + 1
    out = np.empty((n_blocks, 1 + k + k * k))
    size = -(-n // n_blocks)
    # one scratch a thread, not a block: its pages are touched once a pass (8 blocks of
    # 8 MB scratch were 64 MB of fresh pages at 10^6 x 100)

    def buffers():
        return _aligned((min(rows, size) + 1, k)), _aligned((k, k))

    def task(b, scratch):
        with np.errstate(all="ignore"):
            _block(X, y, sw, b * size, min(n, (b + 1) * size), rows, out[b], scratch)

    _threads.run_with(task, n_blocks, workers, buffers)
    return out


#: rows of the co-moment updated at once by :func:`merge_blocks`' rank-one term (its
#: temporary holds about this many values)
MERGE_VALUES = 1 << 16


def merge_blocks(out, k):
    """The rows of :func:`comoments` (``k = d + 1``) merged in order into ``out[0]`` (in
    place; returned): Chan et al.'s pairwise update, its rank-one term ``g g^T`` with
    ``g = sqrt(f) delta`` (exactly symmetric, like the slices' term), added a few rows at
    a time so that no temporary of the co-moment's size is made. Rows of zero weight are skipped."""
    first = out[0]
    mean = first[1:1 + k]
    com = first[1 + k:].reshape(k, k)
    step = max(1, MERGE_VALUES // k)
    with np.errstate(all="ignore"):
        for r in out[1:]:
            Wb = r[0]
            if not Wb > 0.0:
                continue
            W = first[0]
            if not W > 0.0:
                first[:] = r
                continue
            Wt = W + Wb
            delta = r[1:1 + k] - mean
            g = np.sqrt((W / Wt) * Wb) * delta
            com += r[1 + k:].reshape(k, k)
            for a in range(0, k, step):
                com[a:a + step] += np.multiply.outer(g[a:a + step], g)
            mean += delta * (Wb / Wt)
            first[0] = Wt
    return first
