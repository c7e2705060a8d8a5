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
  cached on disk in the user's cache folder, never inside the installed package:
  ``FASTGD_CACHE_DIR`` when set, else ``NUMBA_CACHE_DIR`` when set, else
  ``$XDG_CACHE_HOME/fastgd`` (``~/.cache/fastgd``; ``~/Library/Caches/fastgd`` on
  macOS, ``%LOCALAPPDATA%/fastgd/cache`` on Windows), one subfolder per source folder.
  Why not numba's default (``__pycache__`` next to the source): pip does not know those
  files, so uninstalling left ``site-packages/fastgd/__pycache__/*.nbi`` behind, and the
  left-over ``site-packages/fastgd`` folder then shadowed a later editable install as a
  namespace package (``pip install . && fastgd demo``, then ``pip install -e .`` gave
  "module 'fastgd' has no attribute ..."). numba checks each entry against a stamp of
  its source file, so a cache never serves code of another version. When that folder
  is not writable, or numba's caching internals differ from those of 0.59-0.68 (the
  locator is numba's own user-folder locator pointed elsewhere), the kernel is compiled
  without a cache, quietly (never into the package): the only cost is compile time in
  every new process. Set ``FASTGD_DISABLE_CACHE=1`` to turn caching off.
* **A caveat, measured with numba 0.68**: a kernel loaded from the on-disk cache can
  give sums that differ in the last bits from the same kernel compiled in the process
  (the d = 1 gradient pass: 5 of 90 sums along a fit). Results are deterministic for a
  given cache state; ``tests/test_pins.py`` compares fits with the cache off, and CI
  runs with a fresh cache folder.
* **No** ``parallel=True``: every kernel is compiled once, serial and ``nogil``, and a
  parallel pass runs it on fastgd's own threads over disjoint ranges of fixed chunks
  (:mod:`fastgd._threads`, where the measurements are). Rows per chunk are fixed
  constants (below), so chunk boundaries depend on ``n`` (and for the moments pass on
  ``d``) only, never on the thread count: serial and parallel passes give
  bit-identical results.
* **numba is imported lazily**: ``import fastgd`` does not import it (0.25 s); the first
  pass that needs a kernel does, through :data:`K`. Fits that need no kernel never pay
  for it.
"""
import importlib
import os
import sys
import types
from pathlib import Path

FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})
CACHE = os.environ.get("FASTGD_DISABLE_CACHE", "") in ("", "0")

#: rows per chunk of the streaming passes (loss/gradient, finiteness checks).
#: 2**15 rows keep one chunk's (x, y) in L2 for d = 1 and give 306 chunks at n = 10^7,
#: enough to balance any thread count.
CHUNK_ROWS = 1 << 15

#: target bytes of X per chunk for the moments pass (two passes over the chunk: it must
#: stay in cache).
MOMENT_CHUNK_BYTES = 1 << 17


def jit(func=None, *, fastmath=True, inline=False):
    """Compile ``func`` with fastgd's flags (lazily, on first call).

    ``fastmath=False`` compiles with strict IEEE semantics. The kernel is cached in
    :func:`cache_dir`, or not at all when that folder is not writable. ``inline=True``
    (helpers called from kernels of the same flags): numba copies the function into each
    caller before typing, so it is never compiled on its own (each separate compilation
    costs 0.1 to 0.4 s on a cold start, and LLVM inlined it into the caller anyway).
    """
    if func is None:
        return lambda f: jit(f, fastmath=fastmath, inline=inline)
    import numba

    opts = dict(nogil=True, fastmath=set(FASTMATH) if fastmath else False,
                error_model="numpy", inline="always" if inline else "never")
    disp = numba.njit(cache=False, **opts)(func)
    if CACHE:
        _use_user_cache(disp)
    return disp


class _LazyModule:
    """A module imported on first attribute access (its attributes are then copied
    here, so later accesses cost a dictionary lookup). ``on_import``: functions called
    once, just before the first import."""

    def __init__(self, name):
        self.__dict__["_name"] = name
        self.__dict__["on_import"] = []

    def __getattr__(self, attr):
        for hook in self.__dict__["on_import"]:
            hook()
        self.__dict__["on_import"] = []
        module = importlib.import_module(self.__dict__["_name"])
        self.__dict__.update(vars(module))
        return getattr(module, attr)


#: the modules of the kernels, whose cached files say whether a run will compile
KERNEL_MODULES = ("finite", "gradient", "moments", "permutation", "sgd", "sparse",
                  "sparse_sgd")


def kernels_cached():
    """Whether the kernel cache holds compiled kernels of this fastgd (any of them): when
    it holds none, the first pass that needs a kernel compiles it (a second or so each)."""
    if not CACHE:
        return False
    root = cache_dir()
    if not root.is_dir():
        return False
    return any(f.name.split(".", 1)[0] in KERNEL_MODULES for f in root.rglob("*.nbi"))


#: :mod:`fastgd.kernels`, imported (with numba) on first use
K = _LazyModule("fastgd.kernels")


def cache_dir():
    """The folder of fastgd's compiled-kernel cache (see the module docstring)."""
    for var in ("FASTGD_CACHE_DIR", "NUMBA_CACHE_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "fastgd" / "cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "fastgd"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastgd"


_USER_CACHE = False


def _user_cache_class():
    """numba's FunctionCache, located in :func:`cache_dir` (None if numba's internals are
    not those this was written against)."""
    global _USER_CACHE
    if _USER_CACHE is not False:
        return _USER_CACHE
    _USER_CACHE = None
    try:
        from numba.core import caching

        base = (getattr(caching, "UserProvidedCacheLocator", None)
                or caching._UserProvidedCacheLocator)
        impl = caching.FunctionCache._impl_class
        root = str(cache_dir())

        class Locator(base):
            def __init__(self, py_func, py_file):
                self._py_file = py_file
                self._lineno = py_func.__code__.co_firstlineno
                self._cache_path = os.path.join(root, self.get_suitable_cache_subpath(py_file))

            @classmethod
            def from_function(cls, py_func, py_file):
                # skip the parent's test of numba.config.CACHE_DIR: this locator has its own
                return super(base, cls).from_function(py_func, py_file)

        class Impl(impl):
            _locator_classes = [Locator]

        class Cache(caching.FunctionCache):
            _impl_class = Impl

        _USER_CACHE = Cache
    except (ImportError, AttributeError, TypeError):
        pass
    return _USER_CACHE


def _use_user_cache(disp):
    """Give the dispatcher ``disp`` a cache in :func:`cache_dir`; False if impossible."""
    cls = _user_cache_class()
    if cls is None:
        return False
    try:
        disp._cache = cls(disp.py_func)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return False
    return True


def per_loss(make):
    """``make(loss)`` once per loss: the function that returns the kernels ``make`` builds
    for a :class:`fastgd.losses.Loss`, keyed by its name and :meth:`~fastgd.losses.Loss.key`
    (a loss whose source changed gets kernels of its own). What ``make`` builds compiles on
    first call, so this costs nothing until a fit runs them."""
    made = {}

    def get(loss):
        key = (loss.name, loss.key())
        if key not in made:
            made[key] = make(loss)
        return made[key]

    return get


def specialize(func, suffix, **constants):
    """A copy of ``func`` named ``<name><suffix>`` (its own cache entry) whose global
    ``constants`` are rebound: one source compiled into several kernels, numba pruning
    the branches on those constants (see :func:`fastgd.kernels.sgd._epoch_batches`)."""
    scope = dict(func.__globals__)
    scope.update(constants)
    special = types.FunctionType(func.__code__, scope, func.__name__ + suffix,
                                 func.__defaults__, func.__closure__)
    special.__qualname__ = func.__qualname__ + suffix
    special.__module__ = func.__module__
    special.__doc__ = func.__doc__
    return special
