"""scipy.sparse X: the CSR block kind behind the source contract (issue 21, part 1).

Oracles: the dense path on ``X.toarray()`` (every fit, prediction and loss; the dense
fits are themselves tested against lstsq and NIST elsewhere), the naive twins of the CSR
kernels in ``tests/naive.py`` (per-row loops over the stored entries), the exact
fractions of ``naive.moments``, and the user's own arrays (copied before the call).
"""
import subprocess
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastgd
from fastgd import _threads
from fastgd import _validation as V
from fastgd._plan import GRAM_MAX_D
from fastgd.sources import open_source
from fastgd.sources.passes import merge_moments

from . import naive

sp = pytest.importorskip("scipy.sparse")

REL = 1e-12


def make_sparse(rng, n, d, density=0.2, noise=0.1, fmt="csr"):
    """A random sparse X (normal values), its targets and the true weights."""
    X = sp.random(n, d, density=density, random_state=rng, format=fmt,
                  data_rvs=rng.standard_normal)
    w = rng.uniform(-2, 2, d)
    y = X @ w + 0.7 + rng.normal(0, noise, n)
    return X, y, w


def assert_same_fit(got, ref, rel=REL, loss_rel=None):
    """Two fits with the same answer: weights (relative to the largest), intercept and
    final loss to ``rel`` (the loss to ``loss_rel`` when given)."""
    scale = max(float(np.abs(ref.coef).max()), 1.0)
    assert_allclose(got.coef, ref.coef, rtol=0, atol=rel * scale)
    assert abs(got.intercept - ref.intercept) <= rel * max(abs(ref.intercept), scale)
    assert_allclose(got.final_loss, ref.final_loss, rtol=loss_rel or rel)


# -- kernels against their naive twins ----------------------------------------------------


def _kernels():
    from fastgd import kernels

    return kernels


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_csr_loss_grad_matches_naive_twin(rng, weighted, index_dtype):
    from fastgd import losses

    X, y, _ = make_sparse(rng, 300, 17, density=0.15)
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    sw = rng.uniform(0, 2, 300) if weighted else np.empty(0)
    coef = rng.normal(size=18)
    K = _kernels()
    for name, c, value, psi in [
        ("squared", 0.0, None, None),
        ("huber", 0.3, lambda r: r * r if abs(r) <= 0.3 else 0.6 * abs(r) - 0.09,
         lambda r: min(max(r, -0.3), 0.3)),
    ]:
        out = np.empty((4, 19))  # 4 chunks of 75 rows
        K.csr_loss_kernel(losses.get(name)).grad(X.indptr, X.indices, X.data, y, sw, coef,
                                                  np.array([c]), out, 0, 4)
        ref = naive.csr_loss_grad(X.indptr, X.indices, X.data, 17, y, sw, coef, value, psi)
        assert_allclose(out.sum(axis=0), ref, rtol=REL, atol=REL * np.abs(ref).max())


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("parallel", [False, True])
def test_csr_loss_pass_is_the_fused_pass_loss_bit_for_bit(rng, weighted, parallel):
    """The loss-only CSR pass (what an SGD epoch is measured with) against the naive
    twin (to 1e-12) and the fused loss/gradient pass's first entry (the same chunks and
    order; the compiler's FMAs differ by an ulp per chunk, so to 1e-14), through the
    source contract for sparse arrays and CSR blocks; dense sources run their fused pass
    (bit for bit); serial and parallel passes give the same bits."""
    from fastgd import losses

    X, y, _ = make_sparse(rng, 80_000, 30, density=0.1)
    sw = rng.uniform(0, 2, 80_000) if weighted else None
    coef = rng.normal(size=31)
    blocks = [(X[:30_000], y[:30_000]), (X[30_000:], y[30_000:])]
    if weighted:
        blocks = [(x, t, sw[:30_000] if k == 0 else sw[30_000:])
                  for k, (x, t) in enumerate(blocks)]
    sources = [open_source(X, y, sample_weight=sw, parallel=parallel),
               open_source(X.toarray(), y, sample_weight=sw, parallel=parallel),
               open_source(chunks=blocks)]
    for name, c, value in [
        ("squared", 0.0, None),
        ("huber", 0.3, lambda r: r * r if abs(r) <= 0.3 else 0.6 * abs(r) - 0.09),
    ]:
        loss = losses.get(name)
        ref = naive.csr_loss_grad(X.indptr, X.indices, X.data, 30, y,
                                  np.empty(0) if sw is None else sw, coef, value)[0]
        for k, src in enumerate(sources):
            got = src.loss(coef, loss, c)
            fused = src.loss_grad(coef, loss, c)[0]
            assert got == fused if k == 1 else abs(got - fused) <= 1e-14 * fused
            assert_allclose(got, ref, rtol=REL)
        serial = open_source(X, y, sample_weight=sw, parallel=False)
        assert sources[0].loss(coef, loss, c) == serial.loss(coef, loss, c)


def test_sparse_sgd_measures_its_epochs_without_the_gradient_pass(rng, monkeypatch):
    """An SGD fit on CSR rows runs the loss-only pass, never the fused loss/gradient pass
    (which scatters over every column); oracle: the same fit with the fused pass forced,
    the same parameters and the loss history to rounding."""
    from fastgd.sources import arrays, csr

    X, y, _ = make_sparse(rng, 5000, 200, density=0.02)
    ref = fastgd.fit(X, y, mode="sgd", epochs=3, tol=None, random_state=1)

    def fused_loss(self, coef, loss, c):
        return float(self.loss_grad(coef, loss, c)[0])

    monkeypatch.setattr(arrays.ArraySource, "loss", fused_loss)
    forced = fastgd.fit(X, y, mode="sgd", epochs=3, tol=None, random_state=1)
    monkeypatch.undo()
    assert_allclose(ref.loss_history, forced.loss_history, rtol=1e-14)
    assert np.array_equal(ref.coef, forced.coef)

    def refused(*args):
        raise AssertionError("the fused CSR pass ran")

    monkeypatch.setattr(csr, "loss_pass", refused)
    again = fastgd.fit(X, y, mode="sgd", epochs=3, tol=None, random_state=1)
    assert np.array_equal(again.loss_history, ref.loss_history)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_csr_moments_match_exact_moments(rng, full, weighted):
    X, y, _ = make_sparse(rng, 250, 6, density=0.3)
    X = X + sp.csr_matrix((np.full(250, 3.0), (np.arange(250), np.zeros(250, int))),
                          shape=(250, 6))  # a dense column with a large mean
    X = sp.csr_matrix(X)
    X.sort_indices()
    sw = rng.uniform(0, 2, 250) if weighted else np.empty(0)
    k = 7
    width = 1 + k + k * k if full else 1 + 2 * k
    out = np.empty((5, width))
    _kernels()._csr_moments(X.indptr, X.indices, X.data, y, sw, 6, out, 0, 5)
    W, mean, com = merge_moments(out, k, full)
    Wr, mean_r, com_r = naive.moments(X.toarray(), y, sw if weighted else None)
    assert W == pytest.approx(Wr, rel=REL)
    assert_allclose(mean, mean_r, rtol=1e-13, atol=1e-13 * np.abs(mean_r).max())
    want = com_r if full else np.diag(com_r)
    assert_allclose(com, want, rtol=1e-11, atol=1e-11 * np.abs(want).max())


