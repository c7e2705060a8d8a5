"""The bandwidth reference: a compiled parallel streaming read of the bytes of ``X`` and ``y``.

A full-batch epoch has to read every element of ``X`` and ``y`` once; the fastest loop
that does nothing more than that is the physical limit of an epoch on this machine. It is
measured in the same run as the contenders (never taken from another machine or day),
and every ``batch-epoch`` group carries it, so ``bench/report.py`` can state each
contender's time as a multiple of it.

The loop is written like fastgd's streaming kernels, so the comparison is like for like:
a ``prange`` over fixed chunks of rows (boundaries a function of ``n`` alone), each
chunk accumulating sequentially in float64 into its own slot, compiled with the
reassociation flags that let LLVM vectorise the reduction. It returns the sum of every
element, so the compiler cannot drop the reads.
"""
import numba
import numpy as np
from numba import prange

#: rows per chunk: the same as fastgd's streaming passes (``fastgd._config.CHUNK_ROWS``),
#: fixed here so a change there cannot silently move the reference.
CHUNK_ROWS = 1 << 15

#: the fastmath flags of fastgd's streaming kernels (no ``nnan``/``ninf``).
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


def _stream_sum_src(flat_x, y, d, out):
    """Sum every element of ``flat_x`` (``(n * d,)``) and ``y`` (``(n,)``), per chunk.

    ``out`` is float64 ``(n_chunks,)``; slot ``c`` receives the sum of chunk ``c``'s
    rows of X and y. Loops run from 0 over local slices: numba vectorises those for
    float32 input, not loops over ``range(start, stop)``.
    """
    n = y.shape[0]
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        lo = min(n, c * size)
        hi = min(n, (c + 1) * size)
        xs = flat_x[lo * d:hi * d]
        ys = y[lo:hi]
        acc = 0.0
        for i in range(xs.shape[0]):
            acc += np.float64(xs[i])
        for i in range(ys.shape[0]):
            acc += np.float64(ys[i])
        out[c] = acc


def _compile(func):
    """Parallel, with fastgd's flags; cached on disk where a cache can be written (like
    fastgd, a cache that cannot be written falls back quietly to compiling)."""
    opts = dict(parallel=True, fastmath=FASTMATH, nogil=True)
    try:
        return numba.njit(cache=True, **opts)(func)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(cache=False, **opts)(func)


_stream_sum_parallel = _compile(_stream_sum_src)


def n_chunks(n):
    """Chunks of the reference read over ``n`` rows."""
    return max(1, -(-n // CHUNK_ROWS))


def stream_sum(X, y, out=None):
    """The bandwidth reference: read every byte of ``X`` and ``y`` once, return their sum.

    Parameters
    ----------
    X : ndarray, shape (n,) or (n, d), float32 or float64, C-contiguous
    y : ndarray, shape (n,), same dtype
    out : ndarray, float64 ``(n_chunks(n),)``, optional
        Per-chunk accumulators; pass one to keep the allocation out of a timed loop.

    Returns
    -------
    float
        ``sum(X) + sum(y)``, accumulated in float64 per chunk, chunks added in order.
    """
    if not (X.flags.c_contiguous and y.flags.c_contiguous):
        raise ValueError("the reference reads C-contiguous arrays only")
    n = y.shape[0]
    d = X.size // n if n else 1
    if out is None:
        out = np.empty(n_chunks(n))
    _stream_sum_parallel(X.reshape(-1), y, d, out)
    return float(out.sum())
