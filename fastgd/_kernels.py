"""Numba kernels: pure array functions, nothing else.

Conventions shared by every kernel
----------------------------------
* ``X`` is a C-contiguous ``(n, d)`` float32 or float64 array (1-D input is viewed as
  ``(n, 1)`` by the caller); ``y`` is ``(n,)`` of the same dtype.
* ``sw`` holds the sample weights as float64 ``(n,)``, or is an empty float64 array
  ``(0,)`` for "all weights equal to one" (one signature serves both cases).
* ``coef`` is a float64 ``(d + 1,)`` array: ``coef[:d]`` are the weights and ``coef[d]``
  the intercept.
* Every reduction accumulates in float64 whatever the input dtype.
* Work is split into chunks whose boundaries are a function of ``n`` (and ``d``) and of
  ``out.shape[0]`` only; each chunk accumulates sequentially into its own row of
  ``out``; the driver sums the rows in order. The per-chunk bodies are separate
  compiled functions shared by the serial and the parallel variants, so both run the
  same machine code and give bit-identical results whatever the thread count.
* Each ``*_src`` function is written once and compiled twice at module level
  (``parallel=False`` / ``parallel=True``); :data:`SERIAL_PARALLEL` selects by name.
"""
import math

import numpy as np
from numba import prange

from ._config import jit
from ._intrinsics import PREFETCH_DISTANCE, prefetch

# ---------------------------------------------------------------------------------------
# Chunk bodies (compiled once, shared by both variants)
# ---------------------------------------------------------------------------------------


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


@jit
def _sse_grad_narrow_chunk(X, y, coef, start, stop, row):
    """:func:`_sse_grad_chunk` for 2 <= d <= 4 columns, unweighted.

    Each width is its own loop over rows with literal strides into the flat data: LLVM
    vectorises those across rows (interleaved loads), where the generic kernel's
    loops over so few columns stay scalar and run at a quarter of the memory speed.
    """
    Xs = X[start:stop]
    ys = y[start:stop]
    m = Xs.shape[0]
    d = Xs.shape[1]
    xf = Xs.reshape(m * d)
    b = coef[d]
    s_rr = 0.0
    s_r = 0.0
    if d == 2:
        c0 = coef[0]
        c1 = coef[1]
        g0 = 0.0
        g1 = 0.0
        for i in range(m):
            x0 = np.float64(xf[2 * i])
            x1 = np.float64(xf[2 * i + 1])
            r = np.float64(ys[i]) - (b + c0 * x0 + c1 * x1)
            s_rr += r * r
            s_r += r
            g0 += r * x0
            g1 += r * x1
        row[2] = g0
        row[3] = g1
    elif d == 3:
        c0 = coef[0]
        c1 = coef[1]
        c2 = coef[2]
        g0 = 0.0
        g1 = 0.0
        g2 = 0.0
        for i in range(m):
            x0 = np.float64(xf[3 * i])
            x1 = np.float64(xf[3 * i + 1])
            x2 = np.float64(xf[3 * i + 2])
            r = np.float64(ys[i]) - (b + c0 * x0 + c1 * x1 + c2 * x2)
            s_rr += r * r
            s_r += r
            g0 += r * x0
            g1 += r * x1
            g2 += r * x2
        row[2] = g0
        row[3] = g1
        row[4] = g2
    else:
        c0 = coef[0]
        c1 = coef[1]
        c2 = coef[2]
        c3 = coef[3]
        g0 = 0.0
        g1 = 0.0
        g2 = 0.0
        g3 = 0.0
        for i in range(m):
            x0 = np.float64(xf[4 * i])
            x1 = np.float64(xf[4 * i + 1])
            x2 = np.float64(xf[4 * i + 2])
            x3 = np.float64(xf[4 * i + 3])
            r = np.float64(ys[i]) - (b + c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3)
            s_rr += r * r
            s_r += r
            g0 += r * x0
            g1 += r * x1
            g2 += r * x2
            g3 += r * x3
        row[2] = g0
        row[3] = g1
        row[4] = g2
        row[5] = g3
    row[0] = s_rr
    row[1] = s_r


