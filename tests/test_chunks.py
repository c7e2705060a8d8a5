"""fastgd.fit_chunks: the same fits over blocks of rows.

Oracles: fastgd.fit on the concatenated arrays (batch parity to 1e-12 at uneven block
boundaries; one block equals the arrays bit for bit in every mode), the per-row twin of
tests/naive.py replaying the documented block-then-row shuffle, numpy.linalg.lstsq.
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastgd
from fastgd._chunking import perm_layout
from tests import naive

N = 4001
CUTS = [0, 13, 1000, 1001, 2600, N]  # uneven: a 13-row block and a 1-row block


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(N, 3)) * [1.0, 20.0, 0.05] + [0.0, 5.0, -1.0]
    y = X @ [1.0, 0.1, 30.0] + 4.0 + rng.normal(0, 0.2, N)
    y[::97] += 5.0  # outliers, for the Huber fits
    sw = rng.uniform(0.2, 2.0, N)
    return X, y, sw


def blocks_of(X, y, sw=None, cuts=CUTS):
    if sw is None:
        return [(X[a:b], y[a:b]) for a, b in zip(cuts, cuts[1:])]
    return [(X[a:b], y[a:b], sw[a:b]) for a, b in zip(cuts, cuts[1:])]


def params(res):
    return np.append(res.coef, res.intercept)


def counting_generator(blocks, reads):
    """A one-shot generator of ``blocks`` that records the index of each block read."""
    for k, blk in enumerate(blocks):
        reads.append(k)
        yield blk


BATCH_PATHS = {
    "default-gram-cg": dict(),
    "stream-cg": dict(solver="stream"),
    "gram-gd": dict(optimizer="gd", epochs=60, tol=None),
    "gram-momentum": dict(optimizer="momentum", epochs=60, tol=None),
    "stream-nesterov": dict(solver="stream", optimizer="nesterov", epochs=60, tol=None),
    "l2": dict(penalty="l2", alpha=0.5),
    "l1-gram": dict(penalty="l1", alpha=0.05, epochs=300),
    "elasticnet-stream": dict(penalty="elasticnet", alpha=0.05, solver="stream", epochs=300),
    "huber": dict(loss="huber", epsilon=0.5, epochs=200),
    "huber-momentum": dict(loss="huber", epsilon=0.5, optimizer="momentum", epochs=100, tol=None),
    "textbook": dict(learning_rate=2e-4, epochs=40),
    "sum-no-intercept": dict(reduction="sum", fit_intercept=False),
    "unscaled-gd": dict(scale=False, optimizer="gd", epochs=30, tol=None),
}


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("path", list(BATCH_PATHS))
def test_batch_parity_with_arrays_at_uneven_boundaries(problem, path, weighted):
    X, y, sw = problem
    sw = sw if weighted else None
    kw = BATCH_PATHS[path]
    ref = fastgd.fit(X, y, sample_weight=sw, **kw)
    for chunks in (blocks_of(X, y, sw), lambda: iter(blocks_of(X, y, sw))):
        got = fastgd.fit_chunks(chunks, **kw)
        assert got.converged == ref.converged and got.n_passes == ref.n_passes
        epochs = min(got.n_epochs, ref.n_epochs)
        if got.n_epochs != ref.n_epochs:
            # preconditioned CG's first step lands within rounding of the optimum, and the
            # statistics of the blocks and of the arrays differ in their last bits: the
            # stop at the rounding level ("orthogonal to every column to rounding") may
            # then come one epoch before the tolerance's
            assert ref.converged and ref.optimizer == "cg" and ref.solver == "gram"
            assert abs(got.n_epochs - ref.n_epochs) == 1
            assert "to rounding" in min(got, ref, key=lambda r: r.n_epochs).stop_reason
        scale = np.maximum(np.abs(params(ref)), 1e-12 * np.abs(params(ref)).max())
        assert np.max(np.abs(params(got) - params(ref)) / scale) <= 1e-12, path
        assert got.final_loss == pytest.approx(ref.final_loss, rel=1e-12)
        assert_allclose(got.loss_history[:epochs + 1], ref.loss_history[:epochs + 1], rtol=1e-11)


def test_block_boundaries_do_not_matter(problem):
    X, y, sw = problem
    fits = [fastgd.fit_chunks(blocks_of(X, y, sw, cuts)) for cuts in
            ([0, N], [0, 1, N], [0, 2000, N], list(range(0, N, 500)) + [N])]
    for res in fits[1:]:
        assert_allclose(params(res), params(fits[0]), rtol=1e-12)


def test_gram_path_is_one_pass_from_a_generator(problem):
    X, y, _ = problem
    reads = []
    res = fastgd.fit_chunks(counting_generator(blocks_of(X, y), reads))
    assert reads == list(range(len(CUTS) - 1))  # every block read once
    assert res.n_passes == 1 and res.converged and res.solver == "gram"
    ref = np.linalg.lstsq(np.column_stack([X, np.ones(N)]), y, rcond=None)[0]
    assert_allclose(params(res), ref, rtol=1e-10)


@pytest.mark.parametrize("kw", [dict(solver="stream"), dict(mode="sgd", tol=None), dict(mode="minibatch", tol=None),
                                dict(loss="huber"), dict(learning_rate=1e-3)])
def test_one_shot_generator_for_a_multi_pass_fit_is_a_type_error(problem, kw):
    X, y, _ = problem
    reads = []
    with pytest.raises(TypeError, match="one-shot iterator.*needs several passes.*callable"):
        fastgd.fit_chunks(counting_generator(blocks_of(X, y), reads), **kw)
    assert reads == [0]  # only the first block was read, to learn the columns


@pytest.mark.parametrize("kw", [
    dict(mode="sgd", tol=None, epochs=3), dict(mode="minibatch", tol=None, batch_size=32, epochs=3),
    dict(mode="sgd", tol=None, learning_rate=1e-4, epochs=2), pytest.param(dict(mode="sgd", early_stopping=True, epochs=4), marks=pytest.mark.filterwarnings(
        "ignore:the sgd fit did not meet its stopping rule:fastgd.ConvergenceWarning")),
    dict(mode="sgd", tol=None, parallel=True, epochs=2), dict(mode="minibatch", tol=None, learning_rate=1e-4, epochs=2, parallel=True),
    dict(mode="sgd", tol=None, penalty="elasticnet", alpha=1e-3, loss="huber", epochs=2),
])
def test_one_block_equals_arrays_bit_for_bit(problem, kw):
    """A single block is the array source's one block: same permutations, same kernels."""
    X, y, sw = problem
    ref = fastgd.fit(X, y, sample_weight=sw, random_state=5, **kw)
    got = fastgd.fit_chunks([(X, y, sw)], random_state=5, **kw)
    assert_array_equal(params(got), params(ref))
    assert_array_equal(got.loss_history, ref.loss_history)


