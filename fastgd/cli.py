"""Command line: ``fastgd demo | fit | predict | resume | bench`` (also ``python -m fastgd``).

The options of ``fastgd fit`` that set the fit are generated from the one table of fit
settings, :data:`fastgd._plan.PARAMS`: each row gives its option (``--`` and the name with
``-`` for ``_``), its help, its default and its constraint (the API's own check: a bad
value is a usage error with the API's message), so the command line cannot drift from
:func:`fastgd.fit`. Only the options given are passed on: a setting left out takes the
API's default, its "auto" rules included.

Exit status: 0 success, 1 a problem with the data or files, 2 a usage error, 130 Ctrl-C.
A reader that closes standard output early (``| head``) ends the output quietly.
"""
import argparse
import os
import sys
import time
import warnings
from contextlib import contextmanager
from types import MappingProxyType

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
    with warnings.catch_warnings():  # (one epoch of a stochastic fit is not a fit to judge)
        warnings.simplefilter("ignore")
        for mode, parallel, _, tol in _demo_runs(1, 1):
            fastgd.fit(x[:m], y[:m], mode=mode, epochs=1, tol=tol, parallel=parallel,
                       random_state=0)
    print(f"JIT warm-up (compile or cache load): {time.perf_counter() - t:.2f} s\n", file=out)
    header = (f"{'mode':<10} {'parallel':<8} {'epochs':>6} {'ms/epoch':>9} {'final MSE':>12} "
              f"{'slope':>10} {'intercept':>10}")
    print(header, file=out)
    print("-" * len(header), file=out)
    for mode, parallel, epochs, tol in _demo_runs(300, 3):
        res = fastgd.fit(x, y, mode=mode, epochs=epochs, tol=tol, parallel=parallel,
                         random_state=seed)
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


MAIN_EPILOG = """examples:
  fastgd demo                                       # a generated problem, every mode
  fastgd fit rides.csv --x distance --y calories    # fit columns of a file
  fastgd predict model.json new_rides.csv           # predict with a saved model
  fastgd resume fit.ckpt                            # continue a checkpointed fit
  fastgd bench rides.csv --x distance --y calories  # fastgd against numpy, scikit-learn

`fastgd COMMAND --help` shows a command's options and examples.
Exit status: 0 success, 1 a problem with the data or files, 2 a usage error,
130 interrupted (Ctrl-C). Output read by `| head` ends quietly."""

DEMO_EPILOG = """examples:
  fastgd demo
  fastgd demo --n 1000000 --seed 3
  fastgd demo --n 100000 | head -4

Fits y = 2.5 x - 1 + N(0, 0.5^2) noise by batch, mini-batch and SGD, serial and
parallel, and numpy.linalg.lstsq for comparison: epochs, time an epoch, final MSE,
slope and intercept. Kernels are compiled (or loaded from their cache) first."""

FIT_EPILOG = """examples:
  fastgd fit rides.csv --x distance --x climb --y calories
  fastgd fit rides.csv --x distance --y calories --penalty l2 --alpha 0.1 --save-model model.json
  fastgd fit data.parquet --x 0 --x 1 --y 2 --mode sgd --epochs 5 --random-state 0 --format json
  fastgd fit nohead.csv --no-header --x 0 --x 1 --y 2 --serial
  cat rides.csv | fastgd fit - --x distance --y calories --weight trust
  fastgd fit big.parquet --x a --y b --mode sgd --checkpoint fit.ckpt  # see: resume

Columns are named, or given by position ("0", "1", ...). A CSV without a header row
needs --no-header: its columns are then named by their positions, in the output, the
JSON "features" and a saved model too (which predict then finds by position); a first
line of numbers without --no-header is refused, never fitted as column names. A name
that is a string of digits means that column; a name the header repeats must be given
by position. PATH "-" reads CSV from standard input (spooled to a temporary file, so
every mode can read it more than once); so is a pipe or a device given as PATH.

Fit settings: the keywords of fastgd.fit, with "-" for "_" (--learning-rate for
learning_rate); an option left out takes the API's default, its "auto" rules
included; "none" gives None where the API takes it.

Ctrl-C stops the fit at the end of its epoch: the parameters reached are printed
("interrupted after epoch k") and written to --save-model, --checkpoint holds the last
epoch it wrote (`fastgd resume FILE` continues the fit), and the exit status is 130. A
second Ctrl-C stops at once.

Outputs (--save-model, --checkpoint, --plot) are checked before the fit: none may be
the input or another output, their folders must exist, and an existing file is
replaced only if it is of the same kind (a model, a checkpoint, an image) or empty;
--force replaces any file. If a write fails at the end, the result is printed first.
Exit status: 0 success, 1 a problem with the data or files, 2 a usage error, 130 Ctrl-C."""

