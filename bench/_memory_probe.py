"""Extra memory of one fit, measured in a fresh process; prints one JSON object.

Usage (from the repository root)::

    python -m bench._memory_probe N D DTYPE KIND

``DTYPE`` is ``float32``, ``float64``, or ``hashed``: sparse CSR rows of 20 hashed
entries of +-1 (:func:`bench._sparse_data.hashed`; ``input_mb`` then counts its three
arrays and y, ``x_mb`` X's arrays alone). ``KIND`` is ``batch-default`` (``fit(X, y,
tol=1e-10, epochs=10000)``), ``batch-gd`` (the textbook streaming descent,
``learning_rate=0.1, epochs=3``) or ``sgd`` (one epoch).

Steps: a small fit of the same kind compiles (or loads) the kernels and starts the
thread pool, so compilation memory stays out of the figure; the data is generated block
by block (no temporary larger than 4 MB, see :func:`bench._workloads.generate`), so right
after it the peak RSS is the resident data; then the fit.

``extra_mb`` is the peak RSS during the fit minus the RSS with the data loaded, read with
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after the data and after the fit. That
peak is the process's peak so far, so it sees the fit only when nothing earlier (import,
compilation: about 160 MB) peaked above the resident data, as at n = 10^7. When
something did (small n), the peak is first reset to the current RSS through
``/proc/self/clear_refs`` (Linux >= 4.0) and the fit's peak read from ``VmHWM``;
``method`` says which was used (without /proc the figure is a lower bound, and says so).
"""
import json
import resource
import sys

import numpy as np

KINDS = {
    "batch-default": dict(tol=1e-10, epochs=10000),
    "batch-gd": dict(mode="batch", learning_rate=0.1, epochs=3, tol=None),
    "sgd": dict(mode="sgd", epochs=1, tol=None, random_state=0),
}

MB = 1024.0**2


def maxrss_bytes():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024  # bytes on macOS, KiB on Linux


def proc_status(key):
    """``VmRSS`` / ``VmHWM`` in bytes from ``/proc/self/status``, or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak():
    """Reset the peak RSS to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main(argv):
    n, d, dtype, kind = int(argv[0]), int(argv[1]), argv[2], argv[3]
    import fastgd

    from ._workloads import generate

    kw = KINDS[kind]
    if dtype == "hashed":
        from ._sparse_data import csr_bytes, hashed

        def generate(n, d, dtype):
            return hashed(n, d, 20)

        nbytes = csr_bytes
    else:
        def nbytes(X):
            return X.nbytes
    Xs, ys = generate(5000, d, dtype)
    fastgd.fit(Xs, ys, **kw)  # compile / load, thread pool up
    del Xs, ys
    rss0 = proc_status("VmRSS")
    X, y = generate(n, d, dtype)
    peak_data = maxrss_bytes()
    rss_data = proc_status("VmRSS")
    # ru_maxrss is the process's peak so far: it measures the fit only if nothing before
    # (import, compilation) peaked above the resident data. Otherwise reset the peak.
    hidden = None if rss_data is None else peak_data - rss_data
    reset = hidden is not None and hidden > 0.01 * rss_data and reset_peak()
    res = fastgd.fit(X, y, **kw)
    peak_fit = maxrss_bytes()
    if reset:
        # the reset also lowered ru_maxrss: both now hold the peak since the data
        extra, method = (proc_status("VmHWM") - rss_data) / MB, "VmHWM after clear_refs"
    else:
        extra, method = (peak_fit - peak_data) / MB, "ru_maxrss"
        if hidden is not None and hidden > 0.01 * rss_data:
            method += f" (lower bound: an earlier peak was {hidden / MB:.0f} MB higher)"
    out = dict(
        n=n, d=d, dtype=dtype, kind=kind, threads=fastgd.get_num_threads(),
        input_mb=(nbytes(X) + y.nbytes) / MB, x_mb=nbytes(X) / MB,
        data_rss_mb=None if rss0 is None else (rss_data - rss0) / MB,
        extra_mb=extra, method=method, peak_mb=peak_fit / MB,
        fit_s=res.elapsed_s, loss0=float(res.loss_history[0]), final_loss=res.final_loss,
        coef=[float(c) for c in np.atleast_1d(res.coef)], intercept=res.intercept,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
