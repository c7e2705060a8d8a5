"""Sources of rows: where the data lives, and the block passes the algorithms ask for.

The optimizers, the stopping rules and the stochastic drivers never touch an array of
data: they ask a source for a pass. A source runs each pass block by block with the same
compiled kernels (:mod:`fastgd.kernels`) and merges the per-block partials in block
order, so a result depends on the data and the block boundaries only, never on timing or
thread count. A source owns no maths: every formula lives in a kernel or a driver.

The passes (see :class:`Source`):

* ``check_finite()``: NaN/inf in X or y raises ``ValueError`` naming the row (and block);
* ``sse_grad(coef)`` / ``loss_grad(coef, loss, c)``: loss and gradient sums at a point
  (the squared loss's, or any registered loss's, :mod:`fastgd.losses`);
* ``moments(full)``: weighted means and centred co-moments (or per-column second moments);
* ``max_norm(centres, inv_scales, fit_intercept)``: the largest step curvature of SGD;
* ``split(fraction, rng)`` and ``subset_loss(...)``: held-out rows for early stopping;
* ``epochs(...)``: the blocks of each stochastic epoch with the order to visit their rows.

Two sources here: :class:`ArraySource` (one in-memory block: the arrays given to
:func:`fastgd.fit`) and :class:`ChunkSource` (a re-iterable of ``(X, y[, sample_weight])``
blocks: :func:`fastgd.fit_chunks`); files (:mod:`fastgd.io`) are a ChunkSource. Every
pass is ``_map`` of a module-level per-block function (below) and a merge in block order:
a source implements ``_blocks()`` (and ``_block(k)`` for random access) and inherits
the rest, or, when its blocks live elsewhere (:class:`fastgd.dask.DaskSource`), replaces
``_map`` and the stochastic ``epochs`` to run the same functions where the blocks are.
"""
from dataclasses import dataclass

import numpy as np

from . import _small, _threads, losses
from . import _validation as V
from ._chunking import moment_layout, n_chunks, perm_layout
from ._config import K, _LazyModule
from ._frames import column_names

#: the one-pass QR statistic (plain NumPy; only ill-conditioned fits need it)
KQR = _LazyModule("fastgd.kernels.qr")
#: rows per slice of the max-abs pass
MAX_ABS_ROWS = 1 << 14


def epoch_seed(rng):
    """The seed of one epoch's permutation, drawn from the fit's generator."""
    return int(rng.integers(0, 2**63 - 1))


def permutation(m, seed, parallel, out=None):
    """The compiled uniform permutation of ``range(m)`` for ``seed`` (into ``out`` when
    given): the three phases of :func:`fastgd.kernels.permutation._permutation_phase`,
    each over fixed ranges (on several threads when ``parallel``), and between the first
    two the exclusive prefix sums that place each chunk's share of each bucket."""
    perm = np.empty(m, dtype=np.int64) if out is None else out
    nb, nc = perm_layout(m)
    counts = np.zeros((nc, nb), dtype=np.int64)
    starts = np.empty(nb + 1, dtype=np.int64)
    kernel = K._permutation_phase
    _threads.run_chunks(kernel, (perm, seed, 0, counts, starts), nc, parallel)
    flat = counts.T.reshape(-1)  # bucket by bucket, chunk by chunk
    offsets = np.cumsum(flat) - flat
    counts[:] = offsets.reshape(nb, nc).T
    starts[:nb] = offsets[::nc]
    starts[nb] = m
    _threads.run_chunks(kernel, (perm, seed, 1, counts, starts), nc, parallel)
    _threads.run_chunks(kernel, (perm, seed, 2, counts, starts), nb, parallel)
    return perm


@dataclass(frozen=True)
class Block:
    """One block of validated rows: ``data`` (a :class:`fastgd._validation.Data`), its
    position ``index`` among the blocks, the global row number ``offset`` of its first
    row, and whether its passes run the parallel kernels."""

    data: V.Data
    index: int
    offset: int
    parallel: bool


