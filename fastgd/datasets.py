"""Data to try fastgd on, shipped with the package (nothing is downloaded).

* :func:`load_bike_calories`: the 100 points of the classic "linear regression by
  gradient descent" tutorial (calories burned against the distance cycled), the README's
  quick start;
* :func:`make_demo`: the embedded default problem of ``fastgd demo``, ``y = 2.5 x - 1``
  plus Gaussian noise, of any size, seeded.

Only NumPy is imported here: ``import fastgd.datasets`` loads neither numba nor any
optional extra.
"""
import numbers
from importlib import resources

import numpy as np

#: the demo's line and noise: ``y = DEMO_SLOPE x + DEMO_INTERCEPT + N(0, DEMO_NOISE^2)``
DEMO_SLOPE = 2.5
DEMO_INTERCEPT = -1.0
DEMO_NOISE = 0.5
#: the demo's x are drawn uniformly from this interval
DEMO_X_RANGE = (-5.0, 5.0)

# the file inside the package (pyproject's package-data ships it in sdists and wheels)
_BIKE_CALORIES = "bike_calories.csv"


def load_bike_calories():
    """The tutorial's 100 points: the distance cycled ``x`` and the calories burned ``y``.

    The data set behind the classic "linear regression by gradient descent" tutorial
    program, which fits ``y = m x + c`` by batch gradient descent on the mean squared
    error with learning rate 1e-4 for 1000 iterations from ``m = c = 0``. Read from the
    CSV file shipped inside the package (``fastgd/data/bike_calories.csv``, 100 rows, no
    header), so it works from an installed package in any directory.

    Returns
    -------
    x : ndarray of shape (100,), float64
        The distance cycled (column 0 of the file).
    y : ndarray of shape (100,), float64
        The calories burned (column 1). Both are new, writable, C-contiguous arrays on
        every call.

    Notes
    -----
    The figures the tutorial prints (its own sequential float sums; another summation
    order moves them in the 10th digit): error at the start 5565.107834483211, and after
    1000 iterations intercept 0.08893651993741346, slope 1.4777440851894448, error
    112.61481011613473. The least-squares optimum is intercept 7.991020985734444, slope
    1.3224310226878684, MSE 110.25738344912884. The largest stable learning rate on the
    raw data is about 4.0e-4.

    Examples
    --------
    >>> import fastgd
    >>> from fastgd.datasets import load_bike_calories
    >>> x, y = load_bike_calories()
    >>> x.shape, y.shape
    ((100,), (100,))
    >>> res = fastgd.fit(x, y, learning_rate=1e-4, epochs=1000)
    >>> print(res.loss_history[0])    # error at the start  # doctest: +ELLIPSIS
    5565.10783449...
    >>> print(res.intercept, res.slope)  # doctest: +ELLIPSIS
    0.0889365199... 1.4777440851...
    >>> print(res.final_loss)         # error after 1000 iterations  # doctest: +ELLIPSIS
    112.614810...
    """
    text = resources.files("fastgd").joinpath("data", _BIKE_CALORIES).read_text(encoding="ascii")
    data = np.loadtxt(text.splitlines(), delimiter=",", dtype=np.float64, ndmin=2)
    if data.shape != (100, 2):  # a damaged installation, not a user error
        raise RuntimeError(f"fastgd's packaged {_BIKE_CALORIES} holds {data.shape[0]} rows of "
                           f"{data.shape[1]} columns instead of 100 of 2: reinstall fastgd")
    return np.ascontiguousarray(data[:, 0]), np.ascontiguousarray(data[:, 1])


def make_demo(n, seed=0, dtype=np.float64):
    """The embedded default problem of ``fastgd demo``: ``y = 2.5 x - 1 + N(0, 0.5^2)``
    with ``x ~ U(-5, 5)``, ``n`` points.

    Parameters
    ----------
    n : int
        The number of points, at least 1 (16 bytes each in float64, 8 in float32).
    seed : int >= 0 or None, default 0
        Seed of ``numpy.random.default_rng``: the same seed gives the same points, bit
        for bit. ``None`` draws fresh entropy.
    dtype : float64 or float32, default float64
        The dtype of the returned arrays (drawn in float64, then converted).

    Returns
    -------
    x : ndarray of shape (n,), of ``dtype``
        The points' abscissas, uniform on [-5, 5).
    y : ndarray of shape (n,), of ``dtype``
        ``2.5 x - 1`` plus Gaussian noise of standard deviation 0.5.

    Examples
    --------
    >>> import fastgd
    >>> from fastgd.datasets import make_demo
    >>> x, y = make_demo(100_000, seed=0)
    >>> res = fastgd.fit(x, y)
    >>> print(f"slope {res.slope:.2f}, intercept {res.intercept:.2f}")
    slope 2.50, intercept -1.00
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int (the number of points), got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if seed is not None and (isinstance(seed, (bool, np.bool_))
                             or not isinstance(seed, numbers.Integral) or seed < 0):
        raise ValueError(f"seed must be an int >= 0 or None, got {seed!r}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float64 or float32, got {dtype!r}") from None
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dt}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(DEMO_X_RANGE[0], DEMO_X_RANGE[1], int(n))
    y = DEMO_SLOPE * x + DEMO_INTERCEPT + rng.normal(0.0, DEMO_NOISE, int(n))
    return x.astype(dt, copy=False), y.astype(dt, copy=False)
