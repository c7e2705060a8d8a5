"""Workloads of the benchmark suite: seeded data and its float64 reference figures.

Every contender is checked against figures computed here, independently of fastgd, in
float64 NumPy, block by block (so the reference never needs a float64 copy of a float32
``X`` nor a temporary of the data's size):

* ``loss_at`` / ``grad_at``: the mean squared error and its gradient at a fixed test
  point ``coef_test`` (what one batch epoch computes);
* ``opt_coef`` / ``opt_loss``: the least-squares optimum, from the normal equations of
  ``[X, 1]`` (the data is well conditioned: standard normal features), its loss by a
  second pass over the residuals (no cancellation);
* ``checksum``: ``sum(X) + sum(y)``, what the bandwidth reference returns.

Only numpy is imported here: ``bench/_memory_probe.py`` generates its data with
:func:`generate` in a fresh process.
"""
import os
from dataclasses import dataclass
from functools import cached_property

import numpy as np

SEED = 20261123
#: noise of the synthetic targets; the optimum's MSE is about its square (0.01).
NOISE = 0.1
INTERCEPT = 0.7
#: rows are generated and reduced in blocks of about this many bytes of float64.
BLOCK_BYTES = 1 << 22

DTYPES = ("float64", "float32")
#: the CI smoke run (``-m "not slow"``): n <= 10^6, and d = 100 only at n = 10^5.
SMALL_SIZES = ((10**5, 1), (10**5, 10), (10**5, 100), (10**6, 1), (10**6, 10))
#: behind the ``slow`` marker: n = 10^7 (X up to 8 GB for d = 100) and d = 100 at 10^6.
SLOW_SIZES = ((10**6, 100), (10**7, 1), (10**7, 10), (10**7, 100))
#: the tutorial's size, where the pure-Python loop still runs in milliseconds.
TUTORIAL_SIZE = (10**4, 1)
#: peers that copy ``X`` as float64 (``numpy.linalg.lstsq``, scikit-learn) run only
#: where that copy stays below this (every size but n = 10^7 with d = 100: 8 GB).
PEER_MAX_COPY_BYTES = 2 * 1024**3


@dataclass(frozen=True, order=True)
class Workload:
    """One benchmark workload: ``n`` rows, ``d`` features, one dtype."""

    n: int
    d: int
    dtype: str

    def __str__(self):
        """The workload part of a benchmark group name: ``n=100000|d=1|float64``."""
        return f"n={self.n}|d={self.d}|{self.dtype}"

    @property
    def id(self):
        """The pytest id, usable in ``-k``: ``n1e5-d10-float64`` (``-k "n1e5-d10-"`` picks
        d = 10 but not d = 100; ``-k "n1e5 and float32"`` works too)."""
        e = len(str(self.n)) - 1
        n = f"1e{e}" if self.n == 10**e else str(self.n)
        return f"n{n}-d{self.d}-{self.dtype}"

    @property
    def slow(self):
        return self.n > 10**6 or (self.n, self.d) in SLOW_SIZES

    @property
    def nbytes(self):
        """Bytes of ``X`` and ``y``."""
        return self.n * (self.d + 1) * np.dtype(self.dtype).itemsize

    @property
    def float64_copy_bytes(self):
        return self.n * (self.d + 1) * 8


def workloads(sizes=SMALL_SIZES + SLOW_SIZES, dtypes=DTYPES, where=None):
    """Workloads over ``sizes`` x ``dtypes`` (optionally filtered by ``where(w)``)."""
    out = [Workload(n, d, dt) for n, d in sizes for dt in dtypes]
    return [w for w in out if where is None or where(w)]


def peer_ok(w):
    """Whether the peers that copy X as float64 run on ``w`` (see PEER_MAX_COPY_BYTES)."""
    return w.float64_copy_bytes <= PEER_MAX_COPY_BYTES


def params(ws):
    """``pytest.param`` entries for ``ws``, the large ones marked ``slow``."""
    import pytest

    return [pytest.param(w, id=w.id, marks=[pytest.mark.slow] if w.slow else []) for w in ws]