class Source:
    """The block passes, merged in block order. Subclasses provide ``_blocks()``."""

    #: several passes are possible (False for a one-shot iterator)
    reiterable = True
    #: blocks can be read in any order (``_block(k)``)
    random_access = False
    #: ``(x_exp, y_exp)`` when the rows are the data in power-of-two units (see
    #: :class:`Rescaled`); None for the data as given
    units = None
    #: whether the loss/gradient passes of small blocks may run in NumPy (see
    #: :mod:`fastgd._small`); the engine sets it from the plan: True for fits that make
    #: few such passes (the gram path, the stochastic modes' one loss pass an epoch),
    #: False for the iterative streaming fits, whose passes the kernels run 2 to 10 times
    #: faster (measured), so their compilation pays for itself
    numpy_passes = True

    def __init__(self):
        self.verified = False  # X and y known to be finite

    @property
    def rows_known(self):
        """The number of rows when it is known without reading the data, else None."""
        return None

    # -- what subclasses provide ---------------------------------------------------------

    def _blocks(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _block(self, k):  # pragma: no cover - abstract
        raise NotImplementedError

    def _name(self, block):
        """How error messages name ``block`` ("" for the only block of arrays)."""
        return f"block {block.index}: "

    # -- finiteness ----------------------------------------------------------------------

    def check_finite(self):
        """Raise ``ValueError`` if X or y holds NaN or inf (naming the first bad row)."""
        if not self.verified:
            for b in self._blocks():
                self._check_block(b)
            self.verified = True

    def _check_block(self, b):
        try:
            V.check_finite_data(b.data, b.parallel)
        except ValueError as exc:
            prefix = self._name(b)
            if not prefix:
                raise
            raise ValueError(f"{prefix}{exc} (the block's rows start at row {b.offset})") from None

    def _proof(self, *sums):
        """A pass whose sums are finite proves the data finite (any NaN or inf in X or y
        makes them non-finite); a non-finite one triggers the search for the message."""
        if not self.verified:
            if not all(np.isfinite(s).all() for s in sums):
                self.check_finite()
            self.verified = True

    # -- passes --------------------------------------------------------------------------

    def _map(self, part, *args, each=None):
        """``[part(block.data, block.parallel, [each[k],] *args) for each block k]``, in
        block order: every pass is such a map of a per-block function (below, at module
        level) followed by a merge of its results in block order. A source that runs
        blocks elsewhere (:mod:`fastgd.dask`) replaces this method, and the few that
        read blocks directly (``check_finite``, ``split``, ``epochs``)."""
        out = []
        for b in self._blocks():
            extra = () if each is None else (each[b.index],)
            out.append(part(b.data, b.parallel, *extra, *args))
        return out

    def sse_grad(self, coef):
        """``[sum w r^2, sum w r, sum w r x_j ...]`` at ``coef`` (float64 ``(d + 2,)``)."""
        total = _add_in_order(self._map(sse_part, coef, self.numpy_passes))
        self._proof(total)
        return total

    def loss_grad(self, coef, loss, c):
        """``[sum w loss(r), sum w psi(r), sum w psi(r) x_j ...]`` of ``loss`` (a
        :class:`fastgd.losses.Loss`) with parameter ``c``: :meth:`sse_grad` for the
        squared loss, else that loss's compiled pass (each block's, added in order)."""
        if loss.sufficient_statistics:
            return self.sse_grad(coef)
        total = _add_in_order(self._map(loss_part, coef, loss.name, c, self.numpy_passes))
        self._proof(total)
        return total

    def moments(self, full):
        """``(W, mean, com)``: weighted mean (``d + 1``) and centred co-moment of ``[x, y]``
        (``(d + 1, d + 1)`` when ``full``, else the ``(d + 1,)`` diagonal): each block's
        statistics (its slices merged where the block is), merged exactly (pairwise
        updates) in block order."""
        rows = self._map(moments_part, full)
        out = rows[0][None, :] if len(rows) == 1 else np.stack(rows)
        W, mean, com = merge_moments(out, self.d + 1, full)
        self._proof(mean, com)
        return W, mean, com

    def max_norm(self, centres, inv_scales, fit_intercept):
        """``max_i w_i ||[(x_i - centres) * inv_scales, 1]||^2`` (the 1 only when the
        intercept is fitted): the largest curvature one SGD step can meet."""
        d = centres.shape[0]
        coords = np.zeros((2, d + 1))
        coords[0, :d] = centres
        coords[0, d] = 1.0 if fit_intercept else 0.0
        coords[1, :d] = inv_scales
        return max(self._map(max_norm_part, coords))

    def qr(self, centres, inv_scales, intercept, offset):
        """The R factor of ``sqrt(w) [(x - centres) * inv_scales, 1, y - offset]`` over all
        rows (see :mod:`fastgd.kernels.qr`): each block's R, merged in block order."""
        R = None
        for Rb in self._map(qr_part, centres, inv_scales, intercept, offset):
            R = KQR.merge(R, Rb)
        return R

    def max_abs(self):
        """The largest magnitude of each column of ``[X, y]`` (float64 ``(d + 1,)``), read
        in slices so that no block-sized temporary is made."""
        return np.maximum.reduce(self._map(max_abs_part))

    def fingerprint(self, kind):
        """What identifies these rows for a checkpoint (``kind``: "chunks" or "dask"):
        shape, dtype, weights, the block sizes and a hash of rows sampled in every block,
        computed where the blocks are (see :func:`fastgd._checkpoint.fingerprint`)."""
        import hashlib

        h = hashlib.sha256("".join(self._map(fingerprint_part)).encode())
        facts = self.facts()
        return {"source": kind, "n": int(facts.n), "d": int(facts.d), "dtype": facts.dtype,
                "weighted": bool(facts.weighted), "blocks": [int(m) for m in self.block_sizes()],
                "sha256": h.hexdigest()}

    # -- early stopping ------------------------------------------------------------------

    def split(self, fraction, rng, parallel):
        """Hold out ``fraction`` of the rows, drawn from ``rng``: a list with one
        ``(train_idx, val_idx)`` pair of local row indices (int64 arrays) per block."""
        parts = []
        one = self.n_blocks == 1
        for r in draw_split(self.block_sizes(), fraction, rng):
            s = permutation(r.m, r.seed, parallel if one else False)
            parts.append((s[r.n_val:].copy(), s[:r.n_val].copy()))
        return parts

    def block_sizes(self):
        """Rows per block, in block order."""
        return [b.data.n for b in self._blocks()]

    def subset_loss(self, idx, coef, loss, c):
        """``(sum w loss(r), sum w)`` over the rows ``idx[k]`` of each block ``k``."""
        s = w = 0.0
        for sb, wb in self._map(subset_loss_part, coef, loss.name, c, self.numpy_passes,
                                each=idx):
            s += sb
            w += wb
        return s, w

    def subset_weight(self, idx):
        """Total weight of the rows ``idx[k]`` of each block ``k``."""
        return float(sum(self._map(subset_weight_part, each=idx)))

    # -- stochastic epochs -----------------------------------------------------------------

    def epochs(self, rng, shuffle, parallel, prefetch, rows=None):
        """The visiting order of each stochastic epoch: a context manager whose
        ``next()`` returns the epoch as a list of ``(block, order)``, ``order`` the
        local row indices to visit in turn (int64)."""
        return _BlockEpochs(self, rng, shuffle, rows)


# ---------------------------------------------------------------------------------------
# The per-block functions of the passes: module level, so that a source running blocks in
# other processes (fastgd.dask) sends them by name and the workers import them
# ---------------------------------------------------------------------------------------

def _add_in_order(parts):
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def finite_part(data, parallel):
    """None when the block's X and y are finite, else the message naming the row."""
    try:
        V.check_finite_data(data, parallel)
    except ValueError as exc:
        return str(exc)
    return None


def sse_part(data, parallel, coef, numpy_passes=True):
    if numpy_passes and _small.is_small(data.n, data.d):
        return _small.sse_grad(data, coef)
    nc = n_chunks(data.n)
    out = np.empty((nc, data.d + 2))
    _threads.run_chunks(K.sse_grad_kernel(data.d, data.sw.shape[0] > 0),
                        (data.X, data.y, data.sw, coef, out), nc, parallel)
    return out.sum(axis=0)


def loss_part(data, parallel, coef, loss_name, c, numpy_passes=True):
    """The sums of the loss registered as ``loss_name`` over the block (by name: a block
    elsewhere looks the loss up in its own registry)."""
    loss = losses.get(loss_name)
    if numpy_passes and _small.is_small(data.n, data.d):
        return _small.loss_grad(data, coef, loss, c)
    nc = n_chunks(data.n)
    out = np.empty((nc, data.d + 2))
    _threads.run_chunks(K.loss_kernels(loss).grad,
                        (data.X, data.y, data.sw, coef, np.array([c]), out), nc, parallel)
    return out.sum(axis=0)


def moments_part(data, parallel, full):
    """The block's moments as one row ``[W, mean, com]`` (``com`` the full co-moment
    matrix, or its diagonal): its slices' rows from the kernel, merged in order here, so
    that what a block sends back has a fixed size whatever its rows."""
    k = data.d + 1
    if (_small.is_small_gram if full else _small.is_small)(data.n, data.d):
        return _small.moments(data, full)
    if full:
        n_blocks, sub_rows = moment_layout(data.n, data.d)
        out = np.empty((n_blocks, 1 + k + k * k))
        kernel = K._moments_1d if (data.d == 1 and data.sw.shape[0] == 0) else K._moments
    else:
        n_blocks, sub_rows = moment_layout(data.n, 1)
        out = np.empty((n_blocks, 1 + 2 * k))
        kernel = K._moments_diag
    _threads.run_chunks(kernel, (data.X, data.y, data.sw, sub_rows, out), n_blocks, parallel)
    W, mean, com = merge_moments(out, k, full)
    return np.concatenate([[W], mean, com.ravel()])


def merge_moments(rows, k, full):
    """``(W, mean, com)`` of moment rows ``[W, mean, com]`` merged exactly in order
    (pairwise updates; rows of zero weight are skipped)."""
    if full:
        if rows.shape[0] > MERGE_COMPILED_ROWS:
            mean = np.empty(k)
            com = np.empty((k, k))
            W = K._combine_moments(rows, k, mean, com)
            return W, mean, com
        return _merge_full(rows, k)
    W = 0.0
    mean = np.zeros(k)
    m2 = np.zeros(k)
    # NaN/inf data gives NaN/inf rows: the caller checks the result, NumPy need not warn
    with np.errstate(invalid="ignore", over="ignore"):
        for row in rows:
            Wb = row[0]
            if Wb > 0.0:
                Wt = W + Wb
                delta = row[1:1 + k] - mean
                m2 += row[1 + k:] + ((W / Wt) * Wb) * delta * delta
                mean += delta * (Wb / Wt)
                W = Wt
    return W, mean, m2


#: more full moment rows than this are merged by the compiled loop
#: (:func:`fastgd.kernels.moments._combine_moments`: 153 rows at 10^7 rows, 0.05 ms
#: against 1.5 ms here); fewer by :func:`_merge_full`, which needs no compilation
MERGE_COMPILED_ROWS = 32


def _merge_full(rows, k):
    """:func:`fastgd.kernels.moments._combine_moments` in NumPy, operation for operation
    (the compiled merge is strict IEEE, and NumPy neither reorders nor fuses): the same
    bits (tested), without compiling it."""
    W = 0.0
    mean = np.zeros(k)
    com = np.zeros((k, k))
    with np.errstate(invalid="ignore", over="ignore"):
        for row in rows:
            Wb = row[0]
            if Wb <= 0.0:  # (a NaN weight is merged, as by the compiled merge)
                continue
            mean_b = row[1:1 + k]
            com_b = row[1 + k:].reshape(k, k)
            if W <= 0.0:
                mean[:] = mean_b
                com[:] = np.triu(com_b)
                W = Wb
                continue
            Wt = W + Wb
            f = (W / Wt) * Wb
            delta = mean_b - mean
            com += com_b + np.outer(f * delta, delta)
            mean += delta * (Wb / Wt)
            W = Wt
    upper = np.triu(com)
    return W, mean, upper + np.triu(upper, 1).T


def max_norm_part(data, parallel, coords):
    if _small.is_small(data.n, data.d):
        return _small.max_norm(data, coords)
    nc = n_chunks(data.n)
    out = np.empty(nc)
    _threads.run_chunks(K._max_norm, (data.X, data.sw, coords, out), nc, parallel)
    return float(out.max())


def qr_part(data, parallel, centres, inv_scales, intercept, offset):
    return KQR.r_factor(data.X, data.y, data.sw, centres, inv_scales, intercept, offset,
                        workers=_threads.get_num_threads() if parallel else 1)


def max_abs_part(data, parallel):
    top = np.zeros(data.d + 1)
    for i in range(0, data.n, MAX_ABS_ROWS):
        top[:data.d] = np.maximum(top[:data.d], np.abs(data.X[i:i + MAX_ABS_ROWS]).max(axis=0))
        top[data.d] = max(top[data.d], float(np.abs(data.y[i:i + MAX_ABS_ROWS]).max()))
    return top


def fingerprint_part(data, parallel):
    """A hash of 33 rows spread over the block (see :func:`fastgd._checkpoint.fingerprint`)."""
    from ._checkpoint import sampled_hash

    return sampled_hash(data, 33)


def weight_part(data, parallel):
    return data.weight_total


def subset_loss_part(data, parallel, rows, coef, loss_name, c, numpy_passes=True):
    loss = losses.get(loss_name)
    if numpy_passes and _small.is_small(data.n, data.d):
        return _small.subset_loss(data, _indices(rows), coef, loss, c)
    out = np.empty(2)
    K.loss_kernels(loss).subset(data.X, data.y, data.sw, _indices(rows), coef, np.array([c]),
                                out)
    return out[0], out[1]


def subset_weight_part(data, parallel, rows):
    rows = _indices(rows)
    return float(data.sw[rows].sum()) if data.sw.shape[0] else float(rows.shape[0])


@dataclass(frozen=True)
class Rows:
    """Rows ``lo:hi`` of the permutation of ``range(m)`` drawn from ``seed``: a block's
    held-out (or training) rows as a seed and bounds, for blocks that live elsewhere (the
    indices are built where the block is)."""

    m: int
    seed: int
    lo: int
    hi: int

    @property
    def shape(self):
        return (self.hi - self.lo,)

    def indices(self):
        return permutation(self.m, self.seed, False)[self.lo:self.hi].copy()


def _indices(rows):
    return rows.indices() if isinstance(rows, Rows) else rows


@dataclass(frozen=True)
class Draw:
    m: int
    seed: int
    n_val: int


def draw_split(sizes, fraction, rng):
    """Per block (of ``sizes`` rows), the seed of its permutation and how many of its rows
    are held out (``fraction``, at least one when there is a single block)."""
    draws = []
    one = len(sizes) == 1
    for m in sizes:
        n_val = max(1, int(round(fraction * m))) if one else int(round(fraction * m))
        draws.append(Draw(m, epoch_seed(rng), n_val))
    n_val_total = sum(r.n_val for r in draws)
    n_total = sum(sizes)
    if n_val_total >= n_total or n_val_total == 0:
        raise ValueError(
            f"validation_fraction={fraction} leaves no "
            f"{'training' if n_val_total else 'validation'} rows out of {n_total}; "
            f"use a {'smaller' if n_val_total else 'larger'} fraction"
        )
    return draws


class _BlockEpochs:
    """Epochs over several blocks: block order shuffled (when the source has random
    access) and each block's rows in a fresh permutation, all drawn from ``rng``."""

    def __init__(self, source, rng, shuffle, rows):
        self.source, self.rng, self.shuffle, self.rows = source, rng, shuffle, rows

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def next(self):
        src = self.source
        nb = src.n_blocks
        if self.shuffle and src.random_access and nb > 1:
            order = self.rng.permutation(nb)
            blocks = (src._block(int(k)) for k in order)
        else:
            blocks = src._blocks()
        for b in blocks:
            rows = None if self.rows is None else self.rows[b.index]
            m = b.data.n if rows is None else rows.shape[0]
            if self.shuffle:
                perm = permutation(m, epoch_seed(self.rng), False)
            else:
                perm = np.arange(m, dtype=np.int64)
            yield b, (perm if rows is None else rows[perm])

    def skip(self):
        """Draw what :meth:`next` draws from ``rng`` for one epoch, without reading any
        block (resuming a checkpoint replays the random stream this way)."""
        if not self.shuffle:
            return
        nb = self.source.n_blocks
        if self.source.random_access and nb > 1:
            self.rng.permutation(nb)
        for _ in range(nb):
            epoch_seed(self.rng)


# ---------------------------------------------------------------------------------------
# In-memory arrays
# ---------------------------------------------------------------------------------------

#: from this many rows, serial SGD builds the next epoch's permutation on a background
#: thread while the current epoch runs. Measured per epoch (2 cores, d = 1), without /
#: with: 4e6 rows raw SGD 150 / 105 ms, default (scaled, averaged) 145 / 131 ms; 1e6
#: rows raw 18 / 13 ms but default 14 / 17 ms (the data sits in cache, the epoch is as
#: short as the serial permutation, and the background thread then contends with the
#: parallel loss pass). Hence only for data well beyond the caches.
PREFETCH_MIN_ROWS = 1 << 21


class Permutations:
    """The visiting order of each epoch over ``m`` rows: ``next()`` returns it.

    Epoch ``k`` visits ``permutation(seed_k)`` with ``seed_k`` the ``k``-th draw of
    :func:`epoch_seed` from ``rng`` (``arange(m)`` without ``shuffle``). With
    ``prefetch`` (serial SGD, which keeps one core busy), the next epoch's permutation is
    built by the serial kernel on a background thread while the caller runs the current
    epoch: the kernel is compiled ``nogil``, so the two really run at once, and the
    result is the same permutation as without prefetching. Two buffers alternate, so
    memory is ``2 m`` int64. Use as a context manager (the thread is joined on exit).
    """

    def __init__(self, m, rng, shuffle, parallel, prefetch):
        self.m, self.rng, self.shuffle = m, rng, shuffle
        self.prefetch = bool(prefetch and shuffle and m >= PREFETCH_MIN_ROWS)
        self.parallel = bool(parallel) and not self.prefetch
        self.buffers = [np.arange(m, dtype=np.int64)]
        self.pool = self.pending = None
        if self.prefetch:
            from concurrent.futures import ThreadPoolExecutor

            self.buffers.append(np.empty(m, dtype=np.int64))
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastgd-perm")
        self.turn = 0

    def _build(self, buf, seed):
        return permutation(self.m, seed, self.parallel, out=buf)

    def next(self):
        if not self.shuffle:
            return self.buffers[0]
        if not self.prefetch:
            return self._build(self.buffers[0], epoch_seed(self.rng))
        if self.pending is None:  # first epoch: nothing built ahead yet
            self._build(self.buffers[self.turn], epoch_seed(self.rng))
        else:
            self.pending.result()  # the buffer built during the previous epoch
        current = self.buffers[self.turn]
        self.turn ^= 1
        self.pending = self.pool.submit(self._build, self.buffers[self.turn], epoch_seed(self.rng))
        return current

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        return False


class _ArrayEpochs:
    """Epochs of the one in-memory block: :class:`Permutations` of its rows (or of the
    training rows ``rows[0]``, gathered into one buffer)."""

    def __init__(self, source, rng, shuffle, parallel, prefetch, rows):
        self.block = next(source._blocks())
        self.rows = None if rows is None else rows[0]
        m = self.block.data.n if self.rows is None else self.rows.shape[0]
        self.perms = Permutations(m, rng, shuffle, parallel, prefetch)
        self.buf = None if self.rows is None else np.empty(m, dtype=np.int64)

    def __enter__(self):
        self.perms.__enter__()
        return self

    def __exit__(self, *exc):
        return self.perms.__exit__(*exc)

    def skip(self):
        """One epoch's draws from the random stream (see :meth:`_BlockEpochs.skip`)."""
        self.perms.next()

    def next(self):
        perm = self.perms.next()
        if self.rows is not None:
            np.take(self.rows, perm, out=self.buf)
            perm = self.buf
        return [(self.block, perm)]


class ArraySource(Source):
    """The arrays given to :func:`fastgd.fit`: one block, no copy.

    ``parallel`` is the resolved choice of kernels for its passes; ``verified`` says
    whether X and y were already checked for NaN/inf (else the first pass proves it).
    """

    random_access = True
    n_blocks = 1

    def __init__(self, data, parallel, verified=False):
        super().__init__()
        self.data = data
        self.block = Block(data, 0, 0, bool(parallel))
        self.verified = verified
        self._small = _small.is_small(data.n, data.d)  # passes in NumPy (see fastgd._small)
        self._sse = self._loss = None

    n = rows_known = property(lambda self: self.data.n)
    d = property(lambda self: self.data.d)
    weight_total = property(lambda self: self.data.weight_total)
    one_d = property(lambda self: self.data.one_d)
    weighted = property(lambda self: self.data.sw.shape[0] > 0)

    def _blocks(self):
        yield self.block

    def _block(self, k):
        return self.block

    def block_sizes(self):
        return [self.data.n]

    def _name(self, block):
        return ""

    # The loss/gradient passes run once per epoch: one block, so the kernel is chosen and
    # the per-chunk buffer allocated once per fit (the generic loop's per-call generator
    # and allocation cost 3 us a pass, 15% of an epoch at 10^5 rows).
    def sse_grad(self, coef):
        d = self.data
        if self._small and self.numpy_passes:
            s = _small.sse_grad(d, coef)
            if not self.verified:
                self._proof(s)
            return s
        if self._sse is None:
            nc = n_chunks(d.n)
            self._sse = (K.sse_grad_kernel(d.d, d.sw.shape[0] > 0),
                         np.empty((nc, d.d + 2)), nc)
        kernel, out, nc = self._sse
        _threads.run_chunks(kernel, (d.X, d.y, d.sw, coef, out), nc, self.block.parallel)
        s = out.sum(axis=0)
        if not self.verified:
            self._proof(s)
        return s

    def loss_grad(self, coef, loss, c):
        if loss.sufficient_statistics:
            return self.sse_grad(coef)
        d = self.data
        if self._small and self.numpy_passes:
            s = _small.loss_grad(d, coef, loss, c)
            if not self.verified:
                self._proof(s)
            return s
        if self._loss is None or self._loss[0] is not loss:
            self._loss = (loss, np.empty((n_chunks(d.n), d.d + 2)), np.empty(1))
        _, out, params = self._loss
        params[0] = c
        _threads.run_chunks(K.loss_kernels(loss).grad, (d.X, d.y, d.sw, coef, params, out),
                            out.shape[0], self.block.parallel)
        s = out.sum(axis=0)
        if not self.verified:
            self._proof(s)
        return s

    def epochs(self, rng, shuffle, parallel, prefetch, rows=None):
        return _ArrayEpochs(self, rng, shuffle, parallel, prefetch, rows)


# ---------------------------------------------------------------------------------------
# Blocks of rows: lists of (X, y[, sample_weight]), or a callable returning an iterator
# ---------------------------------------------------------------------------------------

class ChunkSource(Source):
    """Rows in blocks: a list (or tuple) of ``(X, y)`` / ``(X, y, sample_weight)`` tuples,
    a callable returning a fresh iterator of them on every call, or a one-shot iterator
    (one pass only).

    Each block is validated like arrays given to :func:`fastgd.fit` (and converted the
    same way); every block must have the width and dtype of block 0, at least one row,
    and weights if block 0 has them. Blocks are checked for NaN/inf the first time they
    are read. ``parallel`` is the user's setting (True, False or "auto", decided per
    block by its size).
    """

    def __init__(self, chunks, parallel="auto"):
        super().__init__()
        self.parallel_setting = parallel
        self._list = None
        self._call = None
        self._oneshot = None
        if isinstance(chunks, (list, tuple)):
            self._list = list(chunks)
            self.random_access = True
            if not self._list:
                raise ValueError("chunks is empty: give at least one (X, y) block")
        elif callable(chunks):
            self._call = chunks
        elif hasattr(chunks, "__iter__"):
            if iter(chunks) is chunks:
                self._oneshot = chunks
                self.reiterable = False
            else:
                self._call = lambda: iter(chunks)
        else:
            raise TypeError(
                f"chunks must be a list of (X, y[, sample_weight]) blocks, a callable returning "
                f"an iterator of them, or an iterator; got {type(chunks).__name__}"
            )
        self._used = False
        self._first = None  # (d, dtype, weighted, one_d) of block 0
        self._sizes = None  # rows per block, known after a full pass
        self._W = None
        self._pending = None  # a one-shot iterator's block 0, read to learn the facts
        self._listed = None  # a list's validated blocks
        self.names = None  # block 0's column names (a frame's), which every block must have
        self._peek()

    # -- reading blocks --------------------------------------------------------------------

    def _raw(self):
        if self._list is not None:
            return iter(self._list)
        if self._call is not None:
            it = self._call()
            try:
                return iter(it)
            except TypeError:
                raise TypeError(
                    f"chunks() must return an iterator of (X, y[, sample_weight]) blocks, got "
                    f"{type(it).__name__}"
                ) from None
        if self._used:
            raise TypeError(
                "chunks is a one-shot iterator (e.g. a generator) and was already consumed; "
                "this fit needs several passes over the data: pass a list of blocks or a "
                "callable that returns a fresh iterator on every call"
            )
        self._used = True
        if self._pending is not None:
            first, self._pending = self._pending, None
            return _chain(first, self._oneshot)
        return self._oneshot

    def _peek(self):
        it = self._raw()
        try:
            first = next(it)
        except StopIteration:
            raise ValueError("chunks yielded no blocks: give at least one (X, y) block") from None
        if self._oneshot is not None:
            self._pending = first
            self._used = False
        b = self._validate(first, 0, 0)
        d = b.data
        self._first = (d.d, d.X.dtype, d.sw.shape[0] > 0, d.one_d)
        if self._list is not None:
            # a list is validated (and converted, where needed) once, here: every pass
            # then reads these blocks instead of validating and converting them again
            blocks = [b]
            for k, t in enumerate(self._list[1:], start=1):
                blocks.append(self._validate(t, k, blocks[-1].offset + blocks[-1].data.n))
            self._listed = blocks
            self._sizes = [c.data.n for c in blocks]
            self._W = sum(c.data.weight_total for c in blocks)

    def _validate(self, item, k, offset):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise TypeError(
                f"block {k}: each block must be a tuple (X, y) or (X, y, sample_weight), got "
                f"{type(item).__name__}"
                + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else "")
            )
        X, y = item[0], item[1]
        sw = item[2] if len(item) == 3 else None
        names = column_names(X)
        if self._first is None:
            self.names = names
        elif names != self.names:
            raise ValueError(_block_names_error(k, names, self.names))
        try:
            X2, _ = V.check_X_shape_only(X)
        except ValueError as exc:
            if "empty" in str(exc):
                raise ValueError(f"block {k} is empty (0 rows); drop empty blocks") from None
            raise ValueError(f"block {k}: {exc}") from None
        parallel = V.use_parallel(self.parallel_setting, X2.shape[0], X2.shape[1])
        try:
            data = V.check_data(X, y, sw, parallel=parallel, check_finite_xy=False,
                                allow_zero_weight=True)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"block {k}: {exc}") from None
        if self._first is not None:
            d0, dtype0, weighted0, _ = self._first
            if data.d != d0:
                raise ValueError(
                    f"block {k} has {data.d} column(s) but block 0 has {d0}; every block must "
                    "have the same columns"
                )
            if data.X.dtype != dtype0:
                raise ValueError(
                    f"block {k} has dtype {data.X.dtype} but block 0 has {dtype0}; give every "
                    f"block the same dtype (e.g. X.astype(np.{dtype0}))"
                )
            if (data.sw.shape[0] > 0) != weighted0:
                has, hasnt = (0, k) if weighted0 else (k, 0)
                raise ValueError(
                    f"block {hasnt} has no sample_weight but block {has} has: give every block "
                    "weights, or none"
                )
        return Block(data, k, offset, parallel)

    def _blocks(self):
        if self._listed is not None:
            for b in self._listed:
                if not self.verified:
                    self._check_block(b)
                yield b
            _check_total_weight(self._W)
            self.verified = True
            return
        offset = 0
        sizes = []
        W = 0.0
        for k, item in enumerate(self._raw()):
            b = self._validate(item, k, offset)
            if not self.verified:
                self._check_block(b)
            sizes.append(b.data.n)
            W += b.data.weight_total
            offset += b.data.n
            yield b
        if not sizes:
            raise ValueError("chunks yielded no blocks on this pass: a callable must return a "
                             "fresh, complete iterator on every call")
        if self._sizes is not None and sizes != self._sizes:
            raise ValueError(
                f"chunks changed between passes: {len(self._sizes)} blocks of "
                f"{sum(self._sizes)} rows before, {len(sizes)} blocks of {sum(sizes)} rows now; "
                "a callable must return the same blocks on every call"
            )
        self._sizes = sizes
        self._W = W
        _check_total_weight(W)
        self.verified = True

    def check_finite(self):
        # reading the blocks checks each one the first time (see _blocks)
        if not self.verified:
            for _ in self._blocks():
                pass

    def _block(self, k):
        b = self._listed[k]  # random access: lists only
        if not self.verified:
            self._check_block(b)
        return b

    # -- facts -------------------------------------------------------------------------------

    def facts(self):
        from ._plan import DataFacts

        d, dtype, weighted, one_d = self._first
        n = sum(self._sizes) if self._sizes is not None else None
        return DataFacts(n=n, d=d, dtype=str(dtype), weighted=weighted, one_d=one_d)

    def block_sizes(self):
        self._scan()
        return list(self._sizes)

    def _scan(self):
        if self._sizes is None or self._W is None:
            for _ in self._blocks():
                pass

    @property
    def n(self):
        self._scan()
        return sum(self._sizes)

    @property
    def rows_known(self):
        return None if self._sizes is None else sum(self._sizes)

    @property
    def n_blocks(self):
        self._scan()
        return len(self._sizes)

    @property
    def weight_total(self):
        self._scan()
        return self._W

    d = property(lambda self: self._first[0])
    weighted = property(lambda self: self._first[2])
    one_d = property(lambda self: self._first[3])


