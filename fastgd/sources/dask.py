"""Fits on a Dask cluster: dask arrays and data frames as one more source of rows.

:func:`fastgd.fit` (and ``GDRegressor.fit``) hand ``dask.array`` arrays and
``dask.dataframe`` frames here. Nothing here is maths: :class:`DaskSource` runs the same
per-block functions as every other source (:mod:`fastgd.sources.passes`), each block on the
worker that holds it, and merges their small results on the client in block order; the
engines, optimizers and stopping rules are those of a local fit. Dask is imported only
when such an input arrives (the optional extra ``fastgd[dask]``).

How a fit runs
--------------
* **Passes** (loss and gradient, moments, QR factor, ...): one graph execution each,
  one task per block, on the current scheduler (the default ``dask.distributed.Client``
  when there is one). A task returns its block's partial sums (a few numbers); the
  client adds them in block order, so the result depends on the data and the block
  boundaries only. The default batch fit is one moments pass plus one loss pass.
* **Stochastic modes** run each epoch as one graph: sequentially (the blocks in a seeded
  shuffled order, each block's rows shuffled on its worker, the parameters travelling
  from task to task: the same visiting order as :func:`fastgd.fit_chunks` over the same
  blocks), or, when the plan mixes parameters (``parallel=True``, or ``"auto"`` for
  per-row SGD from 200,000 rows), every block at once from the same start, the blocks'
  parameters then averaged in block order weighted by their rows (iterative parameter
  mixing: as many workers busy as there are blocks, at the price of an average that
  converges more slowly per epoch than the sequential pass).
* **Workers** run the serial passes (the parallelism is the blocks'); the dask config
  value ``fastgd.threads`` (e.g. ``dask.config.set({"fastgd.threads": 2})``; the older
  name ``fastgd.numba-threads`` works too) runs each task's passes on that many of
  fastgd's threads instead (:mod:`fastgd._threads`, the same bits). Kernels are
  imported on the workers by name (module-level functions, never pickled closures); the
  first task of each kind in a worker process runs under a file lock in fastgd's kernel
  cache folder, so worker processes never compile into the cache at the same time.
* **Sparse blocks**: blocks that are scipy.sparse matrices are read as CSR on the
  workers (:func:`fastgd._validation.check_data`), and the same per-block functions run
  their CSR twins (:mod:`fastgd.sources.csr`); the stochastic epochs visit each block's
  rows in the order :func:`fastgd.fit_chunks` visits them (tiles for large blocks).
* **Memory**: the data never comes to the client; what does is one partial result per
  block, whatever its rows: ``d + 2`` numbers for a gradient pass, ``1 + k + k^2`` for the
  moments (``k = d + 1``; each block merges its own slices first).
"""
import threading
from contextlib import contextmanager

import numpy as np

from .. import _threads as _fastgd_threads
from .. import _validation as V
from .._layout import P_BATCH
from .base import DataFacts, Source
from .epochs import _BlockEpochs
from .passes import Rows, block_order, draw_split, epoch_seed

#: the dask config key of the threads each task's passes use (1: serial); the older name
#: ``fastgd.numba-threads`` is read too
THREADS_KEY = "fastgd.threads"
_OLD_THREADS_KEY = "fastgd.numba-threads"


def is_dask(obj):
    """Whether ``obj`` is a dask collection (recognised without importing dask)."""
    return type(obj).__module__.split(".", 1)[0] in ("dask", "dask_expr")


def _require_dask():
    try:
        import dask  # noqa: F401
        import dask.array  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a dask object implies dask
        raise ImportError(
            f"fitting dask arrays needs dask[array] ({exc}); install the extra: "
            "pip install 'fastgd[dask]'"
        ) from None


# ---------------------------------------------------------------------------------------
# Inputs: dask arrays / frames (or NumPy beside them) -> row-aligned dask arrays
# ---------------------------------------------------------------------------------------

def _is_frame(obj):
    return is_dask(obj) and hasattr(obj, "map_partitions") and getattr(obj, "ndim", 0) == 2


def _is_series(obj):
    return is_dask(obj) and hasattr(obj, "map_partitions") and getattr(obj, "ndim", 0) == 1


