"""Fits on a Dask cluster (issue 12): a real ``LocalCluster`` of two worker processes on
127.0.0.1. Oracles: the same rows fitted locally (``fastgd.fit_chunks`` over the same
blocks: the same block passes in the same order, so sequential modes agree to the last
bits up to how the kernels were compiled; ``fastgd.fit`` on the whole arrays), the
least-squares optimum by ``numpy.linalg.lstsq``, and for parameter mixing its definition
composed from local one-block fits."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import fastgd
from tests._cluster import local_cluster
from tests.conftest import crash_then_resume

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

N, D, BLOCKS = 40_000, 3, 4
RTOL = 1e-12

#: the stochastic fits here run fixed epochs with early stopping at a tolerance they never
#: meet (tol=1e-12: every epoch runs, as the checks of bit-identical backends and resumes
#: need); the warning that they ran out of epochs is expected, and tested elsewhere
#: (tests/test_stochastic.py)
pytestmark = pytest.mark.filterwarnings(
    "ignore:the (sgd|minibatch) fit did not meet its stopping rule:fastgd.ConvergenceWarning")



@pytest.fixture(scope="module")
def client():
    with local_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -1.0]
    y = X @ [1.0, -2.0, 30.0] + 4.0 + 0.1 * rng.normal(size=N)
    w = rng.uniform(0.5, 2.0, size=N)
    return X, y, w


@pytest.fixture(scope="module")
def darr(client, rows):
    X, y, w = rows
    m = N // BLOCKS
    out = [da.from_array(X, chunks=(m, D)), da.from_array(y, chunks=m),
           da.from_array(w, chunks=m)]
    out = client.persist(out)
    distributed.wait(out)
    return out


def blocks(rows, weights=False):
    X, y, w = rows
    m = N // BLOCKS
    return [(X[i:i + m], y[i:i + m]) + ((w[i:i + m],) if weights else ())
            for i in range(0, N, m)]


def params(res):
    return np.r_[res.coef, res.intercept]


MODES = [dict(), dict(solver="stream"), dict(optimizer="nesterov"),
         dict(penalty="l1", alpha=0.01), dict(loss="huber", epsilon=0.5),
         dict(learning_rate=1e-3, epochs=20, tol=None),
         dict(mode="sgd", tol=None, epochs=3, parallel=False), dict(mode="minibatch", tol=None, epochs=4),
         dict(mode="sgd", epochs=4, parallel=False, early_stopping=True),
         dict(mode="minibatch", tol=None, epochs=3, learning_rate_schedule="invscaling",
              penalty="elasticnet", alpha=1e-3)]


@pytest.mark.parametrize("kw", MODES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
@pytest.mark.parametrize("weighted", [False, True])
def test_every_mode_equals_the_local_fit_of_the_same_blocks(client, rows, darr, kw, weighted):
    X, y, w = darr
    res = fastgd.fit(X, y, sample_weight=w if weighted else None, random_state=3, **kw)
    ref = fastgd.fit_chunks(blocks(rows, weighted), random_state=3, **kw)
    same_run(res, ref)
    assert res.n_rows == N and res.plan.engine == ref.plan.engine


def same_run(res, ref):
    """``res`` and ``ref`` are the same fit to rounding: parameters and losses to 1e-12.

    Bit for bit when the workers' kernels were compiled as this process's were; but a
    kernel loaded from numba's on-disk cache can differ in the last bits from one compiled
    in the process (see "How it works" in the README), and CI starts from an empty cache:
    a stopping test that sits at the rounding level (``tol=1e-12`` on a loss that no
    longer moves) may then take one more epoch. The epochs beyond the shorter run must
    then be at its final loss."""
    np.testing.assert_allclose(params(res), params(ref), rtol=RTOL, atol=1e-14)
    a, b = res.loss_history, ref.loss_history
    m = min(len(a), len(b))
    np.testing.assert_allclose(a[:m], b[:m], rtol=RTOL)
    longer = a if len(a) > m else b
    np.testing.assert_allclose(longer[m - 1:], longer[m - 1], rtol=RTOL)
    assert abs(len(a) - len(b)) <= 1 and res.converged == ref.converged


def test_default_fit_is_the_least_squares_optimum_in_two_passes(client, rows, darr):
    X, y, _ = darr
    Xn, yn, _ = rows
    res = fastgd.fit(X, y)
    opt = np.linalg.lstsq(np.c_[Xn, np.ones(N)], yn, rcond=None)[0]
    np.testing.assert_allclose(params(res), opt, rtol=1e-8)
    assert res.n_passes == 2 and res.converged
    # the reported loss is the loss of the coefficients, measured on the cluster too
    assert fastgd.mse(X, y, res.coef, res.intercept) == pytest.approx(res.final_loss, rel=1e-12)
    assert fastgd.mse(Xn, yn, res.coef, res.intercept) == pytest.approx(res.final_loss, rel=1e-12)
    local = fastgd.fit(Xn, yn)
    np.testing.assert_allclose(params(res), params(local), rtol=1e-10)


def assert_mixing_is_its_definition(X, y, sizes, learning_rate):
    """The definition of parameter mixing, composed from local fits: every block of
    ``sizes`` rows runs plain SGD from the same start over its rows; the epoch's result
    is their average weighted by rows. ``X`` dense or scipy.sparse (its blocks then
    scipy.sparse matrices)."""
    sparse = not isinstance(X, np.ndarray)
    Xd = da.from_array(X, chunks=(tuple(sizes), X.shape[1]), asarray=not sparse)
    yd = da.from_array(y, chunks=(tuple(sizes),))
    kw = dict(mode="sgd", learning_rate=learning_rate, epochs=1, shuffle=False, scale=False,
              tol=None)
    res = fastgd.fit(Xd, yd, parallel=True, **kw)
    assert res.plan.mixing
    edges = np.cumsum([0] + sizes)
    each = [params(fastgd.fit(X[a:b], y[a:b], parallel=False, **kw))
            for a, b in zip(edges[:-1], edges[1:])]
    expect = sum(m / X.shape[0] * p for m, p in zip(sizes, each))
    np.testing.assert_allclose(params(res), expect, rtol=1e-12)


def test_parameter_mixing_is_the_row_weighted_average_of_one_block_runs(client, rows, darr):
    Xn, yn, _ = rows
    assert_mixing_is_its_definition(Xn, yn, [5_000, 15_000, 20_000], 1e-4)


def test_mixing_converges_to_the_optimum(client, rows, darr):
    X, y, _ = darr
    Xn, yn, _ = rows
    res = fastgd.fit(X, y, mode="sgd", tol=None, parallel=True, epochs=8, random_state=0)
    assert res.plan.mixing
    opt = np.linalg.lstsq(np.c_[Xn, np.ones(N)], yn, rcond=None)[0]
    best = fastgd.mse(Xn, yn, opt[:-1], opt[-1])
    assert res.final_loss <= best * (1 + 1e-3)
    # and it is deterministic: the blocks' results are averaged in block order
    again = fastgd.fit(X, y, mode="sgd", tol=None, parallel=True, epochs=8, random_state=0)
    np.testing.assert_array_equal(params(again), params(res))


def test_numba_threads_per_task_give_the_same_bits(client, darr):
    X, y, _ = darr
    one = fastgd.fit(X, y, solver="stream")
    with dask.config.set({"fastgd.numba-threads": 2}):
        two = fastgd.fit(X, y, solver="stream")
    np.testing.assert_array_equal(params(two), params(one))


def test_extreme_magnitudes_are_fitted_in_units_on_the_workers(client, rows):
    Xn, yn, _ = rows
    Xs, ys = Xn[:, :1] * 1e200, yn * 1e-150
    m = N // BLOCKS
    res = fastgd.fit(da.from_array(Xs, chunks=(m, 1)), da.from_array(ys, chunks=m))
    ref = fastgd.fit(Xs, ys)
    np.testing.assert_allclose(params(res), params(ref), rtol=1e-10)
    assert np.isfinite(res.final_loss) and res.final_loss == pytest.approx(
        fastgd.mse(Xs, ys, res.coef, res.intercept), rel=1e-12)


def test_unaligned_blocks_of_y_and_numpy_beside_dask(client, rows):
    Xn, yn, _ = rows
    X = da.from_array(Xn, chunks=(7_000, 2))  # column blocks: merged
    y = da.from_array(yn, chunks=9_000)  # other boundaries: rechunked to X's
    res = fastgd.fit(X, y)
    np.testing.assert_allclose(params(res), params(fastgd.fit(Xn, yn)), rtol=1e-10)
    res2 = fastgd.fit(X, yn)  # y in memory: cut into X's blocks
    np.testing.assert_allclose(params(res2), params(res), rtol=1e-14)


# ---------------------------------------------------------------------------------------
# data frames, files
# ---------------------------------------------------------------------------------------

def test_dask_dataframe_from_parquet_and_csv_never_collected(client, rows, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    Xn, yn, _ = rows
    frame = pd.DataFrame({"a": Xn[:, 0], "b": Xn[:, 1], "c": Xn[:, 2], "y": yn})
    folder = tmp_path / "pq"
    folder.mkdir()
    for i in range(4):
        frame.iloc[i * 10_000:(i + 1) * 10_000].to_parquet(folder / f"part{i}.parquet")
        frame.iloc[i * 10_000:(i + 1) * 10_000].to_csv(tmp_path / f"part{i}.csv", index=False,
                                                       float_format="%.17g")
    ref = fastgd.fit(Xn, yn)
    for df in (dd.read_parquet(str(folder)), dd.read_csv(str(tmp_path / "part*.csv"))):
        res = fastgd.fit(df[["a", "b", "c"]], df["y"])
        np.testing.assert_allclose(params(res), params(ref), rtol=1e-10)
        assert res.feature_names == ("a", "b", "c")


def test_estimator_fits_and_predicts_dask_collections(client, rows, darr):
    pytest.importorskip("sklearn")
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    Xn, yn, _ = rows
    X, y, _ = darr
    est = fastgd.GDRegressor().fit(X, y)
    ref = fastgd.GDRegressor().fit(Xn, yn)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-10)
    pred = est.predict(X)
    assert isinstance(pred, da.Array)  # lazy: nothing collected
    np.testing.assert_allclose(pred.compute(), ref.predict(Xn), rtol=1e-10, atol=1e-10)
    frame = dd.from_pandas(pd.DataFrame(Xn, columns=["a", "b", "c"]), npartitions=3)
    est2 = fastgd.GDRegressor().fit(frame, dd.from_pandas(pd.Series(yn), npartitions=3))
    assert list(est2.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_allclose(est2.coef_, ref.coef_, rtol=1e-10)
    assert est2.score(frame, yn) == pytest.approx(ref.score(Xn, yn), rel=1e-10)
    with pytest.raises(TypeError, match="partial_fit"):
        fastgd.GDRegressor(mode="sgd", tol=None).partial_fit(X, y)


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------

def test_nan_in_a_block_is_named(client, rows):
    Xn, yn, _ = rows
    Xb = Xn.copy()
    Xb[25_123, 1] = np.nan
    X = da.from_array(Xb, chunks=(10_000, D))
    for kw in (dict(), dict(mode="sgd", tol=None, epochs=1, learning_rate=1e-3, scale=False)):
        with pytest.raises(ValueError, match=r"block 2: .*row 5123.* start at row 20000"):
            fastgd.fit(X, da.from_array(yn, chunks=10_000), **kw)


def test_mismatched_rows_unknown_sizes_and_bad_columns(client, rows):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    Xn, yn, _ = rows
    X = da.from_array(Xn, chunks=(10_000, D))
    with pytest.raises(ValueError, match="X has 40000 rows, y has 39999"):
        fastgd.fit(X, da.from_array(yn[:-1], chunks=10_000))
    frame = dd.from_pandas(pd.DataFrame(Xn, columns=["a", "b", "c"]), npartitions=4)
    with pytest.raises(ValueError, match="unknown block sizes.*compute_chunk_sizes"):
        fastgd.fit(frame.values, da.from_array(yn, chunks=10_000))
    text = frame.assign(s="x")
    with pytest.raises(TypeError, match="column 's'"):
        fastgd.fit(text, da.from_array(yn, chunks=10_000))
    w = np.ones(N)
    w[12_000] = -1.0
    with pytest.raises(ValueError, match="block 1 .*negative"):
        fastgd.fit(X, da.from_array(yn, chunks=10_000), sample_weight=da.from_array(w, chunks=10_000))


# ---------------------------------------------------------------------------------------
# reliability and memory
# ---------------------------------------------------------------------------------------

def test_a_worker_killed_mid_fit_costs_nothing(client, rows):
    Xn, yn, _ = rows
    X = client.persist(da.from_array(Xn, chunks=(5_000, D)))
    y = client.persist(da.from_array(yn, chunks=5_000))
    distributed.wait([X, y])
    kw = dict(learning_rate=1e-3, epochs=40, tol=None)
    ref = fastgd.fit(X, y, **kw)
    pids = list(client.run(os.getpid).values())
    killed = []

    def kill(epoch, coef, intercept, loss):
        if epoch == 10:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(epoch)

    res = fastgd.fit(X, y, callback=kill, **kw)
    assert killed == [10]
    same_run(res, ref)
    client.wait_for_workers(2, timeout=60)
    assert pids[0] not in client.run(os.getpid).values()  # the worker really died


def _client_growth(n, d=4):
    """Peak growth of this process's RSS during a default fit of ``n`` x ``d`` rows that
    are generated on the workers (lazily: never persisted, never gathered)."""
    psutil = pytest.importorskip("psutil")
    rng = da.random.default_rng(0)
    X = rng.normal(size=(n, d), chunks=(n // 8, d))
    y = X @ np.arange(1.0, d + 1) + 2.0
    proc = psutil.Process()
    before = proc.memory_info().rss
    peak = [before]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    t = threading.Thread(target=watch)
    t.start()
    try:
        res = fastgd.fit(X, y)
    finally:
        stop.set()
        t.join()
    np.testing.assert_allclose(res.coef, np.arange(1.0, d + 1), rtol=1e-10)
    return peak[0] - before


def test_the_client_never_gathers_the_data(client):
    _client_growth(80_000)  # first use: imports, the client-side merge kernel
    grew = _client_growth(10_000_000)  # 320 MB of X on the workers
    assert grew < 16e6, f"the client grew by {grew / 1e6:.0f} MB for 320 MB of data"


def _hold_first_use(args):
    folder, name = args
    os.environ["FASTGD_CACHE_DIR"] = folder
    from fastgd.sources.dask import _first_use

    with _first_use(name):
        start = time.time()
        time.sleep(0.3)
        end = time.time()
    return start, end


def test_worker_processes_take_turns_at_their_first_compile(tmp_path):
    # the lock behind "compilation caches never race": two processes entering the first
    # use of the same kind of task at once run it one after the other
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(2) as pool:
        (a0, a1), (b0, b1) = pool.map(_hold_first_use, [(str(tmp_path), "k")] * 2)
    assert a1 <= b0 or b1 <= a0, "the two first uses overlapped"
    assert (tmp_path / "fastgd-compile.lock").exists()


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_without_a_cluster_the_local_schedulers_give_the_same_fit(client, rows, scheduler):
    m = N // BLOCKS
    X, y, w = (da.from_array(a, chunks=(m,) + a.shape[1:]) for a in rows)  # not persisted
    for kw in (dict(), dict(mode="minibatch", tol=None, epochs=2, random_state=1)):
        on_cluster = fastgd.fit(X, y, sample_weight=w, **kw)
        with dask.config.set(scheduler=scheduler):
            here = fastgd.fit(X, y, sample_weight=w, **kw)
        np.testing.assert_allclose(params(here), params(on_cluster), rtol=RTOL)


def test_missing_targets_are_named(client, darr):
    X, _, _ = darr
    with pytest.raises(TypeError, match="y is None"):
        fastgd.fit(X, None)


def test_mse_on_the_cluster_names_a_nan_block(client, rows):
    Xn, yn, _ = rows
    yb = yn.copy()
    yb[31_000] = np.inf
    X = da.from_array(Xn, chunks=(10_000, D))
    assert fastgd.mse(X, da.from_array(yn, chunks=10_000), [1.0, -2.0, 30.0], 4.0) == \
        pytest.approx(fastgd.mse(Xn, yn, [1.0, -2.0, 30.0], 4.0), rel=1e-12)
    with pytest.raises(ValueError, match=r"block 3: y has .* row 1000"):
        fastgd.mse(X, da.from_array(yb, chunks=10_000), [1.0, -2.0, 30.0], 4.0)


@pytest.mark.parametrize("kw", [dict(solver="stream"), dict(mode="sgd", tol=None, epochs=5, parallel=False),
                                dict(mode="sgd", tol=None, epochs=5, parallel=True),
                                dict(mode="minibatch", epochs=5, early_stopping=True, tol=1e-12,
                                     n_iter_no_change=10)],
                         ids=["stream", "sgd-sequential", "sgd-mixing", "minibatch-early-stop"])
def test_checkpoints_resume_a_dask_fit_bit_for_bit(client, darr, tmp_path, kw):
    X, y, w = darr
    ref = fastgd.fit(X, y, sample_weight=w, random_state=5, **kw)
    path = tmp_path / "fit.ckpt"
    crash_then_resume(
        lambda cb: fastgd.fit(X, y, sample_weight=w, random_state=5, checkpoint=path,
                              callback=cb, **kw),
        lambda: fastgd.resume(path, X, y, sample_weight=w), ref)


def test_resume_refuses_other_data_or_other_blocks(client, rows, darr, tmp_path):
    X, y, _ = darr
    Xn, yn, _ = rows
    path = tmp_path / "fit.ckpt"
    fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, checkpoint=path)
    with pytest.raises(ValueError, match="4 blocks of 10000, .* got 5 of 8000"):
        fastgd.resume(path, X.rechunk((8_000, D)), y.rechunk(8_000))
    y2 = da.from_array(yn + 1.0, chunks=10_000)
    with pytest.raises(ValueError, match="other data"):
        fastgd.resume(path, X, y2)
    with pytest.raises(ValueError, match="continues a fit of dask collections"):
        fastgd.resume(path, Xn, yn)


@pytest.mark.parametrize("kw", [dict(), dict(mode="sgd", tol=None), dict(learning_rate=0.1)])
def test_weights_summing_to_zero_are_refused(client, darr, kw):
    # found by tests/test_fuzz.py::test_dask_blocks_contract: the weights are checked on
    # the workers, so the zero total surfaced as a ZeroDivisionError on the client
    X, y, _ = darr
    w = da.zeros(N, chunks=N // BLOCKS)
    with pytest.raises(ValueError, match="sample_weight sums to zero"):
        fastgd.fit(X, y, sample_weight=w, **kw)


# -- scipy.sparse blocks (issue 21) --------------------------------------------------------

SPARSE_N, SPARSE_D, SPARSE_M = 6000, 40, 1500

SPARSE_MODES = [dict(), dict(solver="stream"), dict(penalty="l1", alpha=1e-3),
                dict(mode="sgd", tol=None, epochs=3, parallel=False),
                dict(mode="minibatch", tol=None, epochs=3),
                dict(mode="sgd", epochs=4, parallel=False, early_stopping=True)]


@pytest.fixture(scope="module")
def sparse_rows():
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(5)
    X = sp.random(SPARSE_N, SPARSE_D, density=0.15, random_state=rng, format="csr",
                  data_rvs=rng.standard_normal)
    y = X @ rng.uniform(-2, 2, SPARSE_D) + 0.7 + rng.normal(0, 0.1, SPARSE_N)
    w = rng.uniform(0.5, 2.0, SPARSE_N)
    return X, y, w


def sparse_blocks(rows, weights=False):
    X, y, w = rows
    return [(X[i:i + SPARSE_M], y[i:i + SPARSE_M]) + ((w[i:i + SPARSE_M],) if weights else ())
            for i in range(0, SPARSE_N, SPARSE_M)]


def dask_sparse(rows):
    X, y, w = rows
    return (da.from_array(X, chunks=(SPARSE_M, SPARSE_D), asarray=False),
            da.from_array(y, chunks=SPARSE_M), da.from_array(w, chunks=SPARSE_M))


@pytest.mark.parametrize("kw", SPARSE_MODES,
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_blocks_fit_on_the_workers_as_fit_chunks_of_the_same_blocks(
        client, sparse_rows, kw, weighted):
    """A dask array of scipy.sparse blocks: the CSR block passes run on the workers.
    Oracle: ``fit_chunks`` over the same CSR blocks in this process (the same passes in
    the same order), and for the default fit the least-squares optimum (lstsq on the dense
    rows)."""
    X, y, w = dask_sparse(sparse_rows)
    res = fastgd.fit(X, y, sample_weight=w if weighted else None, random_state=3, **kw)
    ref = fastgd.fit_chunks(sparse_blocks(sparse_rows, weighted), random_state=3, **kw)
    same_run(res, ref)
    assert res.plan.engine == ref.plan.engine
    if not kw:
        Xs, ys, ws = sparse_rows
        sw = np.sqrt(ws) if weighted else np.ones(SPARSE_N)
        A = np.c_[Xs.toarray(), np.ones(SPARSE_N)] * sw[:, None]
        best = np.linalg.lstsq(A, ys * sw, rcond=None)[0]
        np.testing.assert_allclose(params(res), best, rtol=1e-9, atol=1e-10)


def test_sparse_blocks_predict_mse_units_and_numpy_beside_dask(client, sparse_rows):
    """Predictions (lazy, O(nnz) a block on the workers) against ``X @ coef + b``; mse
    against the local one; magnitudes of 1e200 fitted in power-of-two units on the
    workers, as the local fit does; a scipy.sparse X beside a dask y cut into y's blocks."""
    Xs, ys, _ = sparse_rows
    X, y, _ = dask_sparse(sparse_rows)
    res = fastgd.fit(X, y)
    pred = res.predict(X)
    assert isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), Xs @ res.coef + res.intercept, rtol=1e-13,
                               atol=1e-13)
    assert fastgd.mse(X, y, res.coef, res.intercept) == pytest.approx(
        fastgd.mse(Xs, ys, res.coef, res.intercept), rel=1e-12)
    big = fastgd.fit(X * 1e200, y)
    ref = fastgd.fit(Xs * 1e200, ys)
    np.testing.assert_allclose(big.coef, ref.coef, rtol=1e-9)
    beside = fastgd.fit(Xs, y)
    np.testing.assert_allclose(params(beside), params(res), rtol=1e-12)


def test_nan_in_a_sparse_block_is_named(client, sparse_rows):
    Xs, ys, _ = sparse_rows
    Xb = Xs.copy()
    Xb.data[Xb.indptr[3100]] = np.nan  # the first stored entry of row 3100 (block 2)
    X = da.from_array(Xb, chunks=(SPARSE_M, SPARSE_D), asarray=False)
    with pytest.raises(ValueError, match=r"block 2.*row 100"):
        fastgd.fit(X, da.from_array(ys, chunks=SPARSE_M))


def test_parameter_mixing_of_sparse_blocks_is_the_row_weighted_average_of_one_block_runs(
        client, sparse_rows):
    """As for dense blocks (the definition composed from local fits): every CSR block runs
    SGD from the same start over its rows, the epoch's result their average weighted by
    rows."""
    Xs, ys, _ = sparse_rows
    assert_mixing_is_its_definition(Xs, ys, [1000, 2000, 3000], 1e-3)
