"""The solver contract: the one loop every fit's epochs run through.

A solver is the algorithm of one kind of fit (a batch optimizer, the textbook update,
SGD) over a source's passes. It implements :meth:`Solver.begin` (the starting point and
its loss), :meth:`Solver.epoch` (one epoch: the new point, its loss, and whether the
stopping rule is met) and, when its fits can be checkpointed, :meth:`Solver.snapshot` and
:meth:`Solver.restore`. :meth:`Solver.run` is the loop they share: the epochs, the
divergence rule (:func:`check_loss`: a non-finite loss, or one that exploded), the
callback (which Ctrl-C and the progress bar ride on, see :mod:`fastgd._engine`), the
stopping and the checkpoints, in that order. Adding an optimizer is one module with a
subclass (batch optimizers: :mod:`fastgd.solvers.batch`).
"""
import abc
import contextlib

import numpy as np

#: a loss this many times above the starting loss counts as divergence.
EXPLODE_FACTOR = 1e10


class Diverged(Exception):
    """Internal: raised by a solver; the engine turns it into :class:`DivergenceError`."""

    def __init__(self, epoch, coef, history, reason):
        super().__init__(reason)
        self.epoch = epoch
        self.coef = coef
        self.history = history
        self.reason = reason


def check_loss(epoch, loss, history, coef):
    """Raise :class:`Diverged` (holding ``coef``, the last finite raw parameters) when
    ``loss`` is not finite or exceeds :data:`EXPLODE_FACTOR` times the first loss."""
    if not np.isfinite(loss):
        raise Diverged(epoch, coef, history, "the loss became non-finite")
    if history[0] > 0 and loss > EXPLODE_FACTOR * history[0]:
        raise Diverged(epoch, coef, history,
                       f"the loss exploded from {history[0]:.6g} to {loss:.6g}")


class Solver(abc.ABC):
    """Base class of the solvers (see the module docstring)."""

    #: the name its checkpoints carry (None: its fits are not checkpointed)
    engine = None

    def __init__(self):
        self.history = []
        self.converged = False
        #: why the fit ended: a code, a colon, the details (see :meth:`run`)
        self.reason = None

    @abc.abstractmethod
    def begin(self):
        """Set up the starting point; append its loss to ``self.history``."""

    @abc.abstractmethod
    def epoch(self, k):
        """Run epoch ``k`` (1-based) and append the new loss to ``self.history``.

        Returns whether the stopping rule is met (``self.reason`` then says how); or
        None when the fit ends before this epoch makes a step (``self.converged`` and
        ``self.reason`` then say whether that is convergence, and why). Raises
        :class:`Diverged`."""

    @abc.abstractmethod
    def coef(self):
        """The current raw parameters (weights, then intercept): what the callback
        receives."""

    def opened(self):
        """A context manager the epochs run in (a source's stream of epochs)."""
        return contextlib.nullcontext()

    def snapshot(self, k):
        """The state that :meth:`restore` continues from after epoch ``k``."""
        raise TypeError(f"{type(self).__name__} fits are not checkpointed")

    def restore(self, state):
        """Continue from a :meth:`snapshot`; returns the epoch it was taken after."""
        raise TypeError(f"{type(self).__name__} fits are not checkpointed")

    def run(self, epochs, callback=None, checkpoint=None, restart=None):
        """Epochs ``1 .. epochs`` (after ``restart``'s, when given); returns whether the
        fit converged. ``callback(epoch, coef, intercept, loss)`` after each epoch;
        ``False`` ends the fit (not converged). ``checkpoint`` (a
        :class:`fastgd._checkpoint.Checkpointer`) receives :meth:`snapshot` when due.

        ``self.reason`` says why the fit ended, as ``"code: details"``, the code one of
        ``"tol"`` (the stopping rule), ``"optimum"`` (exactly at the optimum, to
        rounding), ``"early_stopping"``, ``"schedule"`` (the adaptive rate ran out),
        ``"callback"`` (it returned False) or ``"epochs"`` (all of them ran)."""
        with self.opened():
            return self._loop(epochs, callback, checkpoint, restart)

    def _loop(self, epochs, callback, checkpoint, restart):
        start = 1
        if restart is not None:
            start = self.restore(restart) + 1
        else:
            self.begin()
        for k in range(start, epochs + 1):
            stop = self.epoch(k)
            if stop is None:
                return self.converged
            if callback is not None:
                coef = self.coef()
                d = coef.shape[0] - 1
                if callback(k, coef[:d].copy(), float(coef[d]), self.history[-1]) is False:
                    self.reason = f"callback: the callback returned False after epoch {k}"
                    return False
            if stop:
                self.converged = True
                return True
            if checkpoint is not None and checkpoint.due(k):
                checkpoint.save(self.engine, k, self.snapshot(k))
        self.reason = f"epochs: all {epochs} epochs ran" + (
            "" if self.tolerance is None else
            f" before the stopping rule (tol={self.tolerance:g}) was met")
        return False

    @property
    def tolerance(self):
        """The stopping rule's ``tol`` (None: none)."""
        return getattr(self, "tol", None)
