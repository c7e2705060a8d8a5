"""Losses as objects: one module per loss behind :class:`Loss`, found in one registry.

The plan's ``loss`` keyword accepts the names registered here (the registry is the
validation), and every part of a fit reads what it needs from the loss object: the
kernels its per-row value and derivative, the plan and the solvers its capabilities.
Adding a loss: a module with a :class:`Loss` subclass, and one :func:`register` line
(below for the package's own; in user code for others)::

    class LogCosh(fastgd.losses.Loss):
        name = "logcosh"
        ...
    fastgd.losses.register(LogCosh())
    fastgd.fit(X, y, loss="logcosh")
"""
from .base import Loss
from .huber import Huber
from .squared import Squared

#: name -> loss, in the order registered
LOSSES = {}


def register(loss):
    """Add ``loss`` to the registry, so that every fit and estimator accepts it by name.

    From then on ``fit(..., loss=loss.name)`` (and :func:`fastgd.fit_chunks`,
    :func:`fastgd.fit_file`, ``GDRegressor(loss=loss.name)``) accept it, and the plan
    reads its capabilities. Registering another instance of the same class
    under its name again replaces the entry (re-running a module that registers is
    harmless).

    Parameters
    ----------
    loss : Loss
        An instance of a :class:`Loss` subclass whose ``name`` is a Python identifier
        not yet taken by a loss of another class. Anything else is a ``TypeError``; a
        bad or taken name is a ``ValueError``.

    Returns
    -------
    Loss
        ``loss`` itself.
    """
    if not isinstance(loss, Loss):
        raise TypeError(f"register takes a fastgd.losses.Loss instance, got {loss!r:.80}")
    if not isinstance(loss.name, str) or not loss.name.isidentifier():
        raise ValueError(f"a loss needs a name that is an identifier, got {loss.name!r}")
    if loss.name in LOSSES and type(LOSSES[loss.name]) is not type(loss):
        raise ValueError(f"a loss named {loss.name!r} is registered already "
                         f"({LOSSES[loss.name]!r}); choose another name")
    LOSSES[loss.name] = loss
    return loss


def get(name):
    """The registered loss called ``name``.

    Parameters
    ----------
    name : str
        A registered loss's name (``"squared"``, ``"huber"``, or one added with
        :func:`register`). Any other value is a ``ValueError`` listing the valid names.

    Returns
    -------
    Loss
        The instance registered under ``name``.
    """
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(k) for k in LOSSES)
        raise ValueError(f"loss must be one of {valid}; got {name!r}") from None


register(Squared())
register(Huber())

__all__ = ["Loss", "LOSSES", "register", "get", "Squared", "Huber"]
