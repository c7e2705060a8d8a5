"""Command line: ``fastgd demo`` (also ``python -m fastgd demo``)."""
import argparse
import sys
import time

import numpy as np

DEMO_SLOPE = 2.5
DEMO_INTERCEPT = -1.0
DEMO_NOISE = 0.5
#: the largest --n of the demo: 2e9 points need about 160 GB
DEMO_MAX_N = 2_000_000_000


def make_demo_data(n, seed=0, dtype=np.float64):
    """The embedded default problem: ``y = 2.5 x - 1 + N(0, 0.5^2)``, ``x ~ U(-5, 5)``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-5.0, 5.0, n)
    y = DEMO_SLOPE * x + DEMO_INTERCEPT + rng.normal(0.0, DEMO_NOISE, n)
    return x.astype(dtype, copy=False), y.astype(dtype, copy=False)


def _demo_runs(epochs_batch, epochs_stochastic):
    for mode, epochs, tol in (
        ("batch", epochs_batch, 1e-12),
        ("minibatch", epochs_stochastic, None),
        ("sgd", epochs_stochastic, None),
    ):
        for parallel in (False, True):
            yield mode, parallel, epochs, tol


def demo(n=10_000_000, seed=0, out=sys.stdout):
    """Fit the embedded problem in every mode, serial and parallel, and print a table."""
    import numba

    import fastgd

    t = time.perf_counter()
    x, y = make_demo_data(n, seed)
    print(f"fastgd {fastgd.__version__} demo: n = {n:,} points on y = {DEMO_SLOPE} x "
          f"{DEMO_INTERCEPT:+} with N(0, {DEMO_NOISE}^2) noise (seed {seed}), "
          f"{numba.get_num_threads()} threads; data made in {time.perf_counter() - t:.2f} s",
          file=out)
    # One small warm-up per mode, so compile time is shown once and not in the rates.
    t = time.perf_counter()
    for mode, parallel, _, _ in _demo_runs(1, 1):
        fastgd.fit(x[:4096], y[:4096], mode=mode, epochs=1, parallel=parallel, random_state=0)
    print(f"JIT warm-up (compile or cache load): {time.perf_counter() - t:.2f} s\n", file=out)
    header = (f"{'mode':<10} {'parallel':<8} {'epochs':>6} {'ms/epoch':>9} {'final MSE':>12} "
              f"{'slope':>10} {'intercept':>10}")
    print(header, file=out)
    print("-" * len(header), file=out)
    for mode, parallel, epochs, tol in _demo_runs(300, 3):
        res = fastgd.fit(x, y, mode=mode, epochs=epochs, tol=tol, parallel=parallel, random_state=seed)
        per = 1e3 * res.elapsed_s / max(res.n_epochs, 1)
        print(f"{mode:<10} {str(parallel):<8} {res.n_epochs:>6} {per:>9.2f} "
              f"{res.final_loss:>12.6f} {res.slope:>10.6f} {res.intercept:>10.6f}", file=out)
    t = time.perf_counter()
    A = np.column_stack([x, np.ones_like(x)])
    (m, c), *_ = np.linalg.lstsq(A, y, rcond=None)
    t_ls = time.perf_counter() - t
    best = fastgd.mse(x, y, [m], c)
    print(f"{'lstsq':<10} {'-':<8} {'-':>6} {1e3 * t_ls:>9.2f} {best:>12.6f} {m:>10.6f} {c:>10.6f}",
          file=out)
    print(f"\ntrue line: slope {DEMO_SLOPE}, intercept {DEMO_INTERCEPT}; lstsq is "
          "numpy.linalg.lstsq (total time) for comparison.", file=out)


def main(argv=None):
    import fastgd

    parser = argparse.ArgumentParser(prog="fastgd", description=fastgd.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fastgd {fastgd.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="fit an embedded 10-million-point problem in every mode")
    p.add_argument("--n", type=int, default=10_000_000, help="number of points (default 10^7)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.n < 4096:
            parser.error(f"--n must be at least 4096, got {args.n}")
        # 16 bytes a point (x and y) plus the fits' work arrays: refuse what cannot fit in
        # memory up front rather than die inside NumPy
        if args.n > DEMO_MAX_N:
            parser.error(f"--n must be at most {DEMO_MAX_N:,} (about 80 bytes of memory a "
                         f"point), got {args.n:,}")
        if args.seed < 0:
            parser.error(f"--seed must be an integer >= 0, got {args.seed}")
        demo(args.n, args.seed)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
