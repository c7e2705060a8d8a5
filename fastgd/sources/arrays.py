"""The arrays given to :func:`fastgd.fit`: one in-memory block, no copy."""
import numpy as np

from .. import _threads, losses
from .._chunking import csr_chunks, n_chunks
from .._config import K
from . import csr as _csr
from . import small as _small
from .base import DataFacts, Source
from .epochs import _ArrayEpochs
from .passes import Block, fingerprint


class ArraySource(Source):
    """The arrays given to :func:`fastgd.fit`: one block, no copy.

    ``parallel`` is the resolved choice of kernels for its passes; ``verified`` says
    whether X and y were already checked for NaN/inf (else the first pass proves it).
    """

    kind = "arrays"
    random_access = True
    rows_in_memory = True
    n_blocks = 1

    def __init__(self, data, parallel, verified=False):
        super().__init__()
        self.data = data
        self.block = Block(data, 0, 0, bool(parallel))
        self.verified = verified
        # passes in NumPy (see fastgd.sources.small); never for CSR, whose passes are O(nnz)
        self._small = not data.sparse and _small.is_small(data.n, data.d)
        self._sse = self._loss = self._value = None

    n = rows_known = property(lambda self: self.data.n)
    d = property(lambda self: self.data.d)
    weight_total = property(lambda self: self.data.weight_total)
    one_d = property(lambda self: self.data.one_d)
    weighted = property(lambda self: self.data.sw.shape[0] > 0)
    sparse = property(lambda self: self.data.sparse)

    def _blocks(self):
        yield self.block

    def _block(self, k):
        return self.block

    def block_sizes(self):
        return [self.data.n]

    def _name(self, block):
        return ""

    def facts(self):
        d = self.data
        return DataFacts(n=d.n, d=d.d, dtype=str(d.X.dtype), weighted=d.sw.shape[0] > 0,
                         one_d=d.one_d, sparse=bool(d.sparse))

    def fingerprint(self):
        """Shape, dtype, weights, and a hash of 257 rows spread over the arrays (see
        :func:`fastgd.sources.passes.fingerprint`)."""
        return fingerprint(self.data)

    # The loss/gradient passes run once per epoch: one block, so the kernel is chosen and
    # the per-chunk buffer allocated once per fit (the generic loop's per-call generator
    # and allocation cost 3 us a pass, 15% of an epoch at 10^5 rows).
    def sse_grad(self, coef):
        d = self.data
        if d.sparse:
            return self._csr_pass(coef, losses.get("squared"), 0.0)
        if self._small and self.numpy_passes:
            s = _small.sse_grad(d, coef)
            if not self.verified:
                self._proof(s)
            return s
        if self._sse is None:
            nc = n_chunks(d.n)
            self._sse = (K.sse_grad_kernel(d.d, d.sw.shape[0] > 0),
                         np.empty((nc, d.d + 2)), nc)
        kernel, out, nc = self._sse
        _threads.run_chunks(kernel, (d.X, d.y, d.sw, coef, out), nc, self.block.parallel)
        s = out.sum(axis=0)
        if not self.verified:
            self._proof(s)
        return s

    def loss_grad(self, coef, loss, c):
        if loss.sufficient_statistics:
            return self.sse_grad(coef)
        d = self.data
        if d.sparse:
            return self._csr_pass(coef, loss, c)
        if self._small and self.numpy_passes:
            s = _small.loss_grad(d, coef, loss, c)
            if not self.verified:
                self._proof(s)
            return s
        if self._loss is None or self._loss[0] is not loss:
            self._loss = (loss, np.empty((n_chunks(d.n), d.d + 2)), np.empty(1))
        _, out, params = self._loss
        params[0] = c
        _threads.run_chunks(K.loss_kernels(loss).grad, (d.X, d.y, d.sw, coef, params, out),
                            out.shape[0], self.block.parallel)
        s = out.sum(axis=0)
        if not self.verified:
            self._proof(s)
        return s

    def loss(self, coef, loss, c):
        d = self.data
        if not d.sparse:  # the fused pass: the loss alone reads as much
            return float(self.loss_grad(coef, loss, c)[0])
        if self._value is None or self._value[0] is not loss:
            self._value = (loss, np.empty(csr_chunks(d.n, d.d + 2)))
        s = _csr.loss_value(d, self.block.parallel, coef, loss, c, self._value[1])
        if not self.verified:
            self._proof(s)
        return s

    def _csr_pass(self, coef, loss, c):
        # the per-chunk buffer (d + 2 values a chunk: 32 MB at 2^18 columns) is allocated
        # once per fit, not once per pass
        d = self.data
        if self._loss is None or self._loss[0] is not loss:
            self._loss = (loss, np.empty((csr_chunks(d.n, d.d + 2), d.d + 2)))
        out = self._loss[1]
        _csr.loss_pass(d, self.block.parallel, coef, loss, c, out)
        s = out.sum(axis=0)
        if not self.verified:
            self._proof(s)
        return s

    def epochs(self, rng, shuffle, parallel, prefetch, rows=None):
        return _ArrayEpochs(self, rng, shuffle, parallel, prefetch, rows)
