"""The source contract (:class:`Source`) and what a plan knows of a source's rows
(:class:`DataFacts`). See :mod:`fastgd.sources` for the sources and their passes."""
import abc
import itertools
from dataclasses import dataclass

import numpy as np

from .. import _validation as V
from .._layout import make_coords
from .epochs import _BlockEpochs
from .passes import (
    KQR,
    FullMerge,
    _add_in_order,
    draw_split,
    fingerprint_part,
    loss_part,
    loss_value_part,
    max_abs_part,
    max_norm_part,
    merge_moments,
    moments_part,
    permutation,
    qr_part,
    rows_part,
    sse_part,
    subset_loss_part,
    subset_weight_part,
)


@dataclass(frozen=True)
class DataFacts:
    """What a plan needs to know of the data (immutable).

    A source reports them (``source.facts()``) and :meth:`FitPlan.build` resolves the
    "auto" settings for them; each is kept as the attribute of the same name.

    Parameters
    ----------
    n : int or None
        The number of rows (>= 1), or None when a source does not know its row count
        before its first pass (a stream of blocks).
    d : int
        The number of features (columns of X, >= 1).
    dtype : str
        ``"float32"`` or ``"float64"``: the dtype the passes read X in.
    weighted : bool
        Whether the rows carry sample weights.
    one_d : bool
        Whether X was 1-D (one feature, ``d == 1``; ``FitResult.slope`` applies).
        Default False.
    sparse : bool
        Whether X is a scipy.sparse matrix (its rows read as CSR). Default False.

    Examples
    --------
    >>> import fastgd
    >>> facts = fastgd.DataFacts(n=1000, d=3, dtype="float64", weighted=False)
    >>> fastgd.DataFacts.from_dict(facts.to_dict()) == facts
    True
    """

    n: object
    d: int
    dtype: str
    weighted: bool
    one_d: bool = False
    sparse: bool = False

    def to_dict(self):
        """The facts as a plain dict, which :meth:`from_dict` reads back.

        Returns
        -------
        dict
            The keys ``n``, ``d``, ``dtype``, ``weighted`` and ``one_d`` (and ``sparse``
            when true: files of dense fits read as before), plain values.
        """
        out = dict(n=self.n, d=self.d, dtype=self.dtype, weighted=self.weighted,
                   one_d=self.one_d)
        if self.sparse:
            out["sparse"] = True
        return out

    @classmethod
    def from_dict(cls, f):
        """The facts of :meth:`to_dict`'s output, each checked.

        Parameters
        ----------
        f : dict
            The keys ``n``, ``d``, ``dtype`` and ``weighted`` (``one_d`` and ``sparse``
            optional, default False), as :meth:`to_dict` writes them; no other keys.

        Returns
        -------
        DataFacts
            The facts, equal to those that wrote ``f``.

        Raises
        ------
        ValueError
            A missing or unknown key, or a value out of range, naming it (e.g.
            ``facts.d``).
        TypeError
            A value of the wrong type, naming it.
        """
        known = ("n", "d", "dtype", "weighted", "one_d", "sparse")
        unknown = sorted(set(f) - set(known))
        missing = [k for k in known[:4] if k not in f]
        if unknown or missing:
            raise ValueError(f"a fit plan's facts hold the keys {', '.join(known)}; "
                             f"missing {missing}, unknown {unknown}")
        n, d, dtype = f["n"], f["d"], f["dtype"]
        n = None if n is None else V.check_int(n, "facts.n", 1)
        d = V.check_int(d, "facts.d", 1)
        if dtype not in ("float32", "float64"):
            raise ValueError(f"facts.dtype must be 'float32' or 'float64', got {dtype!r:.40}")
        weighted = _flag("facts.weighted", f["weighted"])
        one_d = _flag("facts.one_d", f.get("one_d", False))
        if one_d and d != 1:
            raise ValueError(f"facts.one_d is true (a 1-D X) but facts.d is {d}")
        sparse = _flag("facts.sparse", f.get("sparse", False))
        return cls(n=n, d=d, dtype=dtype, weighted=weighted, one_d=one_d, sparse=sparse)


