"""The loss contract: what a per-row loss gives the kernels, the solvers and the plan.

A loss is a function ``loss(r; c)`` of a row's residual ``r = y - prediction`` and of one
parameter ``c`` (the fit keyword ``epsilon``; a loss without one ignores it). The fit
minimizes ``sum_i w_i loss(r_i)`` (divided by ``sum w`` for ``reduction="mean"``), plus the
penalty. A loss provides:

* ``value(r, c)`` and ``psi(r, c) = loss'(r) / 2`` as scalar functions that numba can
  compile (plain arithmetic, ``math``, ``min``/``max``): the kernels compile one fused
  pass of ``[sum w loss(r), sum w psi(r), sum w psi(r) x_j ...]`` and the stochastic
  epochs per loss, with these inlined (:mod:`fastgd.kernels.loss`);
* ``value_np`` and ``psi_np``: the same on NumPy arrays (the passes over small blocks,
  :mod:`fastgd.sources.small`);
* capabilities that the plan's rules read: ``sufficient_statistics`` (the loss is ``r^2``:
  the gram path, conjugate gradient's exact line search, the QR statistic and the Newton
  refinement apply), ``curvature`` (``sup loss''``: the automatic step sizes divide by it),
  ``psi_bound(c)`` (``sup |psi|``, or None: the stopping rule's scale of a gradient) and
  ``scales_with_y`` (a fit in other units is the same problem).

With ``psi = r`` (the squared loss) the gradient is ``-2 norm sum w r x``: the convention
of every pass in fastgd (``S = sum w psi(r) [x, 1]``, gradient ``-2 norm S``).

Adding a loss is one module with a :class:`Loss` subclass and one line that registers it
(:func:`fastgd.losses.register`); nothing else in the package changes.
"""
import hashlib
import inspect
import weakref

#: each loss class's :meth:`Loss.key`, computed once (a class redefined is a new key)
_KEYS = weakref.WeakKeyDictionary()


class Loss:
    """Base class of the losses; subclasses set the attributes and the four functions."""

    #: the name of ``fit(..., loss=name)``
    name = None
    #: the loss is the squared residual: sufficient statistics (gram, CG, QR, refinement)
    sufficient_statistics = False
    #: ``sup_r loss''(r)`` (2 for ``r^2``): the automatic rates' curvature per row
    curvature = 2.0
    #: what ``epsilon`` means for this loss (None: the loss ignores it)
    parameter = None
    #: ``loss(a r; a c) = a^2 loss(r; c)``: data whose magnitudes float64's sums of squares
    #: cannot hold are fitted in power-of-two units and mapped back exactly (the squared
    #: and Huber losses); a loss without it refuses such data with a clear error instead
    scales_with_y = False

    @staticmethod
    def value(r, c):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def psi(r, c):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def value_np(r, c):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def psi_np(r, c):  # pragma: no cover - abstract
        raise NotImplementedError

    def psi_bound(self, c):
        """``sup |psi(r)|`` for the parameter ``c``, or None when unbounded."""
        return None

    def key(self):
        """A short hash of the loss's source: the name under which its compiled kernels
        are cached changes whenever its functions do (numba keys a cache on the kernel's
        own source file only). Computed once per class: reading the source takes
        milliseconds, and the kernels are looked up on every epoch."""
        cls = type(self)
        key = _KEYS.get(cls)
        if key is None:
            try:
                src = inspect.getsource(cls)
            except (OSError, TypeError):  # defined where no source is kept (a REPL)
                src = repr(cls)
            key = _KEYS[cls] = hashlib.sha256(src.encode()).hexdigest()[:10]
        return key

    def __repr__(self):
        return f"{type(self).__name__}()"
