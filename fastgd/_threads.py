"""fastgd's own threads: how a pass runs in parallel without a threading layer.

Every kernel is compiled once, serial and ``nogil``, and takes the range of fixed chunks it
works on (``c0, c1``). A parallel pass cuts the chunks into consecutive groups (tasks);
the calling thread and up to ``threads - 1`` threads of a process-wide pool each claim
the next unclaimed task until none is left, and the caller returns once every task is
done. The chunks, and what each writes to its own row of the output, do not depend on
who computes them, so serial and parallel passes are bit-identical whatever the thread
count, as with the fixed chunks of a ``prange`` loop.

Why not numba's ``parallel=True``, measured on the 2-core reference machine:

* **compile time**: a ``prange`` kernel is a second compilation of the same loop, and the
  costliest one (the moments pass: 2.9 s serial, 4.5 s parallel from cold); the same
  serial kernel now serves both.
* **machines under load**: OpenMP's workers spin while they wait, and its fork-join
  barrier waits for every worker, so with two other busy processes on the 2 cores the
  default SGD fit on 10^5 rows ran 20 times slower than serially. Here nothing spins:
  a pool thread that is not scheduled claims nothing, the caller does the work itself,
  and a pass is never much slower than the serial one.
* **threads of the user's**: numba's workqueue layer (its fallback without OpenMP or
  TBB) aborts the process when two Python threads launch parallel kernels at once;
  fastgd's threads may be used from any number of threads of the user's at once.

BLAS: a pass that calls BLAS on fastgd's threads (the wide gram pass,
:mod:`fastgd.kernels.gram`) runs each call on one BLAS thread (:func:`blas_single`): the
threads are not oversubscribed, and a call's result does not depend on how many threads
BLAS would have given it.

The thread count is :func:`get_num_threads` (``FASTGD_NUM_THREADS``, else
``NUMBA_NUM_THREADS``, else the CPUs this process may run on); :func:`set_num_threads`
changes it and :func:`limit` lowers it inside a ``with`` block, in this thread only.
"""
import itertools
import numbers
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

_local = threading.local()
_default = None
_pool = None
_pool_size = 0
_pool_lock = threading.Lock()


def _available_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _from_env():
    for var in ("FASTGD_NUM_THREADS", "NUMBA_NUM_THREADS"):
        raw = os.environ.get(var, "").strip()
        if raw:
            try:
                k = int(raw)
            except ValueError:
                raise ValueError(f"{var}={raw!r} must be a whole number of threads >= 1") from None
            if k < 1:
                raise ValueError(f"{var}={raw!r} must be a whole number of threads >= 1")
            return k
    return _available_cpus()


def get_num_threads():
    """The number of threads a parallel pass uses (the caller's included).

    Returns
    -------
    int
        At least 1: the value of :func:`set_num_threads` if called, else
        ``FASTGD_NUM_THREADS``, else ``NUMBA_NUM_THREADS``, else the CPUs this process may
        run on; inside a :func:`limit` block, that block's count (this thread only).
    """
    k = getattr(_local, "limit", None)
    if k is not None:
        return k
    global _default
    if _default is None:
        _default = _from_env()
    return _default


def set_num_threads(k):
    """Set the number of threads of parallel passes for the whole process.

    Results do not depend on it: every pass's chunks are fixed by the data's size.

    Parameters
    ----------
    k : int >= 1
        Threads per parallel pass, the calling thread included (1: every pass runs
        serially on the calling thread). It replaces the default read from
        ``FASTGD_NUM_THREADS`` / ``NUMBA_NUM_THREADS``. A bool or a non-integer is a
        ``TypeError``, ``k < 1`` a ``ValueError``.
    """
    global _default
    _default = _check_count(k)


@contextmanager
def limit(k):
    """Run parallel passes on at most ``k`` threads inside the block (this thread only)."""
    k = _check_count(k)
    before = getattr(_local, "limit", None)
    _local.limit = k if before is None else min(k, before)
    try:
        yield
    finally:
        _local.limit = before


def _check_count(k):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"the number of threads must be an integer >= 1, got {k!r}")
    if k < 1:
        raise ValueError(f"the number of threads must be >= 1, got {k}")
    return int(k)


def _get_pool(workers):
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            old = _pool
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastgd")
            _pool_size = workers
            if old is not None:
                old.shutdown(wait=False)
        return _pool


