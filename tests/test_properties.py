"""Hypothesis properties: the gradient is the derivative of the loss; batch loss ignores row order."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fastgd
from fastgd import _validation
from fastgd import sources as _sources
from fastgd.solvers import Objective

finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False)


@st.composite
def problems(draw):
    n = draw(st.integers(2, 40))
    d = draw(st.integers(1, 4))
    X = draw(arrays(np.float64, (n, d), elements=finite))
    y = draw(arrays(np.float64, n, elements=finite))
    coef = draw(arrays(np.float64, d + 1, elements=st.floats(-5, 5)))
    return X, y, coef


@settings(max_examples=60, deadline=None)
@given(problems(), st.sampled_from(["mean", "sum"]))
def test_gradient_equals_finite_differences(problem, reduction):
    X, y, coef = problem
    obj = Objective(_sources.ArraySource(_validation.check_data(X, y), False), reduction, True)
    _, grad = obj(coef)
    # the loss is quadratic: the central difference is exact up to rounding
    h = 1e-3
    scale = obj.loss(coef) + 1.0
    for j in range(len(coef)):
        e = np.zeros_like(coef)
        e[j] = h
        fd = (obj.loss(coef + e) - obj.loss(coef - e)) / (2 * h)
        assert abs(fd - grad[j]) <= 1e-6 * (abs(grad[j]) + scale / h * 1e-7 + 1.0)


# a rate of 1e-4 can exceed the stable limit of a drawn problem: the warning that says so
# is tested in tests/test_stochastic.py; here only the order of the rows matters
@pytest.mark.filterwarnings("ignore:the fit ended with a loss:fastgd.ConvergenceWarning")
@settings(max_examples=40, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_batch_loss_invariant_to_row_order(problem, r):
    X, y, _ = problem
    order = list(range(len(y)))
    r.shuffle(order)
    a = fastgd.fit(X, y, learning_rate=1e-4, epochs=3)
    b = fastgd.fit(X[order], y[order], learning_rate=1e-4, epochs=3)
    np.testing.assert_allclose(b.loss_history, a.loss_history, rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_sse_zero_on_exact_data(problem):
    X, _, coef = problem
    # integers-valued data so that y = X w + b is exact in floating point
    Xi = np.round(X)
    ci = np.round(coef)
    y = Xi @ ci[:-1] + ci[-1]
    assert fastgd.sse(Xi, y, ci[:-1], ci[-1]) == 0.0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 14), st.sampled_from([np.float32, np.float64]),
       st.integers(1, 9), st.booleans(), st.integers(0, 2**32 - 1))
def test_every_gradient_kernel_matches_the_slow_twin(n, d, dtype, n_chunks, parallel, seed):
    """Whatever the shape, chunking and dtype, the kernel ``sse_grad_kernel`` picks (narrow,
    eight-row, four-row, d = 1) agrees with tests/naive.py on the float64-widened data."""
    from fastgd import kernels as _kernels
    from tests import naive

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = (X @ rng.normal(size=d) + rng.normal(size=n)).astype(dtype)
    coef = rng.normal(size=d + 1)
    out = np.empty((n_chunks, d + 2))
    from fastgd import _threads

    _threads.run_chunks(_kernels.sse_grad_kernel(d, False), (X, y, np.empty(0), coef, out),
                        n_chunks, parallel)
    ref = naive.sse_grad(X.astype(np.float64), y.astype(np.float64), None, coef)
    np.testing.assert_allclose(out.sum(axis=0), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(1, 6), st.sampled_from([np.float32, np.float64]),
       st.integers(1, 7), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6),
                                             st.sampled_from([np.nan, np.inf, -np.inf])),
                                   max_size=6))
def test_nonfinite_kernel_matches_the_slow_twin(n, k, dtype, n_chunks, bad):
    """Count and first row of rows holding NaN/inf, for any placement and chunking."""
    from fastgd import kernels as _kernels
    from tests import naive

    A = np.linspace(-1e3, 1e3, n * k).astype(dtype).reshape(n, k)
    for i, j, v in bad:
        A[i % n, j % k] = v
    out = np.empty((n_chunks, 2), dtype=np.int64)
    bits, emask = _validation.nonfinite_bits(A)
    from fastgd import _threads

    _threads.run_chunks(_kernels._nonfinite, (bits, emask, k, out), n_chunks, True)
    firsts = out[:, 1][out[:, 1] >= 0]
    got = (int(out[:, 0].sum()), int(firsts[0]) if firsts.size else -1)
    assert got == naive.nonfinite(A)