@pytest.mark.parametrize("mode,bs", [("sgd", 1), ("minibatch", 7)])
def test_stochastic_visits_shuffled_blocks_then_shuffled_rows(problem, mode, bs):
    """The documented order: each epoch a permutation of the blocks, then a fresh
    permutation of each block's rows, all from random_state (replayed by the twin)."""
    X, y, _ = problem
    lr, epochs, seed = 1e-4, 2, 9
    res = fastgd.fit_chunks(blocks_of(X, y), mode=mode, batch_size=None if mode == "sgd" else bs,
                            learning_rate=lr, epochs=epochs, random_state=seed)
    rng = np.random.default_rng(seed)
    coef = np.zeros(4)
    sizes = np.diff(CUTS)
    for _ in range(epochs):
        for k in rng.permutation(len(sizes)):
            m = int(sizes[k])
            perm = naive.permutation(m, int(rng.integers(0, 2**63 - 1)), perm_layout(m)[0])
            rows = CUTS[k] + perm
            coef = naive.sgd_epoch(X, y, None, rows, lr, bs, "mean", 1.0, True, coef)
    assert_allclose(params(res), coef, rtol=1e-12)


def test_stochastic_modes_reach_the_optimum_and_are_seeded(problem):
    X, y, _ = problem
    y0 = X @ [1.0, 0.1, 30.0] + 4.0  # no outliers
    ref = np.linalg.lstsq(np.column_stack([X, np.ones(N)]), y0, rcond=None)[0]
    best = fastgd.mse(X, y0, ref[:3], ref[3])
    chunks = blocks_of(X, y0)
    a = fastgd.fit_chunks(chunks, mode="sgd", tol=None, epochs=20, random_state=1)
    b = fastgd.fit_chunks(chunks, mode="sgd", tol=None, epochs=20, random_state=1)
    c = fastgd.fit_chunks(chunks, mode="sgd", tol=None, epochs=20, random_state=2)
    assert_array_equal(params(a), params(b))
    assert not np.array_equal(params(a), params(c))
    assert a.final_loss <= best + 1e-3 * np.var(y0)


def test_early_stopping_holds_out_rows_of_every_block(problem):
    X, y, _ = problem
    res = fastgd.fit_chunks(blocks_of(X, y), mode="sgd", early_stopping=True, epochs=50,
                            random_state=0)
    assert res.converged or res.n_epochs == 50
    assert np.all(np.isfinite(params(res)))


