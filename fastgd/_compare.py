"""``fastgd bench``: fastgd against the tools people would otherwise use, on the user's own
data and machine.

Every contender fits the same float64 rows in the same process; the rounds alternate the
contenders (so drift in the machine's speed spreads over all of them) and each keeps its
best time. Excess MSE is over the least-squares optimum (``numpy.linalg.lstsq`` of
``[X, 1]``), measured by :func:`fastgd.mse` on every contender's coefficients. Peers that
are not installed are listed as skipped, with the extra that brings them.
"""
import time

import numpy as np

import fastgd

#: an excess MSE within this share of the optimum is rounding, not a difference: two
#: float64 sums of n squared residuals differ by about 1e-16 to 1e-13 of their value
#: (the order of the additions), whether the coefficients differ or not; a fit at the
#: optimum then shows -1e-17 as often as +1e-17
ROUNDING = 1e-12


def _numpy_gd_epoch(X, y, coef, intercept, lr=1e-3):
    """One full-gradient step in vectorized NumPy: what people write by hand."""
    r = y - X @ coef - intercept
    n = y.shape[0]
    return coef + lr * (2.0 / n) * (X.T @ r), intercept + lr * (2.0 / n) * r.sum()


def contenders(X, y, epochs_stochastic=1):
    """``(name, fit or None, why_skipped)``: each fit returns ``(coef, intercept)``."""
    out = []

    def fastgd_default():
        r = fastgd.fit(X, y, progress=False)
        return r.coef, r.intercept

    out.append(("fastgd default fit (batch, to the optimum)", fastgd_default, None))
    for mode in ("batch", "minibatch", "sgd"):
        def epoch(mode=mode):
            kw = dict(mode=mode, epochs=1, tol=None, random_state=0, progress=False)
            if mode == "batch":
                kw["learning_rate"] = 1e-3
            r = fastgd.fit(X, y, **kw)
            return r.coef, r.intercept

        out.append((f"fastgd one {mode} epoch", epoch, None))

    def lstsq():
        A = np.column_stack([X, np.ones(X.shape[0])])
        sol = np.linalg.lstsq(A, y, rcond=None)[0]
        return sol[:-1], sol[-1]

    out.append(("numpy.linalg.lstsq", lstsq, None))

    def numpy_epoch():
        return _numpy_gd_epoch(X, y, np.zeros(X.shape[1]), 0.0)

    out.append(("NumPy gradient epoch (vectorized)", numpy_epoch, None))
    try:
        from sklearn.linear_model import LinearRegression, SGDRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        why = 'scikit-learn is not installed (pip install "fastgd[sklearn]")'
        out.append(("scikit-learn LinearRegression", None, why))
        out.append(("scikit-learn StandardScaler + SGDRegressor", None, why))
    else:
        def sk_lr():
            m = LinearRegression().fit(X, y)
            return m.coef_, m.intercept_

        def sk_sgd():
            m = make_pipeline(StandardScaler(), SGDRegressor(random_state=0)).fit(X, y)
            scaler, sgd = m[0], m[1]
            coef = sgd.coef_ / scaler.scale_
            return coef, float(sgd.intercept_[0] - scaler.mean_ @ coef)

        out.append(("scikit-learn LinearRegression", sk_lr, None))
        out.append(("scikit-learn StandardScaler + SGDRegressor", sk_sgd, None))
    return out


def run(X, y, rounds=3, out=None):
    """Time every contender (``rounds`` alternated rounds, best kept); returns the rows
    ``{name, seconds, vs_fastgd, excess_mse, rounding, skipped}``: ``excess_mse`` is 0
    and ``rounding`` True when the excess is within :data:`ROUNDING` of the optimum (a
    difference of rounding, of either sign)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    y = np.ascontiguousarray(y, dtype=np.float64)
    cands = contenders(X, y)
    best = {name: np.inf for name, fn, _ in cands if fn is not None}
    result = {}
    for fn_name, fn, _ in cands:  # warm up (compilation, caches) outside the timings
        if fn is not None:
            result[fn_name] = fn()
    for _ in range(rounds):
        for name, fn, _ in cands:
            if fn is None:
                continue
            t = time.perf_counter()
            result[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t)
    opt = fastgd.mse(X, y, *result["numpy.linalg.lstsq"])
    base = best["fastgd default fit (batch, to the optimum)"]
    rows = []
    for name, fn, why in cands:
        if fn is None:
            rows.append({"name": name, "seconds": None, "vs_fastgd": None, "excess_mse": None,
                         "rounding": None, "skipped": why})
            continue
        coef, b = result[name]
        excess = fastgd.mse(X, y, np.asarray(coef), float(b)) - opt
        rounding = abs(excess) <= ROUNDING * opt
        rows.append({"name": name, "seconds": best[name], "vs_fastgd": best[name] / base,
                     "excess_mse": 0.0 if rounding else excess, "rounding": rounding,
                     "skipped": None})
    return rows



def table(rows, n, d):
    lines = [f"{n:,} rows x {d} feature(s), float64; best of the alternated rounds",
             f"{'contender':<46} {'time':>10} {'x fastgd fit':>13} {'excess MSE':>12}"]
    for r in rows:
        if r["skipped"]:
            lines.append(f"{r['name']:<46} {'skipped: ' + r['skipped']}")
            continue
        excess = "0 (rounding)" if r["rounding"] else f"{r['excess_mse']:.3g}"
        lines.append(f"{r['name']:<46} {_seconds(r['seconds']):>10} {r['vs_fastgd']:>12.2f}x "
                     f"{excess:>12}")
    lines.append("(one epoch rows: the time of one pass, not a fit to the optimum; excess MSE "
                 f"over numpy.linalg.lstsq's optimum; within {ROUNDING:g} of it: rounding)")
    return "\n".join(lines)


def _seconds(s):
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.3f} s"