@jit
def _sse_grad_rows1(Xs, ys, sw, start, coef, lo, g, s_rr, s_r):
    """Rows ``lo ..`` of a chunk ``Xs, ys`` (data rows ``start ..``), one at a time: the
    tail after the row groups of the four- and eight-row kernels. Adds into ``g`` and
    returns ``(s_rr, s_r)`` continued with these rows' ``sum w r^2`` and ``sum w r``."""
    d = Xs.shape[1]
    b = coef[d]
    weighted = sw.shape[0] > 0
    for i in range(lo, Xs.shape[0]):
        xi = Xs[i]
        p = b
        for j in range(d):
            p += np.float64(xi[j]) * coef[j]
        r = np.float64(ys[i]) - p
        wr = sw[start + i] * r if weighted else r
        s_rr += wr * r
        s_r += wr
        for j in range(d):
            g[j] += wr * np.float64(xi[j])
    return s_rr, s_r


@jit
def _sse_grad_rows8_chunk(X, y, sw, coef, start, stop, row):
    """:func:`_sse_grad_chunk` for 5 <= d <= 12 columns, unweighted (``sw`` empty), eight
    rows a step.

    With so few columns the loops over them are too short to vectorise well, and the
    work per row is compute-bound for float32: eight independent dot products per step
    keep the FMA units busy where four leave them waiting (0.48 -> 0.65 of the memory
    speed at d = 10, float32, n = 10^7). Above 12 columns the four-row kernel is as fast.
    """
    Xs = X[start:stop]
    ys = y[start:stop]
    m = Xs.shape[0]
    d = Xs.shape[1]
    b = coef[d]
    g = row[2:]
    for j in range(d):
        g[j] = 0.0
    s_rr = 0.0
    s_r = 0.0
    m8 = m - m % 8
    for i in range(0, m8, 8):
        x0 = Xs[i]
        x1 = Xs[i + 1]
        x2 = Xs[i + 2]
        x3 = Xs[i + 3]
        x4 = Xs[i + 4]
        x5 = Xs[i + 5]
        x6 = Xs[i + 6]
        x7 = Xs[i + 7]
        p0 = b
        p1 = b
        p2 = b
        p3 = b
        p4 = b
        p5 = b
        p6 = b
        p7 = b
        for j in range(d):
            c = coef[j]
            p0 += np.float64(x0[j]) * c
            p1 += np.float64(x1[j]) * c
            p2 += np.float64(x2[j]) * c
            p3 += np.float64(x3[j]) * c
            p4 += np.float64(x4[j]) * c
            p5 += np.float64(x5[j]) * c
            p6 += np.float64(x6[j]) * c
            p7 += np.float64(x7[j]) * c
        r0 = np.float64(ys[i]) - p0
        r1 = np.float64(ys[i + 1]) - p1
        r2 = np.float64(ys[i + 2]) - p2
        r3 = np.float64(ys[i + 3]) - p3
        r4 = np.float64(ys[i + 4]) - p4
        r5 = np.float64(ys[i + 5]) - p5
        r6 = np.float64(ys[i + 6]) - p6
        r7 = np.float64(ys[i + 7]) - p7
        s_rr += ((r0 * r0 + r1 * r1) + (r2 * r2 + r3 * r3)
                 + (r4 * r4 + r5 * r5) + (r6 * r6 + r7 * r7))
        s_r += ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for j in range(d):
            g[j] += ((r0 * np.float64(x0[j]) + r1 * np.float64(x1[j]))
                     + (r2 * np.float64(x2[j]) + r3 * np.float64(x3[j]))
                     + (r4 * np.float64(x4[j]) + r5 * np.float64(x5[j]))
                     + (r6 * np.float64(x6[j]) + r7 * np.float64(x7[j])))
    s_rr, s_r = _sse_grad_rows1(Xs, ys, sw, start, coef, m8, g, s_rr, s_r)
    row[0] = s_rr
    row[1] = s_r


@jit
def _sse_grad_1d_chunk(X, y, sw, coef, start, stop, row):
    """:func:`_sse_grad_chunk` for one feature (weighted or not): its own kernel, so a
    d = 1 fit compiles only these two short loops (0.4 s less on a cold start)."""
    b = coef[1]
    weighted = sw.shape[0] > 0
    Xs = X[start:stop]
    ys = y[start:stop]
    m = Xs.shape[0]  # 0 for a trailing empty chunk (start may exceed stop)
    xs = Xs.reshape(m)
    c0 = coef[0]
    s_rr = 0.0
    s_r = 0.0
    s_rx = 0.0
    if weighted:
        ws = sw[start:stop]
        for i in range(m):
            xi = np.float64(xs[i])
            r = np.float64(ys[i]) - (c0 * xi + b)
            wr = ws[i] * r
            s_rr += wr * r
            s_r += wr
            s_rx += wr * xi
    else:
        for i in range(m):
            xi = np.float64(xs[i])
            r = np.float64(ys[i]) - (c0 * xi + b)
            s_rr += r * r
            s_r += r
            s_rx += r * xi
    row[0] = s_rr
    row[1] = s_r
    row[2] = s_rx