# ---------------------------------------------------------------------------------------
# The same rows in power-of-two units
# ---------------------------------------------------------------------------------------

def exponents(top):
    """Per column, the power of two ``e`` with ``top / 2**e`` in ``[0.5, 1)`` (0 for a
    zero column): dividing a column by ``2**e`` is exact and brings its magnitudes to at
    most 1, so that no sum of squares can overflow and none underflows."""
    return np.frexp(top)[1].astype(np.int64)


def rescaled(source, x_exp, y_exp):
    """The rows of ``source`` with column ``j`` of X divided by ``2**x_exp[j]`` and y by
    ``2**y_exp``, as a source whose ``units`` are ``(x_exp, y_exp)``.

    Exact (no rounding, except for values that become subnormal, far below their column's
    largest), so a fit on these rows is the same problem in other units (see
    :func:`fastgd._engine.run`). The rows are float64 copies: made once for in-memory
    arrays (an :class:`ArraySource` over the copy), block by block on every pass for
    other sources (:class:`Rescaled`). ``source`` must be proved finite already.
    """
    units = (np.asarray(x_exp, dtype=np.int64), int(y_exp))
    out = _rescaled(source, units)
    out.units = units
    out.numpy_passes = source.numpy_passes
    return out


def _rescaled(source, units):
    if hasattr(source, "in_units"):  # blocks elsewhere: converted where they are
        out = source.in_units(units)
        out.verified = True
    elif isinstance(source, ArraySource):
        out = ArraySource(_in_units(source.data, units), source.block.parallel, verified=True)
    else:
        out = Rescaled(source, units)
    return out