class _Job:
    """Tasks ``0 .. n - 1`` of one pass, claimed one at a time by whoever runs
    :meth:`work` (``next`` on an ``itertools.count`` is atomic in CPython)."""

    def __init__(self, task, n):
        self.task = task
        self.n = n
        self.claims = itertools.count()
        self.left = n
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error = None

    def work(self):
        while True:
            i = next(self.claims)
            if i >= self.n:
                return
            try:
                self.task(i)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                if self.error is None:
                    self.error = exc
            with self.lock:
                self.left -= 1
                if self.left == 0:
                    self.done.set()


def run(task, n_tasks, threads=None):
    """Call ``task(i)`` for every ``i`` in ``range(n_tasks)`` on up to ``threads`` threads
    (default :func:`get_num_threads`), the calling one included; return when all are done.

    The tasks must write disjoint outputs. A pool thread that the system does not
    schedule in time claims nothing: the caller then runs the tasks itself.
    """
    threads = get_num_threads() if threads is None else threads
    helpers = min(threads, n_tasks) - 1
    if helpers <= 0:
        for i in range(n_tasks):
            task(i)
        return
    job = _Job(task, n_tasks)
    pool = _get_pool(helpers)
    for _ in range(helpers):
        pool.submit(job.work)
    job.work()
    job.done.wait()
    if job.error is not None:
        raise job.error


def run_with(task, n_tasks, threads, make):
    """:func:`run` with a value of each thread's own: ``task(i, value)``, ``value`` made by
    ``make()`` on the thread's first task (a scratch buffer, reused by its next tasks)."""
    local = threading.local()

    def one(i):
        value = getattr(local, "value", None)
        if value is None:
            value = local.value = make()
        task(i, value)

    run(one, n_tasks, threads)


def chunk_groups(n_chunks, threads):
    """Bounds ``[(c0, c1), ...]`` of the tasks of a pass over ``n_chunks`` chunks: two
    groups a thread (a thread that falls behind or never starts is covered by the
    others), at most one group per chunk. Measured at 10^7 rows, d = 1, 2 threads (one
    pass, best of 40): float32 1 group a thread 1.83 ms, 2 groups 1.82, 4 groups 1.89,
    serial 3.84; float64 5.55, 5.54, 5.69, 11.6 (16 groups: 5.96; each task costs about
    30 us of handing over)."""
    groups = min(n_chunks, 2 * threads)
    return [(g * n_chunks // groups, (g + 1) * n_chunks // groups) for g in range(groups)]


def run_chunks(kernel, args, n_chunks, parallel):
    """``kernel(*args, c0, c1)`` over the chunks ``0 .. n_chunks - 1``: once, for all of
    them, when serial; in groups claimed by the threads (see :func:`run`) when
    ``parallel``."""
    threads = get_num_threads() if parallel else 1
    if threads <= 1 or n_chunks <= 1:
        kernel(*args, 0, n_chunks)
        return
    bounds = chunk_groups(n_chunks, threads)
    run(lambda g: kernel(*args, *bounds[g]), len(bounds), threads)


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None
_blas_control = False


def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries loaded (made once), or None when
    threadpoolctl is not installed (an optional dependency: ``pip install threadpoolctl``;
    scikit-learn brings it) or finds no BLAS it can set."""
    global _blas_control
    if _blas_control is False:
        try:
            from threadpoolctl import ThreadpoolController

            control = ThreadpoolController().select(user_api="blas")
        except Exception:  # noqa: BLE001 - not installed (ImportError), older than 3.0
            # (no select), or its look at the loaded libraries failed: the statistics
            # then come from the compiled kernel, a fit must not fail for this
            _blas_control = None
        else:
            _blas_control = control if control.lib_controllers else None
    return _blas_control


@contextmanager
def blas_single():
    """BLAS runs on one thread inside the block; yields whether it does.

    Through threadpoolctl when it is installed: the limit holds for the whole process
    (BLAS has no per-thread setting) from the first caller in to the last caller out
    (counted, so that concurrent fits do not lift each other's limit), and the BLAS's own
    setting is restored after. Without threadpoolctl nothing changes and it yields False:
    the caller must then not depend on BLAS for results that must not change with the
    thread count (OpenBLAS's ``syrk`` gave other bits on 1, 2, 3, 4 and 8 threads from
    d = 100, measured).
    """
    global _blas_users, _blas_limiter
    control = _blas_controller()
    if control is None:
        yield False
        return
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = control.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield True
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