PREDICT_EPILOG = """examples:
  fastgd predict model.json new_rides.csv > predictions.csv
  fastgd predict model.json new_rides.csv --x dist --x climb  # other names, the model's order
  fastgd predict model.json nohead.csv --no-header  # a model fitted with --no-header
  cat new_rides.csv | fastgd predict model.json - | head

Prints a column "prediction": X @ coef + intercept for every row of PATH, in order, to
17 significant digits. Without --x, the columns are the model's feature names (for a
model fitted with --no-header, positions). With --x, names of the model's features must
be all of them, in its order; other columns map to its features by position (stderr
notes it). NaN or inf in a column is an error naming its line.
Exit status: 0 success, 1 a problem with the data or files, 2 a usage error, 130 Ctrl-C."""

RESUME_EPILOG = """examples:
  fastgd fit big.parquet --x a --y b --mode sgd --checkpoint fit.ckpt   # interrupted
  fastgd resume fit.ckpt
  fastgd resume fit.ckpt --format json --save-model model.json

The file the fit read is opened again (it must not have changed since: size and
modification time are checked) with the fit's columns and settings; the result is the
uninterrupted fit's, bit for bit. The fit goes on writing its checkpoint to CHECKPOINT.
Ctrl-C stops it again as fastgd fit does (exit status 130).
Exit status: 0 success, 1 a problem with the data or files, 2 a usage error, 130 Ctrl-C."""

BENCH_EPILOG = """examples:
  fastgd bench rides.csv --x distance --y calories
  fastgd bench --n 1000000 --d 10 --json results.json

Times fastgd's default fit and one epoch of each mode against numpy.linalg.lstsq, a
vectorized NumPy gradient epoch and scikit-learn (when installed), in alternated rounds
(best kept), with each one's excess MSE over the least-squares optimum ("0 (rounding)"
when within 1e-12 of it: float64 rounding, of either sign).
Exit status: 0 success, 1 a problem with the data or files, 2 a usage error, 130 Ctrl-C."""


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
    and seek in it. Messages about the data name what the user gave ("standard input"),
    not the temporary file."""
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
        try:
            yield f.name
        except (ValueError, TypeError) as exc:
            if f.name not in str(exc):
                raise
            raise _DataError(str(exc).replace(f.name, _label(path))) from None
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
    from fastgd._outputs import image_format

    try:
        return image_format("--plot", file)
    except ValueError as exc:
        raise _DataError(str(exc)) from None


# ---------------------------------------------------------------------------------------
# fastgd fit's settings, generated from the table of fit settings (fastgd._plan.PARAMS)
# ---------------------------------------------------------------------------------------

#: keywords of fastgd.fit and fastgd.fit_file that are options of their own (not rows of
#: the settings table), by keyword
OPTION_OF = MappingProxyType({
    "path": "PATH", "X": "--x", "x": "--x", "y": "--y", "sample_weight": "--weight",
    "weight": "--weight", "header": "--no-header", "delimiter": "--delimiter",
    "block_rows": "--block-rows", "checkpoint": "--checkpoint",
    "checkpoint_every": "--checkpoint-every", "overwrite": "--force", "progress": "--quiet",
})
#: keywords of fastgd.fit the command line leaves out, and why
NOT_OPTIONS = MappingProxyType({
    "init_coef": "starting weights, an array: a command-line fit starts from zero, and a "
                 "long one continues from its --checkpoint (fastgd resume)",
    "init_intercept": "the starting intercept: as init_coef",
    "callback": "a Python function, called after every epoch",
})
#: settings on/off whose two options are not --NAME and --no-NAME
FLAG_OPTIONS = MappingProxyType({
    "fit_intercept": ("--intercept", "--no-intercept"),
    "parallel": ("--parallel", "--serial"),
})


def option_name(name):
    """The option of the setting ``name``: ``--`` and the name with ``-`` for ``_``."""
    return "--" + name.replace("_", "-")


def flag_options(p):
    """The two options (on, off) of the on/off setting ``p``."""
    return FLAG_OPTIONS.get(p.name) or (option_name(p.name), "--no-" + p.name.replace("_", "-"))


class _OnOff(argparse.Action):
    """A setting turned on by its first option and off by its second (``--shuffle`` /
    ``--no-shuffle``, ``--parallel`` / ``--serial``); the last one given wins, and
    neither leaves the setting out (its default, "auto" included)."""

    def __init__(self, option_strings, dest, help=None, **_):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, option_string == self.option_strings[0])

    def format_usage(self):
        return " | ".join(self.option_strings)


def _integer(text):
    """An integer from its text ("1000", or "1e3": a float with no fraction)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None
    if not value.is_integer():
        raise ValueError(f"expected an integer, got {text!r}")
    return int(value)


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


