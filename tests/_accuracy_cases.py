"""Ill-conditioned least-squares problems and their 80-digit solutions: the oracle of
``tests/test_accuracy.py`` and of ``python -m bench.accuracy`` (the README's table)."""
import numpy as np


def datasets(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    x = rng.uniform(0, 10, n)
    for deg in (8, 10):
        X = np.column_stack([x ** k for k in range(1, deg + 1)])
        out[f"x ... x^{deg}, x in [0, 10]"] = (X, X @ rng.normal(size=deg) + rng.normal(size=n))
    for gap in (1e-6, 1e-9):
        x1 = rng.normal(size=n)
        X = np.column_stack([x1, x1 + gap * rng.normal(size=n)])
        out[f"x2 = x1 + {gap:g} z"] = (X, X @ [1.0, 2.0] + 0.1 * rng.normal(size=n))
    B = rng.normal(size=(n, 5)) @ rng.normal(size=(5, 40))
    X = B + 1e-4 * rng.normal(size=(n, 40))
    out["d = 40, rank 5 + 1e-4 noise"] = (X, X @ rng.normal(size=40) + 0.01 * rng.normal(size=n))
    return out


def exact(X, y, digits=80, ridge=0.0):
    """The least-squares ``[w, b]`` of the float data, solved with ``digits`` digits
    (with ``ridge``: minimizing ``||[X, 1] c - y||^2 + ridge ||w||^2``)."""
    import mpmath

    mpmath.mp.dps = digits
    A = np.column_stack([X, np.ones(X.shape[0])])
    M = mpmath.matrix(A.tolist())
    v = mpmath.matrix(y.tolist())
    G = M.T * M
    for j in range(X.shape[1]):
        G[j, j] += mpmath.mpf(ridge)
    c = mpmath.lu_solve(G, M.T * v)
    return np.array([float(t) for t in c])


def error(c, ref):
    return float(np.linalg.norm(c - ref) / np.linalg.norm(ref))
