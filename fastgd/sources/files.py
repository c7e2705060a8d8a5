"""Files bigger than memory as a source: CSV and Parquet read in blocks by pyarrow
(``pip install "fastgd[io]"``).

A :class:`FileReader` reads the columns of a file block by block (Parquet row groups or
batches, CSV byte ranges cut at line starts, so that either's blocks can be read in any
order); a :class:`FileSource` is the blocks of a reader, a :class:`ChunkSource` with no
maths of its own. Every pass reads the file again, block by block, so memory stays
bounded by the block size whatever the file's size.
"""
import numbers
import os
import re
import stat

import numpy as np

from .. import _validation as V
from .chunks import ChunkSource
from .passes import Block

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

    Columns are named, or given by position. The rule: an ``int`` is a position (0 is
    the first column); a string is the column of that name when exactly one column has
    it, and otherwise, when it is a string of digits ("0", "1", ...), a position. A name
    shared by two or more columns (a CSV header ``x,x,y``) is a ``ValueError`` naming
    their positions: give the position instead. So a digit string that is also a
    column's name means that column (pass an ``int`` for the position). A CSV without a
    header row (``header=False``) has only positions: its columns are named "0", "1",
    ... (their positions, so a model fitted on it names its features by position too).
    A header line whose every field is a number looks like data: ``header=True`` refuses
    it (a ``ValueError`` saying to pass ``header=False``), never fitting the file without
    its first row under numeric names.

    Each call of the reader returns a fresh iterator of ``(X, y[, w])`` float64 blocks
    of at most about ``block_rows`` rows; nulls become NaN (refused later with their
    row), and empty blocks (a Parquet row group of 0 rows, a CSV range of blank lines)
    are skipped. A file without data rows is a ``ValueError`` (unless ``allow_empty``:
    then the iterator is empty). Either kind also reads any block alone (``block(k)``: a
    Parquet file's row groups, a CSV file's byte ranges; see :meth:`random_access`), so
    the stochastic modes can shuffle the order of its blocks.

    Every block read checks that the file is the one opened (size, modification time,
    inode, and a Parquet file's footer): a file rewritten during a fit raises
    :class:`fastgd._validation.DataChanged` (a ``ValueError``). CSV errors name the file,
    the line (1-based, the header included) and the column; a Parquet file's, the row
    (1-based).
    """

    def __init__(self, path, x, y=None, weight=None, *, header=True, block_rows=None,
                 delimiter=",", allow_empty=False):
        self.pa = _pyarrow()
        self.path = _check_path(path)
        self.header = _check_header(header)
        self.delimiter = _check_delimiter(delimiter)
        if block_rows is not None:
            block_rows = V.check_int(block_rows, "block_rows", 1)
        specs = _check_columns(x, y, weight)
        self.allow_empty = allow_empty
        self.kind = _kind(self.path)
        self._identity = None
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            try:
                self._pf = pq.ParquetFile(self.path)
            except (self.pa.ArrowInvalid, self.pa.ArrowTypeError, OSError) as exc:
                raise ValueError(f"{self.path} is not a readable Parquet file ({exc}); a file "
                                 "named .parquet/.pq/.parq is read as Parquet") from None
        self._identity = self._current_identity()
        names = self._names()
        self.names = names
        xs, ys, ws = specs
        self.xpos = [self._resolve(c, "x") for c in xs]
        self.ypos = None if ys is None else self._resolve(ys, "y")
        self.wpos = None if ws is None else self._resolve(ws, "weight")
        self.x = [names[j] for j in self.xpos]
        self.y = None if self.ypos is None else names[self.ypos]
        self.w = None if self.wpos is None else names[self.wpos]
        #: the positions of the columns read: x, then y and weight when given
        self.positions = self.xpos + [j for j in (self.ypos, self.wpos) if j is not None]
        needed = list(dict.fromkeys(self.positions))
        # Parquet reads columns by name: a name the file repeats is read by position
        # from all the columns
        self._by_name = all(names.count(names[j]) == 1 for j in needed)
        self._read_names = [names[j] for j in needed] if self._by_name else None
        d = len(self.x) + 1
        self.block_rows = block_rows or max(1024, min(1 << 20, BLOCK_BYTES // (8 * d)))

    # -- columns ---------------------------------------------------------------------------

    def _names(self):
        if self.kind == "parquet":
            return list(self._pf.schema_arrow.names)
        import pyarrow.csv as pacsv

        with open(self.path, "rb") as f:
            first = f.readline()
        try:
            table = _read_csv(
                first,
                read_options=pacsv.ReadOptions(autogenerate_column_names=not self.header),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter))
        except (self.pa.ArrowInvalid, self.pa.ArrowTypeError) as exc:
            if not first.strip():
                raise ValueError(f"{self.path}: the file has no data rows (its first line "
                                 "is empty)") from None
            raise ValueError(f"{self.path}, line 1: {exc}") from None
        names = list(table.column_names)
        if not self.header:
            # positions name the columns: the names a user selects them by ("0", "1"),
            # and what results, model files and predict report
            return [str(j) for j in range(len(names))]
        if _looks_like_data(names):
            shown = ", ".join(repr(n) for n in names[:4]) + (", ..." if len(names) > 4 else "")
            raise ValueError(
                f"{self.path}: the first line looks like data (numbers: {shown}), not column "
                "names; if the file has no header row, pass header=False (--no-header on "
                "the command line) and give columns by position ('0', '1', ...); if it is a "
                "header, name the columns with words")
        return names

    def _resolve(self, col, what):
        names = self.names
        if not isinstance(col, str):  # an int: a position
            if not 0 <= col < len(names):
                raise ValueError(f"{self.path}: {what} column position {col} is out of range: "
                                 f"the file has {len(names)} column(s), positions 0 to "
                                 f"{len(names) - 1}")
            return int(col)
        hits = [j for j, n in enumerate(names) if n == col]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            where = ", ".join(str(j) for j in hits)
            raise ValueError(f"{self.path}: the name {col!r} ({what}) is shared by {len(hits)} "
                             f"columns, at positions {where}: give the position instead "
                             f"(e.g. '{hits[0]}')")
        if col.isascii() and col.isdigit() and int(col) < len(names):
            return int(col)
        shown = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
        raise ValueError(f"{self.path}: no column {col!r}; the file has {len(names)} "
                         f"column(s): {shown} (or give positions: '0', '1', ...)")

    # -- the file's identity ---------------------------------------------------------------

    def _current_identity(self):
        """What tells the file opened from another one at the same path: size,
        modification time, device and inode, and for Parquet a hash of the footer (the
        schema, row groups and statistics)."""
        try:
            st = os.stat(self.path)
            footer = self._footer() if self.kind == "parquet" else None
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino, footer)

    def _footer(self):
        import hashlib

        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size < 12:
                return None
            f.seek(size - 8)
            tail = f.read(8)
            length = int.from_bytes(tail[:4], "little")
            f.seek(max(0, size - 8 - length))
            return hashlib.sha256(f.read(length) + tail).hexdigest()

    def check_unchanged(self):
        """A :class:`fastgd._validation.DataChanged` error when the file is no longer the
        one this reader opened (rewritten, replaced or removed)."""
        now = self._current_identity()
        if now == self._identity:
            return
        if now is None:
            what = "it is gone"
        else:
            parts = [name for name, a, b in zip(("size", "modification time", "device",
                                                 "inode", "Parquet footer"),
                                                self._identity, now) if a != b]
            what = "its " + ", ".join(parts) + " changed"
        raise V.DataChanged(
            f"the data changed during the fit: {self.path} was rewritten since the fit "
            f"began ({what}). Do not write to a file while a fit reads it (e.g. from a "
            "callback or another program); fit a copy if it must change"
        )

    # -- reading ---------------------------------------------------------------------------

    def where(self, row):
        """Where the data row ``row`` (0-based, in file order) is, for messages:
        ``"data.csv, line 17"`` (1-based lines of the file, the header and blank lines
        counted) or ``"data.parquet, row 17"`` (1-based rows)."""
        if self.kind == "parquet":
            return f"{self.path}, row {row + 1}"
        line = _line_of_row(self.path, row, self.header)
        return f"{self.path}, line {line}" if line is not None else f"{self.path}, row {row + 1}"

    def bad_values(self, X, y, offset):
        """The message for the first row of a block of this file (``X``, and ``y`` or
        None; its rows start at row ``offset``) with NaN or inf in X or y: the file, the
        line and the column, and the fix."""
        X = X.reshape(X.shape[0], -1)
        bad_x = ~np.isfinite(X)
        rows = bad_x.any(axis=1)
        if y is not None:
            rows |= ~np.isfinite(y)
        i = int(np.argmax(rows))
        if bad_x[i].any():
            j = int(np.argmax(bad_x[i]))
            name, value = self.x[j], X[i, j]
        else:
            name, value = self.y, y[i]
        return (f"{self.where(offset + i)}, column {name!r}: {_missing(value)}; fastgd fits "
                "finite numbers: fill in or remove the lines with missing values (this is "
                "the first)")

    def bad_weights(self, w, offset):
        """The message for the first row of the weight column block ``w`` (rows from
        ``offset``) that is not a finite number >= 0, or None when there is none."""
        bad = ~np.isfinite(w) | (w < 0)
        if not bad.any():
            return None
        i = int(np.argmax(bad))
        what = _missing(w[i]) if not np.isfinite(w[i]) else f"{float(w[i])!r} is negative"
        return (f"{self.where(offset + i)}, column {self.w!r} (the weights): {what}; weights "
                "must be finite numbers >= 0: fix or remove this line")

    def no_rows(self):
        """The error for a file without data rows."""
        what = ("a header line only, or blank lines" if self.kind == "csv" and self.header
                else "no rows")
        return ValueError(f"{self.path}: the file has no data rows ({what}); give a file "
                          "with at least one row of data")

    def _pass(self):
        rows = 0
        if self.kind == "csv":
            parts = (self.block(k) for k in range(len(self._csv_ranges())))
        else:
            parts = self._parquet_batches()
        for part in parts:
            if part[0].shape[0]:
                rows += part[0].shape[0]
                yield part
        if not rows and not self.allow_empty:
            raise self.no_rows()

    def _parquet_batches(self):
        pa = self.pa
        batches = self._pf.iter_batches(batch_size=self.block_rows, columns=self._read_names)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
                self.check_unchanged()  # a file rewritten while read: say that
                raise ValueError(f"{self.path}: {exc}") from None
            self.check_unchanged()
            yield self._convert(batch)

    def _column(self, table, j):
        """Column ``j`` (a position in the file) of a table read from the file: a CSV
        table names its columns by position, a Parquet one by name (or holds them all,
        where a name repeats)."""
        if self.kind == "csv":
            col = table.column(f"c{j}")
        else:
            col = table.column(self.names[j] if self._by_name else j)
        return _column(col, self.path, self.names[j])

    def _convert(self, table):
        n = table.num_rows
        if len(self.xpos) == 1:  # one column: Arrow's memory as it is (no nulls: no copy)
            X = self._column(table, self.xpos[0]).reshape(n, 1)
        else:  # the kernels read rows: one copy into row-major order
            X = np.empty((n, len(self.xpos)))
            for k, j in enumerate(self.xpos):
                X[:, k] = self._column(table, j)
        out = [X]
        if self.ypos is not None:
            out.append(self._column(table, self.ypos))
        if self.wpos is not None:
            out.append(self._column(table, self.wpos))
        return tuple(out)

    def __call__(self):
        return self._pass()

    def random_access(self):
        """Whether the file's blocks can be read in any order (:meth:`block`), and how
        many there are: a Parquet file's row groups when there are several that hold
        rows and none is larger than twice ``block_rows`` (memory stays bounded by the
        block size); a CSV file's byte ranges cut at line starts (:meth:`_csv_ranges`).
        Returns the number of blocks (empty ones included: a pass skips them), or 0."""
        if self.kind == "parquet":
            meta = self._pf.metadata
            sizes = [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]
            full = [m for m in sizes if m]
            ok = len(full) > 1 and max(full) <= 2 * self.block_rows
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
        """Block ``k`` converted: a Parquet row group, or a CSV byte range (either may
        hold no rows)."""
        if self.kind == "parquet":
            try:
                table = self._pf.read_row_group(k, columns=self._read_names)
            except (self.pa.ArrowInvalid, self.pa.ArrowTypeError, OSError) as exc:
                self.check_unchanged()
                raise ValueError(f"{self.path} (row group {k}): {exc}") from None
            self.check_unchanged()
            return self._convert(table)
        a, b = self._csv_ranges()[k]
        with open(self.path, "rb") as f:
            f.seek(a)
            raw = self.pa.allocate_buffer(b - a)  # Arrow's memory (see _read_csv)
            if f.readinto(memoryview(raw)) != b - a:  # (shorter: the file changed)
                raw = raw.to_pybytes()
        self.check_unchanged()
        try:
            table = self._parse_csv(raw)
        except (self.pa.ArrowInvalid, self.pa.ArrowTypeError) as exc:
            raise ValueError(self._located(bytes(raw), a, exc)) from None
        return self._convert(table)

    def _parse_csv(self, raw):
        """The needed columns of the CSV bytes ``raw`` (whole lines, no header; bytes or
        an Arrow buffer), read by position: the columns are named "c0", "c1", ...
        whatever the header says (a header may repeat a name)."""
        import pyarrow.csv as pacsv

        cols = [f"c{j}" for j in dict.fromkeys(self.positions)]
        return _read_csv(
            raw,
            read_options=pacsv.ReadOptions(column_names=[f"c{j}" for j in range(len(self.names))]),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=cols, column_types={c: self.pa.float64() for c in cols}))

    def _located(self, raw, start, exc):
        """The message for pyarrow's error ``exc`` on the CSV bytes ``raw`` (starting at
        byte ``start`` of the file): the file, the 1-based line, the column and the fix.
        The bad line is found by bisection over whole lines (pyarrow parses a prefix
        with a bad line as an error, one without as fine): about twice the block's
        parsing, on the error path only."""
        ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 10) + 1
        if not ends.size or ends[-1] != len(raw):
            ends = np.append(ends, len(raw))
        lo, hi = 0, ends.size - 1  # the first bad line is in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            try:
                self._parse_csv(raw[:ends[mid]])
            except (self.pa.ArrowInvalid, self.pa.ArrowTypeError):
                hi = mid
            else:
                lo = mid + 1
        first = 0 if lo == 0 else int(ends[lo - 1])
        text = raw[first:int(ends[lo])].rstrip(b"\r\n").decode("utf-8", "replace")
        line = _lines_before(self.path, start) + lo + 1
        where = f"{self.path}, line {line}"
        msg = str(exc)
        try:
            self._parse_csv(raw[first:int(ends[lo])])
        except (self.pa.ArrowInvalid, self.pa.ArrowTypeError) as one:
            msg = str(one)
        ragged = re.search(r"Expected (\d+) columns, got (\d+)", msg)
        if ragged:
            want, got = ragged.groups()
            return (f"{where}: {got} field(s), but the file has {want} column(s) "
                    f"({text[:80]!r}); every line needs one field per column: fix or remove "
                    "this line")
        cell = re.search(r"CSV column #(\d+): .*invalid value '(.*)'", msg)
        if cell:
            j, value = int(cell.group(1)), cell.group(2)
            name = self.names[j] if j < len(self.names) else f"#{j}"
            return (f"{where}, column {name!r} (position {j}): {value!r} is not a number; "
                    "fastgd reads numeric columns: fix the value or remove this line")
        return f"{where}: {msg} ({text[:80]!r})"


def _read_csv(data, **options):
    """``pyarrow.csv.read_csv`` of the CSV bytes ``data`` (bytes, or an Arrow buffer).

    Bytes are first copied into memory Arrow owns: pyarrow's reader threads may drop
    their last reference to the input after ``read_csv`` returns, and the release of a
    Python-owned buffer takes the GIL; at interpreter exit that aborted the process
    ("terminate called without an active exception", exit -6) about 1 run in 10 of a
    command that ended right after a read (measured: a Ctrl-C'd fit).

    pyarrow's own Ctrl-C handling is off during the read. pyarrow swaps in its own
    SIGINT handler while it reads (to cancel the read), and a Ctrl-C that met it could
    be lost: a fit's first Ctrl-C, which is to stop the fit at the end of the epoch, was
    never seen by the fit's handler in about 1 try in 20 (the fit went on). With it off,
    SIGINT reaches Python's handler, which runs once the read returns (a block: well
    under a second). pyarrow has no getter for the setting: it is turned back on after
    the read (its default)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not isinstance(data, pa.Buffer):
        buf = pa.allocate_buffer(len(data))
        memoryview(buf).cast("B")[:] = data
        data = buf
    pa.enable_signal_handlers(False)
    try:
        return pacsv.read_csv(data, **options)
    finally:
        pa.enable_signal_handlers(True)


