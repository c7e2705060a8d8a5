"""The passes' per-block functions: module level, so that a source running blocks in other
processes (:mod:`fastgd.sources.dask`) sends them by name and the workers import them.

Each ``part(data, parallel, *args)`` computes one block's partial result (a few numbers)
with the compiled kernels, or NumPy's passes for small blocks
(:mod:`fastgd.sources.small`); a source merges the partials in block order
(:meth:`fastgd.sources.base.Source._map`). Also here: the permutations of the stochastic
epochs and the draws of early stopping's held-out rows.
"""
import hashlib
from dataclasses import dataclass

import numpy as np

from .. import _threads, losses
from .. import _validation as V
from .._chunking import gram_layout, moment_layout, n_chunks, perm_layout
from .._config import K, _LazyModule
from . import csr as _csr
from . import small as _small

#: the one-pass QR statistic (plain NumPy; only ill-conditioned fits need it)
KQR = _LazyModule("fastgd.kernels.qr")
#: the co-moments through BLAS (plain NumPy; the gram path of wide data)
KGRAM = _LazyModule("fastgd.kernels.gram")
#: the full co-moments of blocks with at least this many features come from BLAS
#: (:mod:`fastgd.kernels.gram`), narrower ones from the compiled moments kernel (whose
#: cost grows as d^2 at about 1.5 GFLOP/s). Measured at 2 10^5 rows on the 2-core
#: reference machine (serial, best of 3; kernel / BLAS): d = 8 7.8 / 17 ms, d = 16 23 /
#: 28 ms, d = 32 69 / 60 ms, d = 64 197 / 136 ms, d = 100 473 / 170 ms, d = 200 1,904 /
#: 430 ms (below d = 32 the BLAS pass's copies of the slices cost more than the products)
GRAM_BLAS_MIN_D = 32
#: rows per slice of the max-abs pass, and at most about this many values a slice (its
#: temporaries: 32 MB, whatever the width)
MAX_ABS_ROWS = 1 << 14
MAX_ABS_VALUES = 1 << 22


def epoch_seed(rng):
    """The seed of one epoch's permutation, drawn from the fit's generator."""
    return int(rng.integers(0, 2**63 - 1))


#: tiles of the stochastic epochs over CSR rows (:func:`tile_rows`): about this many
#: bytes of rows a tile, at most ``TILE_MAX_ROWS`` rows, for rows that take at least
#: ``TILE_MIN_BYTES`` in all (below it they stay in the core's cache, and a row costs the
#: same in any order). Measured on the 2-core reference machine, one per-row epoch of
#: 10^6 hashed rows x 2^18 columns (20 entries, 256 bytes a row): rows drawn one by one
#: 0.27 s, tiles of 8 rows 0.20 s, 16 0.20 s, 32 0.19 s, 64 0.19 s, stored order 0.17 s;
#: the loss after 3 epochs within 0.2% of the uniform order's on those rows, within 1% on
#: the same rows sorted by target (the worst order to meet in tiles). The threshold was
#: 4 MiB; one-hot rows of two entries (40 bytes a row with the pointer and target: n rows
#: and columns, 15 epochs alternated, minimum) showed that rows stop costing the same in
#: any order well below it, beside the per-column state they share the core's 2 MB of L2
#: with: at 0.4 MB 0.26 ms an epoch either way, at 1 MB 0.75 ms one by one against 0.68
#: in tiles, 2 MB 1.54 / 1.36, 4 MB (10^5 rows: just under the old threshold) 3.2-3.3 /
#: 2.7-2.8 ms
TILE_BYTES = 8192
TILE_MAX_ROWS = 64
TILE_MIN_BYTES = 1 << 19