@jit
def _sse_grad_chunk(X, y, sw, coef, start, stop, row):
    """Loss and raw gradient sums of one chunk, fused in one pass.

    Writes ``row[0] = sum(w r^2)``, ``row[1] = sum(w r)`` and
    ``row[2 + j] = sum(w r x_j)`` with ``r = y - (X @ coef[:d] + coef[d])``.
    """
    # Loops run from 0 over local slices: a loop over range(start, stop) was not
    # vectorised for float32 input (24.9 ms instead of 4.8 ms serial at n = 10^7).
    d = X.shape[1]
    b = coef[d]
    weighted = sw.shape[0] > 0
    Xs = X[start:stop]
    ys = y[start:stop]
    m = Xs.shape[0]  # 0 for a trailing empty chunk (start may exceed stop)
    # Rows in groups of four, so each load/store of the gradient accumulators serves
    # four rows and the four dot products run as independent chains. (One column, and
    # unweighted data with 2 <= d <= 12 columns, have their own kernels: see
    # sse_grad_kernel; this one is correct for any d.)
    g = row[2:]
    for j in range(d):
        g[j] = 0.0
    s_rr = 0.0
    s_r = 0.0
    m4 = m - m % 4
    for i in range(0, m4, 4):
        x0 = Xs[i]
        x1 = Xs[i + 1]
        x2 = Xs[i + 2]
        x3 = Xs[i + 3]
        p0 = b
        p1 = b
        p2 = b
        p3 = b
        for j in range(d):
            c = coef[j]
            p0 += np.float64(x0[j]) * c
            p1 += np.float64(x1[j]) * c
            p2 += np.float64(x2[j]) * c
            p3 += np.float64(x3[j]) * c
        r0 = np.float64(ys[i]) - p0
        r1 = np.float64(ys[i + 1]) - p1
        r2 = np.float64(ys[i + 2]) - p2
        r3 = np.float64(ys[i + 3]) - p3
        if weighted:
            w0 = sw[start + i] * r0
            w1 = sw[start + i + 1] * r1
            w2 = sw[start + i + 2] * r2
            w3 = sw[start + i + 3] * r3
        else:
            w0 = r0
            w1 = r1
            w2 = r2
            w3 = r3
        s_rr += w0 * r0 + w1 * r1 + w2 * r2 + w3 * r3
        s_r += w0 + w1 + w2 + w3
        for j in range(d):
            g[j] += (w0 * np.float64(x0[j]) + w1 * np.float64(x1[j])
                     + w2 * np.float64(x2[j]) + w3 * np.float64(x3[j]))
    s_rr, s_r = _sse_grad_rows1(Xs, ys, sw, start, coef, m4, g, s_rr, s_r)
    row[0] = s_rr
    row[1] = s_r


@jit
def _weighted_means(Xs, ys, sw, start, mean):
    """Weighted means of the columns of ``[Xs, ys]`` (rows ``start ..`` of the data) into
    ``mean`` (``d + 1``); returns the weight total (the means are 0 when it is 0)."""
    d = Xs.shape[1]
    weighted = sw.shape[0] > 0
    W = 0.0
    for a in range(d + 1):
        mean[a] = 0.0
    for i in range(Xs.shape[0]):
        w = sw[start + i] if weighted else 1.0
        W += w
        xi = Xs[i]
        for a in range(d):
            mean[a] += w * np.float64(xi[a])
        mean[d] += w * np.float64(ys[i])
    if W > 0.0:
        for a in range(d + 1):
            mean[a] /= W
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
    if d == 1 and not weighted:
        # the common case in scalar registers, looping from 0 over local slices
        # (vectorised: 8 ms instead of 45 ms for 10^7 rows on 2 cores)
        m = stop - start  # > 0: sub-chunks are never empty
        xs = X[start:stop].reshape(m)
        ys = y[start:stop]
        sx = 0.0
        sy = 0.0
        for i in range(m):
            sx += np.float64(xs[i])
            sy += np.float64(ys[i])
        mx = sx / m
        my = sy / m
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
        com[1, 1] = cyy
        return float(m)
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


