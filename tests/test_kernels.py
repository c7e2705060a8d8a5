"""Every kernel against its slow twin in tests/naive.py, and serial == parallel bitwise."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastgd import _chunking, _threads, _validation
from fastgd import kernels as _kernels
from fastgd import sources as _sources
from fastgd.solvers import sgd as solver_sgd
from fastgd.solvers import textbook
from fastgd.sources import passes as _passes
from tests import naive
from tests.conftest import make_linear


def _nonfinite(A, out, parallel=False):
    bits, emask = _validation.nonfinite_bits(A)
    _threads.run_chunks(_kernels._nonfinite, (bits, emask, A.shape[1], out), out.shape[0],
                        parallel)


def _sse_grad(kernel, X, y, sw, coef, n_chunks, parallel=False):
    """A pass of ``kernel`` over ``n_chunks`` chunks: one call over all of them (serial),
    or fastgd's threads claiming groups of them (parallel)."""
    out = np.empty((n_chunks, X.shape[1] + 2))
    _threads.run_chunks(kernel, (X, y, sw, coef, out), n_chunks, parallel)
    return out.sum(axis=0), out


# every width class of sse_grad_kernel: d = 1 path, narrow (2..4), eight-row (5..12),
# four-row (13+), each at its edges
WIDTHS = [1, 2, 3, 4, 5, 10, 12, 13, 17]