def _flag(name, v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    raise TypeError(f"{name} must be True or False, got {v!r}")


class Source(abc.ABC):
    """The source contract: where the rows are, and the block passes over them, merged in
    block order.

    A source implements :meth:`_blocks` (the validated blocks, in order), :meth:`facts`
    (what a plan needs to know of the data) and the properties ``n``, ``d``,
    ``n_blocks``, ``weight_total``, ``weighted`` and ``one_d``; random access adds
    ``_block(k)``. Every pass is inherited: a map of a per-block function of
    :mod:`fastgd.sources.passes` and a merge in block order. A source whose blocks live
    elsewhere replaces :meth:`_map` (and ``epochs``) to run the same functions where they
    are (:mod:`fastgd.sources.dask`). Adding a source is one module with such a class.
    """

    #: what the checkpoints call this kind of source (see :meth:`fingerprint`)
    kind = None
    #: the column names of X (a frame's), or None
    names = None
    #: several passes are possible (False for a one-shot iterator)
    reiterable = True
    #: blocks can be read in any order (``_block(k)``)
    random_access = False
    #: ``(x_exp, y_exp)`` when the rows are the data in power-of-two units (see
    #: :class:`Rescaled`); None for the data as given
    units = None
    #: whether the loss/gradient passes of small blocks may run in NumPy (see
    #: :mod:`fastgd.sources.small`); the engine sets it from the plan: True for fits that make
    #: few such passes (the gram path, the stochastic modes' one loss pass an epoch),
    #: False for the iterative streaming fits, whose passes the kernels run 2 to 10 times
    #: faster (measured), so their compilation pays for itself
    numpy_passes = True
    #: the blocks are arrays in this process's memory, so that reading a few of their rows
    #: (:meth:`sample`) costs no pass over the data (not so for files, Dask's graphs, or
    #: blocks converted to power-of-two units as they are read)
    rows_in_memory = False
    #: the blocks hold X as CSR (:mod:`fastgd.sources.csr`): the batch passes and the
    #: stochastic epochs (:mod:`fastgd.kernels.sparse_sgd`) have CSR twins
    sparse = False

    def __init__(self):
        self.verified = False  # X and y known to be finite

    @property
    def rows_known(self):
        """The number of rows when it is known without reading the data, else None."""
        return None

    # -- what subclasses provide ---------------------------------------------------------

    @abc.abstractmethod
    def _blocks(self):
        """The blocks (:class:`fastgd.sources.passes.Block`), in order, each validated."""

    def _block(self, k):
        """Block ``k`` alone (sources with ``random_access`` only)."""
        raise TypeError(f"{type(self).__name__} reads its blocks in order only")

    @abc.abstractmethod
    def facts(self):
        """The :class:`DataFacts` of the rows (``n`` None when unknown
        before a pass)."""

    @property
    @abc.abstractmethod
    def n(self):
        """Rows (a pass over the blocks when not known yet)."""

    @property
    @abc.abstractmethod
    def d(self):
        """Columns of X."""

    @property
    @abc.abstractmethod
    def n_blocks(self):
        """Blocks."""

    @property
    @abc.abstractmethod
    def weight_total(self):
        """The sum of the weights (``n`` without weights)."""

    @property
    @abc.abstractmethod
    def weighted(self):
        """Whether the rows have weights."""

    @property
    @abc.abstractmethod
    def one_d(self):
        """Whether X was given as a 1-D array (one feature)."""

    def _name(self, block):
        """How error messages name ``block`` ("" for the only block of arrays)."""
        return f"block {block.index}: "

    # -- finiteness ----------------------------------------------------------------------

    def check_finite(self):
        """Raise ``ValueError`` if X or y holds NaN or inf (naming the first bad row)."""
        if not self.verified:
            for b in self._blocks():
                self._check_block(b)
            self.verified = True

    def _check_block(self, b):
        try:
            V.check_finite_data(b.data, b.parallel)
        except ValueError as exc:
            prefix = self._name(b)
            if not prefix:
                raise
            raise ValueError(f"{prefix}{exc} (the block's rows start at row {b.offset})") from None

    def _proof(self, *sums):
        """A pass whose sums are finite proves the data finite (any NaN or inf in X or y
        makes them non-finite); a non-finite one triggers the search for the message."""
        if not self.verified:
            if not all(np.isfinite(s).all() for s in sums):
                self.check_finite()
            self.verified = True

    # -- passes --------------------------------------------------------------------------

    def _map(self, part, *args, each=None):
        """``[part(block.data, block.parallel, [each[k],] *args) for each block k]``, in
        block order: every pass is such a map of a per-block function (below, at module
        level) followed by a merge of its results in block order. A source that runs
        blocks elsewhere (:mod:`fastgd.dask`) replaces this method and :meth:`_each`,
        and the few that read blocks directly (``check_finite``, ``split``, ``epochs``)."""
        return list(self._each(part, *args, each=each))

    def _each(self, part, *args, each=None):
        """:meth:`_map`'s results one at a time, each computed when it is asked for: a
        merge that folds them in as they come holds one block's result at a time."""
        for b in self._blocks():
            extra = () if each is None else (each[b.index],)
            yield part(b.data, b.parallel, *extra, *args)

    def sse_grad(self, coef):
        """``[sum w r^2, sum w r, sum w r x_j ...]`` at ``coef`` (float64 ``(d + 2,)``)."""
        total = _add_in_order(self._map(sse_part, coef, self.numpy_passes))
        self._proof(total)
        return total

    def loss_grad(self, coef, loss, c):
        """``[sum w loss(r), sum w psi(r), sum w psi(r) x_j ...]`` of ``loss`` (a
        :class:`fastgd.losses.Loss`) with parameter ``c``: :meth:`sse_grad` for the
        squared loss, else that loss's compiled pass (each block's, added in order)."""
        if loss.sufficient_statistics:
            return self.sse_grad(coef)
        total = _add_in_order(self._map(loss_part, coef, loss.name, c, self.numpy_passes))
        self._proof(total)
        return total

    def loss(self, coef, loss, c):
        """``sum w loss(r)`` of ``loss`` (a :class:`fastgd.losses.Loss`) with parameter
        ``c`` at ``coef``: the first entry of :meth:`loss_grad` (bit for bit for dense
        blocks, whose fused pass it runs; to rounding for CSR blocks, whose own pass
        computes only the loss: O(nnz), no gradient over the columns); what the
        stochastic modes measure their epochs with."""
        total = _add_in_order(self._map(loss_value_part, coef, loss.name, c,
                                        self.numpy_passes))
        self._proof(total)
        return total

    def moments(self, full):
        """``(W, mean, com)``: weighted mean (``d + 1``) and centred co-moment of ``[x, y]``
        (``(d + 1, d + 1)`` when ``full``, else the ``(d + 1,)`` diagonal): each block's
        statistics (its slices merged where the block is), merged exactly (pairwise
        updates) in block order.

        The last result is kept (copies are returned): a fit that asks again reads
        nothing. It does when the statistics show magnitudes its sums of squares cannot
        hold: the engine refits in power-of-two units
        (:func:`fastgd._engine._run_in_units`), and when those are all ones after all, on
        the data as it is. (A column whose squares are all exactly zero is told apart from
        squares that underflowed by its largest magnitude alone, see
        :func:`fastgd._validation.check_statistics`: a column of zeros needs no units.)"""
        memo = getattr(self, "_moments_memo", None)
        if memo is not None and memo[0] == full:
            W, mean, com = memo[1]
            return W, mean.copy(), com.copy()
        k = self.d + 1
        if full:  # folded in as the blocks come: one (d + 1)^2 row held at a time
            rows = self._each(moments_part, full)
            first = next(rows)
            second = next(rows, None)
            if second is None:
                W, mean, com = merge_moments(first[None, :], k, full)
            else:
                merge = FullMerge(k)
                for row in itertools.chain((first, second), rows):
                    merge.add(row)
                W, mean, com = merge.result()
        else:
            rows = self._map(moments_part, full)
            out = rows[0][None, :] if len(rows) == 1 else np.stack(rows)
            W, mean, com = merge_moments(out, k, full)
        self._proof(mean, com)
        self._moments_memo = (full, (W, mean.copy(), com.copy()))
        return W, mean, com

    def max_norm(self, centres, inv_scales, fit_intercept):
        """``max_i w_i ||[(x_i - centres) * inv_scales, 1]||^2`` (the 1 only when the
        intercept is fitted): the largest curvature one SGD step can meet."""
        return max(self._map(max_norm_part, make_coords(centres, inv_scales,
                                                          fit_intercept)))

    def qr(self, centres, inv_scales, intercept, offset):
        """The R factor of ``sqrt(w) [(x - centres) * inv_scales, 1, y - offset]`` over all
        rows (see :mod:`fastgd.kernels.qr`): each block's R, merged in block order."""
        R = None
        for Rb in self._map(qr_part, centres, inv_scales, intercept, offset):
            R = KQR.merge(R, Rb)
        return R

    def max_abs(self, columns=None):
        """The largest magnitude of each column of ``[X, y]`` (float64 ``(d + 1,)``), or of
        the columns ``columns`` (increasing indices into ``d + 1``; the result in their
        order), read in slices so that no block-sized temporary is made."""
        args = () if columns is None else (np.asarray(columns, dtype=np.int64),)
        return np.maximum.reduce(self._map(max_abs_part, *args))

    def fingerprint(self):
        """What identifies these rows for a checkpoint: the source's ``kind``, shape,
        dtype, weights, the block sizes and a hash of rows sampled in every block,
        computed where the blocks are (see :func:`fastgd._checkpoint.fingerprint`)."""
        import hashlib

        h = hashlib.sha256("".join(self._map(fingerprint_part)).encode())
        facts = self.facts()
        return {"source": self.kind, "n": int(facts.n), "d": int(facts.d), "dtype": facts.dtype,
                "weighted": bool(facts.weighted), "blocks": [int(m) for m in self.block_sizes()],
                "sha256": h.hexdigest()}

    def sample(self, m):
        """About ``m`` rows of dense blocks, spread evenly: each block gives its share (in
        proportion to its rows) at evenly spaced positions. Returns float64 copies ``(X,
        y, sw)`` (``sw`` ones when unweighted), in block order."""
        sizes = self.block_sizes()
        n = sum(sizes)
        idx = []
        for size in sizes:
            take = min(size, max(1, round(m * size / n))) if size else 0
            idx.append(np.unique(np.linspace(0, size - 1, take).astype(np.int64)))
        parts = self._map(rows_part, each=idx)
        if len(parts) == 1:
            return parts[0]
        return tuple(np.concatenate(p) for p in zip(*parts))

    # -- early stopping ------------------------------------------------------------------

    def split(self, fraction, rng, parallel):
        """Hold out ``fraction`` of the rows, drawn from ``rng``: a list with one
        ``(train_idx, val_idx)`` pair of local row indices (int64 arrays) per block."""
        parts = []
        one = self.n_blocks == 1
        for r in draw_split(self.block_sizes(), fraction, rng):
            s = permutation(r.m, r.seed, parallel if one else False)
            parts.append((s[r.n_val:].copy(), s[:r.n_val].copy()))
        return parts

    def block_sizes(self):
        """Rows per block, in block order."""
        return [b.data.n for b in self._blocks()]

    def subset_loss(self, idx, coef, loss, c):
        """``(sum w loss(r), sum w)`` over the rows ``idx[k]`` of each block ``k``."""
        s = w = 0.0
        for sb, wb in self._map(subset_loss_part, coef, loss.name, c, self.numpy_passes,
                                each=idx):
            s += sb
            w += wb
        return s, w

    def subset_weight(self, idx):
        """Total weight of the rows ``idx[k]`` of each block ``k``."""
        return float(sum(self._map(subset_weight_part, each=idx)))

    # -- stochastic epochs -----------------------------------------------------------------

    def epochs(self, rng, shuffle, parallel, prefetch, rows=None):
        """The visiting order of each stochastic epoch: a context manager whose
        ``next()`` returns the epoch as a list of ``(block, order)``, ``order`` the
        local row indices to visit in turn (int64)."""
        return _BlockEpochs(self, rng, shuffle, rows)
