"""Input validation: done once, in Python, at the public entry points.

Nothing downstream re-checks. Every message says what was received and how to fix it.
"""
import math
import numbers
import sys
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
class CSR:
    """A validated sparse X in canonical CSR form (see :func:`check_csr`), read by the
    CSR kernels (:mod:`fastgd.kernels.sparse`): never densified."""

    indptr: np.ndarray  # (n + 1,) int32 or int64, indptr[0] == 0, non-decreasing
    indices: np.ndarray  # (nnz,) int32 or int64, sorted and unique within a row, in [0, d)
    values: np.ndarray  # (nnz,) float64, finite
    shape: tuple  # (n, d)

    dtype = np.dtype(np.float64)
    ndim = 2

    @property
    def nnz(self):
        return self.values.shape[0]


@dataclass(frozen=True)
class Data:
    """Validated arrays ready for the kernels."""

    X: object  # (n, d) C-contiguous float32/float64 ndarray, or a CSR (float64)
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

    @property
    def sparse(self):
        """Whether X is a :class:`CSR` (its passes are those of :mod:`fastgd.kernels.sparse`)."""
        return isinstance(self.X, CSR)


def is_sparse(a):
    """Whether ``a`` is a scipy.sparse matrix or array (any format). scipy stays optional:
    an object can only be one if ``scipy.sparse`` is imported already, so it is never
    imported here."""
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and bool(sp.issparse(a))


def check_csr(X, name="X"):
    """A scipy.sparse ``X`` as a :class:`CSR`: canonical, float64, finite; the user's
    object is never modified.

    * CSR is read as it is; every other format (CSC, COO, ...) is converted to CSR once
      (``X.tocsr()``, a copy of O(nnz));
    * float64 values are used without a copy, float32, integer and boolean ones become
      float64 (one copy); complex and other dtypes are a ``TypeError``;
    * int32 and int64 indices are kept as they are;
    * the structure is checked (``indptr`` non-decreasing from 0, column indices in
      ``[0, d)``: a malformed matrix is a ``ValueError``, never a read out of bounds);
    * unsorted column indices and duplicate entries are put in canonical form in a copy
      (sorted within each row, duplicates summed in their stored order, as
      ``X.toarray()`` sums them); explicit zeros are kept (they change nothing);
    * NaN or inf among the stored values is a ``ValueError`` naming the row and column
      of the first one.
    """
    if X.ndim != 2:
        raise ValueError(
            f"{name} is a {X.ndim}-D scipy sparse array of shape {X.shape}; fastgd fits a 2-D "
            f"sparse X of shape (n_samples, n_features): reshape it, e.g. "
            f"{name}.reshape(-1, 1) for one feature"
        )
    n, d = (int(v) for v in X.shape)
    if n == 0:
        raise ValueError(f"{name} is empty (0 rows); fastgd needs at least one sample")
    if d == 0:
        raise ValueError(f"{name} has 0 features (shape {X.shape}); pass at least one column")
    kind = np.dtype(X.dtype).kind
    if kind == "c":
        raise TypeError(
            f"{name} is a complex sparse matrix (dtype {X.dtype}); fastgd fits real-valued "
            f"data: pass {name}.real or abs({name}) as appropriate"
        )
    if kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got a sparse matrix of dtype {X.dtype}")
    if getattr(X, "format", None) != "csr":
        X = X.tocsr()  # (a new matrix: the user's is untouched)
    indptr, indices, values = X.indptr, X.indices, X.data
    if indptr.dtype not in (np.int32, np.int64) or indices.dtype not in (np.int32, np.int64):
        indptr, indices = indptr.astype(np.int64), indices.astype(np.int64)
    if indptr.shape[0] != n + 1 or indptr[0] != 0 or np.any(indptr[1:] < indptr[:-1]):
        raise ValueError(
            f"{name} is a malformed CSR matrix: its indptr must hold {n + 1} non-decreasing "
            f"offsets from 0; rebuild it, e.g. with scipy.sparse.csr_matrix({name}.toarray()) "
            f"or {name}.check_format()"
        )
    nnz = int(indptr[n])
    if indices.shape[0] < nnz or values.shape[0] < nnz:
        raise ValueError(
            f"{name} is a malformed CSR matrix: indptr announces {nnz} entries but indices "
            f"and data hold {indices.shape[0]} and {values.shape[0]}; check it with "
            f"{name}.check_format()"
        )
    indices, values = indices[:nnz], values[:nnz]
    if nnz and (int(indices.min()) < 0 or int(indices.max()) >= d):
        bad = int(np.argmax((indices < 0) | (indices >= d)))
        row = int(np.searchsorted(indptr, bad, side="right")) - 1
        raise ValueError(
            f"{name} is a malformed sparse matrix: row {row} stores column index "
            f"{int(indices[bad])}, outside [0, {d}); check it with {name}.check_format()"
        )
    if values.dtype != np.float64:
        values = values.astype(np.float64)
    if nnz > 1 and not _canonical_order(indptr, indices, nnz):
        indptr, indices, values = _canonical(n, indptr, indices, values)
    count, first = _nonfinite_entries(values)
    if count:
        row = int(np.searchsorted(indptr, first, side="right")) - 1
        raise ValueError(
            f"{name} has {count} stored value(s) that are NaN or inf (first at row {row}, "
            f"column {int(indices[first])}); drop or impute them before fitting"
        )
    return CSR(indptr, indices, values, (n, d))