def _value(p, text):
    """The Python value the command-line text ``text`` stands for, for the setting ``p``
    (its constraint then checks it): "none" is None where the setting takes None, "auto"
    is "auto" where it takes that, numbers are numbers."""
    from fastgd import _plan as P

    c = p.check
    word = text.strip().lower()
    if word == "none" and getattr(c, "none", False):
        return None
    if isinstance(c, (P.Choice, P.Registered)):
        return text
    if word == "auto" and (isinstance(c, P.Average) or getattr(c, "auto", False)):
        return "auto"
    if isinstance(c, P.Average):
        return word == "true" if word in ("true", "false") else _integer(text)
    if isinstance(c, (P.Int, P.Seed)):
        return _integer(text)
    if isinstance(c, P.Real):
        return _number(text)
    raise TypeError(f"the setting {p.name} has a constraint ({type(c).__name__}) that the "
                    "command line does not read: give it a parser in fastgd/cli.py")


def setting_type(p, name=None):
    """The argparse type of the setting ``p``: its text read by :func:`_value`, then
    checked by the setting's own constraint (the API's message, as a usage error)."""
    from fastgd import _plan as P
    from fastgd import _validation as V

    name = name or p.name

    def parse(text):
        try:
            value = p.check(name, _value(p, text))
            if isinstance(p.check, P.Int) and p.check.low is None and value is not None:
                # a range known with the data only (batch_size: 1 to the rows): its lower
                # end is a usage error already
                V.check_int(value, name, 1)
            return value
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


def _metavar(p):
    from fastgd import _plan as P

    c = p.check
    if isinstance(c, P.Choice):
        return "{" + ",".join(c.values + (("none",) if c.none else ())) + "}"
    if isinstance(c, P.Registered):  # (the registry as it is once fastgd is imported)
        return "{" + ",".join(c.values) + "}"
    if isinstance(c, P.Average):
        return "{auto,true,false,K}"
    if isinstance(c, P.Seed):
        return "SEED"
    return "N" if isinstance(c, P.Int) else "X"


def setting_help(p):
    """The help of the setting ``p``: the table's text and its default (a None default
    is described by the text itself; an on/off one is the option that gives it)."""
    from fastgd import _plan as P

    text = p.doc
    if p.default is not None:
        if isinstance(p.check, P.Flag):
            on, off = flag_options(p)
            shown = on if p.default else off
        else:
            shown = p.default if isinstance(p.default, str) else repr(p.default)
        text += f" (default: {shown})"
    return text.replace("%", "%%")


def add_settings(group):
    """The options of every row of the settings table (:data:`fastgd._plan.PARAMS`)."""
    from fastgd import _plan as P

    for p in P.PARAMS:
        if isinstance(p.check, (P.Flag, P.FlagOrAuto)):
            group.add_argument(*flag_options(p), dest=p.name, action=_OnOff,
                               help=setting_help(p))
        else:
            group.add_argument(option_name(p.name), dest=p.name, type=setting_type(p),
                               metavar=_metavar(p), default=argparse.SUPPRESS,
                               help=setting_help(p))


