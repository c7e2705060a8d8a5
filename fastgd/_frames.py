"""Data frames and Arrow data in, NumPy arrays out: pandas, polars and pyarrow.

None of those libraries is imported here: an object is recognised by the package its type
comes from, so ``import fastgd`` never loads them and an array never pays for the check.
Conversions make no copy where the memory already is what the kernels read (a float
column, or a frame built over a C-ordered float array); missing values (pandas' ``NA``,
polars and Arrow nulls) become NaN, which the usual NaN check then reports with its row.
Non-numeric columns are a ``TypeError`` naming the column.
"""
import warnings

import numpy as np

from ._callers import user_level

_FRAME_PACKAGES = ("pandas", "polars", "pyarrow")


def _package(obj):
    return type(obj).__module__.split(".", 1)[0]


def is_frame_like(obj):
    """Whether ``obj`` is a pandas/polars/pyarrow object this module converts."""
    return _package(obj) in _FRAME_PACKAGES


def column_names(obj):
    """The column names of a data frame or Arrow table (pandas, polars, pyarrow, or a dask
    DataFrame), as a tuple of str; None for anything else, or when some name is not a
    string (positions then name the columns, as scikit-learn does)."""
    pkg = _package(obj)
    if pkg == "pandas" and hasattr(obj, "columns"):
        names = list(obj.columns)
    elif pkg == "polars" and _is_lazy_polars(obj):
        raise _lazy_error("X")
    elif pkg == "polars" and hasattr(obj, "columns") and hasattr(obj, "schema"):
        names = list(obj.columns)
    elif pkg == "pyarrow" and hasattr(obj, "column_names"):
        names = list(obj.column_names)
    elif pkg in ("dask", "dask_expr") and getattr(obj, "ndim", 0) == 2 and hasattr(obj, "columns"):
        names = list(obj.columns)
    else:
        return None
    if names and all(isinstance(n, str) for n in names):
        return tuple(names)
    return None


def check_feature_names(fitted, given, owner="the model", what="X"):
    """The one rule for column names when a fitted model meets new data (``predict``,
    ``loss``, ``score``, the command line, the blocks of ``fit_chunks``): names are
    checked, never used to reorder.

    * both have names: they must be equal, in the same order, else ``ValueError`` naming
      the names unseen at fit time, those missing, or the order, and the fix (select the
      columns in the model's order). Reordering silently would hide a pipeline that
      builds its frames differently from the one that fitted; scikit-learn refuses the
      same way, so :class:`fastgd.GDRegressor` and :class:`fastgd.FitResult` agree.
    * names on one side only: a ``UserWarning`` (as scikit-learn): the columns are taken
      by position.
    * neither: nothing to check.
    """
    if fitted is None and given is None:
        return
    if fitted is None:
        warnings.warn(f"{what} has feature names, but {owner} was fitted without feature "
                      "names: its columns are taken by position", UserWarning,
                      stacklevel=user_level())
        return
    if given is None:
        warnings.warn(f"{what} does not have valid feature names, but {owner} was fitted with "
                      f"feature names {_shown(fitted)}: its columns are taken in that order",
                      UserWarning, stacklevel=user_level())
        return
    fitted, given = tuple(fitted), tuple(given)
    if fitted == given:
        return
    unseen = sorted(set(given) - set(fitted))
    missing = sorted(set(fitted) - set(given))
    # scikit-learn's wording and layout (its estimator checks match it), then the fix
    lines = ["The feature names should match those that were passed during fit."]
    if unseen:
        lines += ["Feature names unseen at fit time:"] + _bullets(unseen)
    if missing:
        lines += ["Feature names seen at fit time, yet now missing:"] + _bullets(missing)
    if not unseen and not missing:
        lines += ["Feature names must be in the same order as they were in fit.",
                  f"{what} has {_shown(given)}; {owner} has {_shown(fitted)}."]
    lines.append(f"Select the model's columns in its order, e.g. {what}[{_shown(fitted)}].")
    raise ValueError("\n".join(lines))


def _bullets(names, limit=5):
    return [f"- {n}" for n in names[:limit]] + (["- ..."] if len(names) > limit else [])


def _shown(names, limit=8):
    names = list(names)
    body = ", ".join(repr(n) for n in names[:limit])
    return "[" + body + (f", ... ({len(names)} in all)" if len(names) > limit else "") + "]"


def _is_lazy_polars(obj):
    return type(obj).__name__ == "LazyFrame"


def _lazy_error(name):
    return TypeError(
        f"{name} is a polars LazyFrame, a query that has not run yet; fastgd fits data in "
        f"memory: call {name}.collect() first (or stream a large query in blocks with "
        "fastgd.fit_chunks)"
    )


def to_numpy(obj, name):
    """``obj`` as a NumPy array when it is a pandas/polars/pyarrow frame, series, table or
    array (float64, or the float32 it holds); any other object is returned unchanged."""
    pkg = _package(obj)
    if pkg == "pandas":
        return _from_pandas(obj, name)
    if pkg == "polars":
        return _from_polars(obj, name)
    if pkg == "pyarrow":
        return _from_arrow(obj, name)
    return obj


