"""Numba kernels: pure array functions, nothing else, one module per concern.

* :mod:`.gradient`: the fused loss/gradient passes (squared error, Huber), subset loss;
* :mod:`.moments`: means and co-moments, the max row norm;
* :mod:`.sgd`: the stochastic epochs (one family: raw SGD is the identity scaling);
* :mod:`.permutation`: the counter-based permutations;
* :mod:`.finite`: the NaN/inf check.

They import numpy, numba and math only (and the compile flags of :mod:`fastgd._config`);
Python decides, kernels compute.

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
from .finite import _nonfinite_parallel, _nonfinite_serial
from .gradient import (
    HUBER_GRAD,
    _huber_grad_parallel,
    _huber_grad_serial,
    _sse_grad_1d_parallel,
    _sse_grad_1d_serial,
    _sse_grad_narrow_parallel,
    _sse_grad_narrow_serial,
    _sse_grad_parallel,
    _sse_grad_rows8_parallel,
    _sse_grad_rows8_serial,
    _sse_grad_serial,
    _sse_grad_src,
    _subset_loss_serial,
)
from .moments import (
    _combine_moments,
    _max_norm_parallel,
    _max_norm_serial,
    _moments_diag_parallel,
    _moments_diag_serial,
    _moments_parallel,
    _moments_serial,
)
from .permutation import _permutation_parallel, _permutation_serial
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
    _sgd_epoch_1d_serial,
    _sgd_epoch_batches_1d_serial,
    _sgd_epoch_batches_serial,
    _sgd_epoch_rows_serial,
    _sgd_mix_1d_parallel,
    _sgd_mix_batches_1d_parallel,
    _sgd_mix_batches_parallel,
    _sgd_mix_rows_parallel,
    _sgd_scaled_epoch_serial,
    _sgd_scaled_mix_parallel,
)

#: kernel name -> (serial, parallel)
SERIAL_PARALLEL = {
    "nonfinite": (_nonfinite_serial, _nonfinite_parallel),
    "sse_grad": (_sse_grad_serial, _sse_grad_parallel),
    "sse_grad_1d": (_sse_grad_1d_serial, _sse_grad_1d_parallel),
    "sse_grad_narrow": (_sse_grad_narrow_serial, _sse_grad_narrow_parallel),
    "sse_grad_rows8": (_sse_grad_rows8_serial, _sse_grad_rows8_parallel),
    "huber_grad": (_huber_grad_serial, _huber_grad_parallel),
    "moments": (_moments_serial, _moments_parallel),
    "moments_diag": (_moments_diag_serial, _moments_diag_parallel),
    "max_norm": (_max_norm_serial, _max_norm_parallel),
    "permutation": (_permutation_serial, _permutation_parallel),
}


def sse_grad_kernel(d, weighted, parallel):
    """The fused loss/gradient kernel for ``d`` columns: every variant has the signature
    and output layout of :func:`fastgd.kernels.gradient._sse_grad_src`, and each is
    compiled only when used."""
    name = "sse_grad"
    if d == 1:
        name = "sse_grad_1d"
    elif not weighted and 2 <= d <= 4:
        name = "sse_grad_narrow"
    elif not weighted and 5 <= d <= 12:
        name = "sse_grad_rows8"
    return SERIAL_PARALLEL[name][int(parallel)]


#: (one column, one row a step) -> (serial epoch, mixing epoch)
_SGD_PATHS = {
    (True, True): (_sgd_epoch_1d_serial, _sgd_mix_1d_parallel),
    (False, True): (_sgd_epoch_rows_serial, _sgd_mix_rows_parallel),
    (True, False): (_sgd_epoch_batches_1d_serial, _sgd_mix_batches_1d_parallel),
    (False, False): (_sgd_epoch_batches_serial, _sgd_mix_batches_parallel),
}


def sgd_epoch_kernel(d, batch_size, mixing):
    """The stochastic epoch kernel for ``d`` columns and ``batch_size`` rows a step, serial
    (signature of :func:`fastgd.kernels.sgd._sgd_scaled_epoch_src`) or parameter mixing
    (of :func:`fastgd.kernels.sgd._sgd_scaled_mix_src`); each is compiled only when used."""
    return _SGD_PATHS[(d == 1, batch_size == 1)][int(bool(mixing))]