def _frame_to_array(obj, name):
    """A dask DataFrame/Series as a dask array with known block sizes (its partitions)."""
    cols = list(obj.columns) if _is_frame(obj) else [obj.name]
    dtypes = obj.dtypes.tolist() if _is_frame(obj) else [obj.dtype]
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    for c, t in zip(cols, dtypes):
        if not (is_numeric_dtype(t) or is_bool_dtype(t)) or str(t).startswith("complex"):
            raise TypeError(
                f"{name}: column {c!r} has dtype {t}: fastgd fits numeric columns; drop it "
                "or convert it (e.g. with .astype('float64'))"
            )
    # nullable columns: missing values become NaN (refused with their block and row)
    obj = obj.astype("float64")
    if hasattr(obj, "optimize"):
        # the partitions the array will have: dask-expr may merge partitions when it
        # optimizes, so the lengths are those of the optimized frame
        obj = obj.optimize()
    lengths = tuple(int(m) for m in obj.map_partitions(len).compute())
    arr = obj.to_dask_array(lengths=lengths)
    names = tuple(cols) if _is_frame(obj) and all(isinstance(c, str) for c in cols) else None
    return arr, names


def _as_dask_array(obj, name):
    import dask.array as da

    names = None
    if _is_frame(obj) or _is_series(obj):
        obj, names = _frame_to_array(obj, name)
    if not isinstance(obj, da.Array):
        raise TypeError(
            f"{name}: fastgd takes dask arrays and dask DataFrames/Series, got "
            f"{type(obj).__module__}.{type(obj).__name__}"
        )
    kind = obj.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} is complex ({obj.dtype}); fastgd fits real data: pass the real "
                        "part or split real and imaginary parts into columns")
    if kind not in "biuf":
        raise TypeError(f"{name} has dtype {obj.dtype}: fastgd fits numeric data")
    return obj, names


def _unknown(arr, name):
    if any(np.isnan(c) for c in arr.chunks[0]):
        raise ValueError(
            f"{name} has unknown block sizes (rows per block are NaN, e.g. an array made "
            f"from a dask DataFrame's .values); fastgd needs them to line the blocks of X "
            f"and y up: call {name}.compute_chunk_sizes() first, or convert the frame with "
            ".to_dask_array(lengths=True), or pass the dask DataFrame itself"
        )


def inputs(X, y, sample_weight):
    """``(X, y, sw, names, one_d)``: dask arrays whose row blocks coincide (X's blocks;
    y's and the weights' rechunked to them when they differ), X 2-D with all its
    columns in each block. NumPy arrays beside dask ones are cut into the same blocks."""
    _require_dask()
    import dask.array as da

    names = None
    if is_dask(X):
        X, names = _as_dask_array(X, "X")
        _unknown(X, "X")
    else:
        sparse = V.is_sparse(X)
        Xn = X.tocsr() if sparse else V.as_float_array(X, "X")
        ref, _ = _as_dask_array(y if is_dask(y) else sample_weight,
                                "y" if is_dask(y) else "sample_weight")
        _unknown(ref, "y" if is_dask(y) else "sample_weight")
        if Xn.ndim == 0 or Xn.shape[0] != ref.shape[0]:
            raise ValueError(f"X and y have different lengths: X has shape {Xn.shape}, y has "
                             f"{ref.shape[0]} rows; pass one target value per row of X")
        X = da.from_array(Xn, chunks=(ref.chunks[0],) + Xn.shape[1:], asarray=not sparse)
    if X.ndim == 0 or X.ndim > 2:
        raise ValueError(f"X must be 1-D (one feature) or 2-D (n_samples, n_features), got "
                         f"{X.ndim}-D with shape {X.shape}")
    one_d = X.ndim == 1
    if one_d:
        X = X[:, None]
    if X.shape[1] == 0:
        raise ValueError(f"X has 0 features (shape {X.shape}); pass at least one column")
    if X.shape[0] == 0:
        raise ValueError("X is empty (0 rows); fastgd needs at least one sample")
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    rows = X.chunks[0]
    n = X.shape[0]
    y = _aligned(y, "y", rows, n)
    sw = None if sample_weight is None else _aligned(sample_weight, "sample_weight", rows, n)
    return X, y, sw, names, one_d


def _aligned(a, name, rows, n):
    """``a`` (dask or NumPy) as a 1-D dask array with the row blocks ``rows``."""
    import dask.array as da

    if a is None:
        raise TypeError(f"{name} is None: pass the targets, one value per row of X")
    if not is_dask(a):
        a = V.as_float_array(a, name)
        if a.ndim == 2 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim != 1 or a.shape[0] != n:
            raise ValueError(f"{name} must be 1-D with one value per row of X ({n}), got shape "
                             f"{a.shape}")
        return da.from_array(a, chunks=(rows,))
    a, _ = _as_dask_array(a, name)
    _unknown(a, name)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per row), got shape {a.shape}")
    if a.shape[0] != n:
        raise ValueError(
            f"X and {name} have different lengths: X has {n} rows, {name} has {a.shape[0]}; "
            "pass one value per row of X"
        )
    if a.chunks[0] != tuple(rows):
        # the same rows in other blocks: dask moves the boundaries (a lazy rechunk)
        a = a.rechunk((rows,))
    return a