#: entries compared at a time by :func:`_canonical_order` (its temporaries stay in cache:
#: one comparison of all 2 10^7 entries of 10^6 hashed rows took 0.21 s, in slices 0.03 s)
ORDER_SLICE = 1 << 18


def _canonical_order(indptr, indices, nnz):
    """Whether the column indices increase strictly within every row (sorted, no
    duplicates). The last entry of a row may be followed by any column (the next row's
    first)."""
    ends = indptr[1:-1]
    ends = ends[(ends > 0) & (ends < nnz)] - 1  # positions whose successor starts a row
    # (the bounds in the dtype of ``ends``: a list of Python ints made numpy cast all of
    # ``ends`` to int64 at every slice, 35 of the 52 ms this took on 10^6 hashed rows)
    bounds = np.empty(2, dtype=ends.dtype)
    for a in range(0, nnz - 1, ORDER_SLICE):
        b = min(a + ORDER_SLICE, nnz - 1)
        ordered = indices[a + 1:b + 1] > indices[a:b]
        bounds[0], bounds[1] = a, b
        lo, hi = np.searchsorted(ends, bounds)
        ordered[ends[lo:hi] - a] = True
        if not ordered.all():
            return False
    return True


def _canonical(n, indptr, indices, values):
    """The CSR arrays sorted by column within each row, duplicates summed in their stored
    order (a stable sort keeps it): new arrays, the given ones unchanged."""
    rows = np.repeat(np.arange(n, dtype=indices.dtype), np.diff(indptr))
    order = np.lexsort((indices, rows))
    rows, cols, vals = rows[order], indices[order], values[order]
    new = np.empty(rows.shape[0], dtype=bool)
    new[0] = True
    np.not_equal(cols[1:], cols[:-1], out=new[1:])
    new[1:] |= rows[1:] != rows[:-1]
    starts = np.flatnonzero(new)
    summed = np.add.reduceat(vals, starts) if starts.shape[0] < vals.shape[0] else vals
    counts = np.bincount(rows[starts], minlength=n)
    out_ptr = np.zeros(n + 1, dtype=indptr.dtype)
    np.cumsum(counts, out=out_ptr[1:])
    return out_ptr, np.ascontiguousarray(cols[starts]), np.ascontiguousarray(summed)


