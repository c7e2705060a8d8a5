"""Numba kernels: pure array functions, nothing else, one module per concern.

* :mod:`.gradient`: the squared loss's fused loss/gradient passes, by width;
* :mod:`.loss`: the passes of every other loss, compiled per loss;
* :mod:`.moments`: means and co-moments, the max row norm;
* :mod:`.sgd`: the stochastic epochs (one family: raw SGD is the identity scaling),
  compiled per loss;
* :mod:`.permutation`: the counter-based permutations;
* :mod:`.finite`: the NaN/inf check;
* :mod:`.sparse`: the passes over CSR rows (loss/gradient per loss, moments, row norms,
  predictions), O(nnz) each;
* :mod:`.sparse_sgd`: the stochastic epochs over CSR rows (lazy forms: O(nnz) a row),
  compiled per loss;
* :mod:`.qr` and :mod:`.gram` (plain NumPy, LAPACK and BLAS): the one-pass R factor, and
  the co-moments of wide data;
* the layouts of ``params`` and ``coords``, by name, are in :mod:`fastgd._layout`.

They import numpy, numba and math only (and the compile flags of :mod:`fastgd._config`);
Python decides, kernels compute. Importing this package imports numba: the rest of
fastgd imports it only when a kernel is first needed (see :func:`fastgd._config.kernels`).

Conventions shared by every kernel
----------------------------------
* ``X`` is a C-contiguous ``(n, d)`` float32 or float64 array (1-D input is viewed as
  ``(n, 1)`` by the caller); ``y`` is ``(n,)`` of the same dtype.
* ``sw`` holds the sample weights as float64 ``(n,)``, or is an empty float64 array
  ``(0,)`` for "all weights equal to one" (one signature serves both cases).
* ``coef`` is a float64 ``(d + 1,)`` array: ``coef[:d]`` are the weights and ``coef[d]``
  the intercept.
* Every reduction accumulates in float64 whatever the input dtype.
* A pass is split into fixed chunks whose boundaries are a function of ``n`` (and ``d``)
  and of ``out.shape[0]`` only; each chunk accumulates sequentially into its own row of
  ``out``; the driver sums the rows in order. A pass kernel takes the range of chunks it
  computes, ``c0, c1``, as its last two arguments: called once over all the chunks it
  is the serial pass; called by several threads over disjoint ranges
  (:func:`fastgd._threads.run_chunks`) it is the parallel one, the same machine code
  writing the same rows. Serial and parallel results are therefore bit-identical
  whatever the thread count, and each kernel is compiled once.
"""
from .._layout import (
    C_CENTRE,
    C_INV_SCALE,
    C_LAM1,
    C_LAM2,
    N_COORDS,
    N_PARAMS,
    P_AVG_START,
    P_BATCH,
    P_EPSILON,
    P_ETA0,
    P_FIT_B,
    P_MEAN,
    P_POWER_T,
    P_SCHEDULE,
    P_T0,
    P_WSCALE,
    make_coords,
)
from .finite import _nonfinite
from .gradient import _sse_grad, _sse_grad_1d, _sse_grad_narrow, _sse_grad_rows8, _sse_grad_src
from .loss import loss_kernels
from .moments import _combine_moments, _max_norm, _moments, _moments_1d, _moments_diag
from .permutation import _expand_tiles, _permutation_phase
from .sgd import sgd_kernels
from .sparse import _csr_max_abs, _csr_moments, _csr_predict, _csr_row_norms, csr_loss_kernel
from .sparse_sgd import csr_sgd_kernels


def sse_grad_kernel(d, weighted):
    """The squared loss's fused loss/gradient kernel for ``d`` columns: every variant has
    the signature and output layout of :func:`fastgd.kernels.gradient._sse_grad_src`, and
    each is compiled only when used."""
    if d == 1:
        return _sse_grad_1d
    if not weighted and 2 <= d <= 4:
        return _sse_grad_narrow
    if not weighted and 5 <= d <= 12:
        return _sse_grad_rows8
    return _sse_grad


__all__ = ["C_CENTRE", "C_INV_SCALE", "C_LAM1", "C_LAM2", "N_COORDS", "make_coords",
           "N_PARAMS", "P_AVG_START", "P_BATCH", "P_EPSILON", "P_ETA0", "P_FIT_B", "P_MEAN",
           "P_POWER_T", "P_SCHEDULE", "P_T0", "P_WSCALE", "loss_kernels", "sgd_kernels",
           "sse_grad_kernel", "_nonfinite", "_sse_grad", "_sse_grad_1d", "_sse_grad_narrow",
           "_sse_grad_rows8", "_sse_grad_src", "_combine_moments", "_max_norm", "_moments",
           "_moments_1d", "_moments_diag", "_permutation_phase", "_expand_tiles",
           "_csr_max_abs", "_csr_moments", "_csr_predict", "_csr_row_norms", "csr_loss_kernel",
           "csr_sgd_kernels"]