# ---------------------------------------------------------------------------------------
# On the workers
# ---------------------------------------------------------------------------------------

_WARM = set()
_WARM_LOCK = threading.Lock()


def _kind(name, X, sw, threads):
    """What decides which kernels a task compiles: the pass, the block's width and dtype,
    weights or not, serial or parallel kernels."""
    if V.is_sparse(X):
        return (name, "csr", X.shape[1], sw is None, threads > 1)
    X = np.asarray(X)
    return (name, X.shape[1] if X.ndim == 2 else 1, X.dtype.str, sw is None, threads > 1)


@contextmanager
def _first_use(name):
    """The first task of kind ``name`` (see :func:`_kind`) in this process runs under an
    inter-process file lock in the kernel cache folder: worker processes that would
    compile the same kernels take turns (the later ones load what the first wrote)
    instead of writing the cache at once."""
    if name in _WARM:
        yield
        return
    with _WARM_LOCK:
        if name in _WARM:
            yield
            return
        try:
            import fcntl

            from .._config import cache_dir

            folder = cache_dir()
            folder.mkdir(parents=True, exist_ok=True)
            fh = open(folder / "fastgd-compile.lock", "a+")
        except (ImportError, OSError):  # no locking here (e.g. Windows, read-only)
            fh = None
        try:
            if fh is not None:
                fcntl.flock(fh, fcntl.LOCK_EX)
            yield
            _WARM.add(name)
        finally:
            if fh is not None:
                fh.close()  # releases the lock


def _aligned_copy(a):
    """``a`` itself when its memory is aligned for its dtype, else an aligned copy.

    Blocks received from the client or another worker can start at any byte of a
    message buffer (``da.from_array(...).persist()`` left 6 of 8 blocks so, measured in
    bench/test_dask.py). NumPy's matrix products then skip BLAS: ``X.T @ r`` over a
    500,000 x 4 block took 3.5 ms instead of 0.34 ms, which is what makes a hand-written
    NumPy pass 2x slower on such blocks. fastgd's compiled kernels read unaligned
    memory at full speed (0.62 against 0.64 ms, bit-identical sums), so the passes use
    the blocks in place; only NumPy products (:func:`predict`) get an aligned copy."""
    if a.flags.aligned:
        return a
    out = np.empty(a.shape, dtype=a.dtype)
    np.copyto(out, a)
    return out


def _block_data(X, y, sw, parallel):
    if not V.is_sparse(X):  # (a scipy.sparse block is read as CSR by check_data)
        X = np.asarray(X)
        if X.ndim == 1:
            X = X[:, None]
    return V.check_data(X, np.asarray(y), None if sw is None else np.asarray(sw),
                        parallel=parallel, check_finite_xy=False, allow_zero_weight=True)


@contextmanager
def _threads(n):
    """A task's passes: serial (``n <= 1``), or parallel on at most ``n`` of fastgd's
    threads (:mod:`fastgd._threads`); yields whether they are parallel."""
    if n <= 1:
        yield False
        return
    with _fastgd_threads.limit(n):
        yield True


def _named(k, offset, exc):
    return type(exc)(f"block {k} (rows from {offset}): {exc}")


def run_part(part, X, y, sw, k, offset, threads, extra, args):
    """A task: ``part`` (a per-block function of :mod:`fastgd.sources.passes`) over block ``k``."""
    with _threads(threads) as parallel, _first_use(_kind(part.__name__, X, sw, threads)):
        try:
            data = _block_data(X, y, sw, parallel)
        except (ValueError, TypeError) as exc:
            raise _named(k, offset, exc) from None
        return part(data, parallel, *extra, *args)


def run_sgd(X, y, sw, k, offset, threads, prev, seed, rows, step, coords, params, loss):
    """A task: block ``k``'s share of a stochastic epoch, continuing ``prev = (state, t,
    bad_row)`` (passed on untouched once a row went bad). Its visiting order (the rows
    ``rows`` or all, permuted by ``seed``, or in order without one) is built here, and
    ``step`` (the solver's per-block epoch, :func:`fastgd.solvers.sgd.sgd_block`, sent by
    name) runs it."""
    state, t, bad = prev
    if bad is not None:
        return prev
    kind = _kind("run_sgd", X, sw, threads) + (int(params[P_BATCH]), loss)
    with _threads(threads) as parallel, _first_use(kind):
        data = _block_data(X, y, sw, parallel)
        # the visiting order of fit_chunks over the same block (fastgd.sources.epochs)
        order = block_order(data, seed, None if rows is None else rows.indices())
        state = state.copy()
        t, bad = step(data, order, coords, params.copy(), state, t, False, loss)
    return state, t, None if bad is None else offset + bad