def fit_keywords(args):
    """The settings given on the command line, as keywords of :func:`fastgd.fit` (the
    ones left out are not passed: they take the API's defaults)."""
    from fastgd._plan import PARAMS

    return {p.name: getattr(args, p.name) for p in PARAMS if hasattr(args, p.name)}


def _delimiter(text):
    """An argparse type: one character between CSV fields ("\\t" or "tab": a tab)."""
    from fastgd.sources.files import _check_delimiter

    text = {"\\t": "\t", "tab": "\t"}.get(text, text)
    try:
        return _check_delimiter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_reading(p, fit=True):
    """The options that say how a file is read (fit, predict, bench)."""
    p.add_argument("--no-header", action="store_true",
                   help="the CSV has no header row: its columns are named by position "
                        "('0', '1', ...)")
    p.add_argument("--delimiter", type=_delimiter, default=",", metavar="CHAR",
                   help="CSV: the character between fields ('\\t' or 'tab' for a tab; "
                        "default: ',')")
    if fit:
        p.add_argument("--block-rows", type=_at_least(1), metavar="N",
                       help="rows read at a time (memory stays bounded by a few blocks; "
                            "the stochastic modes shuffle the blocks' order). Default: "
                            "64 MiB of float64 a block, at most 2^20 rows")


class _Output:
    """Standard output that its reader may close early (``| head``). The first write
    that finds the pipe closed sends the rest to /dev/null and sets ``broken``; with
    ``stop`` (a command with nothing else to do: demo, predict) that write then raises
    ``BrokenPipeError``, which ends the command quietly. A command that also writes files
    (fit, resume, bench) goes on to write them. Lines are flushed as they are written,
    so that a closed pipe is found at once."""

    def __init__(self, stream, stop):
        self.stream, self.stop, self.broken = stream, stop, False

    def write(self, text):
        if not self.broken:
            try:
                self.stream.write(text)
                if "\n" in text:
                    self.stream.flush()
            except BrokenPipeError:
                self._close()
        return len(text)

    def flush(self):
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._close()

    def _close(self):
        self.broken = True
        # what the stream still buffers goes to /dev/null, at exit too (no "Exception
        # ignored ... BrokenPipeError" when Python flushes it)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self.stream.fileno())
        finally:
            os.close(devnull)
        if self.stop:
            raise BrokenPipeError("standard output was closed by its reader")


class _Interrupted(Exception):
    """Ctrl-C during a fit, after the parameters reached were printed: the one-line note
    for stderr; ``errors``: writes that failed. Exit status 130."""

    def __init__(self, note, errors=()):
        super().__init__(note)
        self.errors = list(errors)


def _checkpoint_note(path, since_ns):
    """What the checkpoint ``path`` holds after an interrupted fit that began at
    ``since_ns`` (``time.time_ns()``), and how to go on."""
    try:
        written = os.stat(path).st_mtime_ns >= since_ns
    except OSError:
        written = False
    if not written:
        return f"no checkpoint was written yet to {path}"
    from fastgd._checkpoint import read

    try:
        epoch = read(path)["epoch"]
    except (OSError, ValueError):
        return f"`fastgd resume {path}` continues the fit"
    return f"{path} holds epoch {epoch}: `fastgd resume {path}` continues the fit"


def _interrupted(res, label, args, out, checkpoint, since_ns):
    """Ctrl-C stopped the fit at the end of an epoch: the parameters reached are printed
    (and written to --save-model), then :class:`_Interrupted` ends the command."""
    _report(res, label, args, out, interrupted=True)
    errors = _save_model(res, args, out)
    note = [f"interrupted (Ctrl-C) after epoch {res.n_epochs}: the parameters reached are "
            "printed" + (f" and saved to {args.save_model}"
                         if args.save_model and not errors else "")]
    if getattr(args, "plot", None):
        note.append("--plot not drawn")
    if checkpoint:
        note.append(_checkpoint_note(checkpoint, since_ns))
    raise _Interrupted("; ".join(note), errors)


