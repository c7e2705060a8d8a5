"""The Dask cluster of the tests and benchmarks: two worker processes on 127.0.0.1."""
from contextlib import contextmanager


@contextmanager
def local_cluster():
    """A real ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` on
    127.0.0.1 (no dashboard) and a client of it, closed on exit."""
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client
