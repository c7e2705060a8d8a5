"""The solvers: the algorithms of the fits, each over a source's passes.

Layout (each module's docstring has the details):

* :mod:`~fastgd.solvers.base`: the :class:`Solver` contract and its loop (epochs,
  divergence, callback, stopping, checkpoints);
* :mod:`~fastgd.solvers.scaling`: the problem in scaled coordinates (:class:`Scaled`);
* :mod:`~fastgd.solvers.oracles`: the loss and gradient sums at a point (from the
  sufficient statistics, or one pass);
* :mod:`~fastgd.solvers.batch`: the batch optimizers (:data:`OPTIMIZERS`: conjugate
  gradient, gradient descent, momentum, Nesterov; proximal steps for an L1 penalty);
* :mod:`~fastgd.solvers.stopping`: the batch fits' stopping rule;
* :mod:`~fastgd.solvers.refine`: the last steps of a batch fit on the squared loss
  (a Newton correction from one pass, the QR solve of an ill-conditioned problem);
* :mod:`~fastgd.solvers.sgd`: scaled SGD and mini-batch (schedules, averaging, early
  stopping, penalties, parameter mixing);
* :mod:`~fastgd.solvers.textbook`: the textbook updates on the raw data.

A new batch optimizer is a :class:`BatchSolver` subclass with a ``name`` and its
capabilities, added to :data:`OPTIMIZERS` (the plan's ``optimizer=`` choices come from
there).
"""
from .base import EXPLODE_FACTOR, Diverged, Solver
from .batch import OPTIMIZERS, BatchSolver, momentum_params
from .oracles import Objective, SwitchingOracle, batch_oracle, objective
from .refine import condition, qr_solve, refine
from .scaling import Scaled
from .sgd import StochasticSolver, auto_eta0
from .textbook import PlainSGD, Textbook, auto_learning_rate

__all__ = ["EXPLODE_FACTOR", "Diverged", "Solver", "OPTIMIZERS", "BatchSolver",
           "momentum_params", "Objective", "SwitchingOracle", "batch_oracle", "objective",
           "condition",
           "qr_solve", "refine", "Scaled", "StochasticSolver", "auto_eta0", "PlainSGD",
           "Textbook", "auto_learning_rate"]
