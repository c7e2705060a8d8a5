"""Accuracy of the default fit on ill-conditioned data, against an 80-digit solve.

Run ``python -m bench.accuracy`` (needs ``mpmath``, which comes with the ``bench``
extra). For each data set (n = 1000 rows, the float64 data exactly as fitted) it prints
the relative coefficient error ``||c - c*|| / ||c*||`` (weights and intercept together)
of ``numpy.linalg.lstsq`` on ``[X, 1]`` and of ``fastgd.fit`` with its defaults (and with
``solver="stream"``), where ``c*`` is the least-squares solution of the same float data
computed in 80-digit arithmetic (normal equations: their condition number, at most
1e40 here, leaves 40 digits), and whether fastgd warned.
"""
import warnings

import numpy as np

import fastgd
from tests._accuracy_cases import datasets, error, exact  # noqa: E402


def main():
    rows = []
    for name, (X, y) in datasets().items():
        ref = exact(X, y)
        A = np.column_stack([X, np.ones(len(y))])
        e_lstsq = error(np.linalg.lstsq(A, y, rcond=None)[0], ref)
        cells = [name, f"{e_lstsq:.2g}"]
        for kw in (dict(), dict(solver="stream")):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = fastgd.fit(X, y, **kw)
            warned = any(issubclass(w.category, fastgd.ConvergenceWarning) for w in caught)
            e = error(np.r_[res.coef, res.intercept], ref)
            cells.append(f"{e:.2g}{' (warned)' if warned else ''} [{res.solver}]")
        rows.append(cells)
    print("| data | lstsq error | default fit error | solver='stream' error |")
    print("|---|---|---|---|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
