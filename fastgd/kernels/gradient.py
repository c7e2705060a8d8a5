"""The fused loss/gradient passes of the squared loss, in four shapes by width (every other
loss: :mod:`.loss`)."""
import numpy as np

from .._config import jit


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


def _sse_grad_src(X, y, sw, coef, out, c0, c1):
    """Fused residual / loss / gradient pass over all rows, per chunk.

    ``out`` is float64 ``(n_chunks, d + 2)``; row ``c`` receives chunk ``c``'s
    ``[sum w r^2, sum w r, sum w r x_0, ..., sum w r x_{d-1}]``. No temporary of size n.
    """
    n = X.shape[0]
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for c in range(c0, c1):
        _sse_grad_chunk(X, y, sw, coef, c * size, min(n, (c + 1) * size), out[c])


def _sse_grad_1d_src(X, y, sw, coef, out, c0, c1):
    """:func:`_sse_grad_src` for one feature (``X`` is ``(n, 1)``)."""
    n = X.shape[0]
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for c in range(c0, c1):
        _sse_grad_1d_chunk(X, y, sw, coef, c * size, min(n, (c + 1) * size), out[c])


def _sse_grad_narrow_src(X, y, sw, coef, out, c0, c1):
    """:func:`_sse_grad_src` for unweighted data with 2 <= d <= 4 (``sw`` is empty)."""
    n = X.shape[0]
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for c in range(c0, c1):
        _sse_grad_narrow_chunk(X, y, coef, c * size, min(n, (c + 1) * size), out[c])


def _sse_grad_rows8_src(X, y, sw, coef, out, c0, c1):
    """:func:`_sse_grad_src` for unweighted data with 5 <= d <= 12 (``sw`` is empty)."""
    n = X.shape[0]
    n_chunks = out.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for c in range(c0, c1):
        _sse_grad_rows8_chunk(X, y, sw, coef, c * size, min(n, (c + 1) * size), out[c])


_sse_grad = jit(_sse_grad_src)
_sse_grad_1d = jit(_sse_grad_1d_src)
_sse_grad_narrow = jit(_sse_grad_narrow_src)
_sse_grad_rows8 = jit(_sse_grad_rows8_src)
