"""Moments passes: weighted means and centred co-moments (full, or per column), merged
exactly block by block; and the largest step curvature of SGD (the max row norm)."""
import numpy as np

from .._config import jit
from .._layout import C_CENTRE, C_INV_SCALE


@jit
def _weighted_means(Xs, ys, sw, start, mean):
    """Weighted means of the columns of ``[Xs, ys]`` (rows ``start ..`` of the data) into
    ``mean`` (``d + 1``); returns the weight total (the means are 0 when it is 0).

    Sums are of the values shifted by the slice's first row (shifted data): a constant
    column then sums to exactly 0 and its mean is exactly its value, so its centred
    moments are exactly 0 (summing 0.1 nine times gave the mean 0.10000000000000002, and
    a "variance" of rounding that standardization blew up to 1); for other columns the
    shift removes the cancellation of a large common offset.
    """
    d = Xs.shape[1]
    weighted = sw.shape[0] > 0
    W = 0.0
    for a in range(d + 1):
        mean[a] = 0.0
    if Xs.shape[0] == 0:
        return W
    x0 = Xs[0]
    y0 = np.float64(ys[0])
    for i in range(Xs.shape[0]):
        w = sw[start + i] if weighted else 1.0
        W += w
        xi = Xs[i]
        for a in range(d):
            mean[a] += w * (np.float64(xi[a]) - np.float64(x0[a]))
        mean[d] += w * (np.float64(ys[i]) - y0)
    if W > 0.0:
        for a in range(d):
            mean[a] = np.float64(x0[a]) + mean[a] / W
        mean[d] = y0 + mean[d] / W
    return W


@jit
def _moments_chunk(X, y, sw, start, stop, mean, com, scratch):
    """Two-pass weighted mean and co-moment of ``z = [x, y]`` over rows ``start:stop``.

    Writes ``mean`` (``d + 1``) and the upper triangle of ``com`` (``(d + 1, d + 1)``,
    ``sum w (z - mean)(z - mean)^T``); returns the weight total ``W``.
    ``scratch`` is a float64 ``(d + 2, >= stop - start)`` work array.
    """
    d = X.shape[1]
    k = d + 1
    weighted = sw.shape[0] > 0
    W = 0.0
    for a in range(k):
        mean[a] = 0.0
        for b in range(k):
            com[a, b] = 0.0
    m = stop - start  # > 0: sub-chunks are never empty
    Xs = X[start:stop]
    ys = y[start:stop]
    W = _weighted_means(Xs, ys, sw, start, mean)
    if W <= 0.0:
        return W
    # Centre the block into the transposed scratch, then each co-moment entry is one
    # contiguous dot product (vectorised, accumulator in a register): d = 10 at 10^6
    # rows took 8x less time than updating the (k, k) matrix in memory row by row.
    D = scratch[:, :m]
    for i in range(m):
        xi = Xs[i]
        for a in range(d):
            D[a, i] = np.float64(xi[a]) - mean[a]
        D[d, i] = np.float64(ys[i]) - mean[d]
    if weighted:
        ws = sw[start:stop]
        for a in range(k):
            for i in range(m):
                scratch[k, i] = ws[i] * D[a, i]  # spare row: w * (z_a - mean_a)
            wa = scratch[k, :m]
            _dots(wa, D, a, k, m, com)
    else:
        for a in range(k):
            _dots(D[a], D, a, k, m, com)
    return W


@jit
def _moments_1d_chunk(X, y, start, stop, mean, com):
    """:func:`_moments_chunk` for one unweighted column, in scalar registers, looping from
    0 over local slices (vectorised: 8 ms instead of 45 ms for 10^7 rows on 2 cores). A
    kernel of its own (:func:`_moments_1d_src`), so that a one-feature fit does not
    compile the general pass (3.0 s of a 7.2 s cold demo before the split). Writes
    ``mean`` (2) and the upper triangle of ``com`` (2, 2); returns the row count."""
    m = stop - start  # > 0: sub-chunks are never empty
    xs = X[start:stop].reshape(m)
    ys = y[start:stop]
    # shifted by the first row, as in _weighted_means
    x0 = np.float64(xs[0])
    y0 = np.float64(ys[0])
    sx = 0.0
    sy = 0.0
    for i in range(m):
        sx += np.float64(xs[i]) - x0
        sy += np.float64(ys[i]) - y0
    mx = x0 + sx / m
    my = y0 + sy / m
    cxx = 0.0
    cxy = 0.0
    cyy = 0.0
    for i in range(m):
        dx = np.float64(xs[i]) - mx
        dy = np.float64(ys[i]) - my
        cxx += dx * dx
        cxy += dx * dy
        cyy += dy * dy
    mean[0] = mx
    mean[1] = my
    com[0, 0] = cxx
    com[0, 1] = cxy
    com[1, 0] = 0.0
    com[1, 1] = cyy
    return float(m)


