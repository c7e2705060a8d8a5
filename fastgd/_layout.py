"""The layouts of the small float64 arrays the kernels take, one per name.

``params`` (``(N_PARAMS,)``): the settings of a stochastic epoch (see
:func:`fastgd.kernels.sgd._sgd_scaled_epoch_src`), by index:

* ``P_ETA0``: the rate (``eta0``), ``P_POWER_T``: the exponent of ``"invscaling"``;
* ``P_T0``: the steps taken before this epoch, ``P_SCHEDULE``: 0 constant, 1 invscaling;
* ``P_BATCH``: rows per step, ``P_MEAN``: 1 for the mean loss, 0 for the sum;
* ``P_WSCALE``: rows over weight total (mean loss), ``P_FIT_B``: 1 when the intercept is
  fitted;
* ``P_AVG_START``: the step after which the running average starts;
* ``P_EPSILON``: the loss's parameter (Huber's threshold).

``coords`` (``(N_COORDS, d + 1)``): the scaled coordinates of the problem, by row:

* ``C_CENTRE``: the centres ``m_j``; ``C_INV_SCALE``: the inverse scales ``1 / s_j`` (a
  scaled feature is ``(x_j - m_j) / s_j``);
* ``C_LAM1``, ``C_LAM2``: the penalty's L1 and L2 weights per coordinate (zero for the
  intercept);
* column ``d`` is the intercept's: ``coords[C_INV_SCALE, d]`` is the value of its column
  (1 when the intercept is fitted, else 0), the rest of the column is zero.

:func:`make_coords` builds one; the identity scaling (plain SGD on the raw data) is
``make_coords(zeros, ones, fit_intercept)``.
"""
import numpy as np

P_ETA0, P_POWER_T, P_T0, P_SCHEDULE, P_BATCH, P_MEAN, P_WSCALE, P_FIT_B, P_AVG_START, \
    P_EPSILON = range(10)
N_PARAMS = 10

C_CENTRE, C_INV_SCALE, C_LAM1, C_LAM2 = range(4)
N_COORDS = 4


def make_coords(centres, inv_scales, fit_intercept, lam1=None, lam2=None):
    """A ``coords`` array (see the module docstring); ``lam1``, ``lam2``: ``(d + 1,)``
    or None for no penalty."""
    d = centres.shape[0]
    coords = np.zeros((N_COORDS, d + 1))
    coords[C_CENTRE, :d] = centres
    coords[C_INV_SCALE, :d] = inv_scales
    coords[C_INV_SCALE, d] = 1.0 if fit_intercept else 0.0
    if lam1 is not None:
        coords[C_LAM1] = lam1
    if lam2 is not None:
        coords[C_LAM2] = lam2
    return coords


def is_identity(coords):
    """Whether ``coords`` is the identity scaling of its ``d`` columns (centres 0,
    inverse scales 1: the raw data), whatever its penalty and intercept."""
    d = coords.shape[1] - 1
    return bool((coords[C_CENTRE, :d] == 0.0).all() and (coords[C_INV_SCALE, :d] == 1.0).all())