# ---------------------------------------------------------------------------------------
# The source
# ---------------------------------------------------------------------------------------

class DaskSource(Source):
    """The blocks of dask arrays ``X`` (2-D, all columns per block), ``y`` and ``sw``
    (None or 1-D), with the same row blocks; see the module notes."""

    random_access = True
    rows_known = property(lambda self: self.n)
    n = property(lambda self: self._shape[0])
    d = property(lambda self: self._shape[1])
    n_blocks = property(lambda self: self._shape[2])
    one_d = property(lambda self: self._one_d)
    weighted = property(lambda self: self._weighted)

    kind = "dask"

    def __init__(self, X, y, sw, one_d, dtype):
        super().__init__()
        import dask

        self.dask = dask
        self.threads = int(dask.config.get(THREADS_KEY, None)
                           or dask.config.get(_OLD_THREADS_KEY, 1) or 1)
        self.arrays = (X, y, sw)
        sizes = [int(c) for c in X.chunks[0]]
        keep = [k for k, m in enumerate(sizes) if m > 0]  # empty blocks hold nothing
        xs = X.to_delayed().ravel()
        ys = y.to_delayed().ravel()
        ws = sw.to_delayed().ravel() if sw is not None else [None] * len(xs)
        self._xs = [xs[k] for k in keep]
        self._ys = [ys[k] for k in keep]
        self._ws = [ws[k] for k in keep]
        self.sizes = [sizes[k] for k in keep]
        self.offsets = list(np.cumsum([0] + self.sizes[:-1]))
        self._shape = (int(sum(self.sizes)), int(X.shape[1]), len(self.sizes))
        self._one_d = one_d
        self._weighted = sw is not None
        self.dtype = dtype
        #: whether X's blocks are scipy.sparse matrices (read as CSR on the workers)
        self.sparse = V.is_sparse(getattr(X, "_meta", None))
        self._W = None if self.weighted else float(self.n)

    # -- running per-block functions on the blocks' workers ----------------------------

    def _compute(self, tasks):
        return list(self.dask.compute(*tasks))

    def _map(self, part, *args, each=None):
        delayed = self.dask.delayed
        tasks = []
        for k in range(self.n_blocks):
            extra = () if each is None else (each[k],)
            tasks.append(delayed(run_part, pure=False)(
                part, self._xs[k], self._ys[k], self._ws[k], k, int(self.offsets[k]),
                self.threads, extra, args))
        return self._compute(tasks)

    def _each(self, part, *args, each=None):
        return iter(self._map(part, *args, each=each))

    def check_finite(self):
        from .passes import finite_part

        if self.verified:
            return
        for k, msg in enumerate(self._map(finite_part)):
            if msg is not None:
                raise ValueError(f"block {k}: {msg} (the block's rows start at row "
                                 f"{self.offsets[k]})")
        self.verified = True

    def _blocks(self):
        raise TypeError("the blocks of a dask array stay on the cluster")  # pragma: no cover

    def block_sizes(self):
        return list(self.sizes)

    def in_units(self, units):
        """The same blocks in power-of-two units (see :func:`fastgd.sources.rescaled`):
        converted on the workers, as each task reads its block."""
        X, y, sw = self.arrays
        ex, ey = units
        Xu = X.map_blocks(_ldexp_columns, -ex, dtype=np.float64, meta=X._meta)
        yu = y.map_blocks(np.ldexp, -ey, dtype=np.float64)
        out = DaskSource(Xu, yu, sw, self.one_d, "float64")
        out._W = self._W
        return out

    @property
    def weight_total(self):
        if self._W is None:
            from .chunks import _check_total_weight
            from .passes import weight_part

            self._W = float(sum(self._map(weight_part)))
            _check_total_weight(self._W)
        return self._W

    def facts(self):
        return DataFacts(n=self.n, d=self.d, dtype=self.dtype, weighted=self.weighted,
                         one_d=self.one_d, sparse=self.sparse)

    # -- early stopping: the held-out rows travel as seeds --------------------------------

    def split(self, fraction, rng, parallel):
        return [(Rows(r.m, r.seed, r.n_val, r.m), Rows(r.m, r.seed, 0, r.n_val))
                for r in draw_split(self.sizes, fraction, rng)]

    # -- stochastic epochs -----------------------------------------------------------------

    def epochs(self, rng, shuffle, parallel, prefetch, rows=None):
        return _DaskEpochs(self, rng, shuffle, rows)


