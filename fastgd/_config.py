"""Compilation flags and the caching rule, in one place.

Every kernel in :mod:`fastgd.kernels` is compiled through :func:`jit` so the flags
cannot drift between kernels.

Decisions
---------
* ``nogil=True`` everywhere, so kernels can run in threads (Dask workers, thread pools).
* ``fastmath`` is limited to ``reassoc, contract, nsz, arcp``: reassociation lets LLVM
  vectorise the float reductions (a compiled streaming read of 10^7 (x, y) pairs took
  3.8 ms with it and 5.7 ms without it on the 2-core reference machine). ``nnan`` and
  ``ninf`` are deliberately absent: they would let LLVM delete the NaN/inf and
  divergence checks. Reassociation changes only the order inside one compiled loop;
  the order is still fixed by the compiled code, so results are deterministic.
  Even without ``nnan``/``ninf``, numba 0.68 / LLVM removed the ``isfinite(r)`` test of
  the SGD update loop under these flags (a residual of inf went unnoticed; see
  ``tests/test_kernels.py::test_sgd_epoch_reports_nonfinite_row``). The stochastic
  kernel is latency-bound on random row access and gains nothing from reassociation,
  so it is compiled strict (``jit(fastmath=False)``).
* **Caching rule**: kernels are compiled lazily on first call (never at import) and
  cached on disk with ``cache=True`` in numba's default location (``__pycache__`` next
  to the package, or ``NUMBA_CACHE_DIR`` when set). When no writable cache location
  exists, the kernel is compiled without a cache, quietly: the only cost is compile
  time in every new process. Set ``FASTGD_DISABLE_CACHE=1`` to turn caching off.
  numba keys its cache on the function's qualified name and first line, not on the
  compile flags: compiled as is, the serial and parallel variants of one source share a
  cache entry and whichever is compiled first is loaded for both (seen here: the
  "parallel" kernel ran serially). The parallel variant is therefore compiled from a
  clone of the function named ``<name>_parallel``.
* Rows per chunk are fixed constants (below), so chunk boundaries depend on ``n`` (and
  for the moments pass on ``d``) only, never on the thread count: serial and parallel
  kernels give bit-identical results.
"""
import os
import types

import numba

FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})
CACHE = os.environ.get("FASTGD_DISABLE_CACHE", "") in ("", "0")

#: rows per chunk of the streaming passes (loss/gradient, finiteness checks).
#: 2**15 rows keep one chunk's (x, y) in L2 for d = 1 and give 306 chunks at n = 10^7,
#: enough to balance any thread count.
CHUNK_ROWS = 1 << 15

#: target bytes of X per chunk for the moments pass (two passes over the chunk: it must
#: stay in cache).
MOMENT_CHUNK_BYTES = 1 << 17


def jit(func=None, *, parallel=False, fastmath=True):
    """Compile ``func`` with fastgd's flags (lazily, on first call).

    ``fastmath=False`` compiles with strict IEEE semantics. Falls back to an uncached
    kernel when no cache location is writable.
    """
    if func is None:
        return lambda f: jit(f, parallel=parallel, fastmath=fastmath)
    if parallel:
        func = _renamed(func, "_parallel")
    opts = dict(nogil=True, fastmath=set(FASTMATH) if fastmath else False, parallel=parallel, error_model="numpy")
    if CACHE:
        try:
            return numba.njit(cache=True, **opts)(func)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            pass
    return numba.njit(cache=False, **opts)(func)


def _renamed(func, suffix):
    """A copy of ``func`` whose qualified name ends in ``suffix`` (its own cache entry)."""
    clone = types.FunctionType(
        func.__code__, func.__globals__, func.__name__ + suffix, func.__defaults__, func.__closure__
    )
    clone.__qualname__ = func.__qualname__ + suffix
    clone.__module__ = func.__module__
    clone.__doc__ = func.__doc__
    return clone
