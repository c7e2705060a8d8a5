"""The same rows in power-of-two units: data whose magnitudes float64's sums of squares
cannot hold, fitted exactly in other units (see :func:`fastgd._engine.run`)."""
import numpy as np

from .. import _validation as V
from . import csr as _csr
from .arrays import ArraySource
from .base import Source
from .passes import Block


def exponents(top):
    """Per column, the power of two ``e`` with ``top / 2**e`` in ``[0.5, 1)`` (0 for a
    zero column): dividing a column by ``2**e`` is exact and brings its magnitudes to at
    most 1, so that no sum of squares can overflow and none underflows."""
    return np.frexp(top)[1].astype(np.int64)


def rescaled(source, x_exp, y_exp):
    """The rows of ``source`` with column ``j`` of X divided by ``2**x_exp[j]`` and y by
    ``2**y_exp``, as a source whose ``units`` are ``(x_exp, y_exp)``.

    Exact (no rounding, except for values that become subnormal, far below their column's
    largest), so a fit on these rows is the same problem in other units (see
    :func:`fastgd._engine.run`). The rows are float64 copies: made once for in-memory
    arrays (an :class:`ArraySource` over the copy), block by block on every pass for
    other sources (:class:`Rescaled`). ``source`` must be proved finite already.
    """
    units = (np.asarray(x_exp, dtype=np.int64), int(y_exp))
    out = _rescaled(source, units)
    out.units = units
    out.numpy_passes = source.numpy_passes
    return out


def _rescaled(source, units):
    if hasattr(source, "in_units"):  # blocks elsewhere: converted where they are
        out = source.in_units(units)
        out.verified = True
    elif isinstance(source, ArraySource):
        out = ArraySource(_in_units(source.data, units), source.block.parallel, verified=True)
    else:
        out = Rescaled(source, units)
    return out


def _in_units(d, units):
    if d.sparse:
        return _csr.in_units(d, units)
    ex, ey = units
    return V.Data(np.ldexp(d.X, -ex, dtype=np.float64), np.ldexp(d.y, -ey, dtype=np.float64),
                  d.sw, d.weight_total, d.one_d)


class Rescaled(Source):
    """Blocks of another source in power-of-two units (see :func:`rescaled`): each block
    converted as it is read."""

    def __init__(self, inner, units):
        super().__init__()
        self.inner = inner
        self.units = units
        self.verified = True
        self.reiterable = inner.reiterable
        self.random_access = inner.random_access

    n = property(lambda self: self.inner.n)
    rows_known = property(lambda self: self.inner.rows_known)
    d = property(lambda self: self.inner.d)
    n_blocks = property(lambda self: self.inner.n_blocks)
    weight_total = property(lambda self: self.inner.weight_total)
    one_d = property(lambda self: self.inner.one_d)
    weighted = property(lambda self: self.inner.weighted)

    def _convert(self, b):
        return Block(_in_units(b.data, self.units), b.index, b.offset, b.parallel)

    def _blocks(self):
        for b in self.inner._blocks():
            yield self._convert(b)

    def _block(self, k):
        return self._convert(self.inner._block(k))

    def block_sizes(self):
        return self.inner.block_sizes()

    def facts(self):
        return self.inner.facts()

    def _name(self, block):
        return self.inner._name(block)
