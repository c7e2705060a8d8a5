"""Helpers shared by the benchmark modules: what goes into ``extra_info``, and the checks.

Every benchmark checks its answer against the float64 references of
:mod:`bench._workloads` before it is timed (a fast wrong answer is worthless), and checks
the value the timed call returned again afterwards.
"""
import time

import numpy as np

import fastgd

#: relative tolerance of the loss (and of the gradient, relative to its norm) of an epoch
#: that accumulates in float64, against the float64 NumPy reference on the same data.
RTOL = {"float64": 1e-10, "float32": 1e-6}
#: the same for contenders that compute in float32 arithmetic on float32 data (NumPy and
#: PyTorch keep the data's dtype): their n-term float32 sums are good to about 1e-5 at
#: n = 10^7. The achieved error is recorded in ``extra_info["loss_rel_err"]`` either way.
RTOL_NATIVE = {"float64": 1e-10, "float32": 1e-3}

#: epochs of the ``fit(..., epochs=K)`` benchmarks (their per-epoch figure is time / K).
FIT_EPOCHS = 5


def record(benchmark, w, contender, *, loss=None, epochs=1, **extra):
    """Fill ``benchmark.extra_info`` with the facts the report needs.

    ``epochs`` is the number of epochs one timed call runs (``bench/report.py`` divides
    by it for the per-epoch column; None for a fit to convergence); ``bytes`` is what a
    full pass reads (X and y).
    """
    benchmark.extra_info.update(
        contender=contender, n=w.n, d=w.d, dtype=w.dtype, threads=fastgd.get_num_threads(),
        bytes=w.nbytes, epochs=epochs, loss=None if loss is None else float(loss),
    )
    benchmark.extra_info.update(extra)


def timed_min(benchmark):
    """The benchmark's minimum time in seconds, or None when timing is disabled."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    return float(stats.stats.min)


def rel_err(got, ref):
    return abs(float(got) - float(ref)) / max(abs(float(ref)), np.finfo(np.float64).tiny)


def check_epoch(ds, loss, grad, rtol):
    """Assert an epoch's ``(loss, grad)`` (grad: weights then intercept) matches the
    float64 reference at ``ds.coef_test``; returns the loss's relative error."""
    ref_loss, ref_grad = ds.at_test
    grad = np.asarray(grad, dtype=np.float64).reshape(-1)
    err = rel_err(loss, ref_loss)
    assert err <= rtol, f"loss {loss!r}, reference {ref_loss!r}: error {err:.3g} > {rtol:g}"
    scale = float(np.linalg.norm(ref_grad))
    np.testing.assert_allclose(grad, ref_grad, rtol=rtol, atol=rtol * scale)
    return err


def excess(ds, loss):
    """Relative excess of ``loss`` over the least-squares optimum's loss."""
    opt = ds.optimum[1]
    return (float(loss) - opt) / opt


def best_of(fns, repeats):
    """Interleaved best-of-``repeats`` wall times (s) of the callables ``fns``."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def checked(benchmark, check, fn, *args):
    """Time ``fn(*args)`` and return ``check(answer)``; ``check`` asserts correctness.

    When timing is on, one untimed call is checked first, so nothing wrong is ever
    timed; the answer of the timed calls is checked again. Under ``--benchmark-disable``
    the function runs once, checked (the smoke run).
    """
    if benchmark.enabled:
        check(fn(*args))
    return check(benchmark(fn, *args))
