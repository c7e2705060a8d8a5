"""The BLAS co-moments pass of wide data (``fastgd.kernels.gram``) and the gram path it
feeds (issue 21, wide dense data).

Oracles: the two-pass centred co-moments in extended precision (``naive.comoments``), the
compiled moments kernel (the same statistics, other roundings), the merges it replaces
(bit for bit), serial == parallel bit for bit, ``numpy.linalg.lstsq`` for the fits,
tracemalloc for the memory budget of ``fastgd._plan.gram_bytes``.
"""
import re
import tracemalloc
import warnings

import numpy as np
import pytest

import fastgd
from fastgd import _chunking, _threads
from fastgd import _validation as V
from fastgd._plan import gram_bytes
from fastgd.solvers.oracles import PREDICT_AFTER
from fastgd.sources import passes

from . import naive

N, D = 6000, 40


@pytest.fixture
def small_layout(monkeypatch):
    """Blocks of 1,000 rows in slices of 300 (6 blocks of 4 slices at N rows), so that
    small data crosses every boundary of the pass."""
    monkeypatch.setattr(_chunking, "GRAM_MIN_SLICE_ROWS", 100)
    monkeypatch.setattr(_chunking, "GRAM_MAX_SLICE_ROWS", 300)
    monkeypatch.setattr(_chunking, "GRAM_BLOCK_ROWS", 1000)
    assert _chunking.gram_layout(N, D) == (6, 300)


@pytest.fixture
def blas_calls(monkeypatch):
    """The number of BLAS passes run (the spy fails the test if a pass is expected to
    use BLAS and does not)."""
    calls = []
    real = passes._blas_moments

    def spy(data, parallel):
        calls.append(data.d)
        return real(data, parallel)

    monkeypatch.setattr(passes, "_blas_moments", spy)
    return calls