@jit
def _merge_moments(Wa, mean_a, com_a, Wb, mean_b, com_b):
    """Merge group b into group a in place (Chan et al.'s pairwise update).

    ``com`` holds upper triangles; returns the merged weight total.
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
    f = Wa * Wb / W
    for a in range(k):
        da = mean_b[a] - mean_a[a]
        for b in range(a, k):
            com_a[a, b] += com_b[a, b] + f * da * (mean_b[b] - mean_a[b])
    for a in range(k):
        mean_a[a] += (mean_b[a] - mean_a[a]) * (Wb / W)
    return W


@jit(fastmath=False)
def _sgd_part(X, y, sw, perm, start, stop, params, coef, grad):
    """Run the (mini-)batch SGD updates over ``perm[start:stop]`` in place on ``coef``.

    ``params = [learning_rate, batch_size, reduction, weight_scale, fit_intercept]``:
    reduction 0 is the mean loss, 1 the sum; ``weight_scale = n / sum(w)`` (1 when
    unweighted); the intercept ``coef[d]`` is updated only when ``fit_intercept`` is 1. Batches are
    consecutive runs of ``batch_size`` entries of ``perm`` (the last one may be shorter);
    each takes one simultaneous step ``coef -= lr * g`` with the unbiased estimate of the
    full gradient: mean, ``g = -(2 n / (W |B|)) sum_B w r z``; sum, the gradient of the
    batch's SSE ``g = -2 sum_B w r z`` (``z = [x, 1]``). ``grad`` is a float64 ``(d + 1,)``
    work array. Returns ``-1``, or the position in ``perm`` of the first row whose
    residual was not finite (the update stops there).
    """
    d = X.shape[1]
    lr = params[0]
    bs = np.int64(params[1])
    mean = params[2] == 0.0
    wscale = params[3]
    fit_b = params[4] != 0.0
    weighted = sw.shape[0] > 0
    xf = X.reshape(X.shape[0] * d)
    ahead = PREFETCH_DISTANCE
    if bs == 1 and d == 1:
        # one feature: the parameters live in registers. Through memory, every step's
        # dependency chain included a store and a reload (10^7 random rows: 375 ms;
        # in registers: about 220 ms, the cost of the random row access itself).
        base = 2.0 * lr * wscale if mean else 2.0 * lr
        xs = X.reshape(X.shape[0])
        c0 = coef[0]
        c1 = coef[1]
        bad = -1
        for k in range(start, stop):
            if k + ahead < stop:  # (inline: a helper taking the arrays cost refcounts)
                q = perm[k + ahead]
                prefetch(xs, q)
                prefetch(y, q)
                if weighted:
                    prefetch(sw, q)
            i = perm[k]
            xi = np.float64(xs[i])
            r = np.float64(y[i]) - (c0 * xi + c1)
            if not math.isfinite(r):
                bad = k
                break
            step = base * sw[i] * r if weighted else base * r
            c0 += step * xi
            if fit_b:
                c1 += step
        coef[0] = c0
        coef[1] = c1
        return bad
    if d == 1:
        # mini-batches of one feature, parameters in registers likewise
        xs = X.reshape(X.shape[0])
        c0 = coef[0]
        c1 = coef[1]
        bad = -1
        for k0 in range(start, stop, bs):
            k1 = min(k0 + bs, stop)
            g0 = 0.0
            g1 = 0.0
            for k in range(k0, k1):
                if k + ahead < stop:
                    q = perm[k + ahead]
                    prefetch(xs, q)
                    prefetch(y, q)
                    if weighted:
                        prefetch(sw, q)
                i = perm[k]
                xi = np.float64(xs[i])
                r = np.float64(y[i]) - (c0 * xi + c1)
                if not math.isfinite(r):
                    bad = k
                    break
                wr = sw[i] * r if weighted else r
                g0 += wr * xi
                g1 += wr
            if bad >= 0:
                break
            step = 2.0 * lr * wscale / (k1 - k0) if mean else 2.0 * lr
            c0 += step * g0
            if fit_b:
                c1 += step * g1
        coef[0] = c0
        coef[1] = c1
        return bad
    if bs == 1:
        base = 2.0 * lr * wscale if mean else 2.0 * lr
        for k in range(start, stop):
            if k + ahead < stop:
                q = perm[k + ahead]
                prefetch(xf, q * d)
                prefetch(xf, q * d + d - 1)
                prefetch(y, q)
                if weighted:
                    prefetch(sw, q)
            i = perm[k]
            p = coef[d]
            for j in range(d):
                p += np.float64(X[i, j]) * coef[j]
            r = np.float64(y[i]) - p
            if not math.isfinite(r):
                return k
            step = base * sw[i] * r if weighted else base * r
            for j in range(d):
                coef[j] += step * np.float64(X[i, j])
            if fit_b:
                coef[d] += step
        return -1
    for k0 in range(start, stop, bs):
        k1 = min(k0 + bs, stop)
        for j in range(d + 1):
            grad[j] = 0.0
        for k in range(k0, k1):
            if k + ahead < stop:
                q = perm[k + ahead]
                prefetch(xf, q * d)
                prefetch(xf, q * d + d - 1)
                prefetch(y, q)
                if weighted:
                    prefetch(sw, q)
            i = perm[k]
            p = coef[d]
            for j in range(d):
                p += np.float64(X[i, j]) * coef[j]
            r = np.float64(y[i]) - p
            if not math.isfinite(r):
                return k
            wr = sw[i] * r if weighted else r
            for j in range(d):
                grad[j] += wr * np.float64(X[i, j])
            grad[d] += wr
        step = 2.0 * lr * wscale / (k1 - k0) if mean else 2.0 * lr
        for j in range(d):
            coef[j] += step * grad[j]
        if fit_b:
            coef[d] += step * grad[d]
    return -1


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@jit
def _mix64(z):
    """The splitmix64 finaliser: a bijective 64-bit hash (uint64 in, uint64 out)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@jit
