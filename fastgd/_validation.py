"""Input validation: done once, in Python, at the public entry points.

Nothing downstream re-checks. Every message says what was received and how to fix it.
"""
import math
import numbers
from dataclasses import dataclass

import numpy as np

from . import _frames, _threads
from ._chunking import n_chunks
from ._config import K

MODES = {"batch": 0, "minibatch": 1, "sgd": 2}

#: arrays of at most this many values are searched for NaN/inf by NumPy, no kernel to
#: compile (the size of the small blocks of fastgd.sources.small)
NONFINITE_NUMPY_VALUES = 1 << 20

#: the range of weights fastgd accepts (largest weight, total): beyond, the weighted sums
#: of squares can underflow or overflow float64 (1e-320 everywhere gave a failed
#: eigenvalue solve; sums of inf a "diverged with learning_rate=0")
WEIGHT_MIN = 2.0 ** -500
WEIGHT_MAX = 2.0 ** 500
REDUCTIONS = {"mean": 0, "sum": 1}

#: "auto" runs a pass on several threads from this many values (rows x (columns + 1)).
#: Measured on the 2-core reference machine with fastgd's threads (one pass, serial /
#: threads, us): the loss/gradient pass at 2^20 values d = 1 295 / 317, d = 20 343 / 456;
#: at 2^21 d = 1 605 / 449, d = 5 892 / 792, d = 20 649 / 614; at 2^22 d = 1 1185 / 796.
#: Below, handing a part to a thread (about 30 us, and as much to hear back) costs more
#: than it saves.
PARALLEL_MIN_VALUES = 1 << 21


@dataclass(frozen=True)
class Data:
    """Validated arrays ready for the kernels."""

    X: np.ndarray  # (n, d) C-contiguous float32/float64
    y: np.ndarray  # (n,) same dtype as X
    sw: np.ndarray  # (n,) float64, or (0,) when unweighted
    weight_total: float  # sum of the weights (n when unweighted)
    one_d: bool  # X was given as a 1-D array (one feature)

    @property
    def n(self):
        return self.X.shape[0]

    @property
    def d(self):
        return self.X.shape[1]


def _describe(a):
    return f"dtype {a.dtype}, shape {a.shape}"


def as_float_array(a, name):
    """``a`` as a float32/float64 ndarray, without a copy where possible.

    float32 and float64 are kept; integers, booleans and float16 become float64 (one
    copy). Complex, object and string data raise ``TypeError``.
    """
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a masked array; fastgd does not read masks: drop the masked rows "
            f"(e.g. {name}[~{name}.mask.any(axis=-1)]) or fill them ({name}.filled(value)) "
            "before fitting"
        )
    if _frames.is_frame_like(a):
        a = _frames.to_numpy(a, name)
    elif hasattr(a, "tocsr") and hasattr(a, "nnz"):
        raise TypeError(
            f"{name} is a scipy sparse matrix ({type(a).__name__}); fastgd fits dense data: "
            f"pass {name}.toarray() (sparse input is not supported)"
        )
    if isinstance(a, np.ndarray):
        arr = a
    else:
        try:
            arr = np.asarray(a)
        except (ValueError, TypeError) as exc:
            raise TypeError(
                f"{name} could not be turned into a numeric array ({exc}); pass a numpy "
                "array or a list of numbers with equal-length rows"
            ) from None
    kind = arr.dtype.kind
    if kind == "O":
        # numbers held as Python objects (e.g. a mixed-type table): convert, or say which
        # value could not be read
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} has dtype object and a value that is not a number ({exc}); the "
                "argument must be a string or a number convertible to float"
            ) from None
        kind = "f"
    if kind == "c":
        raise TypeError(
            f"{name} is complex ({_describe(arr)}); fastgd fits real-valued data: pass "
            f"{name}.real or abs({name}) as appropriate"
        )
    if kind not in "fiub":
        raise TypeError(
            f"{name} must be numeric, got {_describe(arr)}; convert it with "
            f"np.asarray({name}, dtype=float) after removing non-numeric entries"
        )
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    return arr.astype(np.float64)


#: unsigned view and exponent mask per float dtype: all exponent bits set = NaN or inf
_EXPONENT_BITS = {
    np.dtype(np.float32): (np.uint32, 0x7F800000),
    np.dtype(np.float64): (np.uint64, 0x7FF0000000000000),
}


