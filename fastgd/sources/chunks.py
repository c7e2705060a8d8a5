"""Rows in blocks: a list of ``(X, y[, sample_weight])`` tuples, a callable returning a
fresh iterator of them on every call, or a one-shot iterator (:func:`fastgd.fit_chunks`);
files are such blocks too (:mod:`fastgd.sources.files`)."""
from .. import _validation as V
from .._frames import column_names
from .base import DataFacts, Source
from .passes import Block


class ChunkSource(Source):
    """Rows in blocks: a list (or tuple) of ``(X, y)`` / ``(X, y, sample_weight)`` tuples,
    a callable returning a fresh iterator of them on every call, or a one-shot iterator
    (one pass only).

    Each block is validated like arrays given to :func:`fastgd.fit` (and converted the
    same way); every block must have the width and dtype of block 0, at least one row,
    and weights if block 0 has them. Blocks are checked for NaN/inf the first time they
    are read. ``parallel`` is the user's setting (True, False or "auto", decided per
    block by its size).
    """

    kind = "chunks"

    def __init__(self, chunks, parallel="auto"):
        super().__init__()
        self.parallel_setting = parallel
        self._list = None
        self._call = None
        self._oneshot = None
        if isinstance(chunks, (list, tuple)):
            self._list = list(chunks)
            self.random_access = self.rows_in_memory = True
            if not self._list:
                raise ValueError("chunks is empty: give at least one (X, y) block")
        elif callable(chunks):
            self._call = chunks
        elif hasattr(chunks, "__iter__"):
            if iter(chunks) is chunks:
                self._oneshot = chunks
                self.reiterable = False
            else:
                self._call = lambda: iter(chunks)
        else:
            raise TypeError(
                f"chunks must be a list of (X, y[, sample_weight]) blocks, a callable returning "
                f"an iterator of them, or an iterator; got {type(chunks).__name__}"
            )
        self._used = False
        self._first = None  # (d, dtype, weighted, one_d) of block 0
        self._sizes = None  # rows per block, known after a full pass
        self._W = None
        self._pending = None  # a one-shot iterator's block 0, read to learn the facts
        self._listed = None  # a list's validated blocks
        self._block_names = None  # block 0's column names (a frame's): every block's
        self._peek()

    # -- reading blocks --------------------------------------------------------------------

    def _raw(self):
        if self._list is not None:
            return iter(self._list)
        if self._call is not None:
            it = self._call()
            try:
                return iter(it)
            except TypeError:
                raise TypeError(
                    f"chunks() must return an iterator of (X, y[, sample_weight]) blocks, got "
                    f"{type(it).__name__}"
                ) from None
        if self._used:
            raise TypeError(
                "chunks is a one-shot iterator (e.g. a generator) and was already consumed; "
                "this fit needs several passes over the data: pass a list of blocks or a "
                "callable that returns a fresh iterator on every call"
            )
        self._used = True
        if self._pending is not None:
            first, self._pending = self._pending, None
            return _chain(first, self._oneshot)
        return self._oneshot

    def _peek(self):
        it = self._raw()
        try:
            first = next(it)
        except StopIteration:
            raise ValueError("chunks yielded no blocks: give at least one (X, y) block") from None
        if self._oneshot is not None:
            self._pending = first
            self._used = False
        b = self._validate(first, 0, 0)
        d = b.data
        self._first = (d.d, d.X.dtype, d.sw.shape[0] > 0, d.one_d)
        self.sparse = d.sparse
        if self._list is not None:
            # a list is validated (and converted, where needed) once, here: every pass
            # then reads these blocks instead of validating and converting them again
            blocks = [b]
            for k, t in enumerate(self._list[1:], start=1):
                blocks.append(self._validate(t, k, blocks[-1].offset + blocks[-1].data.n))
            self._listed = blocks
            self._sizes = [c.data.n for c in blocks]
            self._W = sum(c.data.weight_total for c in blocks)

    def _validate(self, item, k, offset):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise TypeError(
                f"block {k}: each block must be a tuple (X, y) or (X, y, sample_weight), got "
                f"{type(item).__name__}"
                + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else "")
            )
        X, y = item[0], item[1]
        sw = item[2] if len(item) == 3 else None
        names = column_names(X)
        if self._first is None:
            self._block_names = self.names = names
        elif names != self._block_names:
            raise ValueError(_block_names_error(k, names, self._block_names))
        try:
            shape = ((X.shape[0], X.shape[-1]) if V.is_sparse(X)
                     else V.check_X_shape_only(X)[0].shape)
            if shape[0] == 0:
                raise ValueError("empty")
        except ValueError as exc:
            if "empty" in str(exc):
                raise ValueError(f"block {k} is empty (0 rows); drop empty blocks") from None
            raise ValueError(f"block {k}: {exc}") from None
        parallel = V.use_parallel(self.parallel_setting, shape[0], shape[1])
        try:
            data = V.check_data(X, y, sw, parallel=parallel, check_finite_xy=False,
                                allow_zero_weight=True)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"block {k}: {exc}") from None
        if self._first is not None:
            d0, dtype0, weighted0, _ = self._first
            if data.sparse != self.sparse:
                kinds = ("a scipy sparse matrix", "a dense array")
                this, first = (kinds[0], kinds[1]) if data.sparse else (kinds[1], kinds[0])
                raise TypeError(
                    f"block {k} is {this} but block 0 is {first}: give every block the same "
                    "kind of X (all sparse, e.g. scipy.sparse.csr_matrix(X), or all dense)"
                )
            if data.d != d0:
                raise ValueError(
                    f"block {k} has {data.d} column(s) but block 0 has {d0}; every block must "
                    "have the same columns"
                )
            if data.X.dtype != dtype0:
                raise ValueError(
                    f"block {k} has dtype {data.X.dtype} but block 0 has {dtype0}; give every "
                    f"block the same dtype (e.g. X.astype(np.{dtype0}))"
                )
            if (data.sw.shape[0] > 0) != weighted0:
                has, hasnt = (0, k) if weighted0 else (k, 0)
                raise ValueError(
                    f"block {hasnt} has no sample_weight but block {has} has: give every block "
                    "weights, or none"
                )
        if data.sparse:
            parallel = V.use_parallel_for(self.parallel_setting, data)
        return Block(data, k, offset, parallel)

    def _blocks(self):
        if self._listed is not None:
            for b in self._listed:
                if not self.verified:
                    self._check_block(b)
                yield b
            _check_total_weight(self._W)
            self.verified = True
            return
        offset = 0
        sizes = []
        W = 0.0
        for k, item in enumerate(self._raw()):
            b = self._validate(item, k, offset)
            if not self.verified:
                self._check_block(b)
            sizes.append(b.data.n)
            W += b.data.weight_total
            offset += b.data.n
            yield b
        if not sizes:
            raise ValueError("chunks yielded no blocks on this pass: a callable must return a "
                             "fresh, complete iterator on every call")
        if self._sizes is not None and sizes != self._sizes:
            raise ValueError(
                f"chunks changed between passes: {len(self._sizes)} blocks of "
                f"{sum(self._sizes)} rows before, {len(sizes)} blocks of {sum(sizes)} rows now; "
                "a callable must return the same blocks on every call"
            )
        self._sizes = sizes
        self._W = W
        _check_total_weight(W)
        self.verified = True

    def check_finite(self):
        # reading the blocks checks each one the first time (see _blocks)
        if not self.verified:
            for _ in self._blocks():
                pass

    def _block(self, k):
        b = self._listed[k]  # random access: lists only
        if not self.verified:
            self._check_block(b)
        return b

    # -- facts -------------------------------------------------------------------------------

    def facts(self):
        d, dtype, weighted, one_d = self._first
        n = sum(self._sizes) if self._sizes is not None else None
        return DataFacts(n=n, d=d, dtype=str(dtype), weighted=weighted, one_d=one_d,
                         sparse=bool(self.sparse))

    def block_sizes(self):
        self._scan()
        return list(self._sizes)

    def _scan(self):
        if self._sizes is None or self._W is None:
            for _ in self._blocks():
                pass

    @property
    def n(self):
        self._scan()
        return sum(self._sizes)

    @property
    def rows_known(self):
        return None if self._sizes is None else sum(self._sizes)

    @property
    def n_blocks(self):
        self._scan()
        return len(self._sizes)

    @property
    def weight_total(self):
        self._scan()
        return self._W

    d = property(lambda self: self._first[0])
    weighted = property(lambda self: self._first[2])
    one_d = property(lambda self: self._first[3])


def _block_names_error(k, names, first):
    def shown(n):
        return "unnamed (an array)" if n is None else f"named {list(n)!r:.300}"

    fix = (f"select block 0's columns in its order, e.g. X[{list(first)!r:.200}]"
           if first is not None and names is not None else
           "give every block the same kind of X (all data frames with the same column names, "
           "or all arrays)")
    return (f"block {k}'s columns are {shown(names)}, but block 0's are {shown(first)}: every "
            f"block must have block 0's columns, in the same order; {fix}")


def _check_total_weight(W):
    if not W > 0.0:
        raise ValueError(
            "sample_weight sums to zero over all blocks: all rows would be ignored; give at "
            "least one row a positive weight"
        )


def _chain(first, rest):
    yield first
    yield from rest