@pytest.fixture
def blas_threads():
    """A reader of the thread count of each BLAS loaded (skips without threadpoolctl)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def read():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    return read


def wide_data(rng, n=N, d=D, weighted=False, dtype=np.float64):
    X = rng.normal(size=(n, d)) * np.geomspace(1, 100, d) + np.linspace(-1e3, 1e3, d)
    X[:, 5] = 0.1  # constant: its moments must be exactly zero
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + 1e4 + rng.normal(0, 0.3, n)
    sw = rng.uniform(0.0, 2.0, n) if weighted else None
    if weighted:
        sw[100:400] = 0.0  # a slice of zero weights
    return X.astype(dtype), y.astype(dtype), sw


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_comoments_match_extended_precision(small_layout, blas_calls, weighted, dtype):
    X, y, sw = wide_data(np.random.default_rng(1), weighted=weighted, dtype=dtype)
    data = V.check_data(X, y, sw, parallel=False)
    row = passes.moments_part(data, False, True)
    assert blas_calls == [D]
    k = D + 1
    W, mean, com = row[0], row[1:1 + k], row[1 + k:].reshape(k, k)
    W_ref, mean_ref, com_ref = naive.comoments(X, y, sw)
    np.testing.assert_allclose(W, W_ref, rtol=1e-14)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-14, atol=1e-14)
    # the constant column: exactly its value and zeros (the oracle's longdouble mean of
    # 0.1s is off by rounding, its "variance" 1e-31)
    assert mean[5] == np.float64(dtype(0.1)) and not com[5].any() and not com[:, 5].any()
    live = np.arange(k) != 5
    com, com_ref = com[np.ix_(live, live)], com_ref[np.ix_(live, live)]
    scale = np.sqrt(np.outer(np.diag(com_ref), np.diag(com_ref)))
    assert np.all(np.abs(com - com_ref) <= 1e-13 * scale)
    assert np.array_equal(com, com.T)


def test_serial_parallel_and_thread_count_are_bitwise_equal(small_layout, blas_calls):
    X, y, sw = wide_data(np.random.default_rng(2), weighted=True)
    rows = []
    before = fastgd.get_num_threads()
    try:
        for threads in (1, 2, 3):
            fastgd.set_num_threads(threads)
            for parallel in (False, True):
                data = V.check_data(X, y, sw, parallel=parallel)
                rows.append(passes.moments_part(data, parallel, True))
    finally:
        fastgd.set_num_threads(before)
    assert len(blas_calls) == 6
    for r in rows[1:]:
        assert np.array_equal(r, rows[0])


def test_blas_runs_on_one_thread_in_the_pass_and_is_restored(monkeypatch, blas_calls,
                                                             blas_threads):
    before = blas_threads()
    seen = []
    passes.KGRAM.comoments  # noqa: B018 - load the lazy module before patching it
    real = passes.KGRAM.comoments

    def spy(*args):
        seen.append(blas_threads())
        return real(*args)

    monkeypatch.setattr(passes.KGRAM, "comoments", spy)
    X, y, _ = wide_data(np.random.default_rng(3))
    passes.moments_part(V.check_data(X, y, None, parallel=True), True, True)
    assert seen and all(t == 1 for t in seen[0])
    assert blas_threads() == before


def test_a_batch_fit_keeps_blas_on_one_thread_to_its_result(monkeypatch, blas_threads):
    """The d x d factorizations after the pass run on one BLAS thread too (see
    ``fastgd._engine.BLAS_ONE_THREAD_MAX_D``: woken, OpenBLAS's workers spun into the next
    fit's pass), the setting is restored after the fit, and a wider fit, or one narrower than
    the BLAS pass, leaves it alone."""
    from fastgd import _engine

    before = blas_threads()
    seen = []
    real = np.linalg.cholesky

    def spy(a):
        seen.append(blas_threads())
        return real(a)

    monkeypatch.setattr(np.linalg, "cholesky", spy)
    X, y, _ = wide_data(np.random.default_rng(5))
    res = fastgd.fit(X, y)
    assert res.converged and seen and all(t == [1] * len(before) for t in seen)
    assert blas_threads() == before
    seen.clear()
    monkeypatch.setattr(_engine, "BLAS_ONE_THREAD_MAX_D", D - 1)
    fastgd.fit(X, y)
    assert seen and all(t == before for t in seen)
    seen.clear()  # below the BLAS pass's width: nothing set (threadpoolctl costs a tiny fit)
    fastgd.fit(X[:, :5], y)
    assert seen and all(t == before for t in seen)


def test_without_threadpoolctl_the_compiled_kernel_computes_them(monkeypatch, small_layout,
                                                                  blas_calls):
    """BLAS's products change with its thread count (measured for OpenBLAS), which only
    threadpoolctl can set: without it the kernel computes the statistics, the same bits
    on any machine, and equal to the BLAS pass's to rounding."""
    X, y, sw = wide_data(np.random.default_rng(4), weighted=True)
    data = V.check_data(X, y, sw, parallel=True)
    with_blas = passes.moments_part(data, True, True)
    assert blas_calls == [D]
    monkeypatch.setattr(_threads, "_blas_control", None)
    without = passes.moments_part(data, True, True)
    assert blas_calls == [D]  # not called again
    monkeypatch.setattr(passes, "GRAM_BLAS_MIN_D", 10**9)
    kernel = passes.moments_part(data, True, True)
    assert np.array_equal(without, kernel)
    serial = passes.moments_part(V.check_data(X, y, sw, parallel=False), False, True)
    assert np.array_equal(serial, kernel)
    k = D + 1
    com, ref = with_blas[1 + k:].reshape(k, k), kernel[1 + k:].reshape(k, k)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    assert np.all(np.abs(com - ref) <= 1e-13 * scale)
    np.testing.assert_allclose(with_blas[:1 + k], kernel[:1 + k], rtol=1e-14)


def test_one_full_row_is_what_merge_full_returns():
    """The shortcut for a single row (no temporaries of the co-moment's size) returns
    what the merge it replaces returns, bit for bit (the upper triangle mirrored), for
    an asymmetric row too (NumPy's weighted einsum rounds the two triangles
    differently); rows of zero weight give zeros."""
    rng = np.random.default_rng(5)
    k = 7
    row = np.concatenate([[3.5], rng.normal(size=k), rng.normal(size=k * k)])
    for r in (row, np.concatenate([[0.0], row[1:]])):
        got = passes._one_full(r, k)
        ref = passes._merge_full(r[None, :], k)
        for g, e in zip(got, ref):
            assert np.array_equal(g, e)


def test_merge_blocks_equals_the_pairwise_merge():
    """The BLAS pass's in-place merge of its blocks (rank-one term as ``g g^T``, a few
    rows at a time) against the pairwise merge of the other passes, to rounding; rows of
    zero weight are skipped, a first row of zero weight too."""
    from fastgd.kernels import gram

    rng = np.random.default_rng(6)
    k = 300
    rows = []
    for W in (0.0, 10.0, 0.0, 4.0, 7.5):
        A = rng.normal(size=(20, k))
        rows.append(np.concatenate([[W], rng.normal(size=k) * 10, (A.T @ A).ravel()]))
    out = np.stack(rows)
    ref_W, ref_mean, ref_com = passes._merge_full(out.copy(), k)
    got = gram.merge_blocks(out, k)
    assert got[0] == ref_W == 21.5
    np.testing.assert_allclose(got[1:1 + k], ref_mean, rtol=1e-14)
    com = got[1 + k:].reshape(k, k)
    np.testing.assert_allclose(com, ref_com, rtol=1e-12, atol=1e-12 * np.abs(ref_com).max())
    assert np.array_equal(com, com.T)


def test_nan_in_wide_data_is_named(blas_calls):
    rng = np.random.default_rng(7)
    X, y, _ = wide_data(rng, n=30000)
    X[12345, 7] = np.nan
    with pytest.raises(ValueError, match="12345"):
        fastgd.fit(X, y)
    assert blas_calls == [D]


def ar1(rng, n, d, rho):
    X = np.empty((n, d))
    X[:, 0] = rng.standard_normal(n)
    for j in range(1, d):
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1 - rho * rho) * rng.standard_normal(n)
    y = X @ rng.standard_normal(d) + 0.7 + 0.1 * rng.standard_normal(n)
    return X, y