def _draw(key, counter, bound):
    """Counter-based uniform integer in ``[0, bound)``: draw number ``counter`` of ``key``.

    ``splitmix64(key + (counter + 1) * golden)``, top 53 bits ``u``, then
    ``floor(u * (bound * 2^-53))`` (bias below ``bound / 2^53``). One multiplication by
    an exact constant, so no reassociation can change it, and clamped to ``bound - 1``
    against rounding up; a 64-bit modulo instead made the permutation 2x slower.
    """
    z = _mix64(key + (np.uint64(counter) + np.uint64(1)) * _GOLDEN)
    j = np.int64(np.float64(z >> np.uint64(11)) * (np.float64(bound) * 1.1102230246251565e-16))
    return min(j, bound - 1)


@jit
def _shuffle_in_place(p, key):
    """Fisher-Yates shuffle of ``p`` with the draws of ``key``."""
    for i in range(p.shape[0] - 1, 0, -1):
        j = _draw(key, i, i + 1)
        t = p[i]
        p[i] = p[j]
        p[j] = t


# ---------------------------------------------------------------------------------------
# Chunked loops: one source each, compiled serial and parallel below
# ---------------------------------------------------------------------------------------


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


def _sse_grad_src(X, y, sw, coef, out):
    """Fused residual / loss / gradient pass over all rows, per chunk.

    ``out`` is float64 ``(n_chunks, d + 2)``; row ``c`` receives chunk ``c``'s
    ``[sum w r^2, sum w r, sum w r x_0, ..., sum w r x_{d-1}]``. No temporary of size n.
    """
    n = X.shape[0]
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        _sse_grad_chunk(X, y, sw, coef, c * size, min(n, (c + 1) * size), out[c])


def _sse_grad_1d_src(X, y, sw, coef, out):
    """:func:`_sse_grad_src` for one feature (``X`` is ``(n, 1)``)."""
    n = X.shape[0]
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        _sse_grad_1d_chunk(X, y, sw, coef, c * size, min(n, (c + 1) * size), out[c])


def _sse_grad_narrow_src(X, y, sw, coef, out):
    """:func:`_sse_grad_src` for unweighted data with 2 <= d <= 4 (``sw`` is empty)."""
    n = X.shape[0]
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        _sse_grad_narrow_chunk(X, y, coef, c * size, min(n, (c + 1) * size), out[c])


def _sse_grad_rows8_src(X, y, sw, coef, out):
    """:func:`_sse_grad_src` for unweighted data with 5 <= d <= 12 (``sw`` is empty)."""
    n = X.shape[0]
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        _sse_grad_rows8_chunk(X, y, sw, coef, c * size, min(n, (c + 1) * size), out[c])


