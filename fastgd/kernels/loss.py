"""The passes of any registered loss: loss and gradient sums fused in one pass, and the
loss over a subset of rows (early stopping's held-out rows).

Written once over the globals ``_VALUE`` and ``_PSI`` (a loss's per-row value and half
derivative, see :mod:`fastgd.losses`) and compiled per loss (:func:`loss_kernels`): a copy
of each source whose globals are that loss's compiled functions, which LLVM inlines. The
squared loss has faster passes of its own (:mod:`.gradient`, by width); these serve every
other loss, its gradient in the layout of theirs.
"""
import numpy as np

from .._config import jit, per_loss, specialize

#: rebound in each loss's copy (see :func:`loss_kernels`)
_VALUE = None
_PSI = None
_CHUNK = None


def _loss_grad_chunk(X, y, sw, coef, c, start, stop, row):
    """Accumulate ``[sum w loss(r), sum w psi(r), sum w psi(r) x_j ...]`` over rows
    ``start:stop`` into ``row`` (``r = y - (X @ coef[:d] + coef[d])``; the gradient of the
    summed loss is ``-2 [sum w psi(r) x, sum w psi(r)]``)."""
    d = X.shape[1]
    weighted = sw.shape[0] > 0
    for j in range(d + 2):
        row[j] = 0.0
    for i in range(start, stop):
        p = coef[d]
        for j in range(d):
            p += np.float64(X[i, j]) * coef[j]
        r = np.float64(y[i]) - p
        h = _VALUE(r, c)
        psi = _PSI(r, c)
        w = sw[i] if weighted else 1.0
        row[0] += w * h
        row[1] += w * psi
        for j in range(d):
            row[2 + j] += w * psi * np.float64(X[i, j])


def _loss_grad_src(X, y, sw, coef, params, out, c0, c1):
    """The loss's sums at ``coef`` (float64 ``(d + 1,)``), one row of ``out`` (float64
    ``(n_chunks, d + 2)``) per fixed chunk of ``ceil(n / n_chunks)`` rows, chunks
    ``c0 .. c1 - 1``, in the layout of :func:`fastgd.kernels.gradient._sse_grad_src`;
    ``params = [c]``, the loss's parameter. The driver sums the rows in order: serial and
    parallel are bit-identical."""
    n = X.shape[0]
    k = out.shape[0]
    size = (n + k - 1) // k
    for ch in range(c0, c1):
        _CHUNK(X, y, sw, coef, params[0], ch * size, min(n, (ch + 1) * size), out[ch])


def _subset_loss_src(X, y, sw, idx, coef, params, out):
    """``out[0] = sum w loss(r)``, ``out[1] = sum w`` over the rows ``idx`` (raw
    ``coef``); ``params = [c]``."""
    d = X.shape[1]
    c = params[0]
    weighted = sw.shape[0] > 0
    s = 0.0
    wsum = 0.0
    for k in range(idx.shape[0]):
        i = idx[k]
        p = coef[d]
        for j in range(d):
            p += np.float64(X[i, j]) * coef[j]
        r = np.float64(y[i]) - p
        w = sw[i] if weighted else 1.0
        s += w * _VALUE(r, c)
        wsum += w
    out[0] = s
    out[1] = wsum


class LossKernels:
    """The compiled passes of one loss: ``grad`` (:func:`_loss_grad_src`'s signature) and
    ``subset`` (:func:`_subset_loss_src`'s); each compiles on its first call."""

    def __init__(self, loss):
        suffix = f"_{loss.name}_{loss.key()}"
        value, psi = jit(loss.value), jit(loss.psi)
        chunk = jit(specialize(_loss_grad_chunk, suffix, _VALUE=value, _PSI=psi))
        self.grad = jit(specialize(_loss_grad_src, suffix, _CHUNK=chunk))
        self.subset = jit(specialize(_subset_loss_src, suffix, _VALUE=value))


#: the :class:`LossKernels` of a loss (a :class:`fastgd.losses.Loss`), made once per loss
loss_kernels = per_loss(LossKernels)