def nonfinite_bits(A):
    """``(bits, emask)`` for the nonfinite kernel: the flat unsigned view of the float32 or
    float64 array ``A`` (a copy only if ``A`` is not contiguous) and its exponent mask."""
    itype, mask = _EXPONENT_BITS[A.dtype]
    return np.ascontiguousarray(A).reshape(-1).view(itype), np.array([mask], dtype=itype)


def _nonfinite(A, parallel):
    """``(count, first_row)`` of rows of the 2-D array ``A`` holding NaN or inf."""
    if A.size <= NONFINITE_NUMPY_VALUES:
        # small arrays: NumPy's test, no kernel to compile
        bad = ~np.isfinite(A).all(axis=1)
        count = int(bad.sum())
        return (count, int(np.argmax(bad))) if count else (0, -1)
    nc = n_chunks(A.shape[0])
    out = np.empty((nc, 2), dtype=np.int64)
    bits, emask = nonfinite_bits(A)
    _threads.run_chunks(K._nonfinite, (bits, emask, A.shape[1], out), nc, parallel)
    count = int(out[:, 0].sum())
    if count == 0:
        return 0, -1
    firsts = out[:, 1]
    return count, int(firsts[firsts >= 0][0])


def check_finite(A, name, parallel):
    """Raise ``ValueError`` naming the count and first row of NaN/inf values in ``A``."""
    if A.dtype.kind != "f":
        return
    count, first = _nonfinite(A.reshape(A.shape[0], -1), parallel)
    if count:
        raise ValueError(
            f"{name} has {count} row(s) with NaN or inf values (first at row {first}); "
            "drop or impute them before fitting"
        )


def use_parallel(parallel, n, d):
    """Resolve ``parallel`` ("auto", True, False) to a bool for an ``(n, d)`` pass."""
    if parallel == "auto":
        return n * (d + 1) >= PARALLEL_MIN_VALUES and _threads.get_num_threads() > 1
    if parallel is True or parallel is False:
        return parallel
    if isinstance(parallel, (bool, np.bool_)):
        return bool(parallel)
    raise ValueError(f"parallel must be True, False or 'auto', got {parallel!r}")


def check_parallel(parallel):
    """``True``, ``False`` or ``"auto"`` (numpy bools accepted), else ``ValueError``."""
    return check_flag_or_auto(parallel, "parallel")


def check_X(X, n_features=None, parallel="auto"):
    """Validate a design matrix alone (for predict/loss); returns ``(X2d, one_d)``."""
    X2, one_d = check_X_shape_only(X)
    if n_features is not None and X2.shape[1] != n_features:
        raise ValueError(
            f"X has {X2.shape[1]} feature(s) but the model was fitted with {n_features}; "
            "pass data with the same columns as in fit"
        )
    if not X2.flags.c_contiguous:
        X2 = np.ascontiguousarray(X2)
    check_finite(X2, "X", use_parallel(parallel, X2.shape[0], X2.shape[1]))
    return X2, one_d


