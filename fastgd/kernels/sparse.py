"""The passes over rows stored as CSR (compressed sparse rows): O(nnz) per pass.

A CSR block is three arrays: ``indptr`` (int32 or int64, ``(n + 1,)``), ``indices``
(int32 or int64, ``(nnz,)``: the columns of the stored entries, sorted and unique within
each row, in ``[0, d)``) and ``values`` (float64, ``(nnz,)``); row ``i`` holds the entries
``indptr[i]:indptr[i + 1]``. ``y`` is float64 ``(n,)`` and ``sw`` the weights as in every
kernel (float64 ``(n,)``, or empty for unit weights). The checks and the canonical form
are made once, in Python, when the data are validated (:func:`fastgd._validation.check_csr`).

Nothing is centred here: a pass evaluates the raw model ``x . w + b`` (one scalar per row),
and the solvers move between raw and scaled coordinates in O(d) (``(x - m) / s . theta``
is ``x . (theta / s) + (theta_d - m . theta / s)``), so the sparse matrix is never
densified.

Chunks, as for the dense passes, are fixed ranges of rows, a function of ``n`` and
``out.shape[0]`` only; each chunk writes its own row of ``out`` and the driver adds the
rows in order, so serial and parallel passes are bit-identical. A gradient row has
``d + 2`` entries, so the number of chunks is also bounded by the width (see
:func:`fastgd._chunking.csr_chunks`).

The loss/gradient pass is written once over the globals ``_VALUE`` and ``_PSI`` and
compiled per loss (the squared loss included), as in :mod:`.loss`.
"""

from .._config import jit, per_loss, specialize
from .._layout import C_CENTRE, C_INV_SCALE

#: rebound in each loss's copy (see :func:`csr_loss_kernel`)
_VALUE = None
_PSI = None
_CHUNK = None


@jit(inline=True)
def _row_predict(indptr, indices, values, coef, i):
    """``x_i . coef[:d] + coef[d]`` of CSR row ``i`` (its stored entries in order): the
    prediction every pass over rows starts from."""
    p = coef[coef.shape[0] - 1]
    for k in range(indptr[i], indptr[i + 1]):
        p += values[k] * coef[indices[k]]
    return p


def _csr_loss_grad_chunk(indptr, indices, values, y, sw, coef, c, start, stop, row):
    """Accumulate ``[sum w loss(r), sum w psi(r), sum w psi(r) x_j ...]`` over the rows
    ``start:stop`` into ``row`` (float64 ``(d + 2,)``), ``r = y - (x . coef[:d] + coef[d])``:
    O(stored entries of the rows) besides zeroing ``row``."""
    d = coef.shape[0] - 1
    weighted = sw.shape[0] > 0
    for j in range(d + 2):
        row[j] = 0.0
    s_h = 0.0
    s_p = 0.0
    for i in range(start, stop):
        r = y[i] - _row_predict(indptr, indices, values, coef, i)
        w = sw[i] if weighted else 1.0
        wp = w * _PSI(r, c)
        s_h += w * _VALUE(r, c)
        s_p += wp
        for k in range(indptr[i], indptr[i + 1]):
            row[2 + indices[k]] += wp * values[k]
    row[0] = s_h
    row[1] = s_p


def _csr_loss_grad_src(indptr, indices, values, y, sw, coef, params, out, c0, c1):
    """The loss's sums at ``coef`` (float64 ``(d + 1,)``) over the CSR rows, one row of
    ``out`` (float64 ``(n_chunks, d + 2)``) per fixed chunk of ``ceil(n / n_chunks)`` rows,
    chunks ``c0 .. c1 - 1``, in the layout of
    :func:`fastgd.kernels.gradient._sse_grad_src`; ``params = [c]``, the loss's parameter."""
    n = y.shape[0]
    k = out.shape[0]
    size = (n + k - 1) // k
    for ch in range(c0, c1):
        _CHUNK(indptr, indices, values, y, sw, coef, params[0], ch * size,
               min(n, (ch + 1) * size), out[ch])