def _block_rows(d):
    return max(1, BLOCK_BYTES // (8 * (d + 1)))


def true_params(n, d):
    """The generating weights of the ``(n, d)`` data (the optimum is close to them)."""
    rng = np.random.default_rng([SEED, n, d, 0])
    return rng.uniform(-2.0, 2.0, d)


def generate(n, d, dtype):
    """Seeded linear data ``y = X w + 0.7 + noise`` as C-contiguous ``(n, d)`` and ``(n,)``.

    Drawn block by block in float64 and stored in ``dtype``, so the float32 data is the
    float64 data rounded and no temporary larger than a block is ever made (the memory
    probe relies on that: after this call the peak RSS is the arrays themselves).
    """
    dtype = np.dtype(dtype)
    w = true_params(n, d)
    X = np.empty((n, d), dtype=dtype)
    y = np.empty(n, dtype=dtype)
    rng = np.random.default_rng([SEED, n, d, 1])
    step = _block_rows(d)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        xb = rng.standard_normal((hi - lo, d))
        X[lo:hi] = xb
        y[lo:hi] = xb @ w + INTERCEPT + NOISE * rng.standard_normal(hi - lo)
    return X, y


def _blocks(X, y):
    step = _block_rows(X.shape[1])
    for lo in range(0, X.shape[0], step):
        hi = min(X.shape[0], lo + step)
        yield X[lo:hi].astype(np.float64), y[lo:hi].astype(np.float64)


def loss_grad(X, y, coef):
    """Float64 MSE and its gradient (weights, then intercept) at ``coef`` (``(d + 1,)``).

    NumPy, block by block: the oracle of every epoch contender.
    """
    d = X.shape[1]
    coef = np.asarray(coef, dtype=np.float64)
    sse = 0.0
    g = np.zeros(d + 1)
    for xb, yb in _blocks(X, y):
        r = yb - (xb @ coef[:d] + coef[d])
        sse += float(r @ r)
        g[:d] += xb.T @ r
        g[d] += r.sum()
    n = X.shape[0]
    return sse / n, g * (-2.0 / n)


def mse(X, y, coef):
    """Float64 MSE at ``coef`` (weights, then intercept): :func:`loss_grad`'s loss."""
    return loss_grad(X, y, coef)[0]


class Dataset:
    """The arrays of one workload and their reference figures (computed once, lazily)."""

    def __init__(self, w):
        self.w = w
        self.X, self.y = generate(w.n, w.d, w.dtype)
        self.x1 = self.X.reshape(-1) if w.d == 1 else None  # the 1-D view for d = 1
        self.memo = {}  # values the benchmarks derive from the data (learning rates)

    @property
    def n(self):
        return self.w.n

    @property
    def d(self):
        return self.w.d

    @cached_property
    def coef_test(self):
        """The point every epoch contender evaluates: half the generating weights,
        intercept 0.35, rounded to float32 so float32 contenders hit it exactly."""
        c = np.append(0.5 * true_params(self.n, self.d), 0.5 * INTERCEPT)
        return c.astype(np.float32).astype(np.float64)

    @cached_property
    def at_test(self):
        """``(loss, grad)`` at :attr:`coef_test`, float64."""
        return loss_grad(self.X, self.y, self.coef_test)

    @cached_property
    def at_zero(self):
        """``(loss, grad)`` at zero: where every fit starts."""
        return loss_grad(self.X, self.y, np.zeros(self.d + 1))

    @cached_property
    def gram(self):
        """``(G, b)``: ``[X, 1]^T [X, 1]`` and ``[X, 1]^T y`` in float64."""
        d = self.d
        G = np.zeros((d + 1, d + 1))
        b = np.zeros(d + 1)
        for xb, yb in _blocks(self.X, self.y):
            s = xb.sum(axis=0)
            G[:d, :d] += xb.T @ xb
            G[:d, d] += s
            G[d, :d] += s
            G[d, d] += xb.shape[0]
            b[:d] += xb.T @ yb
            b[d] += yb.sum()
        return G, b

    @cached_property
    def optimum(self):
        """``(coef (d + 1,), loss)`` of the least-squares fit with intercept, float64."""
        G, b = self.gram
        coef = np.linalg.solve(G, b)
        return coef, mse(self.X, self.y, coef)

    @cached_property
    def lipschitz(self):
        """``L`` of the MSE gradient: ``2 lambda_max([X, 1]^T [X, 1]) / n``."""
        return 2.0 * float(np.linalg.eigvalsh(self.gram[0])[-1]) / self.n

    @cached_property
    def checksum(self):
        """``(sum(X) + sum(y), sum|X| + sum|y|)`` in float64: the reference read's answer
        and the scale of its rounding error."""
        s = 0.0
        a = 0.0
        for xb, yb in _blocks(self.X, self.y):
            s += float(xb.sum()) + float(yb.sum())
            a += float(np.abs(xb).sum()) + float(np.abs(yb).sum())
        return s, a


class DataCache:
    """Datasets kept between tests, within a byte budget (``BENCH_CACHE_GB``, default 3).

    The conftest orders the benchmarks by workload, so with any budget that holds one
    workload each dataset is generated once per session.
    """

    def __init__(self, budget_bytes=None):
        if budget_bytes is None:
            budget_bytes = float(os.environ.get("BENCH_CACHE_GB", "3")) * 1024**3
        self.budget = budget_bytes
        self._sets = {}

    def get(self, w):
        if w in self._sets:
            ds = self._sets.pop(w)
            self._sets[w] = ds  # most recently used last
            return ds
        while self._sets and sum(k.nbytes for k in self._sets) + w.nbytes > self.budget:
            self._sets.pop(next(iter(self._sets)))
        ds = self._sets[w] = Dataset(w)
        return ds