#: a field that reads as a number: a header of these only is a line of data
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)",
                     re.IGNORECASE)


def _looks_like_data(names):
    """Whether a CSV header's fields are all numbers (blank ones aside: a missing value
    in a first row of data), at least one of them."""
    filled = [n.strip() for n in names if n.strip()]
    return bool(filled) and all(_NUMBER.fullmatch(n) for n in filled)


def _missing(value):
    """How a non-finite value read from a file is described."""
    if np.isnan(value):
        return "a missing value (an empty cell, null or NaN)"
    return f"{'-' if value < 0 else ''}inf"


def _line_of_row(path, row, header):
    """The 1-based line of the CSV file ``path`` that holds data row ``row`` (0-based):
    the header and blank lines (which the reader skips) are lines, not rows. Counted by
    reading the file in 16 MiB pieces (an error path: about a second a gigabyte). None
    when the file has fewer rows (it changed)."""
    line = 0
    with open(path, "rb") as f:
        if header:
            f.readline()
            line = 1
        carry = b""
        while True:
            piece = f.read(1 << 24)
            buf = carry + piece
            if not piece:  # the last line, without a newline
                return line + 1 if buf.strip(b"\r") and row == 0 else None
            a = np.frombuffer(buf, dtype=np.uint8)
            ends = np.flatnonzero(a == 10)
            if ends.size:
                starts = np.concatenate(([0], ends[:-1] + 1))
                length = ends - starts
                blank = (length == 0) | ((length == 1) & (a[starts] == 13))
                full = np.flatnonzero(~blank)
                if row < full.size:
                    return line + int(full[row]) + 1
                row -= full.size
                line += ends.size
                carry = buf[ends[-1] + 1:]
            else:
                carry = buf