def _csr_loss_src(indptr, indices, values, y, sw, coef, params, out, c0, c1):
    """``out[ch] = sum w loss(r)`` over the rows of each fixed chunk ``ch`` of ``ceil(n /
    n_chunks)`` rows (``out`` float64 ``(n_chunks,)``), chunks ``c0 .. c1 - 1``, at raw
    ``coef`` (float64 ``(d + 1,)``); ``params = [c]``. The loss alone, O(stored entries)
    with nothing written per column: an SGD fit measures each epoch with it, where the
    fused pass also scatters the gradient over every column (0.3 to 0.7 s an epoch at
    10^6 rows x 2^18 columns).

    The same rows, operations and order as the loss part of :func:`_csr_loss_grad_src`,
    but not always the same bits: LLVM contracts the multiply-adds of the two loops into
    FMAs differently (without weights, ``s_h += 1.0 * (r * r)`` becomes one FMA here and
    stays two roundings there; with weights, or compiled without ``contract``, the two
    agree bit for bit). Measured: one ulp per chunk sum, 1e-16 relative; tested to
    1e-14."""
    n = y.shape[0]
    nc = out.shape[0]
    size = (n + nc - 1) // nc
    c = params[0]
    weighted = sw.shape[0] > 0
    for ch in range(c0, c1):
        s_h = 0.0
        for i in range(ch * size, min(n, (ch + 1) * size)):
            r = y[i] - _row_predict(indptr, indices, values, coef, i)
            w = sw[i] if weighted else 1.0
            s_h += w * _VALUE(r, c)
        out[ch] = s_h


def _csr_subset_loss_src(indptr, indices, values, y, sw, idx, coef, params, out):
    """``out[0] = sum w loss(r)``, ``out[1] = sum w`` over the CSR rows ``idx`` (int64;
    raw ``coef``, float64 ``(d + 1,)``); ``params = [c]``: the CSR twin of
    :func:`fastgd.kernels.loss._subset_loss_src` (early stopping's held-out loss)."""
    c = params[0]
    weighted = sw.shape[0] > 0
    s = 0.0
    wsum = 0.0
    for k in range(idx.shape[0]):
        i = idx[k]
        r = y[i] - _row_predict(indptr, indices, values, coef, i)
        w = sw[i] if weighted else 1.0
        s += w * _VALUE(r, c)
        wsum += w
    out[0] = s
    out[1] = wsum


class CSRLossKernel:
    """The compiled CSR passes of one loss: ``grad`` (the loss/gradient pass, with the
    signature of :func:`_csr_loss_grad_src`), ``value`` (the loss alone,
    :func:`_csr_loss_src`) and ``subset`` (the loss over some rows,
    :func:`_csr_subset_loss_src`); each compiles on its first call."""

    def __init__(self, loss):
        suffix = f"_{loss.name}_{loss.key()}"
        value, psi = jit(loss.value, inline=True), jit(loss.psi, inline=True)
        chunk = jit(specialize(_csr_loss_grad_chunk, suffix, _VALUE=value, _PSI=psi),
                    inline=True)
        self.grad = jit(specialize(_csr_loss_grad_src, suffix, _CHUNK=chunk))
        self.value = jit(specialize(_csr_loss_src, suffix, _VALUE=value))
        self.subset = jit(specialize(_csr_subset_loss_src, suffix, _VALUE=value))


#: the :class:`CSRLossKernel` of a loss (a :class:`fastgd.losses.Loss`), made once per loss
csr_loss_kernel = per_loss(CSRLossKernel)


