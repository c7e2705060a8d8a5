"""The fits whose results are pinned bit for bit across refactorings (see test_pins.py).

``python -m tests._pin_cases OUT.json`` writes the pins with the fastgd on sys.path.
"""
import json
import sys

import numpy as np


def data(n, d, weighted, seed=7):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.geomspace(1, 30, d) + np.linspace(0, 3, d)
    y = X @ np.linspace(-1, 2, d) + 0.5 + rng.normal(0, 0.3, n)
    sw = rng.uniform(0.2, 2.0, n) if weighted else None
    return X, y, sw


CASES = {
    "textbook": dict(learning_rate=1e-3, epochs=30),
    "default": dict(),
    "stream": dict(solver="stream"),
    "gram-gd": dict(optimizer="gd", epochs=50, tol=None),
    "stream-nesterov": dict(solver="stream", optimizer="nesterov", epochs=40, tol=None),
    "momentum": dict(optimizer="momentum", epochs=40, tol=None),
    "l2": dict(penalty="l2", alpha=0.1),
    "l1": dict(penalty="l1", alpha=0.05, epochs=200),
    "enet-stream": dict(penalty="elasticnet", alpha=0.05, solver="stream", epochs=200),
    "huber": dict(loss="huber", epsilon=0.5, epochs=100),
    "sum": dict(reduction="sum"),
    "nointercept": dict(fit_intercept=False),
    "sgd-raw": dict(mode="sgd", tol=None, learning_rate=1e-4, epochs=3, random_state=1),
    "minibatch-raw": dict(mode="minibatch", tol=None, batch_size=32, learning_rate=1e-4, epochs=3, random_state=2),
    "sgd-default": dict(mode="sgd", tol=None, epochs=3, random_state=3),
    "minibatch-default": dict(mode="minibatch", tol=None, epochs=3, random_state=4),
    "sgd-mix-raw": dict(mode="sgd", tol=None, learning_rate=1e-4, epochs=2, parallel=True, random_state=5),
    "minibatch-mix-raw": dict(mode="minibatch", tol=None, learning_rate=1e-4, epochs=2, parallel=True,
                              random_state=6),
    "sgd-invscaling": dict(mode="sgd", tol=None, learning_rate_schedule="invscaling", epochs=2,
                           random_state=7, average=True),
    "sgd-l1-huber": dict(mode="sgd", tol=None, penalty="elasticnet", alpha=1e-3, loss="huber", epochs=2,
                         random_state=8),
    "sgd-early": dict(mode="sgd", early_stopping=True, epochs=5, random_state=9),
    "minibatch-adaptive": dict(mode="minibatch", learning_rate_schedule="adaptive", epochs=6,
                               random_state=10),
}

SHAPES = [(3000, 1, False), (3000, 3, True), (3000, 7, False), (70000, 2, False)]


def run_all():
    """Every case twice: as ``fit`` runs it (these blocks are small enough for NumPy's
    passes, see ``fastgd.sources.small``), and with every pass forced through the compiled
    kernels (keys ``kernels:...``)."""
    from fastgd.sources import small as _small

    pins = _run_cases("")
    _small.SMALL_VALUES = _small.SMALL_PRODUCTS = 0
    pins.update(_run_cases("kernels:"))
    return pins


def _run_cases(prefix):
    import warnings

    import fastgd

    pins = {}
    for n, d, weighted in SHAPES:
        X, y, sw = data(n, d, weighted)
        for name, kw in CASES.items():
            if n > 10000 and not name.startswith(("default", "sgd-default", "textbook", "sgd-raw")):
                continue
            key = f"{prefix}{name}|n={n}|d={d}|w={int(weighted)}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = fastgd.fit(X, y, sample_weight=sw, **kw)
            pins[key] = [float(v).hex() for v in (*res.coef, res.intercept, *res.loss_history)]
    return pins


if __name__ == "__main__":
    with open(sys.argv[1], "w") as f:
        json.dump(run_all(), f, indent=0, sort_keys=True)