def check_data(X, y, sample_weight=None, parallel="auto", check_finite_xy=True,
               allow_zero_weight=False):
    """Validate ``X``, ``y`` and ``sample_weight`` together; returns a :class:`Data`.

    Conversions (each a single copy, only when needed): non-contiguous arrays become
    C-contiguous; integer/bool/float16 become float64; when X and y have different float
    dtypes both become float64; sample weights become float64.

    ``check_finite_xy=False`` leaves the NaN/inf check of ``X`` and ``y`` (a full read of
    the data) to the caller, who must run :func:`check_finite_data` when its first pass
    over the data gives a non-finite sum (see :class:`fastgd.sources.Source`). Everything
    else, the weights' finiteness included, is checked here either way.
    ``allow_zero_weight``: a block of a larger source may have zero total weight.
    """
    X2, one_d = check_X_shape_only(X)
    if y is None:
        raise TypeError("y is None: pass the targets, one value per row of X")
    y = as_float_array(y, "y")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1-D (one target), got shape {y.shape}; fastgd fits one target at a "
            "time: pass y[:, k] for column k"
        )
    n = X2.shape[0]
    if y.shape[0] != n:
        raise ValueError(
            f"X and y have different lengths: X has {n} rows, y has {y.shape[0]}; pass "
            "one target value per row of X"
        )
    if X2.dtype != y.dtype:
        X2 = X2.astype(np.float64)
        y = y.astype(np.float64)
    if not X2.flags.c_contiguous:
        X2 = np.ascontiguousarray(X2)
    if not y.flags.c_contiguous:
        y = np.ascontiguousarray(y)
    par = use_parallel(parallel, n, X2.shape[1])
    if check_finite_xy:
        check_finite(X2, "X", par)
        check_finite(y, "y", par)
    if sample_weight is None:
        sw = np.empty(0, dtype=np.float64)
        total = float(n)
    else:
        sw = as_float_array(sample_weight, "sample_weight")
        if sw.ndim != 1 or sw.shape[0] != n:
            raise ValueError(
                f"sample_weight must be 1-D with one weight per row ({n}), got shape "
                f"{sw.shape}"
            )
        sw = np.ascontiguousarray(sw, dtype=np.float64)
        if not sw.flags.aligned:
            # NumPy sums an unaligned array through its buffers, in pieces: the total's
            # last bits would depend on where the block landed in memory (a Dask block
            # unpickled at an odd offset); an aligned copy costs one pass over n values
            sw = sw.copy()
        check_finite(sw, "sample_weight", par)
        n_neg = int(np.count_nonzero(sw < 0))
        if n_neg:
            first = int(np.argmax(sw < 0))
            raise ValueError(
                f"sample_weight has {n_neg} negative value(s) (first at row {first}: "
                f"{sw[first]!r}); weights must be >= 0"
            )
        with np.errstate(over="ignore"):  # an overflowing total is refused just below
            total = float(sw.sum())
        top = float(sw.max())
        if top > 0.0 and not (WEIGHT_MIN <= top and total <= WEIGHT_MAX):
            raise ValueError(
                f"sample_weight reaches {top:.3g} (sum {total:.3g}): the weighted sums of "
                f"squares would {'underflow' if top < WEIGHT_MIN else 'overflow'} in float64; "
                "fastgd needs the largest weight >= 2^-500 and the total <= 2^500. Only the "
                "ratios of the weights matter for reduction='mean': pass "
                "sample_weight / sample_weight.max()"
            )
        if not total > 0.0 and not allow_zero_weight:
            raise ValueError(
                "sample_weight sums to zero: all rows would be ignored; give at least one "
                "row a positive weight"
            )
    return Data(X2, y, sw, total, one_d)


def check_finite_data(data, parallel):
    """The NaN/inf check of ``data.X`` and ``data.y`` that ``check_data(...,
    check_finite_xy=False)`` left out: raises the same ``ValueError`` it would have."""
    check_finite(data.X, "X", parallel)
    check_finite(data.y, "y", parallel)


def check_X_shape_only(X):
    """Shape/dtype part of :func:`check_X` (finiteness is checked by the caller)."""
    X = as_float_array(X, "X")
    if X.ndim == 0 or X.ndim > 2:
        raise ValueError(
            f"X must be 1-D (one feature) or 2-D (n_samples, n_features), got "
            f"{X.ndim}-D with shape {X.shape}; reshape it, e.g. X.reshape(len(X), -1)"
        )
    one_d = X.ndim == 1
    X2 = X.reshape(-1, 1) if one_d else X
    if X2.shape[0] == 0:
        raise ValueError("X is empty (0 rows); fastgd needs at least one sample")
    if X2.shape[1] == 0:
        raise ValueError(f"X has 0 features (shape {X.shape}); pass at least one column")
    return X2, one_d


def check_choice(value, name, choices):
    """Return ``choices[value]`` or raise a ValueError listing the valid choices."""
    if isinstance(value, str) and value in choices:
        return choices[value]
    valid = ", ".join(repr(c) for c in choices)
    raise ValueError(f"{name} must be one of {valid}; got {value!r}")


def check_flag_or_auto(value, name):
    """``True``, ``False`` or ``"auto"`` (numpy bools accepted)."""
    if isinstance(value, str) and value == "auto":
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True, False or 'auto', got {value!r}")


