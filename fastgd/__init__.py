"""fastgd: compiled gradient-descent fitting of linear models, for millions of points.

Fit ``y = m x + c`` or ``y = X w + b`` by batch, mini-batch or stochastic gradient
descent on the mean (or sum) of squared errors. The loss/gradient pass is compiled with
numba and runs in parallel over fixed chunks (serial and parallel results are
bit-identical).

>>> import fastgd
>>> res = fastgd.fit([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], learning_rate=0.05, epochs=2000)
>>> round(res.slope, 6), round(res.intercept, 6)
(2.0, 0.0)
"""
from ._api import fit, fit_chunks, resume
from ._metrics import mse, sse
from ._plan import DataFacts, FitPlan
from ._result import (
    ConvergenceWarning,
    DivergenceError,
    FitInterrupted,
    FitResult,
    IllConditionedWarning,
)
from ._threads import get_num_threads, set_num_threads
from ._version import __version__
from .io import fit_file, load

__all__ = ["fit", "fit_chunks", "fit_file", "resume", "load", "mse", "sse", "FitPlan", "DataFacts",
           "FitResult", "DivergenceError", "FitInterrupted", "ConvergenceWarning",
           "IllConditionedWarning", "GDRegressor",
           "get_num_threads", "set_num_threads", "__version__"]


def __getattr__(name):
    # the scikit-learn estimator loads scikit-learn: only when asked for (without it,
    # the ImportError names the extra to install)
    if name == "GDRegressor":
        from .estimator import GDRegressor

        return GDRegressor
    raise AttributeError(f"module 'fastgd' has no attribute {name!r}")
