"""Files bigger than memory: CSV and Parquet read in blocks (``pip install "fastgd[io]"``).

:func:`fit_file` is :func:`fastgd.fit_chunks` over the blocks of a file: the file is one
more source of rows (a :class:`fastgd._sources.ChunkSource` whose blocks a reader
yields), with no maths of its own. Every pass reads the file again, block by block, so
memory stays bounded by the block size whatever the file's size. pyarrow does the
reading: Parquet by row groups (or batches), CSV by byte ranges cut at line starts (or
its streaming reader), so that the blocks of either can be read in any order.

Also here: :func:`save` / :func:`load`, the JSON model file that ``fastgd predict`` uses.
"""
import dataclasses
import os

import numpy as np

from . import _validation as V
from ._checkpoint import Checkpointer, check_same_file, file_fingerprint
from ._config import serialized_under_workqueue
from ._model import MODEL_FORMAT, read_versioned, save  # noqa: F401 (save: fastgd.io.save)
from ._engine import run
from ._plan import FitPlan
from ._sources import Block, ChunkSource

#: bytes of float64 per block (the X and y a block converts to): 64 MiB
BLOCK_BYTES = 64 << 20


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ImportError(
            'reading CSV and Parquet files needs pyarrow, an optional extra: '
            'pip install "fastgd[io]"'
        ) from None
    import pyarrow as pa

    return pa


def _kind(path):
    low = str(path).lower()
    if low.endswith((".parquet", ".pq", ".parq")):
        return "parquet"
    return "csv"