def _interrupted_at_once(checkpoint, since_ns):
    """Ctrl-C stopped the fit at once (a second Ctrl-C, or one before the fit watched for
    it): there is no result to print; the checkpoint, if any, says where to go on."""
    note = "interrupted (Ctrl-C) at once: no result to print"
    if checkpoint:
        note += "; " + _checkpoint_note(checkpoint, since_ns)
    raise _Interrupted(note)


def _label(path):
    return "standard input" if path == "-" else path


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
    kw = fit_keywords(args)
    if args.checkpoint:
        kw.update(checkpoint=args.checkpoint, overwrite=args.force)
        if args.checkpoint_every is not None:
            kw["checkpoint_every"] = args.checkpoint_every
    path_seen = []
    if args.plot:
        kw["callback"] = lambda e, c, b, loss: path_seen.append((float(c[0]), b))
    since = time.time_ns()
    with _readable(args.path) as path:
        try:
            res = fastgd.fit_file(path, x=args.x, y=args.y, weight=args.weight,
                                  header=not args.no_header, delimiter=args.delimiter,
                                  block_rows=args.block_rows,
                                  progress=False if args.quiet else "auto", **kw)
        except fastgd.FitInterrupted as stop:
            _interrupted(stop.result, _label(args.path), args, out, args.checkpoint, since)
        except KeyboardInterrupt:
            _interrupted_at_once(args.checkpoint, since)
        # the result first: a write that fails below cannot lose it
        _report(res, _label(args.path), args, out)
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
    label = f"{fitted} (resumed from {args.checkpoint_file})"
    since = time.time_ns()
    try:
        res = fastgd.resume(args.checkpoint_file, progress=False if args.quiet else "auto",
                            checkpoint_every=args.checkpoint_every)
    except fastgd.FitInterrupted as stop:
        _interrupted(stop.result, label, args, out, args.checkpoint_file, since)
    except KeyboardInterrupt:
        _interrupted_at_once(args.checkpoint_file, since)
    except (KeyError, IndexError) as exc:
        # a field the checks before the fit did not cover: the file is damaged
        raise _DataError(f"{args.checkpoint_file} is not a valid fastgd checkpoint (a field "
                         f"is missing or malformed: {exc!r}); start the fit again") from None
    _report(res, label, args, out)
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


def _report(res, label, args, out, interrupted=False):
    import json

    rows = res.n_rows
    if args.format == "json":
        doc = {"coef": [float(c) for c in res.coef], "intercept": res.intercept,
               "loss": res.final_loss, "epochs": res.n_epochs, "converged": res.converged,
               "stop_reason": res.stop_reason, "interrupted": interrupted,
               "elapsed_s": res.elapsed_s, "rows": rows,
               "features": list(res.feature_names or [])}
        print(json.dumps(doc), file=out)
        return
    names = res.feature_names or [f"x{j}" for j in range(res.coef.shape[0])]
    width = max(12, max(len(n) for n in names))
    status = (f"interrupted after epoch {res.n_epochs} (Ctrl-C)" if interrupted else
              f"{res.n_epochs} epoch(s), {'converged' if res.converged else 'not converged'}")
    print(f"fastgd fit of {label}: {'' if rows is None else f'{rows:,} rows, '}mode "
          f"{res.mode}, {status}, {res.elapsed_s:.3f} s", file=out)
    for n, c in zip(names, res.coef):
        print(f"  {n:<{width}} {c: .10g}", file=out)
    print(f"  {'(intercept)':<{width}} {res.intercept: .10g}", file=out)
    print(f"  loss ({_loss_name(res)}) {res.final_loss:.10g}", file=out)


def _loss_name(res):
    """What ``res.loss_history`` measures: "MSE", "SSE", "mean Huber", ..., "+ penalty"."""
    plan = res.plan
    if plan is not None and plan.loss == "huber":
        name = f"{res.reduction} Huber"
    else:
        name = "MSE" if res.reduction == "mean" else "SSE"
    return name + (" + penalty" if plan is not None and plan.alpha > 0 else "")


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

    reader = FileReader(path, args.x, args.y, header=not args.no_header,
                        delimiter=args.delimiter)
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