def test_csr_row_norms_and_predict_match_naive_twins(rng):
    from fastgd._layout import make_coords

    X, y, _ = make_sparse(rng, 200, 9, density=0.3)
    sw = rng.uniform(0, 2, 200)
    centres, inv = rng.normal(size=9), rng.uniform(0.5, 2, 9)
    out = np.empty(3)
    _kernels()._csr_row_norms(X.indptr, X.indices, X.data, sw,
                              make_coords(centres, inv, True), out, 0, 3)
    ref = naive.csr_row_norms(X.indptr, X.indices, X.data, 9, sw, centres, inv, True)
    assert out.max() == pytest.approx(ref, rel=REL)
    coef = rng.normal(size=9)
    res = fastgd.fit(X, y)
    assert_allclose(res.predict(X), naive.csr_predict(X.indptr, X.indices, X.data, res.coef,
                                                      res.intercept), rtol=REL, atol=1e-13)
    assert_allclose(fastgd.mse(X, y, coef, 0.5),
                    naive.csr_loss_grad(X.indptr, X.indices, X.data, 9, y, None,
                                        np.r_[coef, 0.5])[0] / 200, rtol=REL)


# -- fits: sparse == dense of X.toarray() ----------------------------------------------------


# (d <= 32: the gram path, the default; d = 60: the streaming path)
FITS = [
    pytest.param(12, {}, id="default-gram"),
    pytest.param(60, {}, id="default-stream"),
    pytest.param(60, {"solver": "gram"}, id="gram-wide"),
    pytest.param(12, {"solver": "stream"}, id="stream-narrow"),
    pytest.param(12, {"weighted": True}, id="weighted"),
    pytest.param(60, {"weighted": True}, id="weighted-stream"),
    pytest.param(12, {"fit_intercept": False}, id="no-intercept"),
    pytest.param(12, {"reduction": "sum"}, id="sum"),
    pytest.param(60, {"penalty": "l2", "alpha": 0.01}, id="l2-stream"),
    pytest.param(12, {"penalty": "l2", "alpha": 0.01}, id="l2-gram"),
    pytest.param(12, {"optimizer": "nesterov"}, id="nesterov"),
    pytest.param(12, {"learning_rate": 0.05, "epochs": 30}, id="textbook"),
    # fixed epochs on the gram statistics: the weights agree to 1e-12, the loss comes from
    # the statistics (Cyy - 2 w.c + w'Cw), whose rounding (the CSR chunks' sums centred at
    # their end, the dense ones merged pairwise) it carries magnified by Cyy / SSE (~200
    # here): 3.5e-12 measured
    pytest.param(12, {"learning_rate": 0.05, "epochs": 30, "scale": True, "loss_rel": 1e-10},
                 id="gd-scaled"),
]


@pytest.mark.parametrize("d, kw", FITS)
def test_sparse_fit_equals_dense_fit(rng, d, kw):
    kw = dict(kw)
    loss_rel = kw.pop("loss_rel", REL)
    X, y, _ = make_sparse(rng, 2000, d, density=0.2)
    if kw.pop("weighted", False):
        kw["sample_weight"] = rng.uniform(0.1, 3.0, 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgd.ConvergenceWarning)
        got = fastgd.fit(X, y, **kw)
        ref = fastgd.fit(X.toarray(), y, **kw)
    assert (got.solver, got.optimizer, got.n_epochs) == (ref.solver, ref.optimizer, ref.n_epochs)
    assert_same_fit(got, ref, loss_rel=loss_rel)


@pytest.mark.parametrize("kw", [{"penalty": "l1", "alpha": 1e-3}, {"loss": "huber", "epsilon": 0.1}],
                         ids=["l1", "huber"])
def test_sparse_fit_equals_dense_fit_nonsmooth(rng, kw):
    """Proximal L1 and Huber run fixed epochs of Nesterov's method: the same steps, each
    pass's sums rounded differently, so the trajectories agree to ~1e-13 relative."""
    X, y, _ = make_sparse(rng, 1500, 10, density=0.3)
    got = fastgd.fit(X, y, epochs=200, tol=None, **kw)
    ref = fastgd.fit(X.toarray(), y, epochs=200, tol=None, **kw)
    assert_same_fit(got, ref, rel=1e-10)


@pytest.mark.parametrize("d,solver", [(80, "gram"), (80, "stream"), (700, "stream")])
def test_default_fit_reaches_the_least_squares_optimum(rng, d, solver):
    """Oracle: numpy.linalg.lstsq on the dense matrix (with the intercept column). The
    default takes the gram path up to GRAM_MAX_D features, streaming CG beyond."""
    X, y, _ = make_sparse(rng, 3000, d, density=0.05)
    res = fastgd.fit(X, y, **({} if solver == "gram" or d > GRAM_MAX_D else
                              dict(solver=solver)))
    A = np.c_[X.toarray(), np.ones(3000)]
    sol = np.linalg.lstsq(A, y, rcond=None)[0]
    assert res.converged and res.solver == solver
    # streaming CG stops at a gradient cosine of sqrt(tol) = 1e-6: the weights to ~1e-7,
    # the loss (quadratic in their error) to ~1e-14; the gram path refines to rounding
    assert_allclose(res.coef, sol[:d], rtol=0, atol=1e-6 * np.abs(sol).max())
    best = np.mean((y - A @ sol) ** 2)
    assert best * (1 - 1e-12) <= res.final_loss <= best * (1 + 1e-12)


# -- the input: formats, canonical form, dtypes, errors ----------------------------------


def _messy(rng):
    """A CSR matrix with unsorted columns, duplicate entries, explicit zeros, an empty
    row and an empty column (column 4), int64 indices and float32 values."""
    n, d = 400, 7
    rows, cols, vals = [], [], []
    for i in range(n):
        if i == 3:
            continue  # an empty row
        k = rng.integers(1, 5)
        c = rng.choice([0, 1, 2, 3, 5, 6], size=k, replace=True)  # duplicates, column 4 empty
        rows += [i] * k
        cols += list(c[::-1])  # unsorted
        vals += list(rng.normal(size=k))
    vals[5] = 0.0  # an explicit zero
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n))].astype(np.int64)
    X = sp.csr_matrix((np.array(vals, dtype=np.float32), np.array(cols, dtype=np.int64), indptr),
                      shape=(n, d))
    y = rng.normal(size=n)
    return X, y


def test_messy_csr_fits_as_its_dense_matrix_and_is_left_unchanged(rng):
    X, y = _messy(rng)
    assert not X.has_canonical_format
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    got = fastgd.fit(X, y)
    # (duplicates are summed after the conversion to float64, as X.astype(np.float64) sums
    # them; X.toarray() would sum them in float32)
    D = X.astype(np.float64).toarray()
    ref = fastgd.fit(D, y)
    assert_same_fit(got, ref)
    assert got.coef[4] == 0.0  # the empty column keeps its start
    for a, b in zip((X.data, X.indices, X.indptr), before):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert not X.has_canonical_format
    assert_allclose(got.predict(X), D @ got.coef + got.intercept, rtol=1e-13, atol=1e-13)


def test_canonical_form_of_check_csr(rng):
    X, _ = _messy(rng)
    csr = V.check_csr(X)
    ref = sp.csr_matrix(X.astype(np.float64).toarray())  # (the explicit zero dropped)
    assert csr.values.dtype == np.float64 and csr.indices.dtype == X.indices.dtype
    dense = sp.csr_matrix((csr.values, csr.indices, csr.indptr), shape=csr.shape).toarray()
    assert np.array_equal(dense, ref.toarray())
    for i in range(csr.shape[0]):
        cols = csr.indices[csr.indptr[i]:csr.indptr[i + 1]]
        assert np.all(np.diff(cols) > 0)


