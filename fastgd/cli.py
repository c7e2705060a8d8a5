"""Command line: ``fastgd demo | fit | predict`` (also ``python -m fastgd ...``)."""
import argparse
import os
import sys
import time
from contextlib import contextmanager

import numpy as np

from fastgd.datasets import DEMO_INTERCEPT, DEMO_NOISE, DEMO_SLOPE, make_demo

#: the largest --n of the demo: 2e9 points need about 160 GB
DEMO_MAX_N = 2_000_000_000
#: fastgd bench holds about this many float64 copies of its rows at the peak: X and y,
#: lstsq's [X, 1] and its work copy, scikit-learn's centred or scaled copy
BENCH_COPIES = 4

#: the demo's generator, now :func:`fastgd.datasets.make_demo` (this name is kept for
#: code that imported it from here)
make_demo_data = make_demo


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
    import fastgd

    t = time.perf_counter()
    x, y = make_demo(n, seed)
    print(f"fastgd {fastgd.__version__} demo: n = {n:,} points on y = {DEMO_SLOPE} x "
          f"{DEMO_INTERCEPT:+} with N(0, {DEMO_NOISE}^2) noise (seed {seed}), "
          f"{fastgd.get_num_threads()} threads; data made in {time.perf_counter() - t:.2f} s",
          file=out)
    # One warm-up per mode, so compile time is shown once and not in the rates: on the
    # first rows of the data, enough of them for the passes of the data's size (small
    # blocks run in NumPy and compile nothing; larger ones run the kernels)
    from .sources.small import SMALL_VALUES

    m = min(n, max(4096, SMALL_VALUES // 2 + 1))
    t = time.perf_counter()
    for mode, parallel, _, _ in _demo_runs(1, 1):
        fastgd.fit(x[:m], y[:m], mode=mode, epochs=1, parallel=parallel, random_state=0)
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


FIT_EXAMPLES = """examples:
  fastgd fit rides.csv --x distance --x climb --y calories
  fastgd fit data.parquet --x 0 --x 1 --y 2 --mode sgd --epochs 5 --format json
  cat rides.csv | fastgd fit - --x distance --y calories --save-model model.json
  fastgd predict model.json new_rides.csv --x distance --x climb > predictions.csv

Columns are named, or given by position ("0", "1", ...; the only way for a CSV
without a header row, with --no-header; a name that is a string of digits means that
column, and a name the header repeats must be given by position). PATH "-" reads CSV
from standard input (spooled to a temporary file, so every mode can read it more than
once); so is a pipe or a device given as PATH.
Outputs (--save-model, --checkpoint, --plot) are checked before the fit: none may be
the input or another output, their folders must exist, and an existing file is
replaced only if it is of the same kind (a model, a checkpoint, an image) or empty;
--force replaces any file. If a write fails at the end, the result is printed first.
Exit status: 0 success, 1 a problem with the data or files, 2 a usage error."""


def _at_least(low):
    """An argparse type: an integer >= ``low`` (else a usage error, exit status 2)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _positive(text):
    """An argparse type: a finite number > 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


class _DataError(Exception):
    """A problem with the user's data or files: one line on stderr, exit status 1."""


def _is_stream(path):
    """Whether ``path`` is standard input ("-") or a pipe, device or socket: data that can
    be read once only, from the start."""
    import stat

    if path == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # the reader says what is wrong with it
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


@contextmanager
def _readable(path):
    """``path`` itself, or for "-" (standard input), a pipe or a device, its data spooled
    to a temporary file (removed on exit), so that every mode can read it more than once
    and seek in it."""
    if not _is_stream(path):
        yield path
        return
    import shutil
    import tempfile

    from fastgd.sources.files import _kind

    suffix = ".parquet" if path != "-" and _kind(path) == "parquet" else ".csv"
    f = tempfile.NamedTemporaryFile(prefix="fastgd-stdin-", suffix=suffix, delete=False)
    try:
        with f:
            if path == "-":
                shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
            else:
                with open(path, "rb") as src:
                    shutil.copyfileobj(src, f, 1 << 20)
        yield f.name
    finally:
        os.unlink(f.name)


def _check_outputs(args, outputs, inputs=()):
    """The outputs of a command checked before any work (see :mod:`fastgd._outputs`):
    ``outputs`` (option, path, kind), ``inputs`` (what, path); --force allows replacing
    a file of another kind."""
    from fastgd._outputs import check_outputs

    try:
        check_outputs(outputs, [(w, p) for w, p in inputs if p is not None and p != "-"],
                      overwrite=args.force, force_hint="add --force")
    except ValueError as exc:
        raise _DataError(str(exc)) from None


def _reason(exc):
    """One line for an exception: an OSError's reason and file, else its message."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror if exc.filename is None else f"{exc.filename}: {exc.strerror}"
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _write_error(option, path, exc):
    """The message for a write of ``option PATH`` that failed at the end."""
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else _reason(exc)
    return f"could not write {option} {path}: {why}"


def _plot_format(file):
    """The image format of ``--plot FILE`` (its extension; PNG without one), checked
    before the fit: matplotlib is installed and writes that format."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError('--plot needs matplotlib, an optional extra: pip install '
                          '"fastgd[plot]"') from None
    matplotlib.use("Agg")
    from matplotlib.backend_bases import FigureCanvasBase

    ext = os.path.splitext(file)[1][1:].lower() or "png"
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext not in formats:
        raise _DataError(f"--plot {file}: matplotlib does not write .{ext} files; use one "
                         f"of: {', '.join('.' + f for f in sorted(formats))}")
    return ext


def _fit_command(args, out):
    import fastgd

    if args.checkpoint and _is_stream(args.path):
        raise _DataError("--checkpoint needs a file to read again on resume, not "
                         "standard input or a pipe: save the data to a file first")
    _check_outputs(args, [("--checkpoint", args.checkpoint, "checkpoint"),
                          ("--save-model", args.save_model, "model"),
                          ("--plot", args.plot, "image")],
                   [("the input file", args.path)])
    fmt = _plot_format(args.plot) if args.plot else None
    kw = {}
    for name in ("mode", "epochs", "batch_size", "tol", "random_state"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    if args.learning_rate is not None:
        kw["learning_rate"] = args.learning_rate
    if args.checkpoint:
        kw.update(checkpoint=args.checkpoint, overwrite=args.force)
    path_seen = []
    if args.plot:
        kw["callback"] = lambda e, c, b, loss: path_seen.append((float(c[0]), b))
    with _readable(args.path) as path:
        res = fastgd.fit_file(path, x=args.x, y=args.y, header=not args.no_header,
                              progress=False if args.quiet else "auto", **kw)
        # the result first: a write that fails below cannot lose it
        _report(res, args.path, args, out)
        errors = _save_model(res, args, out)
        if args.plot:
            try:
                _plot(res, path, args, path_seen, fmt)
            except (OSError, ValueError) as exc:
                errors.append(_write_error("--plot", args.plot, exc))
            else:
                if args.format == "table":
                    print(f"figure saved to {args.plot}", file=out)
    return errors


def _resume_command(args, out):
    import fastgd
    from fastgd._checkpoint import read

    doc = read(args.checkpoint_file)
    fp = doc.get("fingerprint")
    fitted = fp.get("file") if isinstance(fp, dict) else None
    _check_outputs(args, [("CHECKPOINT", args.checkpoint_file, "checkpoint"),
                          ("--save-model", args.save_model, "model")],
                   [("the file fitted", fitted)])
    try:
        res = fastgd.resume(args.checkpoint_file, progress=False if args.quiet else "auto")
    except (KeyError, IndexError) as exc:
        # a field the checks before the fit did not cover: the file is damaged
        raise _DataError(f"{args.checkpoint_file} is not a valid fastgd checkpoint (a field "
                         f"is missing or malformed: {exc!r}); start the fit again") from None
    _report(res, args.checkpoint_file, args, out)
    return _save_model(res, args, out)


def _save_model(res, args, out):
    """Write --save-model after the result is printed; returns the error messages."""
    if not args.save_model:
        return []
    try:
        res.save(args.save_model, overwrite=args.force)
    except (OSError, ValueError) as exc:
        return [_write_error("--save-model", args.save_model, exc)]
    if args.format == "table":
        print(f"model saved to {args.save_model}", file=out)
    return []


def _report(res, label, args, out):
    import json

    rows = res.n_rows
    if args.format == "json":
        doc = {"coef": [float(c) for c in res.coef], "intercept": res.intercept,
               "loss": res.final_loss, "epochs": res.n_epochs, "converged": res.converged,
               "elapsed_s": res.elapsed_s, "rows": rows,
               "features": list(res.feature_names or [])}
        print(json.dumps(doc), file=out)
        return
    names = res.feature_names or [f"x{j}" for j in range(res.coef.shape[0])]
    width = max(12, max(len(n) for n in names))
    print(f"fastgd fit of {label}: {rows:,} rows, mode {res.mode}, {res.n_epochs} "
          f"epoch(s), {'converged' if res.converged else 'not converged'}, "
          f"{res.elapsed_s:.3f} s", file=out)
    for n, c in zip(names, res.coef):
        print(f"  {n:<{width}} {c: .10g}", file=out)
    print(f"  {'(intercept)':<{width}} {res.intercept: .10g}", file=out)
    print(f"  loss (MSE) {res.final_loss:.10g}", file=out)


def _plot(res, path, args, path_seen, fmt):
    """The CLI's --plot: one figure (fit line, loss curve, loss surface with the path the
    fit took) from a sample of the file's first rows (at most 200,000), rendered in
    memory and written atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastgd import plot
    from fastgd._outputs import write_bytes
    from fastgd.io import FileReader

    reader = FileReader(path, args.x, args.y, header=not args.no_header)
    xs, ys, n = [], [], 0
    for X, y in reader():
        xs.append(X)
        ys.append(y)
        n += X.shape[0]
        if n >= 200_000:
            break
    X, y = np.concatenate(xs)[:200_000], np.concatenate(ys)[:200_000]
    walk = np.array([(0.0, 0.0)] + path_seen) if path_seen else None
    fig = plot.summary(res, X[:, 0] if X.shape[1] == 1 else X, y, path=walk)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110)
    plt.close(fig)
    write_bytes(args.plot, buf.getvalue())


def _bench_command(args, out):
    import json

    from fastgd import _compare

    _check_outputs(args, [("--json", args.json, "bench")], [("the input file", args.path)])
    if args.path is not None:
        if not args.x or args.y is None:
            raise _DataError("bench PATH needs the columns: --x COL [--x COL ...] --y COL")
        from fastgd.io import FileReader

        with _readable(args.path) as path:
            parts = list(FileReader(path, args.x, args.y, header=not args.no_header)())
        X = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        import fastgd._validation as V

        V.check_data(X, y)  # NaN/inf: the same clear error as fit
    else:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(args.n, args.d))
        y = X @ rng.uniform(-2, 2, args.d) + 0.7 + rng.normal(0, 0.1, args.n)
    rows = _compare.run(X, y, rounds=args.rounds)
    print(_compare.table(rows, X.shape[0], X.shape[1]), file=out)
    if args.json:
        from fastgd._outputs import write_bytes

        doc = {"rows": X.shape[0], "features": X.shape[1], "results": rows}
        try:
            write_bytes(args.json, json.dumps(doc, indent=1).encode("utf-8"))
        except OSError as exc:
            return [_write_error("--json", args.json, exc)]
    return []


def _memory_bytes():
    """The machine's physical memory in bytes, or None where it cannot be told."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _predict_command(args, out):
    import fastgd
    from fastgd.io import FileReader

    try:
        model = fastgd.load(args.model)
    except (KeyError, IndexError) as exc:
        raise _DataError(f"{args.model} is not a valid fastgd model file (a field is missing "
                         f"or malformed: {exc!r}); save the model again") from None
    x = _predict_columns(model, args.x)
    with _readable(args.path) as path:
        reader = FileReader(path, x, header=not args.no_header, allow_empty=True)
        print("prediction", file=out)
        offset = 0
        for (X,) in reader():
            try:
                fastgd._validation.check_finite(np.ascontiguousarray(X), "X", False)
            except ValueError as exc:
                raise _DataError(f"{path}: rows from {offset}: {exc}") from None
            np.savetxt(out, X @ model.coef + model.intercept, fmt="%.17g")
            offset += X.shape[0]


def _predict_columns(model, given):
    """The file columns for the model's features, in the model's order.

    Without ``--x``: the model's feature names. With ``--x`` and a model that has names,
    the rule of :func:`fastgd._frames.check_feature_names`: names of the model's features
    must be all of them, in the model's order (a different order is an error, never a
    silent swap); columns that are none of its names (other headers, or positions) map to
    its features by position, which stderr notes."""
    names = list(model.feature_names or [])
    d = model.coef.shape[0]
    if not given:
        if not names:
            raise _DataError("the model has no feature names: give its columns, in its order, "
                             "with --x COL (once per feature)")
        return names
    if len(given) != d:
        raise _DataError(f"the model has {d} feature(s){' ' + repr(names) if names else ''}, "
                         f"got {len(given)} column(s) with --x")
    if names and any(c in names for c in given):
        if list(given) != names:
            from ._frames import check_feature_names

            try:
                check_feature_names(names, given, owner="the model", what="--x")
            except ValueError as exc:
                detail = " ".join(str(exc).split("\n")[1:-1])
                raise _DataError(f"--x {' '.join(given)} does not match the model's features "
                                 f"{' '.join(names)} ({detail}); give them in the model's "
                                 "order, or leave --x out to use the model's names") from None
        return names
    if names:
        print(f"fastgd predict: columns {', '.join(given)} are taken as the model's features "
              f"{', '.join(names)}, by position", file=sys.stderr)
    return list(given)


def _announce_compilation():
    """Say on stderr, once, when a command is about to compile kernels (their cache is
    empty: a fresh install, container or CI job), so that a first run's seconds of
    compilation are not taken for a hang. Small data needs no kernel: nothing is said."""
    from ._config import CACHE, K, cache_dir, kernels_cached

    def notice():
        if kernels_cached():
            return
        where = (f"cached in {cache_dir()} for the next runs" if CACHE else
                 "FASTGD_DISABLE_CACHE is set: every run compiles them")
        print(f"fastgd: compiling kernels for the first run (a few seconds); {where}",
              file=sys.stderr, flush=True)

    K.on_import.append(notice)


def main(argv=None):
    import fastgd

    parser = argparse.ArgumentParser(prog="fastgd", description=fastgd.__doc__.splitlines()[0],
                                     epilog=FIT_EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fastgd {fastgd.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="fit an embedded 10-million-point problem in every mode")
    p.add_argument("--n", type=int, default=10_000_000, help="number of points (default 10^7)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    f = sub.add_parser("fit", help="fit columns of a CSV or Parquet file (or CSV on stdin)",
                       epilog=FIT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("path", metavar="PATH", help='a .csv or .parquet file, or "-" for CSV on stdin')
    f.add_argument("--x", action="append", required=True, metavar="COL",
                   help="a column of X (repeat for several): a name or a position")
    f.add_argument("--y", required=True, metavar="COL", help="the target column")
    f.add_argument("--mode", choices=("batch", "minibatch", "sgd"))
    f.add_argument("--epochs", type=_at_least(1))
    f.add_argument("--learning-rate", type=_positive)
    f.add_argument("--batch-size", type=_at_least(1))
    f.add_argument("--tol", type=_positive)
    f.add_argument("--random-state", type=_at_least(0))
    f.add_argument("--format", choices=("table", "json"), default="table",
                   help="table (default) or one JSON object: coef, intercept, loss, epochs, "
                        "converged, elapsed_s, rows")
    f.add_argument("--save-model", metavar="FILE", help="write the model (JSON) for predict")
    f.add_argument("--plot", metavar="FILE.png",
                   help="write a figure: the fit line, the loss curve and (one feature) the "
                        "loss surface with the descent path (needs matplotlib)")
    f.add_argument("--checkpoint", metavar="FILE",
                   help="write the fit's state to FILE after every epoch (atomically); "
                        "`fastgd resume FILE` continues an interrupted fit")
    f.add_argument("--no-header", action="store_true", help="the CSV has no header row")
    f.add_argument("--quiet", action="store_true", help="no progress output")
    f.add_argument("--force", action="store_true",
                   help="let --save-model, --checkpoint and --plot replace an existing file "
                        "that is not a fastgd model, checkpoint or image (never an input)")
    r = sub.add_parser("resume", help="continue a fit from its --checkpoint file",
                       epilog="example:\n  fastgd fit big.parquet --x a --y b --checkpoint "
                              "fit.ckpt   # interrupted\n  fastgd resume fit.ckpt",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("checkpoint_file", metavar="CHECKPOINT")
    r.add_argument("--format", choices=("table", "json"), default="table")
    r.add_argument("--save-model", metavar="FILE")
    r.add_argument("--quiet", action="store_true")
    r.add_argument("--force", action="store_true",
                   help="let --save-model replace an existing file that is not a model")
    q = sub.add_parser("predict", help="predict with a saved model; CSV on stdout",
                       epilog=FIT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("model", metavar="MODEL", help="a model file from fit --save-model")
    q.add_argument("path", metavar="PATH", help='a .csv or .parquet file, or "-"')
    q.add_argument("--x", action="append", metavar="COL",
                   help="the columns of X, in the model's order (default: its feature names)")
    q.add_argument("--no-header", action="store_true", help="the CSV has no header row")
    b = sub.add_parser("bench", help="time fastgd against numpy and scikit-learn on your data",
                       epilog="examples:\n  fastgd bench rides.csv --x distance --y calories\n"
                              "  fastgd bench --n 1000000 --d 10 --json results.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("path", metavar="PATH", nargs="?",
                   help="a .csv or .parquet file (read into memory), or '-'; default: "
                        "generated data (--n, --d)")
    b.add_argument("--x", action="append", metavar="COL")
    b.add_argument("--y", metavar="COL")
    b.add_argument("--n", type=_at_least(2), default=1_000_000,
                   help="generated rows (default 10^6)")
    b.add_argument("--d", type=_at_least(1), default=10, help="generated features (default 10)")
    b.add_argument("--rounds", type=_at_least(1), default=3,
                   help="alternated rounds (best kept)")
    b.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    b.add_argument("--no-header", action="store_true", help="the CSV has no header row")
    b.add_argument("--force", action="store_true",
                   help="let --json replace an existing file that is not a bench result")
    args = parser.parse_args(argv)
    _announce_compilation()
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
    if args.command == "bench" and args.path is None:
        need, have = BENCH_COPIES * 8 * args.n * (args.d + 1), _memory_bytes()
        if have is not None and need > have:
            b.error(f"--n {args.n:,} --d {args.d} needs about {need / 2**30:,.1f} GiB of "
                         f"memory ({BENCH_COPIES} float64 copies of the rows), this machine has "
                         f"{have / 2**30:,.1f} GiB: use a smaller --n or --d")
    commands = {"fit": _fit_command, "bench": _bench_command, "resume": _resume_command,
                "predict": _predict_command}
    try:
        errors = commands[args.command](args, sys.stdout) or []
    except BrokenPipeError:
        # the reader of our output stopped (e.g. `| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (_DataError, ValueError, TypeError, OSError, ImportError) as exc:
        errors = [_reason(exc)]
    except MemoryError:
        errors = ["not enough memory for this data: use a machine with more memory, or "
                  "fewer rows or columns"]
    for msg in errors:
        print(f"fastgd {args.command}: error: {msg}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