def _read_all(reader):
    """Every row of the file a :class:`fastgd.io.FileReader` reads, in memory, NaN and
    inf refused with their line."""
    xs, ys, n = [], [], 0
    for X, y in reader():
        if not (np.isfinite(X).all() and np.isfinite(y).all()):
            raise _DataError(reader.bad_values(X, y, n))
        xs.append(X)
        ys.append(y)
        n += X.shape[0]
    return np.concatenate(xs), np.concatenate(ys)


def _bench_command(args, out):
    import json

    from fastgd import _compare

    _check_outputs(args, [("--json", args.json, "bench")], [("the input file", args.path)])
    if args.path is not None:
        if not args.x or args.y is None:
            raise _DataError("bench PATH needs the columns: --x COL [--x COL ...] --y COL")
        from fastgd.io import FileReader

        with _readable(args.path) as path:
            X, y = _read_all(FileReader(path, args.x, args.y, header=not args.no_header,
                                        delimiter=args.delimiter))
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
    import io

    import fastgd
    from fastgd.io import FileReader

    try:
        model = fastgd.load(args.model)
    except (KeyError, IndexError) as exc:
        raise _DataError(f"{args.model} is not a valid fastgd model file (a field is missing "
                         f"or malformed: {exc!r}); save the model again") from None
    x = _predict_columns(model, args.x)
    with _readable(args.path) as path:
        reader = FileReader(path, x, header=not args.no_header, delimiter=args.delimiter,
                            allow_empty=True)
        _note_positions(model, x, reader, args)
        print("prediction", file=out)
        row = 0
        for (X,) in reader():
            if not np.isfinite(X).all():
                raise _DataError(reader.bad_values(X, None, row))
            text = io.StringIO()
            np.savetxt(text, X @ model.coef + model.intercept, fmt="%.17g")
            out.write(text.getvalue())
            row += X.shape[0]


def _note_positions(model, x, reader, args):
    """stderr notes when a model whose features are positions (fitted on a file without
    a header) reads a file with one: its columns are then taken by position."""
    names = list(model.feature_names or [])
    if (args.x or args.no_header or not names or not all(n.isdigit() for n in names)
            or any(n in reader.names for n in names)):
        return
    print(f"fastgd predict: the model was fitted on a file without a header (its features "
          f"are positions); columns {', '.join(names)} of {_label(args.path)} "
          f"({', '.join(repr(reader.names[int(n)]) for n in names)}) are taken as its "
          "features", file=sys.stderr)


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