def check_int(value, name, low, high=None):
    """An integer in ``[low, high]``; bools and floats are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < low or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {rng}, got {value}")
    return value


def check_positive_float(value, name, allow_none=False):
    """A finite float > 0 (or None when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_nonnegative_float(value, name):
    """A finite float >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_fraction(value, name):
    """A float in [0, 1]."""
    value = check_nonnegative_float(value, name)
    if value > 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    return value


def check_init(init_coef, init_intercept, d):
    """Initial parameters as a float64 ``(d + 1,)`` array (weights, then intercept)."""
    coef = np.zeros(d + 1)
    if init_coef is not None:
        raw = np.asarray(init_coef)
        if raw.dtype.kind not in "fiub":
            what = "complex" if raw.dtype.kind == "c" else f"of dtype {raw.dtype}"
            raise TypeError(
                f"init_coef must be real numbers, one per feature, got {what} values "
                f"({init_coef!r:.80}); pass e.g. np.zeros({d})"
            )
        c = raw.astype(np.float64).reshape(-1)
        if c.shape[0] != d:
            raise ValueError(
                f"init_coef must have one value per feature ({d}), got {c.shape[0]}"
            )
        if not np.all(np.isfinite(c)):
            raise ValueError("init_coef contains NaN or inf; pass finite starting values")
        coef[:d] = c
    if isinstance(init_intercept, (bool, np.bool_)) or not isinstance(
        init_intercept, numbers.Real
    ):
        raise TypeError(f"init_intercept must be a number, got {init_intercept!r}")
    if not math.isfinite(init_intercept):
        raise ValueError(f"init_intercept must be finite, got {init_intercept!r}")
    coef[d] = float(init_intercept)
    return coef


class DataChanged(ValueError):
    """The data a fit reads changed while it ran (a file rewritten between two passes):
    its message says so; the engine passes it on as it is."""


class Magnitudes(Exception):
    """Internal: the moments of the data show magnitudes its sums of squares cannot hold
    (they overflow, or a column's squares underflow towards nothing). The engine then
    refits the same rows in power-of-two units (see :func:`fastgd._engine.run`)."""


#: a column whose mean square lies outside [2^-800, 2^800] is refitted in power-of-two
#: units: beyond, the sums of squares of n rows overflow or lose bits to underflow
SQUARE_MIN = 2.0 ** -800
SQUARE_MAX = 2.0 ** 800


def check_statistics(W, mean, com, rescalable=False):
    """Check the moments of finite data before any solver sees them.

    The source's first pass has already proved X and y finite (or raised on NaN/inf), so
    a non-finite mean or co-moment means sums of squares beyond 1.8e308 (magnitudes above
    about 1e150), and a tiny mean square, squares lost to underflow (below about 1e-120).
    With ``rescalable``, either (or a column whose moments are all zero: zero, or squares
    that underflowed entirely) raises :class:`Magnitudes`, for the engine to refit in
    power-of-two units; otherwise only non-finite moments raise a clear ``ValueError``.
    Never hand such a matrix to LAPACK: its eigenvalue and least-squares solvers failed or
    hung on it.
    """
    if W == 0.0:  # blocks whose weights are checked where they are (dask) find it here
        raise ValueError(
            "sample_weight sums to zero: all rows would be ignored; give at least one row a "
            "positive weight"
        )
    diag = np.diag(com) if com.ndim == 2 else com
    if rescalable:
        # (the engines run under np.errstate(all="ignore"): an overflow here is an inf,
        # and NaN or inf fail both comparisons; the cross moments are bounded by the
        # diagonal's, |com_ab| <= sqrt(com_aa com_bb), so the diagonal decides)
        square = diag / W + mean * mean
        if not (square.max() <= SQUARE_MAX and square.min() >= SQUARE_MIN):
            raise Magnitudes
        return
    finite = bool(np.isfinite(W) and np.isfinite(mean).all() and np.isfinite(com).all())
    if finite:
        return
    k = mean.shape[0]
    bad = [j for j in range(k) if not (np.isfinite(mean[j]) and np.isfinite(diag[j]))]
    names = ", ".join("y" if j == k - 1 else f"X[:, {j}]" for j in bad) or "the cross moments"
    raise ValueError(
        f"the sums of squares of {names} overflow float64 (magnitudes beyond about 1e150, "
        "or weights too large): rescale the data, e.g. divide those columns by a power of "
        "two such as 2.0**-500, fit, and scale the coefficients back"
    )