def _moments_src(X, y, sw, sub_rows, out):
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
    for blk in prange(n_blocks):
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


def _moments_diag_src(X, y, sw, sub_rows, out):
    """Weighted means and centred second moments of each column of ``z = [x, y]``, per block.

    The diagonal of :func:`_moments_src` in O(n d) instead of O(n d^2): what scaling needs
    when the Gram matrix is not used (streaming solver, stochastic modes). ``out`` is
    float64 ``(n_blocks, 1 + 2 k)``; row ``b`` receives ``[W, mean (k), m2 (k)]``.
    """
    n, d = X.shape
    k = d + 1
    n_blocks = out.shape[0]
    size = (n + n_blocks - 1) // n_blocks
    for blk in prange(n_blocks):
        row = out[blk]
        mean = np.zeros(k)
        m2 = np.zeros(k)
        sub_mean = np.zeros(k)
        sub_m2 = np.zeros(k)
        W = 0.0
        stop = min(n, (blk + 1) * size)
        for s in range(blk * size, stop, sub_rows):
            Wb = _moments_diag_chunk(X, y, sw, s, min(stop, s + sub_rows), sub_mean, sub_m2)
            if Wb > 0.0:
                Wt = W + Wb
                f = W * Wb / Wt
                for a in range(k):
                    delta = sub_mean[a] - mean[a]
                    m2[a] += sub_m2[a] + f * delta * delta
                    mean[a] += delta * (Wb / Wt)
                W = Wt
        row[0] = W
        for a in range(k):
            row[1 + a] = mean[a]
            row[1 + k + a] = m2[a]


def _max_norm_src(X, sw, coords, out):
    """Per-chunk ``max_i w_i (||(x_i - c) * v||^2 + e)``: the largest step curvature of SGD.

    ``coords`` is float64 ``(2, d + 1)``: row 0 the centres ``c`` (``coords[0, d]`` holds
    the constant ``e``: 1 when the intercept is fitted, else 0), row 1 the inverse scales
    ``v`` (``coords[1, d]`` unused). Rows of zero weight are skipped; ``out`` (float64
    ``(n_chunks,)``) receives each chunk's maximum (0 for an empty chunk).
    """
    n, d = X.shape
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    weighted = sw.shape[0] > 0
    e = coords[0, d]
    for c in prange(n_chunks):
        best = 0.0
        for i in range(c * size, min(n, (c + 1) * size)):
            w = sw[i] if weighted else 1.0
            if w > 0.0:
                q = e
                for j in range(d):
                    t = (np.float64(X[i, j]) - coords[0, j]) * coords[1, j]
                    q += t * t
                best = max(best, w * q)
        out[c] = best


def _sgd_epoch_src(X, y, sw, perm, params, coef0, out):
    """One epoch of (mini-)batch SGD over ``perm``, split into ``out.shape[0]`` parts.

    Each part runs its own SGD pass over its contiguous slice of ``perm`` starting from
    ``coef0``; ``out`` (float64 ``(n_parts, d + 2)``) receives each part's final
    parameters in ``out[p, :d + 1]`` and in ``out[p, d + 1]`` the position in ``perm``
    where a non-finite residual stopped it (``-1`` if none). With one part this is plain
    serial SGD; with several parts the driver averages the rows (parameter mixing).
    """
    n_parts = out.shape[0]
    m = perm.shape[0]
    d = X.shape[1]
    size = (m + n_parts - 1) // n_parts
    for p in prange(n_parts):
        row = out[p]
        for j in range(d + 1):
            row[j] = coef0[j]
        grad = np.zeros(d + 1)
        bad = _sgd_part(X, y, sw, perm, p * size, min(m, (p + 1) * size), params, row[: d + 1], grad)
        row[d + 1] = bad