def test_correlated_wide_fit_reaches_lstsq_in_one_pass(blas_calls):
    """AR(1) columns, rho = 0.99 (kappa of the correlation matrix about 10^4, where the
    streaming solver needed 190 passes): the default fit is the gram path, its data read
    twice (the pass, and the refinement's exact gradient), at lstsq's optimum."""
    rng = np.random.default_rng(8)
    n, d = 20000, 100
    X, y = ar1(rng, n, d, 0.99)
    res = fastgd.fit(X, y)
    assert res.solver == "gram" and res.converged and res.n_passes == 2
    assert blas_calls == [d]
    A = np.column_stack([X, np.ones(n)])
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    coef = np.append(res.coef, res.intercept)
    np.testing.assert_allclose(coef, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    mse_ref = np.mean((y - A @ ref) ** 2)
    assert np.mean((y - A @ coef) ** 2) <= mse_ref * (1 + 1e-12)
    par = fastgd.fit(X, y, parallel=True)
    ser = fastgd.fit(X, y, parallel=False)
    assert np.array_equal(par.coef, ser.coef) and par.intercept == ser.intercept
    assert np.array_equal(par.loss_history, ser.loss_history)


def test_nearly_collinear_wide_data_still_warns(blas_calls):
    """A column that is another plus 1e-10 noise: the gram statistics cannot resolve it,
    the fit solves from the QR factor and warns, as before the BLAS pass."""
    rng = np.random.default_rng(9)
    n, d = 20000, 60
    X = rng.standard_normal((n, d))
    X[:, -1] = X[:, 0] + 1e-10 * rng.standard_normal(n)
    y = X @ np.ones(d) + rng.standard_normal(n)
    with pytest.warns(fastgd.IllConditionedWarning, match="nearly collinear"):
        res = fastgd.fit(X, y)
    assert res.solver == "gram" and "QR" in res.stop_reason
    assert blas_calls == [d]


@pytest.mark.parametrize("blocks", [1, 2, 6])
def test_gram_fit_stays_within_its_memory_budget(monkeypatch, blocks):
    """tracemalloc sees NumPy's allocations: the peak of a gram fit (data allocated
    before) stays under ``gram_bytes`` plus the slices' scratch of each thread (at most
    8 MB, a fixed size) and the O(n) vectors of the passes. Two blocks is the layout of
    these rows as they are (two slices); one block and six are forced."""
    n, d = 6000, 300
    if blocks == 1:
        monkeypatch.setattr(_chunking, "GRAM_MIN_BLOCKS", 1)
    if blocks > 2:
        monkeypatch.setattr(_chunking, "GRAM_BLOCK_ROWS", 1000)
        monkeypatch.setattr(_chunking, "GRAM_MIN_SLICE_ROWS", 400)
        monkeypatch.setattr(_chunking, "GRAM_MAX_SLICE_ROWS", 400)
    n_blocks, rows = _chunking.gram_layout(n, d)
    assert n_blocks == blocks
    X, y = ar1(np.random.default_rng(10), n, d, 0.9)
    fastgd.fit(X[:2000], y[:2000])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracemalloc.start()
        try:
            res = fastgd.fit(X, y)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert res.solver == "gram"
    scratch = min(fastgd.get_num_threads(), n_blocks) * (rows + 1) * (d + 1) * 8
    assert peak <= gram_bytes(n, d) + scratch + 8 * n * 8, (peak, gram_bytes(n, d), scratch)


def test_a_stream_of_blocks_merges_its_rows_as_they_come(monkeypatch):
    """``fit_chunks``' blocks: each block's co-moment row is folded in as it comes
    (``FullMerge``), one row held at a time, with the bits of the merge of every row
    stacked (the code before: the compiled merge above 32 rows, tested equal to the NumPy
    one in tests/test_small.py). Oracle: ``merge_moments`` of the stacked rows."""
    from fastgd.sources import ChunkSource

    rng = np.random.default_rng(11)
    d, m = 50, 400
    blocks = [(rng.normal(size=(m, d)) + 3.0, rng.normal(size=m)) for _ in range(40)]
    src = ChunkSource(blocks, parallel=False)
    rows = src._map(passes.moments_part, True)
    held = []
    real = passes.FullMerge.add

    def add(self, row):
        held.append(row)
        return real(self, row)

    monkeypatch.setattr(passes.FullMerge, "add", add)
    got = src.moments(True)
    ref = passes.merge_moments(np.stack(rows), d + 1, True)
    assert len(held) == 40
    for g, r in zip(got, ref):
        assert np.array_equal(g, r)


def test_a_wide_fit_without_threadpoolctl_installed(tmp_path):
    """threadpoolctl is optional: in an interpreter where it cannot be imported, the
    default wide fit runs its statistics through the compiled kernel: the bits of the
    kernel path forced in the same process (GRAM_BLAS_MIN_D; one process, so that both
    run the same compiled kernel), parallel == serial."""
    from ._without import run_without

    rng = np.random.default_rng(12)
    X, y = ar1(rng, 5000, 40, 0.9)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    code = (
        "import numpy as np, fastgd\n"
        "from fastgd import _threads\n"
        "from fastgd.sources import passes\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r}); y = np.load({str(tmp_path / 'y.npy')!r})\n"
        "a = fastgd.fit(X, y, parallel=True); b = fastgd.fit(X, y, parallel=False)\n"
        "assert a.solver == 'gram' and _threads._blas_control is None\n"
        "passes.GRAM_BLAS_MIN_D = 10**9\n"
        "k = fastgd.fit(X, y, parallel=True)\n"
        "for r in (b, k):\n"
        "    assert np.array_equal(a.coef, r.coef) and a.intercept == r.intercept\n"
        "print('ok')\n"
    )
    proc = run_without({"threadpoolctl"}, code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok"]


# -- streaming CG that moves to the gram path (d > GRAM_MAX_D) ----------------------------


def _switch_case(rng, rho, n=3000, d=520):
    X, y = ar1(rng, n, d, rho)
    A = np.column_stack([X, np.ones(n)])
    best = np.linalg.lstsq(A, y, rcond=None)[0]
    return X, y, A, best


def test_an_ill_conditioned_wide_fit_moves_to_the_gram_path(blas_calls):
    """AR(1) columns, rho = 0.99, d = 520 > GRAM_MAX_D: the default streams, does not
    converge within gram_switch_after passes, gathers the co-moments (one BLAS pass) and
    ends on them, at lstsq's optimum; the stream passes are the rule's number. Oracles:
    lstsq, and the gram path's own fit (solver="gram") to rounding."""
    from fastgd._plan import GRAM_MAX_D, gram_switch_after

    rng = np.random.default_rng(21)
    X, y, A, best = _switch_case(rng, 0.99)
    assert X.shape[1] > GRAM_MAX_D
    res = fastgd.fit(X, y)
    after = gram_switch_after(res.plan)
    assert res.solver == "stream" and after == 26
    assert res.converged
    moved = re.search(r"moved to the d x d statistics after (\d+) passes", res.stop_reason)
    assert moved, res.stop_reason
    assert blas_calls == [X.shape[1]]
    # predicted from the first iterations: well before the rule's cap
    assert PREDICT_AFTER < int(moved.group(1)) < after
    # the moments, the stream passes, the co-moments, the refinement's exact gradient
    assert res.n_passes == 1 + int(moved.group(1)) + 1 + 1
    coef = np.append(res.coef, res.intercept)
    mse_best = np.mean((y - A @ best) ** 2)
    assert np.mean((y - A @ coef) ** 2) <= mse_best * (1 + 1e-12)
    gram = fastgd.fit(X, y, solver="gram")
    np.testing.assert_allclose(coef, np.append(gram.coef, gram.intercept), rtol=0,
                               atol=1e-8 * np.abs(best).max())
    streamed = fastgd.fit(X, y, solver="stream")  # the user's choice: never moves
    assert "moved" not in streamed.stop_reason and streamed.n_passes > 3 * after


def test_the_prediction_of_the_passes_left_and_the_cap():
    """Oracle: the sequence itself. Losses whose decreases shrink by a factor q each
    iteration: the prediction is the pass at which the decrease first falls below tol
    times the loss (one pass per iteration here), computed by running the sequence on;
    decreases that do not shrink predict forever; before PREDICT_AFTER iterations, or
    without tol, nothing. The cap moves whatever the prediction."""
    from fastgd.solvers.oracles import StreamOracle, SwitchingOracle

    class Solver:
        history = []

    for q, tol in [(0.5, 1e-12), (0.8, 1e-9), (0.95, 1e-12)]:
        h = [100.0]
        for k in range(1, 8):
            h.append(h[-1] - q ** k)
        oracle = SwitchingOracle(StreamOracle(None, None), None, None, after=10**6, tol=tol)
        oracle.solver = Solver()
        oracle.solver.history = h
        oracle.stream.n_passes = len(h) - 1
        got = oracle.predicted_passes()
        k, loss = len(h) - 1, h[-1]
        while q ** k >= tol * abs(loss):  # the decreases to come
            k += 1
            loss -= q ** k
        assert got == pytest.approx(k, rel=0.02, abs=1.0), (q, tol)
    oracle.solver.history = [5.0, 4.0, 3.0, 2.0, 1.0, 0.0, -1.0]  # not shrinking
    assert oracle.predicted_passes() == np.inf
    oracle.solver.history = [5.0, 4.0, 3.5, 3.2]
    assert oracle.predicted_passes() is None  # too early
    oracle.tol = None
    oracle.solver.history = h
    assert oracle.predicted_passes() is None
    oracle.after = oracle.stream.n_passes
    assert oracle._due()


def test_a_well_conditioned_wide_fit_never_moves(blas_calls):
    """Independent columns of many rows (n = 40 d: the singular values of X within 1.4x
    of each other) converge within the budget: no co-moments pass at all."""
    rng = np.random.default_rng(22)
    X, y, A, best = _switch_case(rng, 0.0, n=20800)
    res = fastgd.fit(X, y)
    assert res.converged and "moved" not in res.stop_reason and blas_calls == []
    assert res.n_passes < 20
    coef = np.append(res.coef, res.intercept)
    assert np.mean((y - A @ coef) ** 2) <= np.mean((y - A @ best) ** 2) * (1 + 1e-12)


# -- the sample probe before the first pass (SwitchingOracle.start) ----------------------


@pytest.fixture
def probe_small(monkeypatch):
    """The probe on small data: its rows (4 d) may be any fraction of the data's."""
    from fastgd.solvers import oracles

    monkeypatch.setattr(oracles, "PROBE_MAX_FRACTION", 1.0)
    calls = []
    real = oracles.sample_fit

    def spy(*args):
        got = real(*args)
        calls.append(got[0] if got is not None else None)
        return got

    monkeypatch.setattr(oracles, "sample_fit", spy)
    return calls


def test_an_ill_conditioned_sample_moves_before_the_first_pass(blas_calls, probe_small):
    """rho = 0.99, d = 520: CG on 4 d rows of the data does not converge in twice the
    passes the move is worth, so the fit gathers the co-moments before any streaming
    pass: the moments, the co-moments and the refinement are its only passes. Oracle:
    lstsq, and the fit without the probe (which moves after its first iterations) to
    rounding."""
    from fastgd.solvers import oracles

    rng = np.random.default_rng(21)
    X, y, A, best = _switch_case(rng, 0.99)
    res = fastgd.fit(X, y)
    assert probe_small == [2 * 26 + 1] and blas_calls == [X.shape[1]]
    assert res.converged and "before its first streaming pass" in res.stop_reason
    assert res.n_passes == 3
    coef = np.append(res.coef, res.intercept)
    assert np.mean((y - A @ coef) ** 2) <= np.mean((y - A @ best) ** 2) * (1 + 1e-12)
    oracles.PROBE_MAX_FRACTION = 0.0  # (restored by the fixture's monkeypatch)
    late = fastgd.fit(X, y)
    assert "moved to the d x d statistics after" in late.stop_reason and late.n_passes > 5
    np.testing.assert_allclose(coef, np.append(late.coef, late.intercept), rtol=0,
                               atol=1e-8 * np.abs(best).max())


@pytest.mark.parametrize("weighted", [False, True])
def test_a_well_conditioned_sample_starts_the_fit_closer(blas_calls, probe_small, weighted):
    """Independent columns: the sample's fit converges (no move, no co-moments) and the
    streaming fit starts from its optimum, which saves passes; the answer is lstsq's.
    A start given by the user is kept (the probe still runs)."""
    from fastgd.solvers import oracles

    rng = np.random.default_rng(22)
    X, y, A, best = _switch_case(rng, 0.0, n=20800)
    sw = rng.uniform(0.5, 2.0, X.shape[0]) if weighted else None
    if weighted:
        r = np.sqrt(sw)
        best = np.linalg.lstsq(A * r[:, None], y * r, rcond=None)[0]
    res = fastgd.fit(X, y, sample_weight=sw)
    assert len(probe_small) == 1 and probe_small[0] <= 2 * 26 and blas_calls == []
    assert res.converged and "moved" not in res.stop_reason
    coef = np.append(res.coef, res.intercept)
    np.testing.assert_allclose(coef, best, rtol=0, atol=1e-9 * np.abs(best).max())
    oracles.PROBE_MAX_FRACTION = 0.0
    cold = fastgd.fit(X, y, sample_weight=sw)
    assert res.n_passes < cold.n_passes
    starts = []
    real = oracles.SwitchingOracle.start

    def spy(self, theta, replace=True):
        starts.append(replace)
        return real(self, theta, replace)

    oracles.SwitchingOracle.start = spy
    try:
        fastgd.fit(X, y, sample_weight=sw, init_coef=np.full(X.shape[1], 0.01))
        fastgd.fit(X, y, sample_weight=sw)
    finally:
        oracles.SwitchingOracle.start = real
    assert starts == [False, True]


@pytest.mark.parametrize("rho", [0.0, 0.99])
def test_a_checkpoint_of_a_probed_fit_resumes_bit_for_bit(tmp_path, probe_small, rho):
    """A fit that started from the sample's optimum (rho = 0) or moved before its first
    pass (rho = 0.99), checkpointed after an epoch or two and resumed, equals the fit run
    through: the resumed fit probes the same sample, decides the same, and goes on from
    the checkpoint's point."""
    rng = np.random.default_rng(26)
    X, y, _, _ = _switch_case(rng, rho, n=3000 if rho else 20800)
    full = fastgd.fit(X, y)
    assert ("before its first streaming pass" in full.stop_reason) == (rho > 0)
    ck = tmp_path / "probed.ckpt"
    # the callback's False ends the fit before that epoch's checkpoint: the checkpoint
    # is of the epoch before (the first, for the moved fit that ends after its second)
    stop = 2 if rho else 3
    part = fastgd.fit(X, y, checkpoint=ck, callback=lambda epoch, *_: epoch < stop)
    assert part.n_epochs == stop <= full.n_epochs
    res = fastgd.resume(ck, X, y)
    np.testing.assert_array_equal(res.coef, full.coef)
    assert res.intercept == full.intercept and res.n_passes == full.n_passes
    np.testing.assert_array_equal(res.loss_history, full.loss_history)


def test_the_sample_fit_is_the_samples_least_squares_fit():
    """Oracle: lstsq on the sample's rows (weighted) in the same coordinates; the count is
    scale-free (the data times 1e100 or 1e-100 and the fit's own coordinates give the same
    iterations); no weight decides nothing; a cap that is too low says so."""
    from fastgd import solvers
    from fastgd.solvers.oracles import sample_fit
    from fastgd.sources.arrays import ArraySource

    rng = np.random.default_rng(24)
    n, d = 4000, 30
    X, y = ar1(rng, n, d, 0.5)
    X[:, 3] = 2.5  # constant: masked out
    sw = rng.uniform(0.0, 2.0, n)
    counts = []
    for scale in (1.0, 1e100, 1e-100):
        src = ArraySource(V.check_data(X * scale, y, sw, parallel=False), False)
        sc = solvers.Scaled(src, "mean", True, True, 0.0, 0.0, full=False)
        Xs, ys, ws = src.sample(400)
        assert Xs.shape == (400, d) and np.array_equal(ys, y[np.linspace(0, n - 1, 400)
                                                             .astype(np.int64)])
        k, theta = sample_fit(Xs.copy(), ys, ws, sc, 1e-12, 500)
        counts.append(k)
        Z = np.column_stack([(Xs - sc.m) / sc.s, np.ones(400)]) * sc.mask
        r = np.sqrt(ws)
        ref = np.linalg.lstsq(Z * r[:, None], ys * r, rcond=None)[0]
        live = sc.mask > 0
        np.testing.assert_allclose(theta[live], ref[live], rtol=0,
                                   atol=1e-4 * np.abs(ref).max())
        assert theta[3] == 0.0
        assert sample_fit(Xs.copy(), ys, ws, sc, 1e-12, 2)[0] == 3
        assert sample_fit(Xs.copy(), ys, np.zeros(400), sc, 1e-12, 50) is None
    assert counts[0] == counts[1] == counts[2] and 3 < counts[0] < 500


def test_a_sample_is_spread_over_the_blocks():
    """Source.sample: each block's share of the rows, evenly spaced, in block order
    (oracle: the indices computed here)."""
    from fastgd.sources.chunks import ChunkSource

    rng = np.random.default_rng(25)
    X, y = rng.normal(size=(1000, 4)), rng.normal(size=1000)
    src = ChunkSource([(X[:600], y[:600]), (X[600:], y[600:])])
    assert src.rows_in_memory
    Xs, ys, sw = src.sample(100)
    idx = np.r_[np.linspace(0, 599, 60).astype(np.int64),
                600 + np.linspace(0, 399, 40).astype(np.int64)]
    np.testing.assert_array_equal(Xs, X[idx])
    np.testing.assert_array_equal(ys, y[idx])
    assert np.array_equal(sw, np.ones(100))


@pytest.mark.parametrize("kw", [dict(solver="stream"), dict(loss="huber"),
                                dict(optimizer="nesterov"), dict(penalty="l1", alpha=0.1)])
def test_the_switch_is_only_for_the_automatic_squared_cg_fit(kw):
    """gram_switch_after is None for a solver given by the user, another loss, another
    optimizer (and so L1), sparse rows, or statistics over the memory budget; 20 passes
    (or d / 20) otherwise."""
    from fastgd import _plan
    from fastgd._plan import FitPlan
    from fastgd.sources import DataFacts

    facts = DataFacts(n=3000, d=520, dtype="float64", weighted=False)
    assert _plan.gram_switch_after(FitPlan.build(facts)) == 26
    assert _plan.gram_switch_after(FitPlan.build(
        DataFacts(n=3000, d=1500, dtype="float64", weighted=False))) == 75
    assert _plan.gram_switch_after(FitPlan.build(facts, **kw)) is None
    sparse = DataFacts(n=3000, d=520, dtype="float64", weighted=False, sparse=True)
    assert _plan.gram_switch_after(FitPlan.build(sparse)) is None
    assert _plan.gram_switch_after(FitPlan.build(
        DataFacts(n=3000, d=20000, dtype="float64", weighted=False))) is None  # over budget


@pytest.mark.parametrize("stop_at", [3, 6])
def test_a_checkpoint_before_or_after_the_move_resumes_bit_for_bit(tmp_path, stop_at):
    """The stream passes and the loss history (which decide the move) travel in the
    checkpoint: a fit stopped before the move (epoch 3) or after it (epoch 6, the first
    on the statistics: preconditioned CG ends one epoch later) and resumed equals the fit
    run through."""
    rng = np.random.default_rng(23)
    X, y, _, _ = _switch_case(rng, 0.99)
    full = fastgd.fit(X, y)
    assert "moved" in full.stop_reason and full.n_epochs == 7
    ck = tmp_path / "wide.ckpt"
    part = fastgd.fit(X, y, checkpoint=ck, callback=lambda epoch, *_: epoch < stop_at)
    assert part.n_epochs == stop_at
    assert ("moved" in part.stop_reason) == (stop_at == 6)
    res = fastgd.resume(ck, X, y)
    np.testing.assert_array_equal(res.coef, full.coef)
    assert res.intercept == full.intercept and res.n_passes == full.n_passes
    np.testing.assert_array_equal(res.loss_history, full.loss_history)


def test_preconditioned_cg_ends_in_two_iterations_at_the_optimum(monkeypatch):
    """CG on the statistics to a tolerance, preconditioned by the inverse Gram matrix:
    the first step is the Newton step, the stopping rule holds one iteration later.
    Oracles: lstsq, and plain CG (``PCG_MAX_D`` below d: the same optimum in many more
    iterations; ``tol=None``: the plain trajectory, never preconditioned)."""
    from fastgd.solvers import batch

    rng = np.random.default_rng(31)
    n, d = 4000, 60
    X, y = ar1(rng, n, d, 0.99)
    A = np.column_stack([X, np.ones(n)])
    best = np.linalg.lstsq(A, y, rcond=None)[0]
    res = fastgd.fit(X, y)
    assert res.solver == "gram" and res.converged and res.n_epochs <= 2
    np.testing.assert_allclose(np.r_[res.coef, res.intercept], best, rtol=0,
                               atol=1e-10 * np.abs(best).max())
    fixed = fastgd.fit(X, y, tol=None, epochs=2)  # plain CG: two steps are far from there
    assert np.abs(np.r_[fixed.coef, fixed.intercept] - best).max() > 1e-3 * np.abs(best).max()
    monkeypatch.setattr(batch, "PCG_MAX_D", d - 1)
    plain = fastgd.fit(X, y)
    assert plain.converged and plain.n_epochs > 20
    np.testing.assert_allclose(np.r_[plain.coef, plain.intercept], best, rtol=0,
                               atol=1e-10 * np.abs(best).max())
    assert plain.final_loss == pytest.approx(res.final_loss, rel=1e-13)


def test_preconditioned_cg_with_a_fixed_intercept_or_a_constant_column():
    """The preconditioner covers the free parameters only: a fixed intercept keeps its
    value, and so does the weight of a constant column (absorbed by the intercept); the
    rest is lstsq's answer. Oracle: lstsq on the free parameters' columns."""
    rng = np.random.default_rng(32)
    n, d = 3000, 30
    X, y = ar1(rng, n, d, 0.9)
    res = fastgd.fit(X, y, fit_intercept=False, init_intercept=0.25)
    ref = np.linalg.lstsq(X, y - 0.25, rcond=None)[0]
    assert res.converged and res.n_epochs <= 3 and res.intercept == 0.25
    np.testing.assert_allclose(res.coef, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    X[:, 5] = 2.5
    res = fastgd.fit(X, y)
    live = np.r_[0:5, 6:d]
    ref = np.linalg.lstsq(np.column_stack([X[:, live], np.ones(n)]), y, rcond=None)[0]
    assert res.converged and res.n_epochs <= 3 and res.coef[5] == 0.0
    np.testing.assert_allclose(np.r_[res.coef[live], res.intercept], ref, rtol=0,
                               atol=1e-10 * np.abs(ref).max())
