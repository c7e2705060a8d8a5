"""Fits on a Dask cluster: dask arrays and data frames given to :func:`fastgd.fit`,
``GDRegressor`` and ``FitResult.predict`` (``pip install "fastgd[dask]"``).

The blocks stay on the workers: every pass runs the per-block functions of
:mod:`fastgd.sources.passes` where the blocks are and merges their small results in block
order on the client (:class:`fastgd.sources.dask.DaskSource`, where the details are); the
engines and stopping rules are those of a local fit. ``dask.config.set({"fastgd.threads":
k})`` runs each task's passes on ``k`` threads. Dask is imported only when such an input
arrives.
"""
from .sources.dask import THREADS_KEY, is_dask, predict

__all__ = ["THREADS_KEY", "is_dask", "predict"]