# --- bad blocks: a clear error that names the block --------------------------------------

def test_bad_blocks_name_the_block(problem):
    X, y, sw = problem
    good = blocks_of(X, y)
    cases = [
        (good[:2] + [(X[:5, :2], y[:5])], ValueError, r"block 2 has 2 column\(s\) but block 0 has 3"),
        (good[:1] + [(X[:5].astype(np.float32), y[:5].astype(np.float32))], ValueError,
         r"block 1 has dtype float32 but block 0 has float64"),
        (good[:3] + [(X[:0], y[:0])], ValueError, r"block 3 is empty \(0 rows\)"),
        (good[:1] + [(X[:5], y[:4])], ValueError, r"block 1: X and y have different lengths"),
        (good[:1] + [(X[:5], y[:5], sw[:5])], ValueError, r"block 1 has no sample_weight but block 1 has|block 0 has no sample_weight but block 1 has"),
        (good[:1] + [X[:5]], TypeError, r"block 1: each block must be a tuple"),
        ([], ValueError, r"chunks is empty"),
    ]
    for chunks, exc, match in cases:
        with pytest.raises(exc, match=match):
            fastgd.fit_chunks(chunks)


@pytest.mark.parametrize("where", ["X", "y"])
@pytest.mark.parametrize("kw", [dict(), dict(mode="sgd", tol=None), dict(learning_rate=1e-3)])
def test_nan_in_a_block_names_the_block_and_row(problem, where, kw):
    X, y, _ = problem
    X, y = X.copy(), y.copy()
    (X if where == "X" else y)[CUTS[3] + 7] = np.nan  # block 3, row 7 of the block
    with pytest.raises(ValueError, match=rf"block 3: {where} has 1 row\(s\) with NaN or inf values "
                                         rf"\(first at row 7\).*start at row {CUTS[3]}"):
        fastgd.fit_chunks(blocks_of(X, y), **kw)


def test_blocks_that_change_between_passes_are_an_error(problem):
    X, y, _ = problem
    calls = []

    def chunks():
        calls.append(1)
        return iter(blocks_of(X, y)[: 5 - len(calls) % 2])

    with pytest.raises(ValueError, match="chunks changed between passes"):
        fastgd.fit_chunks(chunks, solver="stream")


def test_weights_summing_to_zero_over_all_blocks(problem):
    X, y, _ = problem
    with pytest.raises(ValueError, match="sums to zero over all blocks"):
        fastgd.fit_chunks([(X[:10], y[:10], np.zeros(10)), (X[10:20], y[10:20], np.zeros(10))],
                          solver="stream")


def test_a_zero_weight_block_is_allowed(problem):
    X, y, sw = problem
    w = sw.copy()
    w[:13] = 0.0
    ref = fastgd.fit(X, y, sample_weight=w)
    got = fastgd.fit_chunks(blocks_of(X, y, w))
    assert_allclose(params(got), params(ref), rtol=1e-12)


def test_sample_weight_keyword_points_to_the_blocks(problem):
    X, y, sw = problem
    with pytest.raises(TypeError, match="weights with the blocks"):
        fastgd.fit_chunks(blocks_of(X, y), sample_weight=sw)


def test_block_merge_of_tiny_weights_keeps_its_digits():
    """Found by the fuzz suite: under reassociation the merge of two blocks' co-moments
    formed Wa * Wb, which underflows for weights near 1e-140 (4 digits of com[0, 0] lost,
    and a reported loss 4e-9 off). Oracle: the in-memory fit's loss, and exact rational
    moments."""
    from fractions import Fraction as F

    from fastgd.sources import ChunkSource

    rng = np.random.default_rng(0)
    X = rng.normal(size=(9, 1)) * 1e-22
    y = rng.normal(size=9)
    sw = rng.uniform(0.5, 2.0, size=9) * 1e-140
    W = sum(F(w) for w in sw)
    mu = sum(F(w) * F(x) for w, x in zip(sw, X[:, 0])) / W
    exact = float(sum(F(w) * (F(x) - mu) ** 2 for w, x in zip(sw, X[:, 0])))
    for cut in (1, 4, 8):
        src = ChunkSource([(X[:cut], y[:cut], sw[:cut]), (X[cut:], y[cut:], sw[cut:])],
                          parallel=False)
        _, _, com = src.moments(full=True)
        assert com[0, 0] == pytest.approx(exact, rel=1e-14)
        res = fastgd.fit_chunks([(X[:cut], y[:cut], sw[:cut]), (X[cut:], y[cut:], sw[cut:])])
        assert res.final_loss == pytest.approx(
            fastgd.mse(X, y, res.coef, res.intercept, sample_weight=sw), rel=1e-12)