@jit
def _dots(u, D, a, k, m, com):
    """``com[a, b] = u . D[b, :m]`` for ``b = a .. k-1``, four columns per sweep of ``u``."""
    b = a
    while b + 4 <= k:
        d0 = D[b]
        d1 = D[b + 1]
        d2 = D[b + 2]
        d3 = D[b + 3]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for i in range(m):
            ui = u[i]
            s0 += ui * d0[i]
            s1 += ui * d1[i]
            s2 += ui * d2[i]
            s3 += ui * d3[i]
        com[a, b] = s0
        com[a, b + 1] = s1
        com[a, b + 2] = s2
        com[a, b + 3] = s3
        b += 4
    while b < k:
        db = D[b]
        s0 = 0.0
        for i in range(m):
            s0 += u[i] * db[i]
        com[a, b] = s0
        b += 1


@jit(fastmath=False)
def _merge_moments(Wa, mean_a, com_a, Wb, mean_b, com_b):
    """Merge group b into group a in place (Chan et al.'s pairwise update).

    ``com`` holds upper triangles; returns the merged weight total. Compiled strict, with
    the factor as ``(Wa / W) * Wb``: under reassociation LLVM formed ``Wa * Wb`` first,
    which underflows for small weights (two blocks of weights near 1e-140 lost 4 digits
    of a co-moment); the merge is O(k^2) per block, strictness costs nothing.
    """
    k = mean_a.shape[0]
    W = Wa + Wb
    if Wb <= 0.0:
        return Wa
    if Wa <= 0.0:
        for a in range(k):
            mean_a[a] = mean_b[a]
            for b in range(a, k):
                com_a[a, b] = com_b[a, b]
        return Wb
    f = (Wa / W) * Wb
    for a in range(k):
        da = mean_b[a] - mean_a[a]
        for b in range(a, k):
            com_a[a, b] += com_b[a, b] + f * da * (mean_b[b] - mean_a[b])
    for a in range(k):
        mean_a[a] += (mean_b[a] - mean_a[a]) * (Wb / W)
    return W


def _moments_src(X, y, sw, sub_rows, out, c0, c1):
    """Weighted means and centred co-moments of ``z = [x, y]``, per block.

    ``out`` is float64 ``(n_blocks, 1 + k + k*k)`` with ``k = d + 1``; row ``b`` receives
    ``[W, mean (k), comoment (k*k, upper triangle)]`` of block ``b``. Each block walks
    its rows in sub-chunks of ``sub_rows`` rows (two passes each, in cache) merged
    exactly in order.
    """
    n, d = X.shape
    k = d + 1
    n_blocks = out.shape[0]
    size = (n + n_blocks - 1) // n_blocks
    for blk in range(c0, c1):
        row = out[blk]
        mean = np.zeros(k)
        com = np.zeros((k, k))
        sub_mean = np.zeros(k)
        sub_com = np.zeros((k, k))
        scratch = np.empty((k + 1, sub_rows))
        W = 0.0
        stop = min(n, (blk + 1) * size)
        for s in range(blk * size, stop, sub_rows):
            Ws = _moments_chunk(X, y, sw, s, min(stop, s + sub_rows), sub_mean, sub_com, scratch)
            W = _merge_moments(W, mean, com, Ws, sub_mean, sub_com)
        row[0] = W
        for a in range(k):
            row[1 + a] = mean[a]
            for b in range(k):
                row[1 + k + a * k + b] = com[a, b]


def _moments_1d_src(X, y, sw, sub_rows, out, c0, c1):
    """:func:`_moments_src` for one unweighted column (``sw`` empty): the same blocks,
    sub-chunks and merges, the same bits."""
    n = X.shape[0]
    k = 2
    n_blocks = out.shape[0]
    size = (n + n_blocks - 1) // n_blocks
    for blk in range(c0, c1):
        row = out[blk]
        mean = np.zeros(k)
        com = np.zeros((k, k))
        sub_mean = np.zeros(k)
        sub_com = np.zeros((k, k))
        W = 0.0
        stop = min(n, (blk + 1) * size)
        for s in range(blk * size, stop, sub_rows):
            Ws = _moments_1d_chunk(X, y, s, min(stop, s + sub_rows), sub_mean, sub_com)
            W = _merge_moments(W, mean, com, Ws, sub_mean, sub_com)
        row[0] = W
        for a in range(k):
            row[1 + a] = mean[a]
            for b in range(k):
                row[1 + k + a * k + b] = com[a, b]