@jit
def _csr_moments(indptr, indices, values, y, sw, d, out, c0, c1):
    """Weighted means and centred co-moments of ``z = [x, y]`` (``k = d + 1`` columns)
    per fixed chunk of rows, chunks ``c0 .. c1 - 1``.

    ``d`` is the number of columns of X. ``out`` is float64 ``(n_chunks, 1 + 2 k)`` for
    the diagonal (row ``[W, mean, com_jj]``) or ``(n_chunks, 1 + k + k k)`` for the full
    matrix (row ``[W, mean, com]``, ``com``
    row-major and symmetric): the layout of :func:`fastgd.kernels.moments._moments`, which
    :func:`fastgd.sources.passes.merge_moments` merges in chunk order. Within a chunk the
    raw sums ``sum w z``, ``sum w z z'`` are gathered over the stored entries (O(nnz) for
    the diagonal, O(sum of squared row lengths) for the full matrix) and centred on the
    chunk's mean at its end; a chunk of zero weight writes ``W = 0`` (skipped by the merge).
    """
    n = y.shape[0]
    nc = out.shape[0]
    k = d + 1
    full = out.shape[1] > 1 + 2 * k
    weighted = sw.shape[0] > 0
    size = (n + nc - 1) // nc
    for ch in range(c0, c1):
        row = out[ch]
        for j in range(row.shape[0]):
            row[j] = 0.0
        mean = row[1:1 + k]
        com = row[1 + k:]
        W = 0.0
        for i in range(ch * size, min(n, (ch + 1) * size)):
            lo = indptr[i]
            hi = indptr[i + 1]
            w = sw[i] if weighted else 1.0
            yi = y[i]
            W += w
            wy = w * yi
            mean[d] += wy
            if full:
                com[d * k + d] += wy * yi
                for a in range(lo, hi):
                    ja = indices[a]
                    wa = w * values[a]
                    mean[ja] += wa
                    com[ja * k + d] += wa * yi
                    com[d * k + ja] += wa * yi
                    for b in range(lo, hi):
                        com[ja * k + indices[b]] += wa * values[b]
            else:
                com[d] += wy * yi
                for a in range(lo, hi):
                    ja = indices[a]
                    wa = w * values[a]
                    mean[ja] += wa
                    com[ja] += wa * values[a]
        row[0] = W
        if W > 0.0:
            for a in range(k):
                mean[a] = mean[a] / W
            if full:
                for a in range(k):
                    for b in range(k):
                        com[a * k + b] -= W * mean[a] * mean[b]
            else:
                for a in range(k):
                    com[a] -= W * mean[a] * mean[a]


@jit
def _csr_predict(indptr, indices, values, coef, size, out, c0, c1):
    """``out[i] = x_i . coef[:d] + coef[d]`` (float64 ``(n,)``) for the rows of the
    chunks ``c0 .. c1 - 1`` of ``size`` rows each (each row is computed by itself: any
    cut gives the same values)."""
    n = out.shape[0]
    for ch in range(c0, c1):
        for i in range(ch * size, min(n, (ch + 1) * size)):
            out[i] = _row_predict(indptr, indices, values, coef, i)


@jit
def _csr_max_abs(indices, values, top):
    """``top[j] = max(top[j], |v|)`` over the stored entries ``v`` of each column ``j``."""
    for k in range(indices.shape[0]):
        a = abs(values[k])
        j = indices[k]
        if a > top[j]:
            top[j] = a


@jit
def _csr_row_norms(indptr, indices, values, sw, coords, out, c0, c1):
    """``out[ch] = max_i w_i ||[(x_i - centres) * inv_scales, b]||^2`` over fixed chunks
    of rows (``coords``: the layout of :mod:`fastgd._layout`; ``b`` the intercept's column
    value). Implicit entries count as zeros: the squared norm of the centred row is the
    norm of the centred zero row, ``sum_j (centre_j inv_j)^2``, corrected at the stored
    entries, so a row costs O(its stored entries)."""
    n = indptr.shape[0] - 1
    d = coords.shape[1] - 1
    weighted = sw.shape[0] > 0
    nc = out.shape[0]
    size = (n + nc - 1) // nc
    base = coords[C_INV_SCALE, d]  # the intercept's column: 1 or 0, its own square
    for j in range(d):
        z = coords[C_CENTRE, j] * coords[C_INV_SCALE, j]
        base += z * z
    for ch in range(c0, c1):
        top = 0.0
        for i in range(ch * size, min(n, (ch + 1) * size)):
            s = base
            for k in range(indptr[i], indptr[i + 1]):
                j = indices[k]
                z = coords[C_CENTRE, j] * coords[C_INV_SCALE, j]
                u = (values[k] - coords[C_CENTRE, j]) * coords[C_INV_SCALE, j]
                s += u * u - z * z
            if weighted:
                s *= sw[i]
            if s > top:
                top = s
        out[ch] = top