def _numeric_error(name, column, dtype):
    where = f"{name}[{column!r}]" if column is not None else name
    return TypeError(
        f"{where} has dtype {dtype}: fastgd fits numeric columns; encode it as numbers "
        "(e.g. one-hot or ordinal codes) or drop it"
    )


def _target_dtype(dtypes):
    """float32 when every column is float32, else float64."""
    return np.float32 if dtypes and all(d == np.float32 for d in dtypes) else np.float64


def _pandas_dtype(dt, name, col):
    """The NumPy dtype of a numeric pandas column's values (``TypeError`` otherwise). A
    sparse column (``Sparse[float64]``) is numeric by its subtype: it is densified, one
    column at a time (fastgd fits dense rows; scipy.sparse input is the way to keep
    them sparse)."""
    sub = getattr(dt, "subtype", None)
    if sub is not None and type(dt).__name__ == "SparseDtype":
        dt = sub
    kind = getattr(dt, "kind", "O")
    if kind not in "fiub":
        raise _numeric_error(name, col, dt)
    return np.dtype(dt.numpy_dtype) if hasattr(dt, "numpy_dtype") else np.dtype(dt)


def _dense_pandas(col):
    return col.sparse.to_dense() if type(col.dtype).__name__ == "SparseDtype" else col


def _from_pandas(obj, name):
    if hasattr(obj, "columns"):  # DataFrame
        dtypes = [_pandas_dtype(dt, name, col) for col, dt in obj.dtypes.items()]
        target = _target_dtype(dtypes)
        if any(type(dt).__name__ == "SparseDtype" for dt in obj.dtypes):
            out = np.empty(obj.shape, dtype=target)
            for j in range(obj.shape[1]):
                out[:, j] = _dense_pandas(obj.iloc[:, j]).to_numpy(dtype=target, na_value=np.nan)
            return out
        return obj.to_numpy(dtype=target, na_value=np.nan)
    np_dt = _pandas_dtype(obj.dtype, name, None)  # Series, Index, extension array
    if hasattr(obj, "sparse"):
        obj = _dense_pandas(obj)
    return obj.to_numpy(dtype=_target_dtype([np_dt]), na_value=np.nan)


def _polars_numeric(dt):
    return dt.is_numeric() or str(dt) == "Boolean"


def _from_polars(obj, name):
    if _is_lazy_polars(obj):
        raise _lazy_error(name)
    if hasattr(obj, "schema") and hasattr(obj, "columns"):  # DataFrame
        for col, dt in obj.schema.items():
            if not _polars_numeric(dt):
                raise _numeric_error(name, col, dt)
        if obj.width == 0:
            return np.empty((obj.height, 0))
        cols = [_polars_column(obj.get_column(c)) for c in obj.columns]
        dtype = _target_dtype([c.dtype for c in cols])
        if len(cols) == 1:
            return cols[0].astype(dtype, copy=False).reshape(-1, 1)
        out = np.empty((obj.height, len(cols)), dtype=dtype)
        for j, c in enumerate(cols):
            out[:, j] = c
        return out
    if hasattr(obj, "dtype") and not _polars_numeric(obj.dtype):  # Series
        raise _numeric_error(name, None, obj.dtype)
    col = _polars_column(obj)
    return col.astype(_target_dtype([col.dtype]), copy=False)


def _polars_column(series):
    if series.null_count():
        return series.cast(float).fill_null(float("nan")).to_numpy()
    if str(series.dtype) in ("Int128", "UInt128"):
        # NumPy has no 128-bit integers: polars refuses to_numpy(); as float64 (the
        # nearest double, as for int64 values beyond 2^53)
        return series.cast(float).to_numpy()
    out = series.to_numpy()
    return out if out.dtype.kind == "f" else out.astype(np.float64)


def _from_arrow(obj, name):
    import pyarrow.types as pat  # the object is a pyarrow object: pyarrow is installed

    def numeric(t):
        return pat.is_integer(t) or pat.is_floating(t) or pat.is_boolean(t)

    if hasattr(obj, "column_names"):  # Table, RecordBatch
        for col, field in zip(obj.column_names, obj.schema):
            if not numeric(field.type):
                raise _numeric_error(name, col, field.type)
        cols = [_arrow_column(obj.column(j)) for j in range(obj.num_columns)]
        if not cols:
            return np.empty((obj.num_rows, 0))
        dtype = _target_dtype([c.dtype for c in cols])
        out = np.empty((obj.num_rows, len(cols)), dtype=dtype)
        for j, c in enumerate(cols):
            out[:, j] = c
        return out
    if hasattr(obj, "type") and not numeric(obj.type):  # Array, ChunkedArray
        raise _numeric_error(name, None, obj.type)
    col = _arrow_column(obj)
    return col.astype(_target_dtype([col.dtype]), copy=False)


def _arrow_column(arr):
    out = arr.to_numpy(zero_copy_only=False)
    if out.dtype.kind == "f":
        return out
    if out.dtype == object:  # integers with nulls come back as objects in some versions
        return np.array([np.nan if v is None else v for v in out], dtype=np.float64)
    return out.astype(np.float64)