def _lines_before(path, offset):
    """The number of newlines in the first ``offset`` bytes of the file ``path``."""
    count = 0
    with open(path, "rb") as f:
        while offset > 0:
            chunk = f.read(min(offset, 1 << 24))
            if not chunk:
                break
            count += chunk.count(b"\n")
            offset -= len(chunk)
    return count


def _check_path(path):
    """The path of an existing regular file, or a clear error (a pipe or a device cannot
    be read more than once, nor seeked)."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path} is a folder: give a .csv or .parquet file")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} is not a regular file (a pipe or a device): fastgd reads a "
                         "file several times and seeks in it; save the data to a file first "
                         "(the command line spools a pipe given as PATH, or '-', for you)")
    return path


def _check_header(header):
    if isinstance(header, np.bool_):
        header = bool(header)
    if header is not True and header is not False:
        raise TypeError(f"header must be True or False, got {header!r} "
                        f"({type(header).__name__})")
    return header


def _check_delimiter(delimiter):
    if not isinstance(delimiter, str) or len(delimiter) != 1 or not delimiter.isascii() \
            or delimiter in '\r\n"':
        raise ValueError(f"delimiter must be one ASCII character other than a newline or a "
                         f"quote (e.g. ',', ';', '\\t'), got {delimiter!r}")
    return delimiter


def _check_column(col, what):
    if isinstance(col, (bool, np.bool_)) or not isinstance(col, (str, numbers.Integral)):
        raise TypeError(f"{what} must be a column name (str) or position (int), got {col!r} "
                        f"({type(col).__name__})")
    return col if isinstance(col, str) else int(col)


def _check_columns(x, y, weight):
    """``(x as a list, y, weight)`` with every column a str or an int."""
    if isinstance(x, (str, numbers.Integral)) and not isinstance(x, (bool, np.bool_)):
        x = [x]
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"x must be a list of columns (names or positions), got "
                        f"{type(x).__name__}")
    if not x:
        raise ValueError("give at least one column of X (x=[...])")
    xs = [_check_column(c, "each column of x") for c in x]
    ys = None if y is None else _check_column(y, "y")
    ws = None if weight is None else _check_column(weight, "weight")
    return xs, ys, ws


def _column(col, path, name):
    import pyarrow as pa  # the column is a pyarrow object: pyarrow is installed

    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise TypeError(f"{path}: column {name!r} has type {t}: fastgd fits numeric columns")
    out = col.to_numpy(zero_copy_only=False)
    if out.dtype == object:
        out = np.array([np.nan if v is None else v for v in out], dtype=np.float64)
    return out.astype(np.float64, copy=False)


class FileSource(ChunkSource):
    """The blocks of a :class:`FileReader`. Readable in any order when the reader says so
    (a Parquet file's row groups of bounded size, a CSV file's byte ranges; see
    :meth:`FileReader.random_access`): the stochastic modes then shuffle their order.
    Empty blocks are skipped: the blocks are those of the file that hold rows (known
    after the first full pass)."""

    kind = "file"

    def __init__(self, reader, parallel="auto"):
        self.reader = reader
        self.count = reader.random_access()
        self._present = None  # the reader's blocks that hold rows
        super().__init__(reader, parallel=parallel)
        self.random_access = bool(self.count)
        self.names = tuple(reader.x)

    # messages about a row name the file, its line (CSV) or row (Parquet) and the column,
    # never a block

    def _check_block(self, b):
        try:
            super()._check_block(b)
        except V.DataChanged:
            raise
        except ValueError:
            raise ValueError(self.reader.bad_values(b.data.X, b.data.y, b.offset)) from None

    def _validate(self, item, k, offset):
        try:
            return super()._validate(item, k, offset)
        except ValueError as exc:
            w = item[2] if len(item) == 3 else None
            msg = None if w is None else self.reader.bad_weights(np.asarray(w), offset)
            if msg is None:  # (weights out of float64's range: no row to name)
                msg = f"{self.reader.path}: " + str(exc).replace(f"block {k}: ", "", 1).replace(
                    "sample_weight", f"the weight column {self.reader.w!r}")
            raise ValueError(msg) from None

    def _blocks(self):
        try:
            yield from super()._blocks()
        except ValueError as exc:
            if "sums to zero" not in str(exc):
                raise
            raise ValueError(f"{self.reader.path}: the weight column {self.reader.w!r} is 0 on "
                             "every line: all rows would be ignored; give at least one row a "
                             "positive weight") from None

    def _block(self, k):
        if not self.count:
            return super()._block(k)
        self._scan()
        offset = sum(self._sizes[:k])
        b = self._validate(self.reader.block(self._present[k]), k, offset)
        if not self.verified:
            self._check_block(b)
        return Block(b.data, k, offset, b.parallel)

    def _raw(self):
        # the passes read the same blocks as _block(k)
        return self._nonempty() if self.count else super()._raw()

    def _nonempty(self):
        present = []
        for j in range(self.count):
            item = self.reader.block(j)
            if item[0].shape[0]:
                present.append(j)
                yield item
        if not present:
            raise self.reader.no_rows()
        self._present = present

    def fingerprint(self):
        """What identifies a file fit: the file (path, size, modification time) and how
        it is read (columns, header, delimiter, block size): enough to open it again on
        resume. The columns are kept by name (``x``, ``y``, ``weight``) and by position
        (``columns``: x, then y and the weight column): resume reads the positions, since
        a CSV header may repeat a name."""
        reader = self.reader
        st = os.stat(reader.path)
        return {"file": os.path.abspath(reader.path), "size": st.st_size,
                "mtime_ns": st.st_mtime_ns, "x": list(reader.x), "y": reader.y,
                "weight": reader.w,
                # (header as the reader used it, a truth value: what resume checks for)
                "columns": list(reader.positions), "header": bool(reader.header),
                "delimiter": reader.delimiter, "block_rows": reader.block_rows}