class _DaskEpochs(_BlockEpochs):
    """The epochs of a :class:`DaskSource`: the random draws of
    :class:`fastgd.sources._BlockEpochs` (block order, then one seed per block; ``skip``
    is its own), made on the client; the orders themselves are built on the workers."""

    def next(self):
        nb = self.source.n_blocks
        order = self.rng.permutation(nb) if (self.shuffle and nb > 1) else range(nb)
        visits = []
        for k in order:
            k = int(k)
            seed = epoch_seed(self.rng) if self.shuffle else None
            visits.append((k, seed, None if self.rows is None else self.rows[k]))
        return _Epoch(self.source, visits)


class _Epoch:
    """One stochastic epoch over blocks on the cluster, run as one graph (see
    :meth:`fastgd.solvers.sgd.Epoch.run`)."""

    def __init__(self, source, visits):
        self.source, self.visits = source, visits

    def run(self, runner, state, t):
        src = self.source
        delayed = src.dask.delayed
        task = delayed(run_sgd, pure=False)

        def one(k, seed, rows, prev):
            return task(src._xs[k], src._ys[k], src._ws[k], k, int(src.offsets[k]), src.threads,
                        prev, seed, rows, runner.block_step, runner.coords, runner.params,
                        runner.loss)

        if not runner.mixing:
            prev = (state.copy(), t, None)
            for k, seed, rows in self.visits:
                prev = one(k, seed, rows, prev)
            new, t_new, bad = src._compute([prev])[0]
            if bad is not None:
                return t, bad  # state: the parameters before this epoch
            state[:] = new
            return t_new, None
        # parameter mixing across blocks: every block from the same start, averaged in
        # block order, weighted by the rows each visited
        start = (state.copy(), t, None)
        runs = sorted(self.visits)
        outs = src._compute([one(k, seed, rows, start) for k, seed, rows in runs])
        for _, _, bad in outs:
            if bad is not None:
                return t, bad
        sizes = np.array([src.sizes[k] if rows is None else rows.shape[0]
                          for k, _, rows in runs], dtype=np.float64)
        share = sizes / sizes.sum()
        acc = np.zeros_like(state)
        for s, (st, _, _) in zip(share, outs):
            acc += s * st
        state[:] = acc
        return t + max(o[1] - t for o in outs), None


# ---------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------

def source_for(X, y, sample_weight):
    """The :class:`DaskSource` of dask inputs (see :func:`inputs`), its ``names`` the
    frame's column names."""
    Xd, yd, swd, names, one_d = inputs(X, y, sample_weight)
    dx, dy = np.dtype(Xd.dtype), np.dtype(yd.dtype)
    floats = (np.dtype(np.float32), np.dtype(np.float64))
    dtype = str(dx) if (dx == dy and dx in floats) else "float64"
    source = DaskSource(Xd, yd, swd, one_d, dtype)
    source.names = names
    return source


def predict(X, coef, intercept):
    """``X @ coef + intercept`` for a dask array or DataFrame ``X``: a lazy dask array
    (one task per block, nothing computed here)."""
    Xd, _ = _as_dask_array(X, "X")
    if Xd.ndim == 1:
        Xd = Xd[:, None]
    if Xd.shape[1] != coef.shape[0]:
        raise ValueError(f"X has {Xd.shape[1]} columns but the model has {coef.shape[0]} "
                         "coefficients")
    if Xd.numblocks[1] > 1:
        Xd = Xd.rechunk({1: -1})
    return Xd.map_blocks(_predict_block, coef, float(intercept), drop_axis=1, meta=np.empty(0),
                         dtype=np.float64)


def _predict_block(X, coef, intercept):
    if V.is_sparse(X):  # O(nnz), the stored values checked (fastgd.sources.csr.predict)
        from .csr import predict as csr_predict

        return csr_predict(V.check_csr(X), coef, intercept, False)
    X = _aligned_copy(np.asarray(X, dtype=np.float64))
    V.check_finite(X, "X", False)
    return X @ coef + intercept


def _ldexp_columns(X, e):
    """Block ``X`` with column ``j`` multiplied by ``2**e[j]`` (exact), dense or sparse."""
    if V.is_sparse(X):
        X = X.tocsr(copy=True).astype(np.float64)
        X.data = np.ldexp(X.data, e[X.indices])
        return X
    return np.ldexp(X, e[None, :])


__all__ = ["DaskSource", "inputs", "predict", "is_dask", "THREADS_KEY"]