def _permutation_src(perm, seed, n_buckets, n_chunks):
    """A uniform random permutation of ``0 .. n-1`` into ``perm`` (int64 ``(n,)``).

    Rao-Sandelius bucket shuffle: element ``i`` goes to bucket ``_draw(seed, i,
    n_buckets)``; buckets are laid out in order (elements in index order inside each),
    then each bucket is Fisher-Yates shuffled with its own key. Independent uniform
    buckets plus uniform shuffles give a uniform permutation. Every draw depends only on
    ``(seed, i)`` or ``(seed, bucket, j)``, so the result does not depend on the thread
    count; the scatter works on ``n_chunks`` fixed ranges of indices. Buckets of a few
    thousand entries stay in cache: 56 ms for 10^7 on 2 cores, against 220 ms for
    ``numpy.random.Generator.shuffle``.
    """
    n = perm.shape[0]
    key = _mix64(np.uint64(seed))
    size = (n + n_chunks - 1) // n_chunks
    counts = np.zeros((n_chunks, n_buckets), dtype=np.int64)
    for c in prange(n_chunks):
        for i in range(c * size, min(n, (c + 1) * size)):
            counts[c, _draw(key, i, n_buckets)] += 1
    starts = np.empty(n_buckets + 1, dtype=np.int64)
    total = 0
    for b in range(n_buckets):
        starts[b] = total
        for c in range(n_chunks):
            t = counts[c, b]
            counts[c, b] = total
            total += t
    starts[n_buckets] = total
    for c in prange(n_chunks):
        offs = counts[c]
        for i in range(c * size, min(n, (c + 1) * size)):
            b = _draw(key, i, n_buckets)
            perm[offs[b]] = i
            offs[b] += 1
    for b in prange(n_buckets):
        _shuffle_in_place(perm[starts[b]:starts[b + 1]], _mix64(key ^ (np.uint64(b) + _GOLDEN)))


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


_nonfinite_serial = jit(_nonfinite_src, parallel=False)
_nonfinite_parallel = jit(_nonfinite_src, parallel=True)
_sse_grad_serial = jit(_sse_grad_src, parallel=False)
_sse_grad_parallel = jit(_sse_grad_src, parallel=True)
_sse_grad_1d_serial = jit(_sse_grad_1d_src, parallel=False)
_sse_grad_1d_parallel = jit(_sse_grad_1d_src, parallel=True)
_sse_grad_narrow_serial = jit(_sse_grad_narrow_src, parallel=False)
_sse_grad_narrow_parallel = jit(_sse_grad_narrow_src, parallel=True)
_sse_grad_rows8_serial = jit(_sse_grad_rows8_src, parallel=False)
_sse_grad_rows8_parallel = jit(_sse_grad_rows8_src, parallel=True)
_moments_serial = jit(_moments_src, parallel=False)
_moments_parallel = jit(_moments_src, parallel=True)
_moments_diag_serial = jit(_moments_diag_src, parallel=False)
_moments_diag_parallel = jit(_moments_diag_src, parallel=True)
_max_norm_serial = jit(_max_norm_src, parallel=False)
_max_norm_parallel = jit(_max_norm_src, parallel=True)
_sgd_epoch_serial = jit(_sgd_epoch_src, parallel=False)
_sgd_epoch_parallel = jit(_sgd_epoch_src, parallel=True)
_permutation_serial = jit(_permutation_src, parallel=False)
_permutation_parallel = jit(_permutation_src, parallel=True)

#: kernel name -> (serial, parallel)
SERIAL_PARALLEL = {
    "nonfinite": (_nonfinite_serial, _nonfinite_parallel),
    "sse_grad": (_sse_grad_serial, _sse_grad_parallel),
    "sse_grad_1d": (_sse_grad_1d_serial, _sse_grad_1d_parallel),
    "sse_grad_narrow": (_sse_grad_narrow_serial, _sse_grad_narrow_parallel),
    "sse_grad_rows8": (_sse_grad_rows8_serial, _sse_grad_rows8_parallel),
    "moments": (_moments_serial, _moments_parallel),
    "moments_diag": (_moments_diag_serial, _moments_diag_parallel),
    "max_norm": (_max_norm_serial, _max_norm_parallel),
    "sgd_epoch": (_sgd_epoch_serial, _sgd_epoch_parallel),
    "permutation": (_permutation_serial, _permutation_parallel),
}


def sse_grad_kernel(d, weighted, parallel):
    """The fused loss/gradient kernel for ``d`` columns: every variant has the signature
    and output layout of :func:`_sse_grad_src`, and each is compiled only when used."""
    name = "sse_grad"
    if d == 1:
        name = "sse_grad_1d"
    elif not weighted and 2 <= d <= 4:
        name = "sse_grad_narrow"
    elif not weighted and 5 <= d <= 12:
        name = "sse_grad_rows8"
    return SERIAL_PARALLEL[name][int(parallel)]
