"""Numba kernels: pure array functions, nothing else, one module per concern.

* :mod:`.gradient`: the fused loss/gradient passes (squared error, Huber), subset loss;
* :mod:`.moments`: means and co-moments, the max row norm;
* :mod:`.sgd`: the stochastic epochs (one family: raw SGD is the identity scaling);
* :mod:`.permutation`: the counter-based permutations;
* :mod:`.finite`: the NaN/inf check.

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
from .finite import _nonfinite
from .gradient import (
    _huber_grad,
    _sse_grad,
    _sse_grad_1d,
    _sse_grad_narrow,
    _sse_grad_rows8,
    _sse_grad_src,
    _subset_loss,
)
from .moments import _combine_moments, _max_norm, _moments, _moments_1d, _moments_diag
from .permutation import _permutation_phase
from .sgd import (
    N_PARAMS,
    P_AVG_START,
    P_BATCH,
    P_EPSILON,
    P_ETA0,
    P_FIT_B,
    P_HUBER,
    P_MEAN,
    P_POWER_T,
    P_SCHEDULE,
    P_T0,
    P_WSCALE,
    plain_batches,
    plain_rows,
    _sgd_epoch_1d,
    _sgd_epoch_batches,
    _sgd_epoch_batches_1d,
    _sgd_epoch_batches_plain,
    _sgd_epoch_rows,
    _sgd_epoch_rows_plain,
    _sgd_scaled_epoch,
)


def sse_grad_kernel(d, weighted):
    """The fused loss/gradient kernel for ``d`` columns: every variant has the signature
    and output layout of :func:`fastgd.kernels.gradient._sse_grad_src`, and each is
    compiled only when used."""
    if d == 1:
        return _sse_grad_1d
    if not weighted and 2 <= d <= 4:
        return _sse_grad_narrow
    if not weighted and 5 <= d <= 12:
        return _sse_grad_rows8
    return _sse_grad


def sgd_epoch_kernel(d, batch_size, coords=None, params=None):
    """The stochastic epoch kernel for ``d`` columns and ``batch_size`` rows a step (the
    signature of :func:`fastgd.kernels.sgd._sgd_scaled_epoch_src`), given the epoch's
    ``coords`` and ``params`` (plain SGD on the raw data has a kernel of its own); each
    is compiled only when used."""
    if d == 1:
        return _sgd_epoch_1d if batch_size == 1 else _sgd_epoch_batches_1d
    if batch_size == 1:
        plain = coords is not None and plain_rows(coords, params, d)
        return _sgd_epoch_rows_plain if plain else _sgd_epoch_rows
    plain = coords is not None and plain_batches(coords, params, d)
    return _sgd_epoch_batches_plain if plain else _sgd_epoch_batches
