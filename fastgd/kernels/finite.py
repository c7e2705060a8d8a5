"""The NaN/inf check: rows holding a non-finite value, counted from the values' bits."""
from numba import prange

from .._config import jit


@jit
def _nonfinite_chunk(bits, emask, k, start, stop, row):
    """Count the rows ``start .. stop`` holding a NaN or inf, from the values' bits.

    ``bits`` is the flat unsigned-integer view of a C-contiguous float array with ``k``
    values a row, ``emask`` (``emask[0]``, same dtype) its exponent mask: a value is NaN
    or inf exactly when all its exponent bits are set. Writes ``row[0]`` = count and
    ``row[1]`` = first such row (``-1`` if none).
    """
    # Integer tests, not float arithmetic: the earlier fast path summed v * 0 (NaN for
    # NaN/inf) under the kernels' fastmath flags, and LLVM 14 (numba 0.59) folded v * 0
    # to 0 there, so NaN input passed unseen. Integer compares cannot be folded away
    # and LLVM vectorises the count (one pass at the memory speed).
    m = emask[0]
    seg = bits[start * k:stop * k]
    cnt = 0
    for i in range(seg.shape[0]):
        cnt += (seg[i] & m) == m
    row[0] = 0
    row[1] = -1
    if cnt == 0:
        return
    count = 0
    first = -1
    for i in range(start, stop):
        bad = False
        for j in range(k):
            if (bits[i * k + j] & m) == m:
                bad = True
        if bad:
            if first < 0:
                first = i
            count += 1
    row[0] = count
    row[1] = first


def _nonfinite_src(bits, emask, k, out):
    """Count rows holding NaN or inf, per chunk, from the bits of the values.

    ``bits``: the flat unsigned-integer view (uint32 for float32, uint64 for float64) of
    a C-contiguous array with ``k`` values a row; ``emask``: ``(1,)`` of the same dtype,
    the exponent mask (see ``fastgd._validation.nonfinite_bits``). ``out`` is int64
    ``(n_chunks, 2)``; row ``c`` receives ``[count, first_row]`` of chunk ``c``
    (``first_row = -1`` when the chunk is clean).
    """
    n = bits.shape[0] // k
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        _nonfinite_chunk(bits, emask, k, c * size, min(n, (c + 1) * size), out[c])


_nonfinite_serial = jit(_nonfinite_src, parallel=False)


_nonfinite_parallel = jit(_nonfinite_src, parallel=True)
