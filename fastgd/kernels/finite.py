"""The NaN/inf check: rows holding a non-finite value, counted from the values' bits."""
from .._config import jit


@jit
def _nonfinite(bits, emask, k, out, c0, c1):
    """Count the rows holding NaN or inf in chunks ``c0 .. c1 - 1``, from the bits.

    ``bits``: the flat unsigned-integer view (uint32 for float32, uint64 for float64) of
    a C-contiguous array with ``k`` values a row; ``emask``: ``(1,)`` of the same dtype,
    the exponent mask (see ``fastgd._validation.nonfinite_bits``): a value is NaN or inf
    exactly when all its exponent bits are set. ``out`` is int64 ``(n_chunks, 2)``, the
    chunks fixed rows of ``ceil(n / n_chunks)`` rows; row ``c`` receives ``[count,
    first_row]`` of chunk ``c`` (``first_row = -1`` when the chunk is clean).
    """
    # Integer tests, not float arithmetic: the earlier fast path summed v * 0 (NaN for
    # NaN/inf) under the kernels' fastmath flags, and LLVM 14 (numba 0.59) folded v * 0
    # to 0 there, so NaN input passed unseen. Integer compares cannot be folded away
    # and LLVM vectorises the count (one pass at the memory speed).
    n = bits.shape[0] // k
    size = (n + out.shape[0] - 1) // out.shape[0]
    m = emask[0]
    for c in range(c0, c1):
        start = min(n, c * size)
        stop = min(n, start + size)
        seg = bits[start * k:stop * k]
        cnt = 0
        for i in range(seg.shape[0]):
            cnt += (seg[i] & m) == m
        out[c, 0] = 0
        out[c, 1] = -1
        if cnt == 0:
            continue
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
        out[c, 0] = count
        out[c, 1] = first
