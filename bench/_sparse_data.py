"""The seeded sparse workloads of ``bench/test_sparse.py`` and the memory probe
(:mod:`bench._memory_probe`, ``DTYPE`` ``hashed``): scipy is imported here, by the callers
that need it, never by ``import fastgd``.

* :func:`hashed`: each row stores ``k`` entries of +-1 at columns drawn uniformly from
  ``d`` (duplicates summed, as a feature hasher does), ``y = X w + 1 + N(0, 0.5^2)`` with
  ``w ~ N(0, 1)``;
* :func:`onehot`: ``k`` categorical fields of ``d / k`` levels each, one-hot encoded (one
  entry of 1 per field and row), the levels drawn with Zipf's law (level ``j`` with
  probability proportional to ``1 / (j + 1)``, as the values of real categorical columns
  are: a few frequent, a long tail seen once or never), ``y`` the sum of the levels'
  effects ``N(0, 1)`` plus ``1 + N(0, 0.5^2)``. Each field's columns add up to the
  column of ones, so ``[X, 1]`` is rank-deficient: the optimum's loss is unique, its
  weights are not. (Levels drawn uniformly make ``n = d`` a nearly square, nearly
  singular system: 10^5 x 10^5 in 10 fields took lsqr 34,888 iterations, 388 s, to fit
  the data to an MSE of 3e-5, which measures nothing a user fits; 2 Zipf fields observe
  39,190 of the 10^5 columns, and lsqr needs 2,024 iterations.)
"""
import numpy as np


def hashed(n, d, k, seed=0):
    """The hashed CSR matrix (int32 indices, float64 values) and its targets."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    cols = rng.integers(0, d, size=n * k).astype(np.int32)
    vals = rng.choice([-1.0, 1.0], size=n * k)
    X = sp.csr_matrix((vals, cols, np.arange(0, n * k + 1, k)), shape=(n, d))
    X.sum_duplicates()
    y = X @ rng.normal(size=d) + 1.0 + rng.normal(0, 0.5, n)
    return X, y


def onehot(n, d, k, seed=0):
    """``k`` one-hot encoded fields of ``d // k`` Zipf-distributed levels each (CSR,
    sorted indices)."""
    import scipy.sparse as sp

    if d % k:
        raise ValueError(f"onehot: d={d} is not a multiple of the {k} fields")
    levels = d // k
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, levels + 1)
    p /= p.sum()
    drawn = np.stack([rng.choice(levels, size=n, p=p) for _ in range(k)], axis=1)
    cols = (drawn + np.arange(k) * levels).astype(np.int32)
    X = sp.csr_matrix((np.ones(n * k), cols.ravel(), np.arange(0, n * k + 1, k)), shape=(n, d))
    y = X @ rng.normal(size=d) + 1.0 + rng.normal(0, 0.5, n)
    return X, y


KINDS = {"hashed": hashed, "onehot": onehot}


def csr_bytes(X):
    """The bytes of a CSR matrix's three arrays."""
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