def build_parser():
    """The parser of every command (``fastgd --help``)."""
    import fastgd
    from fastgd._plan import ENTRY_PARAMS

    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="fastgd", description=fastgd.__doc__.splitlines()[0],
                                     epilog=MAIN_EPILOG, formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"fastgd {fastgd.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="fit a generated 10-million-point problem in every mode",
                       description="Fit a generated problem (y = 2.5 x - 1 plus noise) in "
                                   "every mode, serial and parallel,\nand print a table.",
                       epilog=DEMO_EPILOG, formatter_class=raw)
    p.add_argument("--n", type=int, default=10_000_000,
                   help=f"number of points, 4096 to {DEMO_MAX_N:,} (default: 10,000,000)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the generated data, an integer >= 0 (default: 0)")

    f = sub.add_parser("fit", help="fit columns of a CSV or Parquet file (or CSV on stdin)",
                       usage="fastgd fit PATH --x COL [--x COL ...] --y COL [options]",
                       description="Fit y = X @ coef + intercept to columns of a CSV or "
                                   "Parquet file, read in blocks\n(files larger than memory "
                                   "too), and print the result.",
                       epilog=FIT_EPILOG, formatter_class=raw)
    f.add_argument("path", metavar="PATH",
                   help='a .csv or .parquet file, or "-" for CSV on standard input')
    data = f.add_argument_group("data")
    data.add_argument("--x", action="append", required=True, metavar="COL",
                      help="a column of X (repeat for several): a name or a position")
    data.add_argument("--y", required=True, metavar="COL", help="the target column")
    data.add_argument("--weight", metavar="COL",
                      help="a column of sample weights (finite, >= 0; default: none)")
    _add_reading(data)
    add_settings(f.add_argument_group(
        "fit settings", "The keywords of fastgd.fit: an option left out takes the API's "
                        "default\n(auto: the rule given)."))
    outs = f.add_argument_group("output")
    outs.add_argument("--format", choices=("table", "json"), default="table",
                      help="table, or one JSON object: coef, intercept, loss, epochs, "
                           "converged, stop_reason (why the fit stopped), interrupted, "
                           "elapsed_s, rows, features "
                           "(default: table)")
    outs.add_argument("--save-model", metavar="FILE", help="write the model (JSON) for predict")
    outs.add_argument("--plot", metavar="FILE.png",
                      help="write a figure: the fit line, the loss curve and (one feature) "
                           "the loss surface with the descent path (needs matplotlib)")
    outs.add_argument("--checkpoint", metavar="FILE",
                      help="write the fit's state to FILE (atomically) every "
                           "--checkpoint-every epochs; `fastgd resume FILE` continues an "
                           "interrupted fit")
    every = ENTRY_PARAMS["checkpoint_every"]
    outs.add_argument("--checkpoint-every", type=setting_type(every), metavar="N",
                      help=setting_help(every))
    outs.add_argument("--quiet", action="store_true",
                      help="no progress bar (shown on a terminal once a fit runs a second)")
    outs.add_argument("--force", action="store_true",
                      help="let --save-model, --checkpoint and --plot replace an existing "
                           "file that is not a fastgd model, checkpoint or image (never an "
                           "input)")

    r = sub.add_parser("resume", help="continue a fit from its --checkpoint file",
                       description="Continue a fit of `fastgd fit ... --checkpoint FILE` "
                                   "from its checkpoint,\nand print the result.",
                       epilog=RESUME_EPILOG, formatter_class=raw)
    r.add_argument("checkpoint_file", metavar="CHECKPOINT",
                   help="the checkpoint written by `fastgd fit ... --checkpoint FILE` (it "
                        "names the file fitted, its columns and the settings)")
    r.add_argument("--format", choices=("table", "json"), default="table",
                   help="table, or one JSON object as fastgd fit prints (default: table)")
    r.add_argument("--save-model", metavar="FILE", help="write the model (JSON) for predict")
    again = ENTRY_PARAMS["resume_checkpoint_every"]
    r.add_argument("--checkpoint-every", type=setting_type(again, "checkpoint_every"),
                   metavar="N", help=setting_help(again))
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--force", action="store_true",
                   help="let --save-model replace an existing file that is not a model")

    q = sub.add_parser("predict", help="predict with a saved model; CSV on stdout",
                       description="Predict with a model saved by `fastgd fit ... "
                                   "--save-model FILE`:\none prediction a row of PATH, on "
                                   "standard output.",
                       epilog=PREDICT_EPILOG, formatter_class=raw)
    q.add_argument("model", metavar="MODEL", help="a model file from fit --save-model")
    q.add_argument("path", metavar="PATH", help='a .csv or .parquet file, or "-" for CSV on '
                                                "standard input")
    q.add_argument("--x", action="append", metavar="COL",
                   help="a column of X (repeat, in the model's order; default: the model's "
                        "feature names)")
    _add_reading(q, fit=False)

    b = sub.add_parser("bench", help="time fastgd against numpy and scikit-learn on your data",
                       description="Time fastgd against numpy and scikit-learn on a file's "
                                   "columns (read into\nmemory) or on generated data.",
                       epilog=BENCH_EPILOG, formatter_class=raw)
    b.add_argument("path", metavar="PATH", nargs="?",
                   help="a .csv or .parquet file (read into memory), or '-'; default: "
                        "generated data (--n, --d)")
    b.add_argument("--x", action="append", metavar="COL",
                   help="a column of X (repeat for several); with PATH")
    b.add_argument("--y", metavar="COL", help="the target column; with PATH")
    _add_reading(b, fit=False)
    b.add_argument("--n", type=_at_least(2), default=1_000_000,
                   help="generated rows (default: 1,000,000)")
    b.add_argument("--d", type=_at_least(1), default=10,
                   help="generated features (default: 10)")
    b.add_argument("--rounds", type=_at_least(1), default=3,
                   help="alternated rounds, each contender's best kept (default: 3)")
    b.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    b.add_argument("--force", action="store_true",
                   help="let --json replace an existing file that is not a bench result")
    parser.commands = {"demo": p, "fit": f, "resume": r, "predict": q, "bench": b}
    return parser