@jit
def _moments_diag_chunk(X, y, sw, start, stop, mean, m2):
    """Two-pass weighted mean and centred second moment of each column of ``z = [x, y]``.

    Writes ``mean`` and ``m2`` (``d + 1`` each, ``sum w (z_a - mean_a)^2``) for rows
    ``start:stop``; returns the weight total.
    """
    d = X.shape[1]
    k = d + 1
    weighted = sw.shape[0] > 0
    Xs = X[start:stop]
    ys = y[start:stop]
    m = Xs.shape[0]
    for a in range(k):
        m2[a] = 0.0
    W = _weighted_means(Xs, ys, sw, start, mean)
    if W <= 0.0:
        return W
    for i in range(m):
        w = sw[start + i] if weighted else 1.0
        xi = Xs[i]
        for a in range(d):
            t = np.float64(xi[a]) - mean[a]
            m2[a] += w * t * t
        t = np.float64(ys[i]) - mean[d]
        m2[d] += w * t * t
    return W


@jit(fastmath=False)
def _merge_diag(W, mean, m2, Wb, mean_b, m2_b):
    """Merge per-column moments ``(Wb, mean_b, m2_b)`` into ``(W, mean, m2)`` in place;
    returns the total weight (strict, like :func:`_merge_moments`)."""
    if not Wb > 0.0:
        return W
    Wt = W + Wb
    f = (W / Wt) * Wb
    for a in range(mean.shape[0]):
        delta = mean_b[a] - mean[a]
        m2[a] += m2_b[a] + f * delta * delta
        mean[a] += delta * (Wb / Wt)
    return Wt


def _moments_diag_src(X, y, sw, sub_rows, out, c0, c1):
    """Weighted means and centred second moments of each column of ``z = [x, y]``, per block.

    The diagonal of :func:`_moments_src` in O(n d) instead of O(n d^2): what scaling needs
    when the Gram matrix is not used (streaming solver, stochastic modes). ``out`` is
    float64 ``(n_blocks, 1 + 2 k)``; row ``b`` receives ``[W, mean (k), m2 (k)]``.
    """
    n, d = X.shape
    k = d + 1
    n_blocks = out.shape[0]
    size = (n + n_blocks - 1) // n_blocks
    for blk in range(c0, c1):
        row = out[blk]
        mean = np.zeros(k)
        m2 = np.zeros(k)
        sub_mean = np.zeros(k)
        sub_m2 = np.zeros(k)
        W = 0.0
        stop = min(n, (blk + 1) * size)
        for s in range(blk * size, stop, sub_rows):
            Wb = _moments_diag_chunk(X, y, sw, s, min(stop, s + sub_rows), sub_mean, sub_m2)
            W = _merge_diag(W, mean, m2, Wb, sub_mean, sub_m2)
        row[0] = W
        for a in range(k):
            row[1 + a] = mean[a]
            row[1 + k + a] = m2[a]


def _max_norm_src(X, sw, coords, out, c0, c1):
    """Per-chunk ``max_i w_i (||(x_i - c) * v||^2 + e)``: the largest step curvature of SGD.

    ``coords``: the layout of :mod:`fastgd._layout` (the centres ``c``, the inverse
    scales ``v`` and the intercept's column ``e = coords[C_INV_SCALE, d]``; the penalty's
    rows are not read). Rows of zero weight are skipped; ``out`` (float64
    ``(n_chunks,)``) receives each chunk's maximum (0 for an empty chunk).
    """
    n, d = X.shape
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    weighted = sw.shape[0] > 0
    e = coords[C_INV_SCALE, d]
    for c in range(c0, c1):
        best = 0.0
        for i in range(c * size, min(n, (c + 1) * size)):
            w = sw[i] if weighted else 1.0
            if w > 0.0:
                q = e
                for j in range(d):
                    t = (np.float64(X[i, j]) - coords[C_CENTRE, j]) * coords[C_INV_SCALE, j]
                    q += t * t
                best = max(best, w * q)
        out[c] = best


@jit
def _combine_moments(out, k, res_mean, res_com):
    """Merge the per-block rows of :func:`_moments_src` in order.

    Writes the total mean into ``res_mean`` (``k``) and the full symmetric co-moment into
    ``res_com`` (``(k, k)``); returns the weight total ``W``.
    """
    W = 0.0
    bmean = np.empty(k)
    bcom = np.empty((k, k))
    for a in range(k):
        res_mean[a] = 0.0
        for b in range(k):
            res_com[a, b] = 0.0
    for blk in range(out.shape[0]):
        row = out[blk]
        for a in range(k):
            bmean[a] = row[1 + a]
            for b in range(k):
                bcom[a, b] = row[1 + k + a * k + b]
        W = _merge_moments(W, res_mean, res_com, row[0], bmean, bcom)
    for a in range(k):
        for b in range(a + 1, k):
            res_com[b, a] = res_com[a, b]
    return W


_moments = jit(_moments_src)
_moments_1d = jit(_moments_1d_src)
_moments_diag = jit(_moments_diag_src)
_max_norm = jit(_max_norm_src)