@pytest.mark.parametrize("slice_", [1, 2, 3, 7, V.ORDER_SLICE])
def test_the_order_check_in_slices_finds_every_disorder(rng, monkeypatch, slice_):
    """Oracle: a row-by-row check of strictly increasing columns, against the check in
    slices of ``ORDER_SLICE`` entries (a slice boundary may fall inside a row or at its
    end), on canonical rows and on rows with one swap or one duplicate anywhere."""
    monkeypatch.setattr(V, "ORDER_SLICE", slice_)

    def by_rows(X):
        return all(np.all(np.diff(X.indices[X.indptr[i]:X.indptr[i + 1]]) > 0)
                   for i in range(X.shape[0]))

    X = sp.random(12, 9, density=0.4, random_state=rng, format="csr")
    X.sort_indices()
    nnz = X.nnz
    assert V._canonical_order(X.indptr, X.indices, nnz) == by_rows(X) is True
    for e in range(nnz - 1):
        for how in ("swap", "duplicate"):
            bad = X.indices.copy()
            if how == "swap":
                bad[e], bad[e + 1] = bad[e + 1], bad[e]
            else:
                bad[e + 1] = bad[e]
            Y = sp.csr_matrix((X.data, bad, X.indptr), shape=X.shape)
            assert V._canonical_order(Y.indptr, Y.indices, nnz) == by_rows(Y), (e, how)