def _in_units(d, units):
    ex, ey = units
    return V.Data(np.ldexp(d.X, -ex, dtype=np.float64), np.ldexp(d.y, -ey, dtype=np.float64),
                  d.sw, d.weight_total, d.one_d)


class Rescaled(Source):
    """Blocks of another source in power-of-two units (see :func:`rescaled`): each block
    converted as it is read."""

    def __init__(self, inner, units):
        super().__init__()
        self.inner = inner
        self.units = units
        self.verified = True
        self.reiterable = inner.reiterable
        self.random_access = inner.random_access

    n = property(lambda self: self.inner.n)
    rows_known = property(lambda self: self.inner.rows_known)
    d = property(lambda self: self.inner.d)
    n_blocks = property(lambda self: self.inner.n_blocks)
    weight_total = property(lambda self: self.inner.weight_total)
    one_d = property(lambda self: self.inner.one_d)
    weighted = property(lambda self: self.inner.weighted)

    def _convert(self, b):
        return Block(_in_units(b.data, self.units), b.index, b.offset, b.parallel)

    def _blocks(self):
        for b in self.inner._blocks():
            yield self._convert(b)

    def _block(self, k):
        return self._convert(self.inner._block(k))

    def block_sizes(self):
        return self.inner.block_sizes()

    def _name(self, block):
        return self.inner._name(block)


def _block_names_error(k, names, first):
    def shown(n):
        return "unnamed (an array)" if n is None else f"named {list(n)!r:.300}"

    fix = (f"select block 0's columns in its order, e.g. X[{list(first)!r:.200}]"
           if first is not None and names is not None else
           "give every block the same kind of X (all data frames with the same column names, "
           "or all arrays)")
    return (f"block {k}'s columns are {shown(names)}, but block 0's are {shown(first)}: every "
            f"block must have block 0's columns, in the same order; {fix}")


def _check_total_weight(W):
    if not W > 0.0:
        raise ValueError(
            "sample_weight sums to zero over all blocks: all rows would be ignored; give at "
            "least one row a positive weight"
        )


def _chain(first, rest):
    yield first
    yield from rest
