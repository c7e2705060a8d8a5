"""Slow, obvious twins of fastgd's kernels and drivers: the oracles of the tests.

Plain per-row Python loops in float64 (exact ``fractions`` where noted), written from the
textbook derivation and from nothing in fastgd's code.
"""
import math
from fractions import Fraction

import numpy as np


def _w(sw, i):
    return 1.0 if sw is None or len(sw) == 0 else float(sw[i])


def sse_grad(X, y, sw, coef):
    """``[sum w r^2, sum w r, sum w r x_j ...]`` with ``r = y - (x . coef[:d] + coef[d])``."""
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    n, d = X.shape
    out = [0.0] * (d + 2)
    for i in range(n):
        pred = float(coef[d])
        for j in range(d):
            pred += float(X[i, j]) * float(coef[j])
        r = float(y[i]) - pred
        w = _w(sw, i)
        out[0] += w * r * r
        out[1] += w * r
        for j in range(d):
            out[2 + j] += w * r * float(X[i, j])
    return np.array(out)


def nonfinite(A):
    """``(count, first_row)`` of rows with NaN or inf."""
    A = np.asarray(A).reshape(len(A), -1)
    bad = [i for i in range(len(A)) if not all(math.isfinite(float(v)) for v in A[i])]
    return len(bad), (bad[0] if bad else -1)


def moments(X, y, sw):
    """Exact weighted mean and co-moment of ``z = [x, y]`` with fractions, as float64."""
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    n, d = X.shape
    Z = [[Fraction(float(v)) for v in X[i]] + [Fraction(float(y[i]))] for i in range(n)]
    w = [Fraction(_w(sw, i)) for i in range(n)]
    W = sum(w)
    mean = [sum(w[i] * Z[i][a] for i in range(n)) / W for a in range(d + 1)]
    com = [[sum(w[i] * (Z[i][a] - mean[a]) * (Z[i][b] - mean[b]) for i in range(n))
            for b in range(d + 1)] for a in range(d + 1)]
    return float(W), np.array([float(m) for m in mean]), np.array(com, dtype=float)


def sgd_epoch(X, y, sw, perm, lr, batch_size, reduction, weight_scale, fit_intercept, coef0):
    """One epoch of (mini-)batch SGD over ``perm``, the textbook update, row by row.

    For each batch ``B`` (consecutive entries of ``perm``): residuals at the current
    parameters, then the simultaneous update ``coef += 2 lr s sum_B w r z`` with
    ``s = weight_scale / |B|`` (mean) or ``s = 1`` (sum).
    """
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    d = X.shape[1]
    coef = [float(c) for c in coef0]
    for k0 in range(0, len(perm), batch_size):
        batch = perm[k0:k0 + batch_size]
        g = [0.0] * (d + 1)
        for i in batch:
            pred = coef[d]
            for j in range(d):
                pred += float(X[i, j]) * coef[j]
            r = float(y[i]) - pred
            wr = _w(sw, i) * r
            for j in range(d):
                g[j] += wr * float(X[i, j])
            g[d] += wr
        s = 2.0 * lr * (weight_scale / len(batch) if reduction == "mean" else 1.0)
        for j in range(d):
            coef[j] += s * g[j]
        if fit_intercept:
            coef[d] += s * g[d]
    return np.array(coef)


def fit_batch_tutorial(x, y, learning_rate, epochs, b=0.0, m=0.0):
    """The tutorial program: per-point gradient sums of the mean squared error.

    Returns ``(b, m, errors)`` with the error before the first and after every step.
    """
    N = float(len(x))

    def error(b, m):
        total = 0.0
        for i in range(len(x)):
            total += (y[i] - (m * x[i] + b)) ** 2
        return total / N

    errors = [error(b, m)]
    for _ in range(epochs):
        b_grad = 0.0
        m_grad = 0.0
        for i in range(len(x)):
            b_grad += -(2 / N) * (y[i] - ((m * x[i]) + b))
            m_grad += -(2 / N) * x[i] * (y[i] - ((m * x[i]) + b))
        b, m = b - learning_rate * b_grad, m - learning_rate * m_grad
        errors.append(error(b, m))
    return b, m, errors


_M64 = (1 << 64) - 1