class FileReader:
    """The blocks of the columns ``x`` (and ``y``, ``weight``) of a CSV or Parquet file.

    Columns are named, or given by position as strings of digits ("0", "1", ...) where no
    column has that name (a CSV without a header row has only positions). Each call of
    the reader returns a fresh iterator of ``(X, y[, w])`` float64 blocks of at most
    ``block_rows`` rows; nulls become NaN (refused later with their row). Either kind
    also reads any block alone (``block(k)``: a Parquet file's row groups, a CSV file's
    byte ranges; see :meth:`random_access`), so the stochastic modes can shuffle the
    order of its blocks.
    """

    def __init__(self, path, x, y=None, weight=None, *, header=True, block_rows=None,
                 delimiter=","):
        self.pa = _pyarrow()
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no such file: {self.path}")
        self.kind = _kind(self.path)
        self.header = header
        self.delimiter = delimiter
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            self._pf = pq.ParquetFile(self.path)
        names = self._names()
        self.names = names
        if isinstance(x, (str, int)):
            x = [x]
        if not x:
            raise ValueError("give at least one column of X (x=[...])")
        self.x = [self._resolve(c, names) for c in x]
        self.y = None if y is None else self._resolve(y, names)
        self.w = None if weight is None else self._resolve(weight, names)
        self.columns = self.x + [c for c in (self.y, self.w) if c is not None]
        d = len(self.x) + 1
        self.block_rows = int(block_rows or max(1024, min(1 << 20, BLOCK_BYTES // (8 * d))))

    # -- columns ---------------------------------------------------------------------------

    def _names(self):
        if self.kind == "parquet":
            return list(self._pf.schema_arrow.names)
        reader = self._open_csv(None)
        return list(reader.schema.names)

    def _resolve(self, col, names):
        col = str(col)
        if col in names:
            return col
        if col.isdigit() and int(col) < len(names):
            return names[int(col)]
        shown = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
        raise ValueError(f"{self.path}: no column {col!r}; the file has {len(names)} "
                         f"column(s): {shown} (or give positions: '0', '1', ...)")

    # -- reading ---------------------------------------------------------------------------

    def _open_csv(self, columns):
        import pyarrow.csv as pacsv

        read = pacsv.ReadOptions(autogenerate_column_names=not self.header,
                                 block_size=1 << 22)
        parse = pacsv.ParseOptions(delimiter=self.delimiter)
        if columns is None:
            convert = pacsv.ConvertOptions()
        else:
            convert = pacsv.ConvertOptions(
                include_columns=columns,
                column_types={c: self.pa.float64() for c in columns})
        return pacsv.open_csv(self.path, read_options=read, parse_options=parse,
                              convert_options=convert)

    def _batches(self):
        pa = self.pa
        try:
            if self.kind == "parquet":
                yield from self._pf.iter_batches(batch_size=self.block_rows,
                                                 columns=list(dict.fromkeys(self.columns)))
            else:
                reader = self._open_csv(list(dict.fromkeys(self.columns)))
                pending = []
                rows = 0
                for batch in reader:
                    pending.append(batch)
                    rows += batch.num_rows
                    if rows >= self.block_rows:
                        yield pa.Table.from_batches(pending)
                        pending, rows = [], 0
                if pending:
                    yield pa.Table.from_batches(pending)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"{self.path}: {exc}") from None

    def _convert(self, table):
        n = table.num_rows
        if len(self.x) == 1:  # one column: Arrow's memory as it is (no nulls: no copy)
            X = _column(table.column(self.x[0]), self.path, self.x[0]).reshape(n, 1)
        else:  # the kernels read rows: one copy into row-major order
            X = np.empty((n, len(self.x)))
            for j, c in enumerate(self.x):
                X[:, j] = _column(table.column(c), self.path, c)
        out = [X]
        if self.y is not None:
            out.append(_column(table.column(self.y), self.path, self.y))
        if self.w is not None:
            out.append(_column(table.column(self.w), self.path, self.w))
        return tuple(out)

    def __call__(self):
        return (self._convert(t) for t in self._batches() if t.num_rows)

    def random_access(self):
        """Whether the file's blocks can be read in any order (:meth:`block`), and how
        many there are: a Parquet file's row groups when there are several and none is
        larger than twice ``block_rows`` (memory stays bounded by the block size); a
        CSV file's byte ranges cut at line starts (:meth:`_csv_ranges`). Returns the
        number of blocks, or 0."""
        if self.kind == "parquet":
            meta = self._pf.metadata
            sizes = [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]
            ok = len(sizes) > 1 and max(sizes) <= 2 * self.block_rows
            return len(sizes) if ok else 0
        ranges = self._csv_ranges()
        return len(ranges) if len(ranges) > 1 else 0

    def _csv_ranges(self):
        """Byte ranges of about ``block_rows`` lines each, every one starting at the start
        of a line (after the header). Found by seeking and reading to the next newline,
        never by reading the file: a CSV's blocks are then readable in any order. CSV
        fields with newlines inside quotes would be cut wrongly: numeric data has none."""
        if getattr(self, "_ranges", None) is not None:
            return self._ranges
        size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:
            if self.header:
                f.readline()
            start = f.tell()
            sample = f.read(1 << 16)
            lines = max(1, sample.count(b"\n"))
            per_block = max(1, int(len(sample) / lines * self.block_rows))
            ranges, pos = [], start
            while pos < size:
                f.seek(min(size, pos + per_block))
                f.readline()
                end = min(size, f.tell())
                if end <= pos:
                    end = size
                ranges.append((pos, end))
                pos = end
        self._ranges = ranges
        return ranges

    def block(self, k):
        """Block ``k`` converted: a Parquet row group, or a CSV byte range."""
        cols = list(dict.fromkeys(self.columns))
        if self.kind == "parquet":
            return self._convert(self._pf.read_row_group(k, columns=cols))
        import pyarrow.csv as pacsv

        a, b = self._csv_ranges()[k]
        with open(self.path, "rb") as f:
            f.seek(a)
            raw = f.read(b - a)
        try:
            table = pacsv.read_csv(
                self.pa.py_buffer(raw),
                read_options=pacsv.ReadOptions(column_names=self.names),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter),
                convert_options=pacsv.ConvertOptions(
                    include_columns=cols, column_types={c: self.pa.float64() for c in cols}))
        except (self.pa.ArrowInvalid, self.pa.ArrowTypeError) as exc:
            raise ValueError(f"{self.path} (bytes {a} to {b}): {exc}") from None
        return self._convert(table)


def _column(col, path, name):
    import pyarrow as pa  # the column is a pyarrow object: pyarrow is installed

    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise TypeError(f"{path}: column {name!r} has type {t}: fastgd fits numeric columns")
    out = col.to_numpy(zero_copy_only=False)
    if out.dtype == object:
        out = np.array([np.nan if v is None else v for v in out], dtype=np.float64)
    return out.astype(np.float64, copy=False)


class _FileBlocks(ChunkSource):
    """A file's blocks (Parquet row groups, or CSV byte ranges), readable in any order:
    the stochastic modes shuffle their order."""

    def __init__(self, reader, parallel, n_blocks):
        self.reader = reader
        self.count = n_blocks
        super().__init__(reader, parallel=parallel)
        self.random_access = True

    def _block(self, k):
        self._scan()
        offset = sum(self._sizes[:k])
        b = self._validate(self.reader.block(k), k, offset)
        if not self.verified:
            self._check_block(b)
        return Block(b.data, k, offset, b.parallel)

    def _raw(self):
        # the passes read the same blocks as _block(k)
        return (self.reader.block(k) for k in range(self.count))


def _source(reader, parallel):
    n_blocks = reader.random_access()
    return _FileBlocks(reader, parallel, n_blocks) if n_blocks else ChunkSource(reader, parallel=parallel)


@serialized_under_workqueue
def fit_file(path, *, x, y, weight=None, header=True, delimiter=",", block_rows=None,
             **fit_kwargs):
    """Fit the columns ``x`` (X) and ``y`` of a CSV or Parquet file, read in blocks.

    Parameters
    ----------
    path : str or path-like
        A ``.parquet`` / ``.pq`` file, or CSV (any other name).
    x : list of str
        The columns of X, by name or by position ("0", "1", ...).
    y : str
        The target column. ``weight``: an optional column of sample weights.
    header : bool
        CSV: whether the first line names the columns (else only positions name them).
    block_rows : int, optional
        Rows per block (default: 64 MiB of float64 per block, at most 2^20 rows). Memory
        stays bounded by a few blocks, whatever the file's size.
    **fit_kwargs
        As :func:`fastgd.fit`. Every mode works: batch adds exact block partials in
        order (equal to the in-memory fit to 1e-12; the default fit reads the file
        twice); the stochastic modes shuffle the rows of each block and the order of the
        blocks (a Parquet file's row groups, when there are several of bounded size; a
        CSV file's byte ranges of about ``block_rows`` lines, cut at line starts). That
        is not a global shuffle: see :func:`fastgd.fit_chunks`.

    Returns
    -------
    FitResult, with ``feature_names`` the names of the ``x`` columns.
    """
    reader = FileReader(path, x, y, weight, header=header, block_rows=block_rows,
                        delimiter=delimiter)
    parallel = V.check_parallel(fit_kwargs.get("parallel", "auto"))
    source = _source(reader, parallel)
    init_coef = fit_kwargs.pop("init_coef", None)
    init_intercept = fit_kwargs.pop("init_intercept", 0.0)
    callback = fit_kwargs.pop("callback", None)
    progress = fit_kwargs.pop("progress", "auto")
    checkpoint = fit_kwargs.pop("checkpoint", None)
    every = fit_kwargs.pop("checkpoint_every", 1)
    if "sample_weight" in fit_kwargs:
        raise TypeError("fit_file takes the weights from a column: give weight='column'")
    plan = FitPlan.build(source.facts(), **fit_kwargs)
    ckpt = None
    if checkpoint is not None:
        ckpt = Checkpointer(checkpoint, every, plan, file_fingerprint(reader))
    res = run(plan, source, V.check_init(init_coef, init_intercept, source.d),
              callback=callback, progress=progress, checkpoint=ckpt)
    return dataclasses.replace(res, feature_names=tuple(reader.x), n_rows=source.n)


def resume_file(doc, path, *, callback=None, progress="auto", checkpoint_every=None):
    """Continue a :func:`fit_file` from its checkpoint ``doc`` (read from ``path``): the
    file is opened again as the fit read it, after checking it did not change."""
    check_same_file(doc, path)
    fp = doc["fingerprint"]
    reader = FileReader(fp["file"], fp["x"], fp["y"], fp["weight"], header=fp["header"],
                        block_rows=fp["block_rows"], delimiter=fp["delimiter"])
    plan = FitPlan.from_dict(doc["plan"])
    parallel = plan.settings["parallel"]
    source = _source(reader, parallel)
    ckpt = Checkpointer.resumed(doc, path, plan, fp, checkpoint_every)
    res = run(plan, source, np.zeros(source.d + 1), callback=callback, progress=progress,
              checkpoint=ckpt, resume=doc["state"])
    return dataclasses.replace(res, feature_names=tuple(reader.x), n_rows=source.n)


# ---------------------------------------------------------------------------------------
# Model files
# ---------------------------------------------------------------------------------------

def load(path):
    """Read a model file written by :func:`save` (``FitResult.save``); returns a
    :class:`fastgd.FitResult` whose ``predict`` works (its loss history holds the final
    loss only).

    Every field is checked (types, shapes, finiteness, agreement with the plan; see
    :func:`fastgd._model.read_model`): a damaged or hand-edited file that does not hold
    a valid model raises one ``ValueError`` naming the file and the field, e.g.
    ``model.json: field 'coef[0]' is NaN``. A file from a newer fastgd is refused."""
    from . import FitResult
    from ._model import read_model

    m = read_model(path)
    plan = m["plan"]
    return FitResult(
        coef=m["coef"], intercept=m["intercept"], loss_history=np.array([m["final_loss"]]),
        n_epochs=m["n_epochs"], converged=m["converged"],
        mode=None if plan is None else plan.mode, learning_rate=float("nan"), elapsed_s=0.0,
        reduction="mean" if plan is None else plan.reduction, one_d=m["one_d"],
        scaled=m["scaled"], plan=plan, feature_names=m["feature_names"],
    )