def _check_usage(parser, args):
    """The usage errors argparse cannot see (exit status 2)."""
    sub = parser.commands[args.command]
    if args.command == "demo":
        if args.n < 4096:
            sub.error(f"--n must be at least 4096, got {args.n}")
        # 16 bytes a point (x and y) plus the fits' work arrays: refuse what cannot fit in
        # memory up front rather than die inside NumPy
        if args.n > DEMO_MAX_N:
            sub.error(f"--n must be at most {DEMO_MAX_N:,} (about 80 bytes of memory a "
                      f"point), got {args.n:,}")
        if args.seed < 0:
            sub.error(f"--seed must be an integer >= 0, got {args.seed}")
    if args.command == "fit" and args.checkpoint_every is not None and not args.checkpoint:
        sub.error("--checkpoint-every needs --checkpoint FILE")
    if args.command == "bench" and args.path is None:
        need, have = BENCH_COPIES * 8 * args.n * (args.d + 1), _memory_bytes()
        if have is not None and need > have:
            sub.error(f"--n {args.n:,} --d {args.d} needs about {need / 2**30:,.1f} GiB of "
                      f"memory ({BENCH_COPIES} float64 copies of the rows), this machine has "
                      f"{have / 2**30:,.1f} GiB: use a smaller --n or --d")


def main(argv=None):
    """Run the ``fastgd`` command on ``argv`` (``sys.argv[1:]`` by default); returns its
    exit status. Callable in-process: it leaves the process's SIGINT handler as it was."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before a command began (Python's start, the parser)
        print("fastgd: interrupted (Ctrl-C)", file=sys.stderr)
        return 130


def console():
    """The ``fastgd`` program: :func:`main`, then Ctrl-C ignored while Python exits. The
    command has said all it has to say by then; a Ctrl-C that arrives late (the second
    of two pressed together) would otherwise print a ``KeyboardInterrupt`` traceback
    from the interpreter's exit handlers."""
    import signal

    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


@contextmanager
def _warnings_as_lines(command):
    """Warnings (a ConvergenceWarning, an ill-conditioned fit) as one line each on stderr,
    named by the command, instead of Python's ``file:line: Category`` form that points
    into the ``fastgd`` script."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"fastgd {command}: warning: {message}", file=sys.stderr)

    saved = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = saved


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_usage(parser, args)
    _announce_compilation()
    commands = {"demo": _demo_command, "fit": _fit_command, "bench": _bench_command,
                "resume": _resume_command, "predict": _predict_command}
    # demo and predict have nothing else to do once their reader has gone
    out = _Output(sys.stdout, stop=args.command in ("demo", "predict"))
    errors, note = [], None
    try:
        with _warnings_as_lines(args.command):
            errors = commands[args.command](args, out) or []
        out.flush()
    except BrokenPipeError:
        # the reader of our output stopped (e.g. `| head`): not an error of ours
        if not out.broken:
            out.stop = False
            out._close()
        return 0
    except _Interrupted as stop:
        errors, note = stop.errors, str(stop)
    except KeyboardInterrupt:  # outside a fit (reading, compiling, demo, predict, bench)
        note = "interrupted (Ctrl-C)"
    except (_DataError, ValueError, TypeError, OSError, ImportError) as exc:
        errors = [_reason(exc)]
    except MemoryError:
        errors = ["not enough memory for this data: use a machine with more memory, or "
                  "fewer rows or columns"]
    out.flush()
    for msg in errors:
        print(f"fastgd {args.command}: error: {msg}", file=sys.stderr)
    if note is not None:
        print(f"fastgd {args.command}: {note}", file=sys.stderr)
        return 130
    return 1 if errors else 0


def _demo_command(args, out):
    demo(args.n, args.seed, out=out)
    return []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