def _mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _draw(key, counter, bound):
    u = _mix64((key + (counter + 1) * 0x9E3779B97F4A7C15) & _M64) >> 11
    return min(int(float(u) * (float(bound) * 2.0**-53)), bound - 1)


def permutation(n, seed, n_buckets):
    """The bucket shuffle, spelled out: bucket per index, buckets in order, Fisher-Yates each."""
    key = _mix64(seed)
    buckets = [[] for _ in range(n_buckets)]
    for i in range(n):
        buckets[_draw(key, i, n_buckets)].append(i)
    out = []
    for b, items in enumerate(buckets):
        bkey = _mix64(key ^ ((b + 0x9E3779B97F4A7C15) & _M64))
        for i in range(len(items) - 1, 0, -1):
            j = _draw(bkey, i, i + 1)
            items[i], items[j] = items[j], items[i]
        out.extend(items)
    return np.array(out, dtype=np.int64)


def tile_permutation(n, seed, tile, n_buckets):
    """The permutation in tiles, spelled out: the tiles' numbers in the bucket shuffle of
    ``seed`` (``n_buckets`` buckets), then each tile's rows, Fisher-Yates shuffled with the
    key of ``(seed, tile number)``."""
    n_tiles = -(-n // tile)
    key = _mix64(seed ^ 0x94D049BB133111EB)
    out = []
    for t in permutation(n_tiles, seed, n_buckets).tolist():
        items = list(range(t * tile, min(n, (t + 1) * tile)))
        tkey = _mix64((key + (t + 1) * 0x9E3779B97F4A7C15) & _M64)
        for i in range(len(items) - 1, 0, -1):
            j = _draw(tkey, i, i + 1)
            items[i], items[j] = items[j], items[i]
        out.extend(items)
    return np.array(out, dtype=np.int64)


def sgd_scaled_epoch(X, y, sw, perm, m, s, lam1, lam2, eta0, power_t, t0, invscaling,
                     batch_size, mean, wscale, fit_intercept, avg_start, huber, epsilon,
                     theta, avg):
    """(Mini-)batch SGD in standardized coordinates, row by row, from the definition.

    Each batch: ``theta += eta * c * sum_B w psi(r) [x_s, 1]`` with ``x_s = (x - m) / s``,
    ``c = 2 wscale / |B|`` (mean) or 2 (sum), ``psi`` the identity or the clip to
    ``[-epsilon, epsilon]`` (Huber); then ``theta_j -= eta lam2_j theta_j`` and the soft
    threshold at ``eta lam1_j``; ``eta = eta0`` or ``eta0 / t ** power_t`` with ``t`` the
    global step number; then the running average of the steps after ``avg_start``.
    Returns ``(theta, avg, t)``.
    """
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    d = X.shape[1]
    theta, avg = [float(v) for v in theta], [float(v) for v in avg]
    t = t0
    for k0 in range(0, len(perm), batch_size):
        batch = perm[k0:k0 + batch_size]
        g = [0.0] * (d + 1)
        for i in batch:
            xs = [(float(X[i, j]) - m[j]) / s[j] for j in range(d)]
            r = float(y[i]) - (sum(xs[j] * theta[j] for j in range(d)) + theta[d])
            if huber:
                r = min(max(r, -epsilon), epsilon)
            wr = _w(sw, i) * r
            for j in range(d):
                g[j] += wr * xs[j]
            g[d] += wr
        t += 1
        eta = eta0 / t ** power_t if invscaling else eta0
        c = 2.0 * eta * (wscale / len(batch) if mean else 1.0)
        new = list(theta)
        for j in range(d):
            v = theta[j] + c * g[j] - eta * lam2[j] * theta[j]
            tau = eta * lam1[j]
            v = math.copysign(max(abs(v) - tau, 0.0), v) if tau > 0 else v
            new[j] = v
        if fit_intercept:
            new[d] = theta[d] + c * g[d]
        theta = new
        if t > avg_start:
            a = 1.0 / (t - avg_start)
            avg = [avg[j] + a * (theta[j] - avg[j]) for j in range(d + 1)]
    return np.array(theta), np.array(avg), t


def huber_grad(X, y, sw, coef, epsilon):
    """``[sum w h(r), sum w psi(r), sum w psi(r) x_j ...]``: ``h`` the Huber loss (``r^2``
    inside ``[-epsilon, epsilon]``, ``2 epsilon |r| - epsilon^2`` outside), ``psi`` the clip."""
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    n, d = X.shape
    out = [0.0] * (d + 2)
    for i in range(n):
        r = float(y[i]) - (float(coef[d]) + sum(float(X[i, j]) * float(coef[j]) for j in range(d)))
        h = r * r if abs(r) <= epsilon else 2 * epsilon * abs(r) - epsilon * epsilon
        psi = min(max(r, -epsilon), epsilon)
        w = _w(sw, i)
        out[0] += w * h
        out[1] += w * psi
        for j in range(d):
            out[2 + j] += w * psi * float(X[i, j])
    return np.array(out)


def max_step_norm(X, sw, centres, inv_scales, fit_intercept):
    """``max_i w_i (sum_j ((x_ij - c_j) v_j)^2 + [1 if intercept])`` over rows with w > 0."""
    best = 0.0
    for i in range(len(X)):
        if sw[i] > 0:
            q = 1.0 if fit_intercept else 0.0
            for j in range(X.shape[1]):
                q += ((float(X[i, j]) - centres[j]) * inv_scales[j]) ** 2
            best = max(best, float(sw[i]) * q)
    return best


def csr_rows(indptr, indices, values):
    """The rows of CSR arrays as lists of ``(column, value)``, read entry by entry."""
    n = len(indptr) - 1
    return [[(int(indices[k]), float(values[k])) for k in range(int(indptr[i]), int(indptr[i + 1]))]
            for i in range(n)]


def csr_loss_grad(indptr, indices, values, d, y, sw, coef, value=None, psi=None):
    """``[sum w loss(r), sum w psi(r), sum w psi(r) x_j ...]`` over CSR rows, only the
    stored entries visited; the squared loss (``r^2``, ``psi = r``) unless ``value`` and
    ``psi`` are given as functions of ``r``."""
    value = value or (lambda r: r * r)
    psi = psi or (lambda r: r)
    out = [0.0] * (d + 2)
    for i, row in enumerate(csr_rows(indptr, indices, values)):
        pred = float(coef[d])
        for j, v in row:
            pred += v * float(coef[j])
        r = float(y[i]) - pred
        w = _w(sw, i)
        out[0] += w * value(r)
        out[1] += w * psi(r)
        for j, v in row:
            out[2 + j] += w * psi(r) * v
    return np.array(out)


def csr_predict(indptr, indices, values, coef, intercept):
    """``x_i . coef + intercept`` per CSR row, over the stored entries."""
    return np.array([float(intercept) + sum(v * float(coef[j]) for j, v in row)
                     for row in csr_rows(indptr, indices, values)])


def csr_row_norms(indptr, indices, values, d, sw, centres, inv_scales, fit_intercept):
    """:func:`max_step_norm` of CSR rows, the implicit zeros written out one by one."""
    best = 0.0
    for i, row in enumerate(csr_rows(indptr, indices, values)):
        x = [0.0] * d
        for j, v in row:
            x[j] += v
        q = (1.0 if fit_intercept else 0.0) + sum(((x[j] - centres[j]) * inv_scales[j]) ** 2
                                                 for j in range(d))
        best = max(best, _w(sw, i) * q)
    return best


def csr_sgd_lazy_epoch(indptr, indices, values, y, sw, perm, m, s, lam1, lam2, eta0, power_t,
                       t0, invscaling, batch_size, mean, wscale, fit_intercept, avg_start,
                       huber, epsilon, theta, avg):
    """:func:`sgd_scaled_epoch` over CSR rows in the lazy forms, step by step, visiting
    only the stored entries of each batch (``lam1``, ``lam2``: one weight for every
    column).

    The weights are kept as ``theta_j = g (v_j + B u_j)`` with ``u_j = -m_j / s_j``: a
    step's decay multiplies ``g`` by ``1 - eta lam2``, the gradient's centring part adds
    to the scalar ``B``, its stored entries to ``v`` (divided by the new ``g``). The L1
    steps a column misses are applied when a row next reads it, as one soft threshold at
    the sum of ``eta lam1 / g`` over the steps missed (read from the step history). The
    average is computed at the end from the history of ``(g, B)`` and each column's log
    of ``v`` (no running sums). Returns ``(theta, avg, t)``.
    """
    d = len(m)
    u = [-m[j] / s[j] for j in range(d)]
    v = [float(theta[j]) for j in range(d)]
    b = float(theta[d])
    g, B = 1.0, 0.0
    pen = [0.0]  # pen[k]: the L1 threshold (units of v) summed over the first k steps
    seen = [0] * d  # the steps whose L1 threshold column j has received
    log = [[(0, v[j])] for j in range(d)]  # (step, v_j from that step on)
    hist = []  # (g, B, b) after each step
    t = t0

    def catch_up(j, k):
        if pen[k] > pen[seen[j]]:
            tau = pen[k] - pen[seen[j]]
            v[j] = math.copysign(max(abs(v[j]) - tau, 0.0), v[j])
        seen[j] = k

    for k0 in range(0, len(perm), batch_size):
        batch = perm[k0:k0 + batch_size]
        k = len(hist)
        grad = {}
        gsum = 0.0
        for i in batch:
            row = [(int(indices[e]), float(values[e])) for e in range(indptr[i], indptr[i + 1])]
            for j, _ in row:
                catch_up(j, k)
            pred = b + sum(g * (v[j] + B * u[j]) * u[j] for j in range(d))
            pred += sum(x / s[j] * g * (v[j] + B * u[j]) for j, x in row)
            r = float(y[i]) - pred
            if huber:
                r = min(max(r, -epsilon), epsilon)
            wr = _w(sw, i) * r
            for j, x in row:
                grad[j] = grad.get(j, 0.0) + wr * x / s[j]
            gsum += wr
        t += 1
        eta = eta0 / t ** power_t if invscaling else eta0
        c = 2.0 * eta * (wscale / len(batch) if mean else 1.0)
        g *= 1.0 - eta * lam2
        B += c * gsum / g
        pen.append(pen[-1] + eta * lam1 / g)
        for j, gj in grad.items():
            v[j] += c * gj / g
            catch_up(j, k + 1)
            log[j].append((k + 1, v[j]))
        if fit_intercept:
            b += c * gsum
        hist.append((g, B, b))
    steps = len(hist)
    for j in range(d):
        catch_up(j, steps)
    new = [g * (v[j] + B * u[j]) for j in range(d)] + [b]
    first = int(max(avg_start - t0, 0))  # steps of this call before averaging starts
    n_old, n_new = int(max(t0 - avg_start, 0)), steps - first
    if n_new <= 0:
        return np.array(new), np.array(avg, dtype=float), t
    out = []
    for j in range(d):
        total, e = 0.0, 0
        for k in range(first + 1, steps + 1):
            while e + 1 < len(log[j]) and log[j][e + 1][0] <= k:
                e += 1
            gk, Bk, _ = hist[k - 1]
            total += gk * (log[j][e][1] + Bk * u[j])
        out.append(total)
    out.append(sum(h[2] for h in hist[first:]))
    avg = [(avg[j] * n_old + out[j]) / (n_old + n_new) for j in range(d + 1)]
    return np.array(new), np.array(avg), t


def comoments(X, y, sw):
    """Weighted mean and centred co-moment of ``z = [x, y]``, two-pass in extended
    precision (``np.longdouble``: 64-bit significands on x86), as float64: the slow twin
    of :func:`fastgd.kernels.gram.comoments` (after the merge), for data too large for
    :func:`moments`' fractions."""
    X = np.asarray(X).reshape(len(y), -1)
    Z = np.empty((X.shape[0], X.shape[1] + 1), dtype=np.longdouble)
    Z[:, :-1] = X
    Z[:, -1] = y
    w = np.ones(len(y), dtype=np.longdouble) if sw is None else np.asarray(sw, np.longdouble)
    W = w.sum()
    mean = (w[:, None] * Z).sum(axis=0) / W
    D = Z - mean
    com = np.einsum("i,ij,ik->jk", w, D, D)
    return float(W), mean.astype(np.float64), com.astype(np.float64)
