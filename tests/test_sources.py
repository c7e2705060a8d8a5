"""The source conformance suite: every source gives the fits of the array source.

Oracle: another backend. A fit depends on the rows and the block boundaries only, never
on where the blocks live, so

* every source over the same blocks gives the fits of ``fit_chunks`` over a list of
  those blocks **bit for bit**, in every mode (batch on the statistics or streaming, a
  non-quadratic loss, an L1 penalty, the textbook update, SGD raw and scaled,
  mini-batch, early stopping);
* a source of one block gives the fits of :func:`fastgd.fit` on the arrays bit for bit
  (its blocks are the array source's one block);
* the batch fits of several blocks agree with the array source's to rounding (the
  optimum does not depend on the block boundaries, the summation order does).

The sources: arrays, chunks (a list, a callable), a CSV and a Parquet file, dask
collections (the in-process scheduler) and :class:`SeededBlocks`, a source defined in this
file only (seeded random blocks generated on the fly, never held in memory together):
adding it took no change to any package file, which is the proof that the contract
(:class:`fastgd.sources.Source`) is all a source needs.
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastgd
from fastgd import _pipeline, _validation
from fastgd._plan import FitPlan
from fastgd.sources import DataFacts, FileReader, Source, open_source
from fastgd.sources.passes import Block

TRUE_W = np.array([1.5, -2.0, 0.25])
BLOCK = 700
N_BLOCKS = 3

#: one entry per mode (and per path of the batch mode); each runs few epochs
MODES = {
    "batch-gram": dict(),
    "batch-stream-cg": dict(solver="stream"),
    "batch-nesterov": dict(solver="stream", optimizer="nesterov", epochs=60, tol=None),
    "huber": dict(loss="huber", epsilon=0.5, epochs=200),
    "l1": dict(penalty="l1", alpha=0.01, epochs=200),
    "textbook": dict(learning_rate=0.002, scale=False, epochs=30, tol=None),
    "sgd-raw": dict(mode="sgd", learning_rate=2e-4, epochs=2, random_state=3, tol=None),
    "sgd": dict(mode="sgd", epochs=3, random_state=1, tol=None),
    "minibatch": dict(mode="minibatch", batch_size=16, epochs=3, random_state=2, tol=None),
    "early-stopping": dict(mode="sgd", early_stopping=True, tol=1e-2, n_iter_no_change=1,
                           epochs=30, random_state=5),
}


def block_arrays(seed, k, m, weighted):
    """Block ``k`` of the seeded data: ``m`` rows, columns of different scales and
    offsets, y linear in them plus noise (weights in [0.5, 2] when ``weighted``)."""
    r = np.random.default_rng([seed, k])
    X = r.normal(size=(m, 3)) * np.array([1.0, 10.0, 0.1]) + np.array([0.0, 5.0, -1.0])
    y = X @ TRUE_W + 0.75 + r.normal(0.0, 0.3, m)
    sw = r.uniform(0.5, 2.0, m) if weighted else None
    return X, y, sw


class SeededBlocks(Source):
    """A source of seeded random blocks, generated each time a pass reads them (the test
    suite's own source: see the module docstring). ``sizes``: rows per block."""

    kind = "seeded"
    random_access = True

    def __init__(self, seed, sizes, weighted=False):
        super().__init__()
        self.seed, self.sizes, self._weighted = seed, list(sizes), weighted
        self.offsets = np.r_[0, np.cumsum(self.sizes)[:-1]]
        self.reads = 0  # blocks generated so far
        self._W = (float(sum(self._block(k).data.weight_total for k in range(len(sizes))))
                   if weighted else float(sum(sizes)))

    def _block(self, k):
        self.reads += 1
        X, y, sw = block_arrays(self.seed, k, self.sizes[k], self._weighted)
        return Block(_validation.check_data(X, y, sw), k, int(self.offsets[k]), False)

    def _blocks(self):
        for k in range(len(self.sizes)):
            yield self._block(k)

    def facts(self):
        return DataFacts(n=self.n, d=3, dtype="float64", weighted=self._weighted)

    n = rows_known = property(lambda self: int(sum(self.sizes)))
    d = property(lambda self: 3)
    n_blocks = property(lambda self: len(self.sizes))
    weight_total = property(lambda self: self._W)
    weighted = property(lambda self: self._weighted)
    one_d = property(lambda self: False)

    def blocks(self):
        """The blocks as arrays, for the other sources."""
        return [block_arrays(self.seed, k, m, self._weighted) for k, m in enumerate(self.sizes)]


def fit_source(source, **kw):
    """A fit of any source through the one entry pipeline (what every public entry does)."""
    return _pipeline.start(source, FitPlan.build(source.facts(), **kw))


def same(a, b):
    """Bit for bit: the coefficients, the intercept and the loss history."""
    return (np.array_equal(a.coef, b.coef) and a.intercept == b.intercept
            and np.array_equal(a.loss_history, b.loss_history))


def chunk_tuples(blocks):
    return [(X, y) if sw is None else (X, y, sw) for X, y, sw in blocks]


def write_file(tmp_path, blocks, fmt):
    """The blocks' rows as one CSV or Parquet file (columns a, b, c, y[, w]); returns
    ``(path, x, y, weight)``, the arguments of :func:`fastgd.fit_file`."""
    X = np.vstack([b[0] for b in blocks])
    cols = {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": np.concatenate([b[1] for b in blocks])}
    weighted = blocks[0][2] is not None
    if weighted:
        cols["w"] = np.concatenate([b[2] for b in blocks])
    if fmt == "csv":
        path = tmp_path / "rows.csv"
        # %.17g: every float64 read back exactly
        np.savetxt(path, np.column_stack(list(cols.values())), fmt="%.17g", delimiter=",",
                   header=",".join(cols), comments="")
    else:
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        path = tmp_path / "rows.parquet"
        pq.write_table(pa.table(cols), path, row_group_size=blocks[0][0].shape[0])
    return path, ["a", "b", "c"], "y", "w" if weighted else None


def fit_file(tmp_path, blocks, fmt, **kw):
    """``(result, block_sizes, random_access)`` of a fit of the blocks written to a file
    (a CSV file's blocks are byte ranges of about ``block_rows`` lines: its own sizes)."""
    path, x, y, w = write_file(tmp_path, blocks, fmt)
    rows = blocks[0][0].shape[0]
    source = open_source(reader=FileReader(path, x, y, w, block_rows=rows))
    res = fastgd.fit_file(path, x=x, y=y, weight=w, block_rows=rows, **kw)
    return res, source.block_sizes(), source.random_access


def fit_dask(tmp_path, blocks, **kw):
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    sizes = tuple(b[0].shape[0] for b in blocks)
    X = da.from_array(np.vstack([b[0] for b in blocks]), chunks=(sizes, 3))
    y = da.from_array(np.concatenate([b[1] for b in blocks]), chunks=sizes)
    sw = (None if blocks[0][2] is None
          else da.from_array(np.concatenate([b[2] for b in blocks]), chunks=sizes))
    with dask.config.set(scheduler="sync"):
        res = fastgd.fit(X, y, sample_weight=sw, parallel=False, **kw)
    return res, list(sizes), True


#: every source over the blocks ``blocks`` (a list of (X, y, sw) arrays): a fit returning
#: ``(result, its block sizes, whether its blocks are read in any order)``
SOURCES = {
    "seeded": lambda tmp_path, blocks, src, **kw: (fit_source(src, **kw), src.sizes, True),
    "chunks-callable": lambda tmp_path, blocks, src, **kw: (
        fastgd.fit_chunks(lambda: iter(chunk_tuples(blocks)), **kw), src.sizes, False),
    "csv": lambda tmp_path, blocks, src, **kw: fit_file(tmp_path, blocks, "csv", **kw),
    "parquet": lambda tmp_path, blocks, src, **kw: fit_file(tmp_path, blocks, "parquet", **kw),
    "dask": lambda tmp_path, blocks, src, **kw: fit_dask(tmp_path, blocks, **kw),
}


def cut(blocks, sizes):
    """The rows of ``blocks`` cut into blocks of ``sizes`` rows, as chunk tuples."""
    X = np.vstack([b[0] for b in blocks])
    y = np.concatenate([b[1] for b in blocks])
    sw = None if blocks[0][2] is None else np.concatenate([b[2] for b in blocks])
    edges = np.r_[0, np.cumsum(sizes)]
    return chunk_tuples([(X[a:b], y[a:b], None if sw is None else sw[a:b])
                         for a, b in zip(edges[:-1], edges[1:])])


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("kind", list(SOURCES))
def test_every_source_fits_like_chunks_of_the_same_blocks(tmp_path, kind, mode, weighted):
    """The reference: ``fit_chunks`` over the source's own blocks, a list when the
    source reads its blocks in any order (the stochastic epochs visit the blocks of such
    a source in a shuffled order), else a callable (in order)."""
    src = SeededBlocks(11, [BLOCK] * N_BLOCKS, weighted)
    blocks = src.blocks()
    kw = MODES[mode]
    got, sizes, random_access = SOURCES[kind](tmp_path, blocks, src, **kw)
    chunks = cut(blocks, sizes)
    ref = fastgd.fit_chunks(chunks if random_access else (lambda: iter(chunks)),
                            parallel=False, **kw)
    assert same(got, ref), (kind, mode, got.coef, ref.coef)
    assert got.n_epochs == ref.n_epochs and got.converged == ref.converged
    assert got.n_rows == BLOCK * N_BLOCKS


@pytest.mark.parametrize("mode", list(MODES))
def test_a_source_of_one_block_fits_like_the_arrays(mode):
    src = SeededBlocks(12, [2000], weighted=True)
    (X, y, sw), = src.blocks()
    kw = MODES[mode]
    ref = fastgd.fit(X, y, sample_weight=sw, parallel=False, **kw)
    got = fit_source(src, **kw)
    assert same(got, ref), (mode, got.coef, ref.coef)


@pytest.mark.parametrize("mode", ["batch-gram", "batch-stream-cg", "huber", "l1"])
def test_batch_fits_of_several_blocks_agree_with_the_arrays(mode):
    """Other block boundaries, the same optimum (the summation order costs rounding)."""
    src = SeededBlocks(13, [300, 1, 1199, 500], weighted=True)
    blocks = src.blocks()
    X = np.vstack([b[0] for b in blocks])
    y = np.concatenate([b[1] for b in blocks])
    sw = np.concatenate([b[2] for b in blocks])
    kw = dict(MODES[mode], epochs=5000) if mode in ("huber", "l1") else MODES[mode]
    ref = fastgd.fit(X, y, sample_weight=sw, **kw)
    got = fit_source(src, **kw)
    assert_allclose(np.r_[got.coef, got.intercept], np.r_[ref.coef, ref.intercept],
                    rtol=1e-7, atol=1e-9)
    assert_allclose(got.final_loss, ref.final_loss, rtol=1e-9)


def test_the_seeded_source_never_holds_its_blocks(monkeypatch):
    """It generates each block as a pass reads it: a gram fit reads each block in the
    moments pass and the refinement's pass, a streaming fit once per evaluation."""
    src = SeededBlocks(14, [BLOCK] * N_BLOCKS)
    src.reads = 0
    res = fit_source(src)
    assert src.reads == N_BLOCKS * res.n_passes


def test_a_source_with_nan_names_its_block():
    class Broken(SeededBlocks):
        def _block(self, k):
            b = super()._block(k)
            if k == 2:
                b.data.y[5] = np.nan
            return b

    with pytest.raises(ValueError, match=r"block 2: y has 1 row.*NaN.*first at row 5.*start at row 1400"):
        fit_source(Broken(15, [BLOCK] * N_BLOCKS))


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("kw", [dict(), dict(mode="sgd", epochs=2, tol=None, random_state=0)])
def test_a_zero_column_costs_no_second_moments_pass(monkeypatch, kw, sparse):
    """A column of zeros (an unobserved level of one-hot data) could be squares that
    underflowed: its largest magnitude, read for that column alone, tells them apart, and
    the fit goes on as it is, neither through the power-of-two units (the engine's
    ``_run_in_units`` is never called) nor with a second moments pass. Oracle for the
    answer: lstsq on the other columns, the zero column's weight at its start (0). (A
    column whose squares underflow with a mean of exactly 0 still goes through the units:
    tests/test_robustness.py, ``Xs``.)"""
    from fastgd import _engine
    from fastgd.sources import base

    calls, asked = [], []
    real, real_abs = base.moments_part, base.max_abs_part

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    def max_abs_part(data, parallel, *columns):
        asked.append([list(c) for c in columns])
        return real_abs(data, parallel, *columns)

    def no_units(*args, **kwargs):
        raise AssertionError("a column of zeros needs no power-of-two units")

    monkeypatch.setattr(base, "moments_part", counted)
    monkeypatch.setattr(base, "max_abs_part", max_abs_part)
    monkeypatch.setattr(_engine, "_run_in_units", no_units)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4))
    X[:, 2] = 0.0
    y = X @ [1.0, -2.0, 0.0, 0.5] + 3.0 + rng.normal(0, 0.1, 2000)
    if sparse:
        X_in = pytest.importorskip("scipy.sparse").csr_matrix(X)
    res = fastgd.fit(X_in if sparse else X, y, **kw)
    assert len(calls) == 1
    assert asked == [[[2]]]  # the zero column alone
    assert res.coef[2] == 0.0
    if not kw:
        A = np.c_[X[:, [0, 1, 3]], np.ones(2000)]
        best = np.linalg.lstsq(A, y, rcond=None)[0]
        assert_allclose(np.r_[res.coef[[0, 1, 3]], res.intercept], best, rtol=1e-10)