def tile_rows(data):
    """Rows a tile of the stochastic epochs over ``data`` (a validated block): 1 (rows
    drawn one by one, a uniform permutation) for dense blocks and small CSR blocks; for
    CSR blocks of at least ``TILE_MIN_BYTES``, tiles of ``TILE_BYTES`` of rows (at most
    ``TILE_MAX_ROWS`` rows; see :func:`permutation`). A sparse row's cost is that of
    reaching its entries: rows visited at random pay a cache miss on every line of each
    row, rows next to each other share lines and the prefetcher's streams."""
    if not data.sparse or data.n < 2:
        return 1
    X = data.X
    nbytes = X.values.nbytes + X.indices.nbytes + X.indptr.nbytes + data.y.nbytes
    if nbytes < TILE_MIN_BYTES:
        return 1
    return int(min(TILE_MAX_ROWS, max(1, TILE_BYTES * data.n // nbytes)))


def block_order(data, seed, rows=None):
    """The local rows of one block's share of a stochastic epoch, in visiting order: all
    of ``data``'s rows, or the training rows ``rows`` (int64, local), permuted by
    ``seed`` (in tiles of :func:`tile_rows`, the training rows then taken in increasing
    order so that a tile's rows are neighbours), or in order when ``seed`` is None.
    The same for a block read here (:class:`fastgd.sources.epochs._BlockEpochs`) and one
    on a dask worker (:func:`fastgd.sources.dask.run_sgd`)."""
    m = data.n if rows is None else rows.shape[0]
    if seed is None:
        return np.arange(m, dtype=np.int64) if rows is None else rows
    tile = tile_rows(data)
    perm = permutation(m, seed, False, tile=tile)
    if rows is None:
        return perm
    return (np.sort(rows) if tile > 1 else rows)[perm]


def permutation(m, seed, parallel, out=None, tile=1):
    """The compiled uniform permutation of ``range(m)`` for ``seed`` (into ``out`` when
    given): the three phases of :func:`fastgd.kernels.permutation._permutation_phase`,
    each over fixed ranges (on several threads when ``parallel``), and between the first
    two the exclusive prefix sums that place each chunk's share of each bucket.

    With ``tile > 1``, a permutation in tiles: the rows cut into tiles of ``tile``
    consecutive rows (the last one shorter), the tiles in the uniform permutation of their
    numbers drawn from ``seed``, the rows of each tile in a uniform order of their own
    (:func:`fastgd.kernels.permutation._expand_tiles`). Every row once an epoch, a fresh
    order every epoch, the same for a seed on any thread count; rows of one tile follow
    each other (see :func:`tile_rows`)."""
    if tile > 1:
        perm = np.empty(m, dtype=np.int64) if out is None else out
        tiles = permutation(-(-m // tile), seed, parallel)
        K._expand_tiles(tiles, np.int64(tile), seed, perm)
        return perm
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
    if data.sparse:
        return _csr.sse_part(data, parallel, coef)
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
    if data.sparse:
        return _csr.loss_part(data, parallel, coef, loss, c)
    if numpy_passes and _small.is_small(data.n, data.d):
        return _small.loss_grad(data, coef, loss, c)
    nc = n_chunks(data.n)
    out = np.empty((nc, data.d + 2))
    _threads.run_chunks(K.loss_kernels(loss).grad,
                        (data.X, data.y, data.sw, coef, np.array([c]), out), nc, parallel)
    return out.sum(axis=0)


def loss_value_part(data, parallel, coef, loss_name, c, numpy_passes=True):
    """The block's ``sum w loss(r)`` alone: a CSR block's own O(nnz) pass (no gradient
    scattered over the columns), a dense block's fused pass (its gradient costs no more
    than its loss: the same reads; bit for bit ``loss_part(...)[0]``; a CSR block's
    value equals it to rounding)."""
    loss = losses.get(loss_name)
    if data.sparse:
        return _csr.loss_value(data, parallel, coef, loss, c)
    if loss.sufficient_statistics:
        return float(sse_part(data, parallel, coef, numpy_passes)[0])
    return float(loss_part(data, parallel, coef, loss_name, c, numpy_passes)[0])


def moments_part(data, parallel, full):
    """The block's moments as one row ``[W, mean, com]`` (``com`` the full co-moment
    matrix, or its diagonal): its slices' rows from the kernel, merged in order here, so
    that what a block sends back has a fixed size whatever its rows."""
    k = data.d + 1
    if data.sparse:
        out = _csr.moment_rows(data, parallel, full)
        W, mean, com = merge_moments(out, k, full)
        return np.concatenate([[W], mean, com.ravel()])
    if (_small.is_small_gram if full else _small.is_small)(data.n, data.d):
        return _small.moments(data, full)
    if full and data.d >= GRAM_BLAS_MIN_D:
        with _threads.blas_single() as single:
            if single:
                return _blas_moments(data, parallel)
    # slices of MOMENT_CHUNK_BYTES of X, each read twice (means, then centred squares)
    # while in cache. The per-column pass had slices sized as for d = 1 (5,461 rows:
    # 44 MB at d = 1000, read twice from memory): the pass took 145 ms at 2 10^5 x 1000,
    # 63 ms at 10^6 x 100, 14.5 ms at 2 10^6 x 10; 106, 44 and 12.7 ms in slices of its
    # own width (best of 5, alternated)
    n_blocks, sub_rows = moment_layout(data.n, data.d)
    if full:
        out = np.empty((n_blocks, 1 + k + k * k))
        kernel = K._moments_1d if (data.d == 1 and data.sw.shape[0] == 0) else K._moments
    else:
        out = np.empty((n_blocks, 1 + 2 * k))
        kernel = K._moments_diag
    _threads.run_chunks(kernel, (data.X, data.y, data.sw, sub_rows, out), n_blocks, parallel)
    W, mean, com = merge_moments(out, k, full)
    return np.concatenate([[W], mean, com.ravel()])


def _blas_moments(data, parallel):
    """:func:`moments_part`'s row from the BLAS pass (:mod:`fastgd.kernels.gram`): its
    blocks on fastgd's threads, each block's statistics the same bits on any of them,
    merged in order. BLAS must run on one thread (:func:`fastgd._threads.blas_single`):
    OpenBLAS's products change in the last bits with its thread count, and a fit would
    depend on the machine's cores. Without threadpoolctl, which sets that, the compiled
    kernel computes the co-moments (slower from d = 32, the same on any machine)."""
    workers = _threads.get_num_threads() if parallel else 1
    n_blocks, rows = gram_layout(data.n, data.d)
    out = KGRAM.comoments(data.X, data.y, data.sw, n_blocks, rows, workers)
    return KGRAM.merge_blocks(out, data.d + 1)


def merge_moments(rows, k, full):
    """``(W, mean, com)`` of moment rows ``[W, mean, com]`` merged exactly in order
    (pairwise updates; rows of zero weight are skipped)."""
    if full:
        if rows.shape[0] == 1:
            return _one_full(rows[0], k)
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


def _one_full(row, k):
    """``(W, mean, com)`` of one full moment row: what :func:`_merge_full` returns for it
    (the mean copied, the co-moment's upper triangle mirrored), without its temporaries
    of the co-moment's size (one copy, mirrored in place: at d = 5,000 each is 200 MB)."""
    W = row[0]
    if W <= 0.0:
        return 0.0, np.zeros(k), np.zeros((k, k))
    com = row[1 + k:].reshape(k, k).copy()
    for a in range(1, k):
        com[a, :a] = com[:a, a]
    return W, row[1:1 + k].copy(), com


def _merge_full(rows, k):
    """:func:`fastgd.kernels.moments._combine_moments` in NumPy, operation for operation
    (the compiled merge is strict IEEE, and NumPy neither reorders nor fuses): the same
    bits (tested), without compiling it."""
    merge = FullMerge(k)
    for row in rows:
        merge.add(row)
    return merge.result()


class FullMerge:
    """Full moment rows ``[W, mean, com]`` merged one at a time, in order, as they come
    (:meth:`add`), then :meth:`result`: the operations of :func:`_merge_full`, so that a
    source merges its blocks' rows without holding them all (each is ``(d + 1)^2``
    floats: 2 MB at d = 500)."""

    def __init__(self, k):
        self.k = k
        self.W = 0.0
        self.mean = np.zeros(k)
        self.com = np.zeros((k, k))

    def add(self, row):
        k = self.k
        Wb = row[0]
        if Wb <= 0.0:  # (a NaN weight is merged, as by the compiled merge)
            return
        mean_b = row[1:1 + k]
        com_b = row[1 + k:].reshape(k, k)
        with np.errstate(invalid="ignore", over="ignore"):
            if self.W <= 0.0:
                self.mean[:] = mean_b
                self.com[:] = np.triu(com_b)
                self.W = Wb
                return
            Wt = self.W + Wb
            f = (self.W / Wt) * Wb
            delta = mean_b - self.mean
            self.com += com_b + np.outer(f * delta, delta)
            self.mean += delta * (Wb / Wt)
            self.W = Wt

    def result(self):
        """``(W, mean, com)``, ``com`` the upper triangle mirrored."""
        upper = np.triu(self.com)
        return self.W, self.mean, upper + np.triu(upper, 1).T


def max_norm_part(data, parallel, coords):
    if data.sparse:
        return _csr.max_norm_part(data, parallel, coords)
    if _small.is_small(data.n, data.d):
        return _small.max_norm(data, coords)
    nc = n_chunks(data.n)
    out = np.empty(nc)
    _threads.run_chunks(K._max_norm, (data.X, data.sw, coords, out), nc, parallel)
    return float(out.max())


def qr_part(data, parallel, centres, inv_scales, intercept, offset):
    if data.sparse:
        return _csr.qr_part(data, parallel, centres, inv_scales, intercept, offset)
    return KQR.r_factor(data.X, data.y, data.sw, centres, inv_scales, intercept, offset,
                        workers=_threads.get_num_threads() if parallel else 1)


def max_abs_part(data, parallel, columns=None):
    """The block's largest magnitude of each column of ``[X, y]``, or of the columns
    ``columns`` (int64 indices into ``d + 1``) only: for dense rows a strided read of
    those columns, not a pass over every value (a column of zeros among 1,000 cost a
    whole pass, 0.5 s at 2 10^5 rows, before the moments check asked for it alone)."""
    d = data.d
    if data.sparse:
        top = _csr.max_abs_part(data, parallel)
        return top if columns is None else top[columns]
    cols = np.arange(d + 1) if columns is None else columns
    xc = cols[cols < d]
    take = slice(None) if columns is None else xc  # every column: a view, not a copy
    at_y = np.flatnonzero(cols == d)
    top = np.zeros(cols.shape[0])
    rows = max(1, min(MAX_ABS_ROWS, MAX_ABS_VALUES // max(xc.size, 1)))
    for i in range(0, data.n, rows):
        if xc.size:
            part = np.abs(data.X[i:i + rows, take]).max(axis=0)
            top[:xc.size] = np.maximum(top[:xc.size], part)
        if at_y.size:
            top[at_y] = max(top[at_y[0]], float(np.abs(data.y[i:i + rows]).max()))
    return top


def fingerprint_part(data, parallel):
    """A hash of 33 rows spread over the block (see :func:`fingerprint`)."""
    return sampled_hash(data, 33)


def weight_part(data, parallel):
    return data.weight_total


def subset_loss_part(data, parallel, rows, coef, loss_name, c, numpy_passes=True):
    loss = losses.get(loss_name)
    if data.sparse:
        return _csr.subset_loss(data, _indices(rows), coef, loss, c)
    if numpy_passes and _small.is_small(data.n, data.d):
        return _small.subset_loss(data, _indices(rows), coef, loss, c)
    out = np.empty(2)
    K.loss_kernels(loss).subset(data.X, data.y, data.sw, _indices(rows), coef, np.array([c]),
                                out)
    return out[0], out[1]


def rows_part(data, parallel, rows):
    """The block's rows ``rows`` (local indices, int64) of ``X``, ``y`` and the weights
    (ones when unweighted), as float64 copies: a few dense rows, read where the block is
    (the sample of :meth:`fastgd.sources.base.Source.sample`)."""
    if data.sparse:
        raise TypeError("rows_part reads dense blocks (a CSR block has no sample probe)")
    rows = _indices(rows)
    sw = data.sw[rows] if data.sw.shape[0] else np.ones(rows.shape[0])
    return (np.asarray(data.X[rows], dtype=np.float64),
            np.asarray(data.y[rows], dtype=np.float64), np.asarray(sw, dtype=np.float64))


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


def fingerprint(data):
    """What identifies the data of an in-memory fit: shape, dtype, weights, and a hash
    of 257 rows spread over it (cheap at any size; a different file or a shuffled copy
    is caught, a change of one row between the sampled ones is not)."""
    return {"n": int(data.n), "d": int(data.d), "dtype": str(data.X.dtype),
            "weighted": bool(data.sw.shape[0]), "sha256": sampled_hash(data, 257)}


def sampled_hash(data, count):
    """sha256 (hex) of ``count`` rows of X, y and the weights spread over ``data``."""
    if data.sparse:
        return _csr.sampled_hash(data, count)
    n = data.n
    rows = np.unique(np.linspace(0, n - 1, min(n, count)).astype(np.int64))
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.X[rows]).tobytes())
    h.update(np.ascontiguousarray(data.y[rows]).tobytes())
    if data.sw.shape[0]:
        h.update(np.ascontiguousarray(data.sw[rows]).tobytes())
    return h.hexdigest()