@pytest.mark.parametrize("d", WIDTHS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("variant", ["serial", "parallel"])
@pytest.mark.parametrize("which", ["selected", "generic"])
def test_sse_grad_matches_naive(rng, d, weighted, variant, which):
    # 503 rows in 7 chunks of 72 (a multiple of 8) and a last one of 71: every kernel's
    # row-group loop and its tail run
    X, y, _ = make_linear(rng, 503, d)
    sw = rng.uniform(0, 3, 503) if weighted else np.empty(0)
    coef = rng.normal(size=d + 1)
    kernel = _kernels.sse_grad_kernel(d, weighted) if which == "selected" else _kernels._sse_grad
    got, _ = _sse_grad(kernel, X, y, sw, coef, 7, variant == "parallel")
    ref = naive.sse_grad(X, y, sw, coef)
    assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_sse_grad_kernel_choice():
    assert _kernels.sse_grad_kernel(1, False) is _kernels._sse_grad_1d
    assert _kernels.sse_grad_kernel(1, True) is _kernels._sse_grad_1d
    assert _kernels.sse_grad_kernel(3, False) is _kernels._sse_grad_narrow
    assert _kernels.sse_grad_kernel(10, False) is _kernels._sse_grad_rows8
    assert _kernels.sse_grad_kernel(10, True) is _kernels._sse_grad
    assert _kernels.sse_grad_kernel(13, False) is _kernels._sse_grad


@pytest.mark.parametrize("d", [1, 3, 5, 10, 20])
def test_sse_grad_float32_accumulates_in_float64(rng, d):
    X, y, _ = make_linear(rng, 2000, d, dtype=np.float32)
    coef = rng.normal(size=d + 1)
    got, _ = _sse_grad(_kernels.sse_grad_kernel(d, False), X, y, np.empty(0), coef, 3)
    # oracle: the float32 values, widened exactly to float64
    ref = naive.sse_grad(X.astype(np.float64), y.astype(np.float64), None, coef)
    assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("kernel", ["sse_grad-4", "sse_grad-7", "sse_grad-20", "nonfinite"])
@pytest.mark.parametrize("n_threads", [1, 2, "max"])
def test_serial_parallel_bitwise(rng, threads, kernel, n_threads):
    threads.set(threads.max if n_threads == "max" else min(n_threads, threads.max))
    n = 3 * _chunking.CHUNK_ROWS + 123
    d = int(kernel.split("-")[1]) if kernel.startswith("sse_grad") else 4
    X, y, _ = make_linear(rng, n, d)
    if kernel.startswith("sse_grad"):
        coef = rng.normal(size=d + 1)
        nc = _chunking.n_chunks(n)
        kernel = _kernels.sse_grad_kernel(d, False)
        _, a = _sse_grad(kernel, X, y, np.empty(0), coef, nc)
        _, b = _sse_grad(kernel, X, y, np.empty(0), coef, nc, parallel=True)
    else:
        X[[5, n - 2]] = np.nan
        a = np.empty((_chunking.n_chunks(n), 2), dtype=np.int64)
        b = a.copy()
        _nonfinite(X, a)
        _nonfinite(X, b, parallel=True)
    assert_array_equal(a, b)


@pytest.mark.parametrize("d", [3, 10])
def test_sse_grad_independent_of_chunk_count(rng, d):
    X, y, _ = make_linear(rng, 10_001, d)
    coef = rng.normal(size=d + 1)
    kernel = _kernels.sse_grad_kernel(d, False)
    sums = [_sse_grad(kernel, X, y, np.empty(0), coef, k, True)[0] for k in (1, 2, 7, 64)]
    for s in sums[1:]:
        assert_allclose(s, sums[0], rtol=1e-12, atol=1e-12 * np.abs(sums[0]).max())


@pytest.mark.parametrize("d", [1, 3, 7, 17])
def test_more_chunks_than_rows(rng, d):
    """Trailing chunks are empty (their start lies past n): they contribute zeros."""
    X, y, _ = make_linear(rng, 5, d)
    coef = rng.normal(size=d + 1)
    got, rows = _sse_grad(_kernels.sse_grad_kernel(d, False), X, y, np.empty(0), coef, 4, True)
    assert_allclose(got, naive.sse_grad(X, y, None, coef), rtol=1e-12)
    X[4, 0] = np.nan
    out = np.empty((4, 2), dtype=np.int64)
    _nonfinite(X, out, parallel=True)
    assert out[:, 0].sum() == 1 and out[:, 1].max() == 4


@pytest.mark.parametrize("variant", [0, 1])
def test_nonfinite_matches_naive(rng, variant):
    X = rng.normal(size=(1000, 3))
    X[17, 1] = np.nan
    X[400, 0] = np.inf
    X[401, 2] = -np.inf
    out = np.empty((5, 2), dtype=np.int64)
    _nonfinite(X, out, parallel=bool(variant))
    firsts = out[:, 1][out[:, 1] >= 0]
    assert (int(out[:, 0].sum()), int(firsts[0])) == naive.nonfinite(X) == (3, 17)


def test_nonfinite_float32_and_clean(rng):
    X = rng.normal(size=(300, 2)).astype(np.float32)
    out = np.empty((2, 2), dtype=np.int64)
    _nonfinite(X, out)
    assert out[:, 0].sum() == 0 and (out[:, 1] == -1).all()
    X[299, 1] = np.float32("inf")
    _nonfinite(X, out)
    assert (int(out[:, 0].sum()), int(out[:, 1].max())) == naive.nonfinite(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonfinite_edge_values(dtype):
    """Oracle: np.isfinite. The extremes of the finite range are clean; every NaN (any
    sign or payload) and both infinities are caught."""
    fi = np.finfo(dtype)
    clean = np.array([fi.max, -fi.max, fi.tiny, fi.smallest_subnormal, -0.0, 0.0, 1.0], dtype=dtype)
    itype = np.uint32 if dtype == np.float32 else np.uint64
    nan_payload = (np.array([np.nan], dtype=dtype).view(itype) | itype(1)).view(dtype)[0]
    bad = np.array([np.nan, -np.nan, np.inf, -np.inf, nan_payload], dtype=dtype)
    X = np.tile(clean, 40).reshape(-1, 1)
    out = np.empty((3, 2), dtype=np.int64)
    _nonfinite(X, out, parallel=True)
    assert out[:, 0].sum() == 0
    rows = [3, 77, 150, 200, 279]
    for r, v in zip(rows, bad):
        X[r, 0] = v
    _nonfinite(X, out)
    assert int(out[:, 0].sum()) == int((~np.isfinite(X)).sum()) == 5
    assert int(out[:, 1][out[:, 1] >= 0][0]) == 3


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("parallel", [False, True])
def test_moments_match_exact(rng, d, weighted, parallel, monkeypatch):
    # small blocks and sub-chunks so that merging is exercised
    monkeypatch.setattr(_passes, "moment_layout", lambda n, d: (-(-n // 64), 16))
    X, y, _ = make_linear(rng, 300, d)
    X += 1e4  # a large offset: naive one-pass formulas would lose digits here
    sw = rng.uniform(0, 2, 300) if weighted else np.empty(0)
    sw_arg = sw if weighted else None
    data = _validation.check_data(X, y, sw_arg, parallel=parallel)
    W, mean, com = _sources.ArraySource(data, parallel).moments(full=True)
    W_ref, mean_ref, com_ref = naive.moments(X, y, sw)
    assert W == pytest.approx(W_ref, rel=1e-14)
    assert_allclose(mean, mean_ref, rtol=1e-14)
    assert_allclose(com, com_ref, rtol=1e-11, atol=1e-11 * np.abs(com_ref).max())


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("parallel", [False, True])
def test_max_step_norm_matches_naive(rng, weighted, fit_intercept, parallel):
    X, y, _ = make_linear(rng, 70_000, 3)  # three chunks
    sw = rng.uniform(0, 2, 70_000) if weighted else None
    sw_ref = sw if weighted else np.ones(70_000)
    if weighted:
        sw[5] = 0.0
        X[5] = 1e3  # a zero-weight row never counts
    centres, inv = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    data = _validation.check_data(X, y, sw)
    got = _sources.ArraySource(data, parallel).max_norm(centres, inv, fit_intercept)
    ref = naive.max_step_norm(X, sw_ref, centres, inv, fit_intercept)
    assert got == pytest.approx(ref, rel=1e-14)


def test_moments_parallel_bitwise(rng, threads, monkeypatch):
    monkeypatch.setattr(_passes, "moment_layout", lambda n, d: (-(-n // 500), 50))
    X, y, _ = make_linear(rng, 4000, 2)
    data = _validation.check_data(X, y)
    a = _sources.ArraySource(data, False).moments(full=True)
    for k in {1, threads.max}:
        threads.set(k)
        b = _sources.ArraySource(data, True).moments(full=True)
        for u, v in zip(a, b):
            assert_array_equal(u, v)


def _SQUARED_SGD():
    from fastgd.losses import get

    return _kernels.sgd_kernels(get("squared"))


def _raw_epoch(X, y, sw, perm, lr, batch_size, reduction, wscale, fit_intercept, coef0, parts=1):
    """Plain SGD through the one SGD kernel family at the identity scaling (as
    fastgd.solvers.textbook.PlainSGD runs it): ``(params (parts, d + 1), steps (parts,))``."""
    d = X.shape[1]
    coords = textbook.raw_coords(d)
    params = textbook.raw_params(lr, batch_size, reduction, wscale, fit_intercept)
    if parts == 1:
        state = np.array([coef0, coef0], dtype=np.float64)
        steps = _SQUARED_SGD().any(X, y, sw, perm, coords, params, state)
        return state[:1, :].copy(), np.array([steps])
    state = np.array([coef0, coef0], dtype=np.float64)
    data = _validation.Data(X, y, sw, float(X.shape[0]), False)
    steps, states = solver_sgd.mix_epoch(_SQUARED_SGD().any, data, perm, coords, params,
                                       state, parts)
    return states[:, 0].copy(), steps


@pytest.mark.parametrize("batch_size", [1, 4, 7])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("d,fit_intercept", [(1, True), (1, False), (3, True), (3, False)])
def test_sgd_epoch_matches_naive(rng, batch_size, reduction, weighted, d, fit_intercept):
    n = 97
    X, y, _ = make_linear(rng, n, d)
    sw = rng.uniform(0, 2, n) if weighted else np.empty(0)
    perm = rng.permutation(n).astype(np.int64)
    coef0 = rng.normal(size=d + 1)
    lr, wscale = 0.01, (n / sw.sum() if weighted and reduction == "mean" else 1.0)
    got, steps = _raw_epoch(X, y, sw, perm, lr, batch_size, reduction, wscale, fit_intercept, coef0)
    ref = naive.sgd_epoch(X, y, sw, perm, lr, batch_size, reduction, wscale, fit_intercept, coef0)
    assert steps[0] == -(-n // batch_size)
    assert_allclose(got[0], ref, rtol=1e-12, atol=1e-14)


def test_sgd_epoch_parts_are_independent_runs(rng, threads):
    """Parameter mixing: each part equals a serial run over its slice, whatever the
    thread count (bitwise)."""
    n, d, parts = 1000, 2, 4
    X, y, _ = make_linear(rng, n, d)
    perm = rng.permutation(n).astype(np.int64)
    coef0 = np.zeros(d + 1)
    a, _ = _raw_epoch(X, y, np.empty(0), perm, 0.02, 1, "mean", 1.0, True, coef0, parts=parts)
    for p in range(parts):
        ref = naive.sgd_epoch(X, y, None, perm[p * 250:(p + 1) * 250], 0.02, 1, "mean", 1.0, True, coef0)
        assert_allclose(a[p], ref, rtol=1e-12)
        alone, _ = _raw_epoch(X, y, np.empty(0), perm[p * 250:(p + 1) * 250], 0.02, 1, "mean", 1.0,
                              True, coef0)
        assert_array_equal(a[p], alone[0])
    for k in {1, threads.max}:
        threads.set(k)
        b, _ = _raw_epoch(X, y, np.empty(0), perm, 0.02, 1, "mean", 1.0, True, coef0, parts=parts)
        assert_array_equal(a, b)


def test_sgd_epoch_reports_nonfinite_row():
    X = np.array([[1.0], [1e200], [2.0]])
    y = np.array([1.0, 1e200, 2.0])
    _, steps = _raw_epoch(X, y, np.empty(0), np.arange(3), 1.0, 1, "mean", 1.0, True, np.zeros(2))
    assert steps[0] < 0  # stopped at the overflowing row, not silently NaN


@pytest.mark.parametrize("n,n_buckets", [(1, 1), (10, 1), (1000, 4), (5000, 16)])
@pytest.mark.parametrize("seed", [0, 1, 2**63 - 2])
def test_permutation_matches_naive_any_chunking(n, n_buckets, seed):
    ref = naive.permutation(n, seed, n_buckets)
    assert np.array_equal(np.sort(ref), np.arange(n))
    for chunks, parallel in ((1, False), (3, False), (3, True), (7, True)):
        got = np.full(n, -1, dtype=np.int64)
        with monkeypatched_layout(n_buckets, chunks):
            _sources.permutation(n, seed, parallel, out=got)
        assert_array_equal(got, ref)


def monkeypatched_layout(n_buckets, n_chunks):
    import contextlib

    @contextlib.contextmanager
    def patched():
        before = _passes.perm_layout
        _passes.perm_layout = lambda m: (n_buckets, n_chunks)
        try:
            yield
        finally:
            _passes.perm_layout = before

    return patched()


def test_permutation_is_uniform():
    """All 24 orders of 4 items, equally often over 24,000 seeds (chi-square, 23 dof)."""
    from itertools import permutations

    index = {p: k for k, p in enumerate(permutations(range(4)))}
    counts = np.zeros(24)
    out = np.empty(4, dtype=np.int64)
    with monkeypatched_layout(2, 1):
        for seed in range(24_000):
            _sources.permutation(4, seed, False, out=out)
            counts[index[tuple(out)]] += 1
    chi2 = ((counts - 1000) ** 2 / 1000).sum()
    assert chi2 < 60  # P(chi2_23 > 60) ~ 4e-5 for a uniform shuffle


@pytest.mark.parametrize("d,batch_size", [(1, 1), (1, 5), (2, 1), (2, 5)])
def test_sgd_epoch_nonfinite_mid_epoch_keeps_last_finite_params(d, batch_size):
    """Every kernel path stops at the first non-finite residual, never returning NaN."""
    n = 40
    X = np.ones((n, d))
    y = np.ones(n)
    y[23] = np.inf
    got, steps = _raw_epoch(X, y, np.empty(0), np.arange(n), 0.01, batch_size, "mean", 1.0, True,
                            np.zeros(d + 1))
    assert steps[0] == -(23 + 1)
    assert np.all(np.isfinite(got[0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_prefetch_is_only_a_hint(dtype):
    """Oracle: the same sum without prefetches. Prefetching past the end must not fault."""
    import numba

    from fastgd._intrinsics import prefetch

    @numba.njit
    def total(a, ahead):
        s = 0.0
        for i in range(a.shape[0]):
            prefetch(a, i + ahead)
            s += a[i]
        return s

    a = np.arange(10_000).astype(dtype)
    assert total(a, 16) == total(a, 0) == float(a.astype(np.float64).sum())
    assert total(a, 100_000) == total(a, 0)  # far past the end: a hint, never a fault


def test_prefetch_rejects_what_it_does_not_support():
    import numba

    from fastgd._intrinsics import prefetch

    @numba.njit
    def bad(a):
        prefetch(a, 0)

    with pytest.raises(numba.core.errors.TypingError):
        bad(np.zeros((2, 2)))


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_run_with_gives_each_thread_its_own_value(workers):
    """``_threads.run_with``: every task runs once, with the value of the thread that runs
    it, made once per thread (the co-moments pass's scratch). Oracle: the record of calls."""
    import threading

    made, seen = [], {}
    lock = threading.Lock()

    def make():
        with lock:
            made.append(threading.get_ident())
        return {"owner": threading.get_ident()}

    def task(i, value):
        assert value["owner"] == threading.get_ident()
        with lock:
            seen[i] = value["owner"]

    _threads.run_with(task, 37, workers, make)
    assert sorted(seen) == list(range(37))
    assert len(made) == len(set(made)) == len(set(seen.values())) <= workers