@pytest.mark.parametrize("fmt", ["csr_matrix", "csr_array", "csc_matrix", "csc_array", "coo_matrix"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_formats_and_index_dtypes_fit_alike(rng, fmt, index_dtype):
    X, y, _ = make_sparse(rng, 600, 9, density=0.3)
    ref = fastgd.fit(X.toarray(), y)
    Z = getattr(sp, fmt)(X)
    if fmt.startswith(("csr", "csc")):
        Z.indices = Z.indices.astype(index_dtype)
        Z.indptr = Z.indptr.astype(index_dtype)
    got = fastgd.fit(Z, y)
    assert_same_fit(got, ref)


def test_float32_values_and_y(rng):
    X, y, _ = make_sparse(rng, 500, 8, density=0.3)
    X32 = X.astype(np.float32)
    got = fastgd.fit(X32, y.astype(np.float32))
    ref = fastgd.fit(X32.toarray().astype(np.float64), y.astype(np.float32).astype(np.float64))
    assert got.plan.facts.dtype == "float64"
    assert_same_fit(got, ref)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_values_are_named_by_row_and_column(rng, bad):
    X, y, _ = make_sparse(rng, 100, 5, density=0.5)
    X = X.tocsr()
    k = int(X.indptr[37]) + 1  # the second stored entry of row 37
    X.data[k] = bad
    col = int(X.indices[k])
    with pytest.raises(ValueError, match=rf"1 stored value\(s\) that are NaN or inf \(first at "
                                         rf"row 37, column {col}\); drop or impute"):
        fastgd.fit(X, y)
    with pytest.raises(ValueError, match=r"row 37, column"):
        fastgd.mse(X, y, np.zeros(5))
    with pytest.raises(ValueError, match=r"row 37, column"):
        fastgd.fit(X.tocsc(), y)


def test_nonfinite_y_is_named(rng):
    X, y, _ = make_sparse(rng, 100, 5, density=0.5)
    y[12] = np.nan
    with pytest.raises(ValueError, match=r"y has 1 row\(s\) with NaN or inf values \(first at row 12\)"):
        fastgd.fit(X, y)


def test_malformed_and_unsupported_sparse_input(rng):
    X, y, _ = make_sparse(rng, 50, 4, density=0.5)
    X = X.tocsr()
    bad = sp.csr_matrix((X.data.copy(), X.indices.copy(), X.indptr.copy()), shape=X.shape)
    bad.indices[3] = 9
    with pytest.raises(ValueError, match=r"stores column index 9, outside \[0, 4\)"):
        fastgd.fit(bad, y)
    with pytest.raises(TypeError, match="complex"):
        fastgd.fit(X.astype(np.complex128), y)
    with pytest.raises(TypeError, match="sparse data for X only"):
        fastgd.fit(X, sp.csr_matrix(y.reshape(-1, 1)))
    with pytest.raises(ValueError, match="X and y have different lengths"):
        fastgd.fit(X, y[:-1])
    with pytest.raises(ValueError, match="0 features"):
        fastgd.fit(sp.csr_matrix((50, 0)), y)
    res = fastgd.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 feature"):
        res.predict(X[:, :3])


# -- parallel passes ---------------------------------------------------------------------


def test_serial_and_parallel_are_bit_identical(rng, threads):
    """Several chunks (n > 2^15 rows per chunk): serial passes, and parallel ones on 1 to
    ``threads.max`` threads, give the same bits."""
    X, y, _ = make_sparse(rng, 100_000, 50, density=0.05)
    results = []
    for k, parallel in [(1, False), (2, True), (threads.max, True)]:
        threads.set(k)
        src = open_source(X, y, parallel=parallel)
        coef = np.linspace(-1, 1, 51)
        results.append((fastgd.fit(X, y, parallel=parallel), src.sse_grad(coef),
                        src.moments(full=False), src.moments(full=True)))
    serial = results[0]
    assert open_source(X, y, parallel=True).block.parallel
    for other in results[1:]:
        assert np.array_equal(serial[0].coef, other[0].coef)
        assert serial[0].intercept == other[0].intercept
        assert np.array_equal(serial[0].loss_history, other[0].loss_history)
        assert np.array_equal(serial[1], other[1])
        for a, b in zip(serial[2] + serial[3], other[2] + other[3]):
            assert np.array_equal(a, b)


# -- predict, mse, fit_chunks, the estimator -------------------------------------------------


def test_predict_mse_and_loss(rng):
    X, y, _ = make_sparse(rng, 700, 11, density=0.2)
    res = fastgd.fit(X, y)
    D = X.toarray()
    assert_allclose(res.predict(X), D @ res.coef + res.intercept, rtol=1e-13, atol=1e-13)
    assert_allclose(fastgd.mse(X, y, res.coef, res.intercept),
                    fastgd.mse(D, y, res.coef, res.intercept), rtol=REL)
    assert_allclose(fastgd.sse(X, y, res.coef, res.intercept),
                    fastgd.sse(D, y, res.coef, res.intercept), rtol=REL)
    assert_allclose(res.loss(X, y), res.final_loss, rtol=REL)
    w = rng.uniform(0, 1, 700)
    assert_allclose(fastgd.mse(X, y, res.coef, res.intercept, sample_weight=w),
                    fastgd.mse(D, y, res.coef, res.intercept, sample_weight=w), rtol=REL)
    dense_model = fastgd.fit(D, y)
    assert_allclose(dense_model.predict(X), dense_model.predict(D), rtol=1e-13, atol=1e-13)


def test_fit_chunks_of_csr_blocks(rng):
    X, y, _ = make_sparse(rng, 3000, 40, density=0.1)
    X = X.tocsr()
    blocks = [(X[a:b], y[a:b]) for a, b in [(0, 700), (700, 2100), (2100, 3000)]]
    ref = fastgd.fit(X.toarray(), y)
    assert_same_fit(fastgd.fit_chunks(blocks), ref)
    assert_same_fit(fastgd.fit_chunks(lambda: iter(blocks)), ref)
    # one pass over a one-shot stream: the gram fit ends on the statistics, as the dense
    # one; its loss is computed from them (see the gd-scaled case of FITS: 1.3e-12 here)
    dense = [(x.toarray(), t) for x, t in blocks]
    assert_same_fit(fastgd.fit_chunks(iter(blocks), solver="gram"),
                    fastgd.fit_chunks(iter(dense), solver="gram"), loss_rel=1e-10)
    with pytest.raises(TypeError, match="block 1 is a dense array but block 0 is a scipy sparse"):
        fastgd.fit_chunks([blocks[0], (blocks[1][0].toarray(), blocks[1][1])])


def test_gdregressor_fit_predict_score(rng):
    from fastgd.estimator import GDRegressor

    X, y, _ = make_sparse(rng, 800, 15, density=0.2)
    got = GDRegressor().fit(X, y)
    ref = GDRegressor().fit(X.toarray(), y)
    assert_allclose(got.coef_, ref.coef_, rtol=0, atol=1e-12 * np.abs(ref.coef_).max())
    assert_allclose(got.predict(X), ref.predict(X.toarray()), rtol=1e-12, atol=1e-12)
    assert got.score(X, y) == pytest.approx(ref.score(X.toarray(), y), rel=1e-12)
    assert_allclose(ref.predict(X.tocsc()), ref.predict(X.toarray()), rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match="X has 14 features"):
        got.predict(X.tocsr()[:, :14])


def test_checkpoint_and_resume_of_a_sparse_fit(rng, tmp_path):
    X, y, _ = make_sparse(rng, 2000, 60, density=0.1)
    path = tmp_path / "fit.ckpt"
    kw = dict(tol=None, epochs=8)  # plain CG on the statistics (the default ends in 1 epoch)
    ref = fastgd.fit(X, y, **kw)

    def stop(epoch, *_):
        return epoch < 3

    part = fastgd.fit(X, y, checkpoint=path, callback=stop, **kw)
    assert part.n_epochs == 3
    res = fastgd.resume(path, X, y)
    assert np.array_equal(res.coef, ref.coef) and res.intercept == ref.intercept
    other = X.tocsr(copy=True)
    other.data[0] += 1.0
    with pytest.raises(ValueError):
        fastgd.resume(path, other, y)


def test_extreme_magnitudes_are_fitted_in_power_of_two_units(rng):
    """The units path (sums of squares beyond float64) on CSR blocks, against the dense."""
    X, y, _ = make_sparse(rng, 500, 6, density=0.4)
    X = X.tocsr() * 1e200
    got = fastgd.fit(X, y)
    ref = fastgd.fit(X.toarray(), y)
    assert_allclose(got.coef, ref.coef, rtol=1e-10)
    assert got.intercept == pytest.approx(ref.intercept, rel=1e-10)


# -- stochastic epochs over CSR rows --------------------------------------------------------


EPOCH_VARIANTS = ["plain", "plain_avg", "invscaling_avg", "l2_avg", "l1", "elasticnet",
                  "huber_weighted", "sum", "uncentred_l2_avg"]


@pytest.mark.parametrize("bs", [1, 7])
@pytest.mark.parametrize("variant", EPOCH_VARIANTS)
def test_csr_sgd_epoch_matches_lazy_twin_and_dense_definition(rng, bs, variant):
    """Two oracles: ``naive.csr_sgd_lazy_epoch`` (the lazy forms step by step, from their
    definitions, with the average from the full history), to 1e-12; and
    ``naive.sgd_scaled_epoch`` on the dense rows (the update as defined, every column every
    step), to 1e-10 relative: the lazy forms take the same steps in another order of
    operations (``theta = g (v + B u)``, the gradient divided by ``g``), so they agree to
    rounding, not bit for bit."""
    from fastgd import _layout as L
    from fastgd import losses

    n, d = 150, 9
    X, y, _ = make_sparse(rng, n, d, density=0.3)
    X = X.tocsr()
    sw = rng.uniform(0.2, 2.0, n) if variant == "huber_weighted" else np.empty(0)
    perm = rng.permutation(n).astype(np.int64)
    D = X.toarray()
    centred = variant not in ("l1", "elasticnet", "uncentred_l2_avg")
    m = D.mean(axis=0) if centred else np.zeros(d)
    sd = D.std(axis=0) if variant != "plain" else np.ones(d)
    # strong (per step taken): some weights clip to zero
    l1 = {"l1": 0.5, "elasticnet": 0.3}.get(variant, 0.0) * (1 if bs == 1 else 5)
    l2 = {"l2_avg": 0.1, "elasticnet": 0.05, "uncentred_l2_avg": 0.2}.get(variant, 0.0)
    lam1, lam2 = np.r_[np.full(d, l1), 0.0], np.r_[np.full(d, l2), 0.0]
    invscaling = variant == "invscaling_avg"
    avg_start = 25.0 if variant.endswith("avg") else 1e18
    params = np.zeros(L.N_PARAMS)
    params[L.P_ETA0] = 0.05 if variant != "sum" else 0.05 / bs
    params[L.P_POWER_T] = 0.5
    params[L.P_T0] = 10.0
    params[L.P_SCHEDULE] = 1.0 if invscaling else 0.0
    params[L.P_BATCH] = bs
    params[L.P_MEAN] = 0.0 if variant == "sum" else 1.0
    params[L.P_WSCALE] = 1.3
    params[L.P_FIT_B] = 1.0
    params[L.P_AVG_START] = avg_start
    params[L.P_EPSILON] = 0.3
    theta0 = rng.normal(size=d + 1)
    coords = L.make_coords(m, 1 / sd, True, lam1, lam2)
    state = np.zeros((_kernels().sparse_sgd.STATE_ROWS, d + 1))
    state[0], state[1] = theta0, theta0 * 0.5
    huber = variant == "huber_weighted"
    kernel = _kernels().csr_sgd_kernels(losses.get("huber" if huber else "squared")).choose(bs)
    steps = kernel((X.indptr, X.indices, X.data), y, sw, perm, coords, params, state)
    args = (perm, m, sd, params[L.P_ETA0], 0.5, 10, invscaling, bs, variant != "sum", 1.3, True,
            avg_start, huber, 0.3, theta0, theta0 * 0.5)
    th, av, t = naive.csr_sgd_lazy_epoch(X.indptr, X.indices, X.data, y, sw, perm,
                                         *args[1:3], l1, l2, *args[3:])
    assert steps == t - 10 == -(-n // bs)
    assert_allclose(state[0], th, rtol=1e-12, atol=1e-12 * np.abs(th).max())
    assert_allclose(state[1], av, rtol=1e-12, atol=1e-12 * np.abs(av).max())
    th_d, av_d, _ = naive.sgd_scaled_epoch(D, y, sw, perm, m, sd, lam1, lam2, *args[3:])
    assert_allclose(state[0], th_d, rtol=1e-10, atol=1e-10 * np.abs(th_d).max())
    assert_allclose(state[1], av_d, rtol=1e-10, atol=1e-10 * np.abs(av_d).max())
    if l1:
        assert np.any(state[0][:d] == 0.0)  # the L1 steps clipped some weights to zero


@pytest.mark.parametrize("offset", range(8))
def test_csr_sgd_epoch_is_the_same_at_any_alignment_of_its_state(rng, offset):
    """The per-row kernel lays its scratch out from a 64-byte boundary of ``state``: a state
    starting ``offset`` float64 values past a boundary gives the same bits as one on it."""
    from fastgd import _layout as L
    from fastgd import losses

    n, d = 200, 13
    X, y, _ = make_sparse(rng, n, d, density=0.3)
    X = X.tocsr()
    perm = rng.permutation(n).astype(np.int64)
    D = X.toarray()
    coords = L.make_coords(D.mean(axis=0), 1 / D.std(axis=0), True)
    params = np.zeros(L.N_PARAMS)
    params[[L.P_ETA0, L.P_BATCH, L.P_MEAN, L.P_WSCALE, L.P_FIT_B, L.P_AVG_START]] = (
        0.05, 1, 1, 1, 1, 30)
    kernel = _kernels().csr_sgd_kernels(losses.get("squared")).rows
    rows = _kernels().sparse_sgd.STATE_ROWS
    out = []
    for off in (0, offset):
        buf = np.zeros(rows * (d + 1) + 16)
        at = (-(buf.ctypes.data // 8) % 8) + off  # ``off`` values past a 64-byte boundary
        state = buf[at:at + rows * (d + 1)].reshape(rows, d + 1)
        state[0] = state[1] = 0.1
        kernel((X.indptr, X.indices, X.data), y, np.empty(0), perm, coords, params, state)
        out.append(state[:2].copy())
    np.testing.assert_array_equal(out[0], out[1])


RAW_VARIANTS = ["plain", "l2", "l2_rescaled", "invscaling", "huber_weighted", "sum",
                "no_intercept"]


@pytest.mark.parametrize("variant", RAW_VARIANTS)
def test_the_raw_csr_kernel_takes_the_steps_of_the_per_row_kernel_bit_for_bit(rng, variant):
    """Oracle: the per-row kernel (itself checked against the lazy twin and the dense
    definition above) on the same call in raw coordinates (unit scales, no centring) with
    no L1 part and no averaging: the raw kernel drops the products by 1.0 and the
    averaging's bookkeeping, so its parameters are the same bits, with the scratch of one
    value a column in the fewest rows of state it takes."""
    from fastgd import _layout as L
    from fastgd import losses

    sparse_sgd = _kernels().sparse_sgd
    n, d = 300, 11
    X, y, _ = make_sparse(rng, n, d, density=0.3)
    X = X.tocsr()
    X.data *= rng.uniform(0.5, 4.0, X.data.shape)
    perm = rng.permutation(n).astype(np.int64)
    sw = rng.uniform(0.2, 2.0, n) if variant == "huber_weighted" else np.empty(0)
    # l2_rescaled: a decay of 0.02 a step takes the scale factor below RESCALE_BELOW
    # every 11,400 steps or so: a long epoch rewrites v as theta several times
    l2 = {"l2": 0.3, "l2_rescaled": 2.0}.get(variant, 0.0)
    params = np.zeros(L.N_PARAMS)
    params[L.P_ETA0] = 0.01
    params[L.P_POWER_T] = 0.5
    params[L.P_T0] = 10.0
    params[L.P_SCHEDULE] = 1.0 if variant == "invscaling" else 0.0
    params[L.P_BATCH] = 1
    params[L.P_MEAN] = 0.0 if variant == "sum" else 1.0
    params[L.P_WSCALE] = 1.3
    params[L.P_FIT_B] = 0.0 if variant == "no_intercept" else 1.0
    params[L.P_AVG_START] = 1e18
    params[L.P_EPSILON] = 0.3
    if variant == "l2_rescaled":
        perm = np.tile(perm, 120)
    coords = L.make_coords(np.zeros(d), np.ones(d), True, np.zeros(d + 1),
                           np.r_[np.full(d, l2), 0.0])
    kernels = _kernels().csr_sgd_kernels(losses.get("huber" if sw.size else "squared"))
    assert kernels.choose(1, coords, params, perm.shape[0]) is kernels.raw
    theta0 = rng.normal(size=d + 1)
    out = []
    for kernel, rows in ((kernels.rows, sparse_sgd.STATE_ROWS),
                         (kernels.raw, sparse_sgd.raw_state_rows(d))):
        state = np.zeros((rows, d + 1))
        state[0], state[1] = theta0, theta0 * 0.5
        steps = kernel((X.indptr, X.indices, X.data), y, sw, perm, coords, params, state)
        assert steps == perm.shape[0]
        out.append(state[:2].copy())
    np.testing.assert_array_equal(out[1], out[0])
    assert np.array_equal(out[1][1], theta0 * 0.5)  # no averaging: the average as it was


def test_the_raw_csr_kernel_is_chosen_only_where_it_applies(rng):
    """Unit scales, no centring, no L1 part, no averaging within the call; anything else
    (and batches of rows) runs the general kernels, and the raw one refuses what it does
    not run rather than run it wrong."""
    from fastgd import _layout as L
    from fastgd import losses

    d, m = 6, 100
    kernels = _kernels().csr_sgd_kernels(losses.get("squared"))
    params = np.zeros(L.N_PARAMS)
    params[[L.P_T0, L.P_AVG_START]] = 50, 150
    raw = L.make_coords(np.zeros(d), np.ones(d), True)
    assert kernels.choose(1, raw, params, m) is kernels.raw
    assert kernels.choose(1, raw, params, m + 1) is kernels.rows  # averages its last step
    assert kernels.choose(7, raw, params, m) is kernels.batches
    assert kernels.choose(1) is kernels.rows
    scaled = L.make_coords(np.zeros(d), np.r_[np.ones(d - 1), 0.5], True)
    centred = L.make_coords(np.r_[np.zeros(d - 1), 0.1], np.ones(d), True)
    l1 = L.make_coords(np.zeros(d), np.ones(d), True, np.r_[np.full(d, 0.1), 0.0])
    for coords in (scaled, centred, l1):
        assert kernels.choose(1, coords, params, m) is kernels.rows
    X, y, _ = make_sparse(rng, m + 1, d, density=0.5)
    X = X.tocsr()
    args = ((X.indptr, X.indices, X.data), y, np.empty(0), np.arange(m + 1))
    with pytest.raises(ValueError, match="neither an L1 part nor averaging"):
        kernels.raw(*args, raw, params, np.zeros((_kernels().sparse_sgd.raw_state_rows(d), d + 1)))
    params[L.P_AVG_START] = 1e18
    with pytest.raises(ValueError, match="too few rows"):  # never past the state's end
        kernels.raw(*args, raw, params, np.zeros((2, d + 1)))


def test_the_per_row_csr_kernel_refuses_l1_with_averaging(rng):
    """The per-row kernel keeps L1's cumulative penalty where the averaging correction
    would be (they never run together: the fit refuses the plan first); called with both,
    it raises instead of mixing them."""
    from fastgd import _layout as L
    from fastgd import losses

    X, y, _ = make_sparse(rng, 50, 4, density=0.5)
    X = X.tocsr()
    coords = L.make_coords(np.zeros(4), np.ones(4), True, np.r_[np.full(4, 0.1), 0.0])
    params = np.zeros(L.N_PARAMS)
    params[[L.P_ETA0, L.P_BATCH, L.P_MEAN, L.P_WSCALE, L.P_FIT_B]] = 0.05, 1, 1, 1, 1
    state = np.zeros((_kernels().sparse_sgd.STATE_ROWS, 5))
    kernel = _kernels().csr_sgd_kernels(losses.get("squared")).rows
    with pytest.raises(ValueError, match="without averaging"):
        kernel((X.indptr, X.indices, X.data), y, np.empty(0), np.arange(50), coords, params,
               state)


# (the stochastic fits run the same steps as the dense fit of X.toarray() in another order of
# operations, see the test above: weights, intercept and loss agree to about 1e-13 after
# a few epochs; 1e-10 leaves room for the drift that rounding differences accumulate)
SGD_REL = 1e-10

SGD_FITS = [
    pytest.param({"mode": "sgd"}, id="sgd-default"),
    pytest.param({"mode": "minibatch"}, id="minibatch-default"),
    pytest.param({"mode": "sgd", "average": False}, id="sgd-no-average"),
    pytest.param({"mode": "sgd", "average": 500}, id="sgd-average-after-step"),
    pytest.param({"mode": "sgd", "learning_rate_schedule": "invscaling", "learning_rate": 0.05},
                 id="invscaling"),
    pytest.param({"mode": "sgd", "learning_rate_schedule": "adaptive", "tol": 1e-3,
                  "epochs": 12}, id="adaptive"),
    pytest.param({"mode": "sgd", "loss": "huber", "epsilon": 0.2}, id="huber"),
    pytest.param({"mode": "minibatch", "loss": "huber", "epsilon": 0.2}, id="huber-minibatch"),
    pytest.param({"mode": "sgd", "weighted": True}, id="weighted"),
    pytest.param({"mode": "minibatch", "weighted": True, "batch_size": 16}, id="weighted-mb"),
    pytest.param({"mode": "sgd", "fit_intercept": False}, id="no-intercept"),
    pytest.param({"mode": "sgd", "reduction": "sum"}, id="sum"),
    pytest.param({"mode": "sgd", "learning_rate": 0.002}, id="plain-sgd"),
    pytest.param({"mode": "minibatch", "learning_rate": 0.01}, id="plain-minibatch"),
    pytest.param({"mode": "sgd", "penalty": "l2", "alpha": 0.05, "scale": False}, id="l2"),
    pytest.param({"mode": "minibatch", "penalty": "l2", "alpha": 0.05, "scale": False},
                 id="l2-minibatch"),
    pytest.param({"mode": "sgd", "penalty": "l1", "alpha": 0.02, "scale": False,
                  "average": False}, id="l1"),
    pytest.param({"mode": "minibatch", "penalty": "elasticnet", "alpha": 0.05, "l1_ratio": 0.5,
                  "scale": False, "average": False}, id="elasticnet-minibatch"),
    pytest.param({"mode": "sgd", "early_stopping": True, "tol": 1e-3}, id="early-stopping"),
    # the raw kernel (raw coordinates, no averaging: scikit-learn's update)
    pytest.param({"mode": "sgd", "scale": False, "average": False}, id="raw"),
    pytest.param({"mode": "sgd", "scale": False, "average": False, "penalty": "l2",
                  "alpha": 0.05, "loss": "huber", "epsilon": 0.2, "weighted": True},
                 id="raw-l2-huber-weighted"),
    pytest.param({"mode": "sgd", "scale": False, "average": False, "parallel": True},
                 id="raw-mixing"),
    pytest.param({"mode": "sgd", "parallel": True}, id="mixing"),
    pytest.param({"mode": "minibatch", "parallel": True}, id="mixing-minibatch"),
]


@pytest.mark.parametrize("kw", SGD_FITS)
def test_sparse_stochastic_fit_equals_dense_fit(rng, kw):
    """Oracle: the dense fit of X.toarray() with the same settings and seed (the same
    permutations: the visiting order depends on the number of rows and the seed only)."""
    kw = dict(kw)
    n, d = 1500, 20
    X, y, _ = make_sparse(rng, n, d, density=0.2)
    if kw.pop("weighted", False):
        kw["sample_weight"] = rng.uniform(0.1, 3.0, n)
    kw.setdefault("tol", None)
    kw.setdefault("epochs", 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgd.ConvergenceWarning)
        got = fastgd.fit(X, y, random_state=3, **kw)
        ref = fastgd.fit(X.toarray(), y, random_state=3, **kw)
    assert (got.n_epochs, got.stop_reason, got.learning_rate) == (
        ref.n_epochs, ref.stop_reason, pytest.approx(ref.learning_rate, rel=1e-13))
    assert_same_fit(got, ref, rel=SGD_REL)
    assert got.loss_history.shape == ref.loss_history.shape
    assert_allclose(got.loss_history, ref.loss_history, rtol=SGD_REL)
    if kw.get("penalty") in ("l1", "elasticnet"):
        assert np.any(got.coef == 0.0) == np.any(ref.coef == 0.0)


@pytest.mark.parametrize("mode", ["sgd", "minibatch"])
def test_fit_chunks_of_csr_blocks_stochastic(rng, mode):
    """Blocks of CSR rows (block order shuffled, each block's rows permuted) against the
    same blocks dense."""
    X, y, _ = make_sparse(rng, 3000, 20, density=0.2)
    X = X.tocsr()
    cuts = [(0, 700), (700, 2100), (2100, 3000)]
    kw = dict(mode=mode, epochs=3, tol=None, random_state=4)
    got = fastgd.fit_chunks([(X[a:b], y[a:b]) for a, b in cuts], **kw)
    ref = fastgd.fit_chunks([(X[a:b].toarray(), y[a:b]) for a, b in cuts], **kw)
    assert_same_fit(got, ref, rel=SGD_REL)


def test_sparse_sgd_reaches_the_optimum_of_its_dense_twin(rng):
    """A quality floor besides the parity: 30 averaged epochs end within 1% of the
    least-squares loss (numpy.linalg.lstsq on the dense matrix)."""
    X, y, _ = make_sparse(rng, 3000, 30, density=0.1)
    res = fastgd.fit(X, y, mode="sgd", epochs=30, tol=None, random_state=0)
    A = np.c_[X.toarray(), np.ones(3000)]
    best = np.mean((y - A @ np.linalg.lstsq(A, y, rcond=None)[0]) ** 2)
    assert best <= res.final_loss <= 1.01 * best


@pytest.mark.parametrize("mode", ["sgd", "minibatch"])
def test_sparse_parameter_mixing_does_not_depend_on_the_thread_count(rng, threads, mode):
    X, y, _ = make_sparse(rng, 40_000, 30, density=0.1)
    results = []
    for k in (1, 2, threads.max):
        threads.set(k)
        results.append(fastgd.fit(X, y, mode=mode, parallel=True, epochs=2, tol=None,
                                  random_state=5))
    for other in results[1:]:
        assert np.array_equal(results[0].coef, other.coef)
        assert results[0].intercept == other.intercept
        assert np.array_equal(results[0].loss_history, other.loss_history)


@pytest.mark.parametrize("kw", [{"mode": "sgd"}, {"mode": "minibatch", "parallel": True},
                                {"mode": "sgd", "penalty": "l1", "alpha": 0.01, "scale": False,
                                 "average": False}])
def test_sparse_stochastic_checkpoint_and_resume_bit_for_bit(rng, tmp_path, kw):
    X, y, _ = make_sparse(rng, 2000, 25, density=0.2)
    path = tmp_path / "sgd.ckpt"
    ref = fastgd.fit(X, y, epochs=6, tol=None, random_state=2, **kw)

    def stop(epoch, *_):
        return epoch < 3

    part = fastgd.fit(X, y, epochs=6, tol=None, random_state=2, checkpoint=path,
                      callback=stop, **kw)
    assert part.n_epochs == 3
    res = fastgd.resume(path, X, y)
    assert np.array_equal(res.coef, ref.coef) and res.intercept == ref.intercept
    assert np.array_equal(res.loss_history, ref.loss_history)


def test_sparse_partial_fit_equals_dense_partial_fit(rng):
    """GDRegressor.partial_fit on CSR batches against the same calls on their dense rows
    (the scaling from the merged moments, the automatic rate, the carried state)."""
    from fastgd.estimator import GDRegressor

    X, y, _ = make_sparse(rng, 3000, 15, density=0.2)
    X = X.tocsr()
    got, ref = GDRegressor(mode="sgd", random_state=0), GDRegressor(mode="sgd", random_state=0)
    for a, b in [(0, 700), (700, 1500), (1500, 3000), (0, 3000), (0, 3000)]:
        got.partial_fit(X[a:b], y[a:b])
        ref.partial_fit(X[a:b].toarray(), y[a:b])
    scale = np.abs(ref.coef_).max()
    assert_allclose(got.coef_, ref.coef_, rtol=0, atol=SGD_REL * scale)
    assert got.intercept_ == pytest.approx(ref.intercept_, rel=SGD_REL)
    assert got.score(X, y) == pytest.approx(ref.score(X.toarray(), y), rel=1e-9)
    assert got.score(X, y) > 0.9


def test_sparse_sgd_divergence_keeps_the_last_finite_state(rng):
    """A rate far above the stable limit: the same DivergenceError as the dense fit, with
    finite parameters in its result."""
    X, y, _ = make_sparse(rng, 500, 10, density=0.3)
    errs = []
    for data in (X, X.toarray()):
        with pytest.raises(fastgd.DivergenceError) as info:
            fastgd.fit(data, y * 1e150, mode="sgd", learning_rate=1e3, scale=True, epochs=5,
                       tol=None, random_state=0)
        errs.append(info.value)
    assert str(errs[0]) == str(errs[1])
    assert np.isfinite(errs[0].result.coef).all()


def test_a_fit_compiles_only_the_stochastic_kernel_it_runs(tmp_path):
    """Cold start (a new process, an empty kernel cache): dense stochastic fits compile no
    CSR epoch kernel; a sparse SGD fit compiles the one-row CSR kernel and not the batch
    one. Oracle: the files numba writes into the cache folder, one per compiled kernel."""
    import os

    env = dict(os.environ, FASTGD_CACHE_DIR=str(tmp_path / "cache"), FASTGD_DISABLE_CACHE="0")
    dense = ("import numpy as np, fastgd; rng = np.random.default_rng(0); "
             "X = rng.normal(size=(3000, 5)); y = X @ np.ones(5); "
             "fastgd.fit(X, y, mode='sgd', epochs=2, tol=None); "
             "fastgd.fit(X, y, mode='minibatch', epochs=2, tol=None)")
    subprocess.run([sys.executable, "-c", dense], env=env, check=True)
    names = [f.name for f in (tmp_path / "cache").rglob("*.nbi")]
    assert any(n.startswith("sgd.") for n in names)  # the dense kernels were cached here
    assert not any(n.startswith("sparse_sgd.") for n in names)
    sparse = ("import numpy as np, fastgd, scipy.sparse as sp; "
              "X = sp.random(3000, 50, density=0.1, format='csr', random_state=0); "
              "fastgd.fit(X, X @ np.ones(50), mode='sgd', epochs=2, tol=None)")
    subprocess.run([sys.executable, "-c", sparse], env=env, check=True)
    names = [f.name for f in (tmp_path / "cache").rglob("*.nbi")]
    compiled = [n.split("-")[0] for n in names if n.startswith("sparse_sgd.")]
    assert len(compiled) == 1
    assert compiled[0].startswith("sparse_sgd._csr_sgd_src_squared_")
    assert compiled[0].endswith("_rows")


# -- what sparse input does not support -------------------------------------------------


@pytest.mark.parametrize("kw, msg", [
    ({"mode": "sgd", "penalty": "l2", "alpha": 0.01},
     r"penalty='l2' in mode='sgd' on scipy.sparse X is not implemented with scale=True.*"
     r"scale=False"),
    ({"mode": "minibatch", "penalty": "elasticnet", "alpha": 0.01},
     r"penalty='elasticnet' in mode='minibatch' .* scale=True"),
    ({"mode": "sgd", "penalty": "l1", "alpha": 0.01, "scale": False},
     r"penalty='l1' .* not implemented with averaging .* average=False"),
])
def test_stochastic_penalties_without_a_lazy_form_are_refused_saying_what_to_do(rng, kw, msg):
    """Exactly the combinations the lazy CSR epochs cannot run (a penalty that differs per
    column; L1 with averaging) are a TypeError, in fit, the estimator and partial_fit;
    the same settings on dense X run."""
    from fastgd.estimator import GDRegressor

    X, y, _ = make_sparse(rng, 200, 5, density=0.3)
    with pytest.raises(TypeError, match=msg):
        fastgd.fit(X, y, **kw)
    with pytest.raises(TypeError, match=msg):
        GDRegressor(**kw).fit(X, y)
    with pytest.raises(TypeError, match=msg):
        GDRegressor(**kw).partial_fit(X, y)
    with pytest.raises(TypeError, match=msg):
        fastgd.fit_chunks([(X, y)], **kw)
    # scikit-learn's sparse tag says the same (its checks then expect the TypeError)
    assert GDRegressor(**kw).__sklearn_tags__().input_tags.sparse is False
    assert GDRegressor(mode=kw["mode"]).__sklearn_tags__().input_tags.sparse is True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgd.ConvergenceWarning)
        fastgd.fit(X.toarray(), y, **kw)


def test_import_fastgd_does_not_import_scipy():
    code = ("import sys, fastgd, numpy as np; fastgd.fit(np.arange(5.0), np.arange(5.0)); "
            "print('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_parallel_choice_counts_stored_entries(rng):
    """'auto' goes parallel from 2^21 values read: nnz + n for CSR, not n (d + 1)."""
    if _threads.get_num_threads() < 2:
        pytest.skip("one thread: 'auto' is always serial")
    X, y, _ = make_sparse(rng, 1000, 50_000, density=0.001)
    assert not open_source(X, y).block.parallel  # 50 million cells, 50,000 stored


def test_dask_sparse_blocks_visit_the_tiles_of_fit_chunks(rng, monkeypatch):
    """A dask array of CSR blocks (local synchronous scheduler, so that the tile rule can
    be forced in this process): each block's rows in the tiles that fit_chunks visits
    over the same blocks, bit for bit (early stopping's training rows too). The cluster
    runs are in tests/test_dask.py."""
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    from fastgd.sources import passes

    X, y, _ = make_sparse(rng, 3000, 20, density=0.2)
    X = X.tocsr()
    # (both sides build their orders with passes.block_order)
    monkeypatch.setattr(passes, "tile_rows", lambda data: 8)
    dX = da.from_array(X, chunks=(1000, 20), asarray=False)
    dy = da.from_array(y, chunks=1000)
    for kw in (dict(mode="sgd", epochs=3, tol=None),
               dict(mode="sgd", epochs=3, early_stopping=True, tol=1e-12)):
        with dask.config.set(scheduler="sync"), warnings.catch_warnings():
            warnings.simplefilter("ignore", fastgd.ConvergenceWarning)
            got = fastgd.fit(dX, dy, random_state=2, **kw)
            ref = fastgd.fit_chunks([(X[a:a + 1000], y[a:a + 1000]) for a in (0, 1000, 2000)],
                                    random_state=2, **kw)
        np.testing.assert_array_equal(got.coef, ref.coef)
        assert got.intercept == ref.intercept


def test_auto_parameter_mixing_is_for_dense_rows_only():
    """parallel='auto' mixes per-row SGD from SGD_MIX_MIN_ROWS rows on dense data only: on
    sparse X each part would set up and write out the state of all d columns (measured:
    slower, and 9 times the loss on 10^6 x 2^18 hashed rows). parallel=True still mixes."""
    from fastgd._plan import SGD_MIX_MIN_ROWS

    n = SGD_MIX_MIN_ROWS
    dense = fastgd.DataFacts(n=n, d=10, dtype="float64", weighted=False)
    sparse = fastgd.DataFacts(n=n, d=10, dtype="float64", weighted=False, sparse=True)
    assert fastgd.FitPlan.build(dense, mode="sgd").mixing
    plan = fastgd.FitPlan.build(sparse, mode="sgd")
    assert not plan.mixing and plan.reasons["mixing"].startswith("serial: ")
    assert fastgd.FitPlan.build(sparse, mode="sgd", parallel=True).mixing
    # the facts say so, and round-trip (a dense fit's dict is as before: no key)
    assert fastgd.DataFacts.from_dict(sparse.to_dict()) == sparse
    assert "sparse" not in dense.to_dict()
    X, y, _ = make_sparse(np.random.default_rng(0), 50, 4, density=0.5)
    assert open_source(X, y).facts().sparse and not open_source(X.toarray(), y).facts().sparse


# -- the epochs' visiting order in tiles (large CSR blocks) --------------------------------


@pytest.mark.parametrize("n, tile", [(1, 4), (5, 4), (100, 7), (1000, 32), (4096, 64), (4097, 64)])
@pytest.mark.parametrize("seed", [0, 5, 2**63 - 2])
def test_tile_permutation_matches_its_naive_twin(n, tile, seed):
    """Oracle: ``naive.tile_permutation`` (the tiles in the bucket shuffle of their
    numbers, each tile Fisher-Yates shuffled with its own key), on one thread or several;
    every row once, the rows of a tile next to each other."""
    from fastgd._chunking import perm_layout
    from fastgd.sources import permutation

    ref = naive.tile_permutation(n, seed, tile, perm_layout(-(-n // tile))[0])
    assert np.array_equal(np.sort(ref), np.arange(n))
    for parallel in (False, True):
        got = np.full(n, -1, dtype=np.int64)
        permutation(n, seed, parallel, out=got, tile=tile)
        np.testing.assert_array_equal(got, ref)
    runs = np.count_nonzero(np.diff(ref // tile)) + 1
    assert runs == -(-n // tile)  # each tile visited in one go


def test_tiles_in_the_order_are_uniform():
    """All 6 orders of 3 tiles (of 2 rows) equally often, and both orders of each tile's
    rows, over 12,000 seeds (chi-square)."""
    from fastgd.sources import permutation

    tiles, inner = {}, np.zeros((3, 2))
    for seed in range(12_000):
        p = permutation(6, seed, False, tile=2)
        key = tuple(p[::2] // 2)
        tiles[key] = tiles.get(key, 0) + 1
        for t in range(3):
            inner[key[t], int(p[2 * t] % 2)] += 1
    assert len(tiles) == 6
    counts = np.array(list(tiles.values()))
    assert np.sum((counts - 2000.0) ** 2 / 2000.0) < 20.5  # chi-square 5 dof, p = 0.001
    assert np.all(np.abs(inner - 6000.0) < 4 * np.sqrt(3000.0))


def test_tile_rows_rule():
    """Tiles only for CSR blocks beyond TILE_MIN_BYTES, about TILE_BYTES of rows each."""
    from fastgd.sources import passes, tile_rows

    X = sp.random(200, 50, density=0.1, random_state=0, format="csr")
    y = np.ones(200)
    assert tile_rows(open_source(X, y).data) == 1  # small: rows one by one
    assert tile_rows(open_source(X.toarray(), y).data) == 1  # dense: rows one by one
    n, k = 300_000, 4  # 300,000 rows of 4 entries: 4.8 MB of values and indices, + indptr, y
    cols = np.tile(np.arange(k, dtype=np.int32), n)
    big = sp.csr_matrix((np.ones(n * k), cols, np.arange(0, n * k + 1, k)), shape=(n, 10))
    data = open_source(big, np.ones(n)).data
    nbytes = (data.X.values.nbytes + data.X.indices.nbytes + data.X.indptr.nbytes
              + data.y.nbytes)
    assert nbytes >= passes.TILE_MIN_BYTES
    assert tile_rows(data) == min(passes.TILE_MAX_ROWS, passes.TILE_BYTES * n // nbytes)


TILE_FITS = [
    pytest.param({"mode": "sgd"}, id="sgd"),
    pytest.param({"mode": "minibatch"}, id="minibatch"),
    pytest.param({"mode": "sgd", "early_stopping": True, "tol": 1e-3}, id="early-stopping"),
    pytest.param({"mode": "sgd", "penalty": "l1", "alpha": 0.02, "scale": False,
                  "average": False}, id="l1"),
]


@pytest.mark.parametrize("kw", TILE_FITS)
def test_a_fit_in_tiles_equals_the_dense_fit_in_the_same_tiles(rng, monkeypatch, kw):
    """Oracle: the dense fit of X.toarray() visiting its rows in the same tiles (the rule
    forced to tiles of 8 rows on both), as in ``test_sparse_stochastic_fit_equals_dense_
    fit``; the order itself is checked against its naive twin above. Also checks that the
    tiles change the fit (it is not the uniform order's)."""
    from fastgd.sources import epochs

    kw = dict(kw, tol=kw.get("tol"), epochs=4, random_state=3)
    n, d = 1500, 20
    X, y, _ = make_sparse(rng, n, d, density=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgd.ConvergenceWarning)
        uniform = fastgd.fit(X, y, **kw)
        monkeypatch.setattr(epochs, "tile_rows", lambda data: 8)
        got = fastgd.fit(X, y, **kw)
        ref = fastgd.fit(X.toarray(), y, **kw)
    assert_same_fit(got, ref, rel=SGD_REL)
    assert_allclose(got.loss_history, ref.loss_history, rtol=SGD_REL)
    assert not np.allclose(got.coef, uniform.coef, rtol=1e-6)


def test_tiles_of_sorted_rows_still_reach_the_optimum(rng, monkeypatch):
    """The worst order to meet in tiles: rows sorted by target, tiles of 64 rows (as the
    rule makes them only for blocks of many rows: here 20,000). 30 averaged epochs end
    within 1% of the least-squares loss (numpy.linalg.lstsq), as the uniform order does
    (``test_sparse_sgd_reaches_the_optimum_of_its_dense_twin``; measured: 1.0014 times the
    optimum in tiles, 1.0001 in the uniform order)."""
    from fastgd.sources import epochs

    n = 20_000
    X, y, _ = make_sparse(rng, n, 30, density=0.1)
    order = np.argsort(y)
    X, y = X.tocsr()[order], y[order]
    monkeypatch.setattr(epochs, "tile_rows", lambda data: 64)
    res = fastgd.fit(X, y, mode="sgd", epochs=30, tol=None, random_state=0)
    A = np.c_[X.toarray(), np.ones(n)]
    best = np.mean((y - A @ np.linalg.lstsq(A, y, rcond=None)[0]) ** 2)
    assert best <= res.final_loss <= 1.01 * best


def test_resume_of_a_fit_in_tiles_is_bit_identical(rng, monkeypatch, tmp_path):
    """Checkpoints replay the tiles' random stream: a fit stopped and resumed equals the
    fit run through (tiles of 16 rows)."""
    from fastgd.sources import epochs

    monkeypatch.setattr(epochs, "tile_rows", lambda data: 16)
    X, y, _ = make_sparse(rng, 2000, 25, density=0.2)
    kw = dict(mode="sgd", tol=None, random_state=11)
    full = fastgd.fit(X, y, epochs=5, **kw)
    ck = tmp_path / "tiles.ckpt"
    part = fastgd.fit(X, y, epochs=5, checkpoint=ck, callback=lambda epoch, *_: epoch < 2,
                      **kw)
    assert part.n_epochs == 2
    resumed = fastgd.resume(ck, X, y)
    np.testing.assert_array_equal(resumed.coef, full.coef)
    assert resumed.intercept == full.intercept