def _nonfinite_entries(values):
    """``(count, first)`` of the NaN/inf values of a float64 vector (``first`` -1 if none)."""
    if values.shape[0] <= NONFINITE_NUMPY_VALUES:
        bad = ~np.isfinite(values)
        count = int(bad.sum())
        return (count, int(np.argmax(bad))) if count else (0, -1)
    count, first = _nonfinite(values.reshape(-1, 1), False)
    return count, first


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
    elif is_sparse(a):
        raise TypeError(
            f"{name} is a scipy sparse matrix ({type(a).__name__}); fastgd takes sparse data "
            f"for X only: pass {name} as a dense array, e.g. {name}.toarray().ravel()"
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


def use_parallel_for(parallel, data):
    """:func:`use_parallel` for the validated ``data``: a CSR pass reads its stored
    entries and one value per row (nnz + n values), a dense one every value."""
    if data.sparse:
        return use_parallel(parallel, data.X.nnz + data.n, 0)
    return use_parallel(parallel, data.n, data.d)


def check_parallel(parallel):
    """``True``, ``False`` or ``"auto"`` (numpy bools accepted), else ``ValueError``."""
    return check_flag_or_auto(parallel, "parallel")


def check_X(X, n_features=None, parallel="auto"):
    """Validate a design matrix alone (for predict/loss); returns ``(X2d, one_d)``
    (``X2d`` a :class:`CSR` for a scipy.sparse X)."""
    if is_sparse(X):
        X2 = check_csr(X)
        _check_width(X2.shape[1], n_features)
        return X2, False
    X2, one_d = check_X_shape_only(X)
    _check_width(X2.shape[1], n_features)
    if not X2.flags.c_contiguous:
        X2 = np.ascontiguousarray(X2)
    check_finite(X2, "X", use_parallel(parallel, X2.shape[0], X2.shape[1]))
    return X2, one_d


def _check_width(d, n_features):
    if n_features is not None and d != n_features:
        raise ValueError(
            f"X has {d} feature(s) but the model was fitted with {n_features}; "
            "pass data with the same columns as in fit"
        )


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

    A scipy.sparse X becomes a :class:`CSR` (see :func:`check_csr`: its stored values are
    checked for NaN/inf here, whatever ``check_finite_xy``) and y float64.
    """
    sparse = is_sparse(X)
    if sparse:
        X2, one_d = check_csr(X), False
    else:
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
        if not sparse:
            X2 = X2.astype(np.float64)
        y = y.astype(np.float64)
    if not sparse and not X2.flags.c_contiguous:
        X2 = np.ascontiguousarray(X2)
    if not y.flags.c_contiguous:
        y = np.ascontiguousarray(y)
    par = use_parallel(parallel, n, X2.shape[1])
    if check_finite_xy:
        if not sparse:
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
                f"{float(sw[first])!r}); weights must be >= 0"
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
    check_finite_xy=False)`` left out: raises the same ``ValueError`` it would have (a
    sparse X's values were checked by :func:`check_csr`)."""
    if not data.sparse:
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


def check_statistics(W, mean, com, rescalable=False, max_abs=None):
    """Check the moments of finite data before any solver sees them.

    The source's first pass has already proved X and y finite (or raised on NaN/inf), so
    a non-finite mean or co-moment means sums of squares beyond 1.8e308 (magnitudes above
    about 1e150), and a tiny mean square, squares lost to underflow (below about 1e-120).
    With ``rescalable``, either (or a column whose moments are all zero: zero, or squares
    that underflowed entirely) raises :class:`Magnitudes`, for the engine to refit in
    power-of-two units; otherwise only non-finite moments raise a clear ``ValueError``.
    ``max_abs`` (the source's method: the largest magnitudes of the columns asked for) is
    called for the columns whose mean square is exactly zero, when nothing else is out of
    range: zeros indeed (a feature unused in these rows, the unobserved levels of one-hot
    data, empty hash slots) need no units, the scaling leaves them out; values whose
    squares all underflowed (a column of +-1e-200 whose mean is exactly 0) do. Measured
    before, when every such column went through the units (one more max-abs pass over
    every value and a second start of the fit): one column of zeros made a default fit of
    2 10^5 x 1000 1.47 times slower (0.93 -> 1.37 s), 10^6 x 100 1.34 times.
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
        if square.max() <= SQUARE_MAX and square.min() >= SQUARE_MIN:
            return
        low = np.flatnonzero(~(square >= SQUARE_MIN))
        if (max_abs is not None and square.max() <= SQUARE_MAX and not np.any(square[low])
                and not np.any(max_abs(low))):
            return  # columns of zeros (or y): nothing to rescale
        raise Magnitudes
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
