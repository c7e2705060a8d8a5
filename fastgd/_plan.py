"""The fit plan: every setting of a fit, validated once, every "auto" resolved with its rule.

A :class:`FitPlan` is built from the keywords of :func:`fastgd.fit` plus the facts of the
data (rows, columns, dtype, weights). It is frozen, and it round-trips through a plain
dict (:meth:`FitPlan.to_dict` / :meth:`FitPlan.from_dict`): what an estimator's
``get_params``, a checkpoint or a command line stores.

Validation is declarative: :data:`PARAMS` is the table of every setting with its default,
its constraint and the modes it applies to; :func:`FitPlan.build` checks the keywords
against it, then applies the cross-parameter rules and resolves the "auto" values, each
with the reason recorded in ``plan.reasons``.

This module imports only validation helpers and the chunk layouts: it knows nothing of
sources or kernels.
"""
import copy
import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from . import _validation as V
from . import losses
from ._chunking import GRAM_BLOCK_ROWS, GRAM_MAX_BLOCKS, gram_layout
from .solvers.batch import OPTIMIZERS
from .sources.base import DataFacts

DEFAULT_BATCH_SIZE = 256
#: epochs when the user gives none: the textbook/stochastic runs, then the caps of the
#: automatic batch fit (an iteration on the gram path costs O(d^2), a streaming one a pass).
DEFAULT_EPOCHS = 100
DEFAULT_EPOCHS_GRAM = 10_000
DEFAULT_EPOCHS_STREAM = 1_000
#: default ``tol`` of the automatic batch fit: relative loss decrease per epoch, with the
#: gradient cosine at most ``sqrt(tol)`` (see :mod:`fastgd.solvers.stopping`).
DEFAULT_TOL = 1e-12
#: default ``tol`` of the scaled stochastic fits (the default SGD and mini-batch fits,
#: the adaptive schedule, early stopping): the relative improvement of the monitored loss
#: (the full-data loss of the reported iterate, the average once averaging has started;
#: or the held-out loss) that counts. Measured (10^4 to 10^6 rows, d = 1 to 10, noise
#: 0.01 to 1): the default fits stop after 4 to 8 epochs within 1e-7 to 4e-4 (relative)
#: of the optimal loss, 1e-3 for minibatches of d = 1.
SGD_TOL = 1e-4
#: default ``n_iter_no_change`` of the stochastic modes: an epoch that does not improve
#: may be the iterates' noise; three in a row are not
SGD_PATIENCE = 3
#: the gram path is chosen by ``solver="auto"`` up to this many features (and within
#: :data:`GRAM_MAX_BYTES`). Its one pass costs O(n d^2) at the speed of BLAS
#: (:mod:`fastgd.kernels.gram`) and its iterations O(d^2) each, whatever the condition
#: number; a streaming CG fit costs O(n d) a pass, and its passes grow with the condition
#: number. Measured at n = 5e4 on the 2-core reference machine (default fit, best of 2,
#: gram / stream; AR(1) columns, rho = 0 well-conditioned, 0.9, 0.99):
#: d = 100: 0.22 / 0.03 s (10 passes), 0.23 / 0.30 s (123), 0.23 / 0.43 s (178);
#: d = 300: 0.21 / 0.13 s (12), 1.09 / 2.26 s (221), 0.30 / 4.47 s (455);
#: d = 500: 0.87 / 0.47 s (13), 3.2 / 4.2 s (242), 1.7 / 11.6 s (649);
#: d = 700: 2.4 / 0.64 s (14), 1.9 / 9.7 s (240), 3.6 / 23.4 s (838);
#: d = 1000: 3.4 / 0.57 s (14), 4.1 / 9.9 s (258), 6.0 s / (not run);
#: d = 2000: 7.5 / 2.0 s (17), 13.6 / 30.9 s (249), 24.8 s / (not run).
#: Up to d = 500 the gram path costs at most twice a streaming fit of well-conditioned
#: data and is faster from moderate correlation on (at 10^6 x 100, rho = 0.99: see
#: bench/test_wide.py); beyond, a well-conditioned fit would pay 4 to 6 times, and the
#: gram path stays one keyword away (solver="gram"). (Before the BLAS pass the tie had
#: been at d = 32.)
GRAM_MAX_D = 500
#: the memory budget of the gram path's d x d statistics, in bytes (see
#: :func:`gram_bytes`): ``solver="auto"`` streams past it, and ``solver="gram"`` past it
#: is refused. 2 GiB: up to d = 6,687 features for 131,072 rows or fewer, d = 5,180 at
#: 2 10^5 rows, d = 3,860 from 10^6 rows.
GRAM_MAX_BYTES = 1 << 31
#: after the pass, a gram fit holds at most this many matrices of ``(d + 1)^2`` float64
#: at once (the co-moment, the scaled and the penalized Gram matrices, the temporaries
#: that form them, the eigenvalue and Newton solves' copies)
GRAM_SOLVE_MATRICES = 6


#: a streaming CG fit that the ``solver="auto"`` rule chose for its width (dense data,
#: the squared loss, d x d statistics within :data:`GRAM_MAX_BYTES`) moves to the gram
#: path when its loss history predicts more than ``max(GRAM_SWITCH_MIN_PASSES, d //
#: GRAM_SWITCH_D_PER_PASS)`` passes (from its fifth iteration:
#: :meth:`fastgd.solvers.oracles.SwitchingOracle.predicted_passes`), or has taken them:
#: about what the gram path costs, in streaming passes (measured on the 2-core
#: reference machine, 5 10^4 rows: the gram fit 0.40 s at d = 700, 0.84 s at d = 1000;
#: a streaming pass 11 and 16 ms: 36 and 52 passes). Data of many rows and independent
#: columns converges in 12 to 18 passes and never moves; correlated columns move after 5
#: to 8 passes, whatever their condition number. Medians of 3, alternated, 5 10^4 rows:
#: d = 1000, AR(1) rho = 0.9: 0.93 s (moved after 8 passes), gram path 0.80 s, normal
#: equations 0.96 s, streaming alone 4.0 s (218 passes); rho = 0: 0.29 s (13 passes, no
#: move), gram 0.79, normal equations 0.67; d = 700, rho = 0.99: 0.68 s, gram 0.54,
#: normal equations 0.66 (streaming: 838 passes, 23 s); rho = 0.5: 0.55 s (moved),
#: gram 0.43, normal equations 0.37 (streaming about 40 passes, 0.45 s)
GRAM_SWITCH_MIN_PASSES = 20
GRAM_SWITCH_D_PER_PASS = 20


def gram_switch_after(plan):
    """The passes after which the streaming CG fit of ``plan`` moves to the gram path
    (see :data:`GRAM_SWITCH_MIN_PASSES`), or None where it does not: a solver given by
    the user, another optimizer or loss, sparse data, statistics over the memory budget."""
    facts = plan.facts
    if (plan.solver != "stream" or "solver" not in plan.reasons or plan.optimizer != "cg"
            or plan.loss != "squared" or plan.engine != "batch" or facts.sparse
            or gram_bytes(facts.n, facts.d) > GRAM_MAX_BYTES):
        return None
    return switch_passes(facts.d)


def switch_passes(d):
    """The streaming passes after which a fit of ``d`` features moves to the gram path
    (where :func:`gram_switch_after` lets it move)."""
    return max(GRAM_SWITCH_MIN_PASSES, d // GRAM_SWITCH_D_PER_PASS)


def gram_bytes(n, d):
    """The peak memory of the gram path's d x d statistics for ``n`` rows (None: unknown,
    the most blocks) of ``d`` features, in bytes: the pass holds a co-moment per block
    and one per block being computed (:func:`fastgd._chunking.gram_layout`), the solve
    :data:`GRAM_SOLVE_MATRICES` (measured with tracemalloc in tests/test_gram.py)."""
    blocks = gram_layout(GRAM_MAX_BLOCKS * GRAM_BLOCK_ROWS if n is None else n, d)[0]
    return max(2 * blocks + 2, GRAM_SOLVE_MATRICES) * 8 * (d + 1) ** 2
#: up to this many features the streaming solver also gathers the full co-moments (their
#: pass costs about as much as the per-column one while it is memory-bound), which lets
#: it finish with the Newton refinement (NIST Wampler1: 5.5 -> 10.5 digits). Above, it
#: gathers per-column moments only: O(n d) instead of O(n d^2).
STREAM_FULL_MOMENTS_MAX_D = 16


def _rule_full_moments(engine, solver, optimizer, facts):
    """Whether the batch fit gathers the full co-moments: the gram path; the streaming
    path up to :data:`STREAM_FULL_MOMENTS_MAX_D` features (the final refinement); and
    the optimizers whose step is ``1 / L`` (gd, momentum, nesterov: any loss other than
    the squared one, an L1 penalty) up to :data:`GRAM_MAX_D` features within the memory
    budget, for ``L``'s exact value instead of the trace bound, which can be d times too
    large: measured, a Huber fit of 6,000 x 40 rows (condition number 1.2) took a rate of
    0.012 instead of 0.43 and did not converge in 1000 epochs (Nesterov; 936 with gd);
    with the co-moments it converged in 18."""
    d = facts.d
    if solver == "gram" or d <= STREAM_FULL_MOMENTS_MAX_D:
        return True
    return (engine == "batch" and optimizer != "cg" and d <= GRAM_MAX_D
            and gram_bytes(facts.n, d) <= GRAM_MAX_BYTES)

MODES = ("batch", "minibatch", "sgd")
STOCHASTIC = ("minibatch", "sgd")

#: ``parallel="auto"`` runs per-row SGD with the automatic rate as parameter mixing from
#: this many rows. Measured on the 2-core reference machine after the parallel passes
#: moved to fastgd's own threads (10 epochs, best of 5; mixing / serial time): d = 1,
#: n = 2e4 1.48, 5e4 1.27, 1e5 1.06, 2e5 0.97, 5e5 0.88, 1e6 0.62; d = 5: 2e4 1.21, 5e4
#: 1.03, 1e5 1.09, 2e5 0.79, 5e5 0.68, 1e6 0.51 (below 2e5 rows a part's share of an
#: epoch is shorter than handing it to a thread). With OpenMP the tie had been at 2e4
#: rows. Mixing (averaged from the second epoch) was as accurate or more at every size
#: measured (10^6 x 5, 3 epochs: excess MSE 3.1e-7 against 8.0e-5 serial). The choice
#: depends on n only, never on the thread count, so a seed gives the same result on any
#: machine.
SGD_MIX_MIN_ROWS = 200_000

#: the engines a plan can run (``plan.engine``)
ENGINES = ("textbook", "batch", "sgd_raw", "sgd_scaled")


# ---------------------------------------------------------------------------------------
# Constraints: each checks one value and returns it normalized, or raises with a message
# that names the parameter, what was received and what is allowed.
# ---------------------------------------------------------------------------------------

class Choice:
    def __init__(self, *values, none=False):
        self.values, self.none = values, none

    def __call__(self, name, v):
        if v is None and self.none:
            return None
        if isinstance(v, str) and v in self.values:
            return v
        valid = ", ".join(repr(c) for c in self.values)
        raise ValueError(f"{name} must be one of {valid}; got {v!r}")


class Flag:
    def __call__(self, name, v):
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        raise TypeError(f"{name} must be True or False, got {v!r}")


class FlagOrAuto:
    def __call__(self, name, v):
        return V.check_flag_or_auto(v, name)


class Int:
    def __init__(self, low, none=False, auto=False):
        self.low, self.none, self.auto = low, none, auto

    def __call__(self, name, v):
        if v is None and self.none:
            return None
        if self.auto and isinstance(v, str):
            if v == "auto":
                return v
            raise TypeError(f"{name} must be 'auto' or an int >= {self.low}, got {v!r}")
        if self.low is None:  # the type only; the range is checked with the data's facts
            return V.check_int(v, name, -(1 << 63))
        return V.check_int(v, name, self.low)


class Real:
    """A finite real: ``> 0`` (``positive``), ``>= 0``, or in ``[0, 1]`` (``fraction``)."""

    def __init__(self, kind, none=False, auto=False, auto_msg=None):
        self.kind, self.none, self.auto, self.auto_msg = kind, none, auto, auto_msg

    def __call__(self, name, v):
        if v is None and self.none:
            return None
        if self.auto and isinstance(v, str):
            if v == "auto":
                return v
            if self.auto_msg:
                raise ValueError(self.auto_msg.format(name=name, v=v))
        if self.kind == "positive":
            return V.check_positive_float(v, name)
        if self.kind == "fraction":
            return V.check_fraction(v, name)
        if self.kind == "open_fraction":
            v = V.check_fraction(v, name)
            if not 0.0 < v < 1.0:
                raise ValueError(f"{name} must be strictly between 0 and 1, got {v!r}")
            return v
        return V.check_nonnegative_float(v, name)


class Registered:
    """A name from a registry (a mapping of names to the parts they name): the registry is
    the validation, so a part registered later is accepted everywhere at once. ``what``
    names the registry in the error; ``extra``: other accepted values (``"auto"``)."""

    def __init__(self, registry, what, extra=()):
        self.registry, self.what, self.extra = registry, what, tuple(extra)

    @property
    def values(self):
        """The accepted values now, in order."""
        return self.extra + tuple(self.registry)

    def __call__(self, name, v):
        if isinstance(v, str) and v in self.values:
            return v
        valid = ", ".join(repr(c) for c in self.values)
        raise ValueError(f"{name} must be one of {valid} (the {self.what}); got {v!r}")


class Average:
    def __call__(self, name, v):
        if isinstance(v, str):
            if v == "auto":
                return v
            raise ValueError(f"{name} must be True, False, 'auto' or an int >= 1, got {v!r}")
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        return V.check_int(v, name, 1)


#: numpy's bit generators, by the name their state carries: the ones a Generator given as
#: ``random_state`` may use (its state is then stored, and rebuilt, by name)
BIT_GENERATORS = MappingProxyType({
    name: getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
})


def _plain(v):
    """A bit generator's state as plain JSON values (numpy integers and arrays as ints
    and lists)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.integer):
        return int(v)
    return v


def generator_state(gen):
    """The state of the Generator ``gen`` as a plain, JSON-able dict (``bit_generator``:
    the name, ``state``: numpy's ``bit_generator.state``, arrays as lists), or a
    ``TypeError`` for a bit generator that is not numpy's (its state could not be
    rebuilt)."""
    bg = gen.bit_generator
    name = type(bg).__name__
    if BIT_GENERATORS.get(name) is not type(bg):
        valid = ", ".join(BIT_GENERATORS)
        raise TypeError(
            f"random_state is a Generator over the bit generator {name}, whose state fastgd "
            f"cannot store and rebuild (checkpoints, model files, FitPlan.to_dict); use one "
            f"of numpy's ({valid}), e.g. np.random.default_rng(seed), or an int seed"
        )
    return _plain(bg.state)


def generator(seed):
    """A fresh numpy Generator at the start of the stream ``seed`` names: None (fresh
    entropy), an int seed, or a state dict of :func:`generator_state`."""
    if isinstance(seed, dict):
        bg = BIT_GENERATORS[seed["bit_generator"]]()
        bg.state = seed
        return np.random.Generator(bg)
    return np.random.default_rng(seed)


class Seed:
    """None, an int >= 0, or a numpy Generator, normalized to the state it is at now (a
    plain dict, see :func:`generator_state`): the plan stores where the random stream
    starts, never the user's Generator, which fastgd never draws from. A state dict (what
    a plan's dict holds) is accepted back, checked by rebuilding it."""

    def __call__(self, name, v):
        if v is None:
            return None
        if isinstance(v, np.random.Generator):
            return generator_state(v)
        if isinstance(v, dict):
            return _seed_state(name, v)
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(
                f"{name} must be None, an int >= 0 or a numpy.random.Generator, got {v!r:.80} "
                f"({type(v).__name__})"
            )
        if v < 0:
            raise ValueError(f"{name} must be an int >= 0 (a seed), got {v}")
        return int(v)


def _seed_state(name, v):
    """The state dict ``v`` (a Generator's, as :meth:`FitPlan.to_dict` stores it) checked by
    rebuilding the bit generator from it: what numpy reads back must be ``v`` itself."""
    kind = v.get("bit_generator")
    if not isinstance(kind, str) or kind not in BIT_GENERATORS:
        valid = ", ".join(BIT_GENERATORS)
        raise ValueError(
            f"{name} as a dict must be the state of a numpy Generator's bit generator "
            f"({{'bit_generator': one of {valid}, 'state': ...}}, as FitPlan.to_dict() stores "
            f"a Generator), got bit_generator={kind!r:.60}"
        )
    try:
        back = generator_state(generator(v))
    except (TypeError, ValueError, KeyError, OverflowError, IndexError) as exc:
        raise ValueError(f"{name} is not a valid {kind} state ({exc})") from None
    if back != v:
        raise ValueError(f"{name} is not a valid {kind} state (numpy reads it back as another "
                         "state: a value is out of range or of the wrong type)")
    return back


@dataclass(frozen=True)
class Param:
    """One row of the table: name, default, constraint, the modes it applies to, doc."""

    name: str
    default: object
    check: object
    modes: tuple = MODES
    doc: str = ""


#: Every setting of a fit. ``modes``: where a non-default value is allowed. ``doc`` is the
#: setting's help, written for the API and the command line alike (``fastgd fit --help``
#: shows it, with the default where that is not None: a None default is described in
#: the text).
PARAMS = (
    Param("mode", "batch", Choice(*MODES),
          doc="how a step sees the rows: batch (all rows a step; the default fit runs to the "
              "optimum), minibatch (batch_size rows a step) or sgd (one row a step)"),
    Param("learning_rate", "auto",
          Real("positive", auto=True,
               auto_msg="{name} must be a positive number or 'auto', got {v!r}"),
          doc="the step size: a number > 0, used exactly as given (on the raw data unless "
              "scale is on), or auto: a step computed from the data that cannot diverge "
              "(batch mode: conjugate gradient in standardized coordinates)"),
    Param("epochs", None, Int(1, none=True),
          doc="passes over the data, an integer >= 1: the exact count when tol is none, else "
              "a cap (default: 100; for the automatic batch fit 10,000 with solver gram, "
              "1,000 with stream)"),
    Param("batch_size", None, Int(None, none=True),
          doc="rows a step of mode minibatch, 1 to the number of rows (default 256, at most "
              "the rows); mode sgd steps on one row, mode batch on all"),
    Param("tol", "auto", Real("nonnegative", none=True, auto=True),
          doc="stopping tolerance, a number >= 0 (the relative loss decrease of an epoch that "
              "counts as progress); none or 0: run exactly epochs. auto: 1e-12 for the "
              "automatic batch fit (it stops at the optimum), 1e-4 for the stochastic fits "
              "with learning_rate auto, the adaptive schedule or early_stopping, else none"),
    Param("fit_intercept", True, Flag(),
          doc="fit the intercept; off: it stays at its starting value (0: a fit through the "
              "origin)"),
    Param("reduction", "mean", Choice("mean", "sum"),
          doc="the loss: the mean of the squared errors, or their sum (the same optimum "
              "without a penalty; with one, the sum weighs the data n times more)"),
    Param("parallel", "auto", FlagOrAuto(),
          doc="run the passes over the data on fastgd's threads too (bit-identical "
              "results); in the stochastic modes, parameter mixing (parts of an epoch run "
              "side by side, then averaged: an algorithm of its own). auto: parallel passes "
              "from 2^21 values (rows x (columns + 1)) with more than one thread; mixing for "
              "per-row SGD with learning_rate auto on dense X from 200,000 rows"),
    Param("shuffle", True, Flag(),
          doc="stochastic modes: visit the rows in a fresh random order every epoch (CSR "
              "blocks of 512 KiB or more: tiles of neighbouring rows in random order, each "
              "tile's rows in random order)"),
    Param("random_state", None, Seed(),
          doc="the seed of the random row orders and held-out rows: an int >= 0 (the same "
              "seed, the same fit bit for bit), a numpy Generator (API: its state is copied) "
              "or none (the default): fresh entropy, recorded in the fit's plan"),
    Param("scale", "auto", FlagOrAuto(),
          doc="fit in standardized coordinates (results in the original units). auto: on "
              "with learning_rate auto, off with a numeric rate (the exact textbook update)"),
    Param("solver", "auto", Choice("auto", "stream", "gram"), ("batch",),
          doc="batch mode: gram iterates on sufficient statistics gathered in one pass "
              "(O(d^2) an iteration; robust on ill-conditioned data), stream makes one pass "
              "over the data an iteration. auto: gram up to "
              f"{GRAM_MAX_D} features within a {GRAM_MAX_BYTES >> 30} GiB budget for its d x d "
              "statistics, stream beyond"),
    Param("optimizer", "auto",
          Registered(OPTIMIZERS, "batch optimizers, fastgd.solvers.OPTIMIZERS", ("auto",)),
          ("batch",),
          doc="batch mode, a registered optimizer (fastgd.solvers.OPTIMIZERS): cg "
              "(conjugate gradient with exact line search), gd (plain gradient descent), "
              "momentum or nesterov. auto: cg with learning_rate auto "
              "(nesterov with an L1 penalty or the Huber loss), gd with a numeric rate"),
    Param("n_iter_no_change", "auto", Int(1, auto=True),
          doc="epochs in a row without an improvement above tol before the fit stops, an "
              "integer >= 1. auto: 1 for the batch and textbook fits, 3 for the scaled "
              "stochastic fits (an epoch that does not improve may be noise)"),
    Param("penalty", None, Choice("l2", "l1", "elasticnet", none=True),
          doc="regularization of the weights (never the intercept): l2 (ridge), l1 (lasso), "
              "elasticnet (both, mixed by l1_ratio) or none (the default)"),
    Param("alpha", 1e-4, Real("nonnegative"),
          doc="the penalty's strength, a number >= 0: the loss plus alpha * (l1_ratio * "
              "|w|_1 + (1 - l1_ratio) / 2 * |w|^2); used only with a penalty"),
    Param("l1_ratio", 0.15, Real("fraction"),
          doc="the L1 share of penalty elasticnet, from 0 (ridge) to 1 (lasso)"),
    Param("learning_rate_schedule", "constant", Choice("constant", "invscaling", "adaptive"),
          STOCHASTIC,
          doc="stochastic modes: the step over the fit, constant, invscaling (eta0 / "
              "t^power_t, t the step) or adaptive (divided by 5 whenever n_iter_no_change "
              "epochs fail to improve by tol)"),
    Param("power_t", 0.25, Real("nonnegative"),
          doc="the exponent of the invscaling schedule, a number >= 0"),
    Param("average", "auto", Average(), STOCHASTIC,
          doc="stochastic modes: report the running average of the iterates: true, false, "
              "or an integer k >= 1 (average after step k). auto: on for mode sgd with "
              "learning_rate auto"),
    Param("early_stopping", False, Flag(), STOCHASTIC,
          doc="stochastic modes: hold out validation_fraction of the rows and stop when "
              "their loss no longer improves by tol"),
    Param("validation_fraction", 0.1, Real("open_fraction"),
          doc="the share of rows early_stopping holds out, strictly between 0 and 1"),
    Param("loss", "squared", Registered(losses.LOSSES, "registered losses, fastgd.losses"),
          doc="a registered loss (fastgd.losses): squared, or huber: squared within "
              "epsilon of the fit, linear beyond (robust to outliers)"),
    Param("epsilon", 0.1, Real("positive"),
          doc="the Huber threshold, in the units of y, a number > 0"),
)
PARAM_TABLE = MappingProxyType({p.name: p for p in PARAMS})
DEFAULTS = MappingProxyType({p.name: p.default for p in PARAMS})


class Callback:
    def __call__(self, name, v):
        if v is None or callable(v):
            return v
        raise TypeError(f"{name} must be callable (or None), got {v!r:.60} ({type(v).__name__})")


#: The public entries' own parameters, which are not settings of the fit (they watch or
#: store it, or start it elsewhere): checked by the same constraints, once, where each
#: entry begins (:func:`check_entry`). The settings themselves are :data:`PARAMS`.
ENTRY_PARAMS = MappingProxyType({p.name: p for p in (
    Param("checkpoint_every", 1, Int(1),
          doc="epochs between two checkpoints, an integer >= 1"),
    Param("resume_checkpoint_every", None, Int(1, none=True),
          doc="epochs between two checkpoints, an integer >= 1 (default: as the checkpoint "
              "was written)"),
    Param("progress", "auto", FlagOrAuto(), doc="the progress bar"),
    Param("callback", None, Callback(), doc="called after every epoch"),
    Param("warm_start", False, Flag(), doc="GDRegressor: start fit from the previous fit"),
)})


def check_entry(**values):
    """Each value checked by its row of :data:`ENTRY_PARAMS` (or of :data:`PARAMS`, for a
    setting an entry takes alone, such as ``parallel`` of :func:`fastgd.mse`); returns
    them normalized, in order. The ``resume_`` rows check ``resume``'s variants under
    the parameter's own name."""
    out = []
    for key, v in values.items():
        p = ENTRY_PARAMS.get(key) or PARAM_TABLE[key]
        out.append(p.check(key.removeprefix("resume_"), v))
    return out[0] if len(out) == 1 else tuple(out)


def _frozen(mapping):
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, eq=False)
class FitPlan:
    """Every setting of one fit, validated, with every "auto" resolved (immutable).

    Build one with :meth:`build` (the keywords of :func:`fastgd.fit`, validated and
    resolved for the data's :class:`DataFacts`) or :meth:`from_dict`; every fit's
    ``result.plan`` is one. The constructor takes the resolved fields below as they are,
    unchecked (it is what :meth:`build` calls), and keeps each as the attribute of the
    same name. :meth:`to_dict` / :meth:`from_dict` round-trip a plan through a plain
    dict, as estimators, checkpoints and model files store it.

    Parameters
    ----------
    settings : mapping
        The keywords as given (validated and normalized; "auto" kept): the estimator's
        parameters, the CLI's options. Every key of :data:`PARAMS` is present.
    facts : DataFacts
        The data the plan was resolved for.
    engine : str
        ``"textbook"`` (the exact update on the raw data), ``"batch"`` (scaled batch
        optimizers), ``"sgd_raw"`` (plain SGD on the raw data at a numeric rate, or parameter
        mixing of it) or ``"sgd_scaled"`` (SGD in standardized coordinates, or in raw
        ones with ``scale=False``).
    mode : str
        ``"batch"``, ``"minibatch"`` or ``"sgd"``, as given.
    reduction : str
        ``"mean"`` or ``"sum"``, as given.
    fit_intercept : bool
        Whether the intercept is fitted, as given.
    loss : str
        The registered loss's name (:mod:`fastgd.losses`), as given.
    learning_rate : float or None
        The numeric rate given; None when it is computed from the data ("auto").
    epochs : int
        The number of epochs, or their cap when ``tol`` is set (>= 1; "auto" resolved
        per engine: see :func:`fastgd.fit`).
    tol : float or None
        The stopping tolerance (> 0), or None to run exactly ``epochs``.
    batch_size : int or None
        Rows per step (1 for SGD; None for batch mode, which uses all rows).
    parallel : bool or None
        Whether the passes over the data run the parallel kernels; None when the row
        count is not known yet (decided per block).
    mixing : bool
        Stochastic modes: parameter mixing over fixed parts of each epoch.
    scaled : bool
        Whether the fit runs in standardized coordinates (``scale`` resolved).
    solver : str
        Batch mode: ``"gram"`` (sufficient statistics) or ``"stream"`` (one pass per
        evaluation); ``"stream"`` for the stochastic modes and the textbook update.
    optimizer : str
        A batch optimizer's name (``"gd"``, ``"momentum"``, ``"nesterov"``, ``"cg"``,
        see ``fastgd.solvers.OPTIMIZERS``), or ``"sgd"`` for the stochastic modes.
    alpha : float
        The effective penalty strength (>= 0; 0 without a penalty).
    l1_ratio : float
        The effective L1 share in [0, 1] (1 for ``"l1"``, 0 for ``"l2"``).
    schedule : str
        The stochastic modes' step-size schedule (``learning_rate_schedule``):
        ``"constant"``, ``"invscaling"`` or ``"adaptive"``.
    power_t : float
        The exponent of ``"invscaling"`` (>= 0), as given.
    average : bool or int
        ``False`` (no averaging), or the step after which averaged SGD starts
        averaging the iterates (``0``: from the first step).
    average_after_epochs : int
        Epochs run before averaging starts (``0``; ``1`` when parameter mixing of
        per-row SGD averages from the second epoch).
    early_stopping : bool
        Stochastic modes: hold out ``validation_fraction`` of the rows and monitor them.
    validation_fraction : float
        The share of rows held out by ``early_stopping``, in (0, 1).
    epsilon : float
        The parameter of the loss (the Huber threshold, > 0); ignored by the squared loss.
    n_iter_no_change : int
        Epochs without improvement needed to stop (>= 1).
    shuffle : bool
        Stochastic modes: a fresh permutation of the rows every epoch (in tiles of
        neighbouring rows for CSR blocks of 512 KiB or more:
        :func:`fastgd.sources.passes.tile_rows`).
    random_state : int, dict or None
        Where the fit's random stream starts (see :meth:`rng`): the int seed given; for a
        numpy Generator, its state when the plan was built (a plain dict,
        ``{"bit_generator": "PCG64", "state": ..., ...}``: the plan copies it, and fastgd
        never draws from the user's Generator, so the same Generator gives the same fit,
        as an int does); for ``random_state=None`` in a fit that draws (a stochastic mode
        that shuffles or holds out rows), a seed of fresh entropy drawn when the plan is
        built, so that a checkpoint resumes the same stream (``settings`` keeps None);
        None for fits that draw nothing.
    full_moments : bool
        The scaled batch fit gathers the full co-moments (allows the final refinement).
    reasons : mapping
        For each resolved "auto", the rule that resolved it (default: empty).

    Examples
    --------
    >>> import fastgd
    >>> plan = fastgd.FitPlan.build(fastgd.DataFacts(n=1000, d=3, dtype="float64",
    ...                                              weighted=False), mode="sgd")
    >>> plan.engine, plan.batch_size, plan.average, plan.reasons["average"]
    ('sgd_scaled', 1, 0, 'on from the first step: per-row SGD with the automatic rate')
    >>> fastgd.FitPlan.from_dict(plan.to_dict()) == plan
    True
    """

    settings: object
    facts: DataFacts
    engine: str
    mode: str
    reduction: str
    fit_intercept: bool
    loss: str
    learning_rate: object
    epochs: int
    tol: object
    batch_size: object
    parallel: object
    mixing: bool
    scaled: bool
    solver: str
    optimizer: str
    alpha: float
    l1_ratio: float
    schedule: str
    power_t: float
    average: object
    average_after_epochs: int
    early_stopping: bool
    validation_fraction: float
    epsilon: float
    n_iter_no_change: int
    shuffle: bool
    random_state: object
    full_moments: bool
    reasons: object = field(default_factory=dict)

    # -- building ------------------------------------------------------------------------

    @classmethod
    def build(cls, facts, **keywords):
        """Validate ``keywords`` against :data:`PARAMS` and resolve them for ``facts``.

        Parameters
        ----------
        facts : DataFacts
            What the plan needs to know of the data (rows, features, dtype, weights):
            the rules that resolve "auto" read it (e.g. the gram path up to 500 features,
            parameter mixing of dense rows from 200,000 rows).
        **keywords
            The settings of :func:`fastgd.fit` (``mode``, ``learning_rate``, ...; not its
            data nor the entry's own keywords such as ``callback`` or ``checkpoint``);
            those not given take their defaults.

        Returns
        -------
        FitPlan
            The plan, with each "auto" resolved and its reason in ``reasons``.

        Raises
        ------
        TypeError
            An unknown keyword, or a value of the wrong type.
        ValueError
            A value out of range, or a combination that does not apply (e.g.
            ``batch_size`` in batch mode); each message names the parameter, the value
            and the fix.
        """
        unknown = sorted(set(keywords) - set(PARAM_TABLE))
        if unknown:
            valid = ", ".join(PARAM_TABLE)
            raise TypeError(
                f"unknown fit parameter(s) {', '.join(map(repr, unknown))}; valid: {valid}")
        s = {p.name: p.check(p.name, keywords.get(p.name, p.default)) for p in PARAMS}
        for p in PARAMS:
            if p.name in keywords and s["mode"] not in p.modes and s[p.name] != p.default:
                where = " and ".join(f"mode={m!r}" for m in p.modes)
                raise ValueError(
                    f"{p.name}={s[p.name]!r} applies to {where} only, not to mode={s['mode']!r}: "
                    f"leave {p.name}={p.default!r}"
                    + (" (batch mode stops by tol)" if p.modes == STOCHASTIC else "")
                )
        return cls._resolve(s, facts)

    @classmethod
    def _resolve(cls, s, facts):
        """Apply the rules between parameters and resolve every "auto" (see the
        ``_rule_*`` functions, one per concern, in the order they run)."""
        why = {}
        alpha, l1_ratio = _rule_penalty(s)
        bs = _rule_batch_size(s, facts.n, why)
        scaled, average, average_after, mixing = _rule_scaling(s, facts.n, facts.sparse, why)
        engine, solver, optimizer = _rule_engine(s, facts, scaled, average, alpha, l1_ratio, why)
        epochs, tol, patience = _rule_stopping(s, engine, solver, why)
        par = _rule_parallel(s, facts, why)
        if mixing and "mixing" not in why:
            why["mixing"] = "parallel=True in a stochastic mode: parameter mixing over fixed parts"
        return cls(
            settings=_frozen(s), facts=facts, engine=engine, mode=s["mode"],
            reduction=s["reduction"], fit_intercept=s["fit_intercept"], loss=s["loss"],
            learning_rate=None if s["learning_rate"] == "auto" else s["learning_rate"],
            epochs=epochs, tol=tol, batch_size=bs if s["mode"] != "batch" else None,
            parallel=par, mixing=mixing, scaled=bool(scaled), solver=solver, optimizer=optimizer,
            alpha=alpha, l1_ratio=l1_ratio, schedule=s["learning_rate_schedule"],
            power_t=s["power_t"], average=average, average_after_epochs=average_after,
            early_stopping=s["early_stopping"], validation_fraction=s["validation_fraction"],
            epsilon=s["epsilon"], n_iter_no_change=patience,
            shuffle=s["shuffle"], random_state=_rule_seed(s, why),
            full_moments=_rule_full_moments(engine, solver, optimizer, facts),
            reasons=_frozen(why),
        )

    # -- what the plan implies -----------------------------------------------------------

    def keywords(self):
        """The keywords of :func:`fastgd.fit` that repeat this fit bit for bit.

        The fit must run on the same data, from the same start and with the same
        weights: the plan records none of them.

        Returns
        -------
        dict
            The settings (a new dict, deep-copied), with the seed drawn for
            ``random_state=None`` in place of None.
        """
        kw = copy.deepcopy(dict(self.settings))
        if kw["random_state"] is None:
            kw["random_state"] = self.random_state
        return kw

    def rng(self):
        """A fresh numpy Generator at the start of this plan's random stream.

        Every call returns the same stream (the engines draw from it; the plan never
        changes).

        Returns
        -------
        numpy.random.Generator
            A new Generator seeded by ``random_state`` (or set to the stored Generator
            state); for a plan that draws nothing (``random_state`` None), one seeded
            by fresh entropy.
        """
        return generator(self.random_state)

    @property
    def single_pass(self):
        """True when the fit can run from one pass over the data (the squared-loss gram
        path: every iteration works on the sufficient statistics)."""
        return self.engine == "batch" and self.solver == "gram"

    @property
    def numpy_passes(self):
        """Whether the loss/gradient passes over small blocks may run in NumPy (see
        :mod:`fastgd.sources.small`): for fits that make few of them (the gram path: one
        refinement pass; the stochastic modes: one loss pass an epoch). The iterative
        streaming fits (textbook, streaming solver, Huber, L1) compile their kernels,
        which run those passes 2 to 10 times faster."""
        return self.engine in ("sgd_raw", "sgd_scaled") or (
            self.engine == "batch" and self.solver == "gram")

    def with_facts(self, facts):
        """The same settings resolved for other data, with the same random stream.

        Used once a stream's size is known, or when a plan is applied to other data.

        Parameters
        ----------
        facts : DataFacts
            The data to resolve the settings for.

        Returns
        -------
        FitPlan
            A new plan (this one is unchanged); validation errors as for :meth:`build`.
        """
        return _same_stream(FitPlan.build(facts, **dict(self.settings)), self.random_state)

    # -- serialization -------------------------------------------------------------------

    def to_dict(self):
        """The plan as a plain dict, which :meth:`from_dict` rebuilds the plan from.

        Returns
        -------
        dict
            ``format`` (1), ``settings`` (the keywords), ``facts`` (:meth:`DataFacts.to_dict`),
            ``resolved`` (the concrete values) and ``reasons``: plain values only (JSON
            can store them), copied (changing the dict does not change the plan).
        """
        resolved = {k: getattr(self, k) for k in (
            "engine", "mode", "reduction", "fit_intercept", "loss", "learning_rate", "epochs",
            "tol", "batch_size", "parallel", "mixing", "scaled", "solver", "optimizer", "alpha",
            "l1_ratio", "schedule", "power_t", "average", "average_after_epochs", "early_stopping",
            "validation_fraction", "epsilon", "n_iter_no_change", "shuffle", "full_moments",
            "random_state")}
        # (a Generator's state is a dict of plain values: copied, so that the dict given
        # out cannot change the plan)
        resolved["random_state"] = copy.deepcopy(self.random_state)
        settings = dict(self.settings)
        settings["random_state"] = copy.deepcopy(settings["random_state"])
        return {
            "format": 1,
            "settings": settings,
            "facts": self.facts.to_dict(),
            "resolved": resolved,
            "reasons": dict(self.reasons),
        }

    @classmethod
    def from_dict(cls, d):
        """Rebuild a plan from :meth:`to_dict`'s output, validated again.

        The settings are validated like the keywords of a fit and resolved again; of
        ``resolved``, only the seed drawn for ``random_state=None`` is read (the stream
        the fit ran), and ``reasons`` is not read.

        Parameters
        ----------
        d : dict
            A dict as :meth:`to_dict` returns it (e.g. read back from JSON): the dicts
            ``settings`` and ``facts`` are required, ``format`` (an int, at most 1),
            ``resolved`` and ``reasons`` optional.

        Returns
        -------
        FitPlan
            The plan, equal to the one that wrote ``d``.

        Raises
        ------
        ValueError, TypeError
            A dict that does not hold a valid plan, naming what is wrong; a ``format``
            newer than this fastgd reads.
        """
        if not isinstance(d, dict) or not isinstance(d.get("settings"), dict) or not isinstance(
                d.get("facts"), dict):
            raise ValueError("a fit plan dict needs the dicts 'settings' and 'facts' (from "
                             f"FitPlan.to_dict()), got {_short(d)}")
        fmt = d.get("format", 1)
        if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
            raise ValueError(f"a fit plan dict's 'format' must be an int >= 1, got {fmt!r:.40}")
        if fmt > 1:
            raise ValueError(
                f"fit plan format {fmt} is newer than this fastgd reads (1); upgrade fastgd")
        plan = cls.build(DataFacts.from_dict(d["facts"]), **d["settings"])
        resolved = d.get("resolved")
        if resolved is not None and not isinstance(resolved, dict):
            raise ValueError(f"a fit plan dict's 'resolved' must be a dict, got {_short(resolved)}")
        seeded = resolved and resolved.get("random_state") is not None
        if plan.settings["random_state"] is None and seeded:
            if plan.random_state is None:
                raise ValueError(
                    "a fit plan dict's resolved random_state is set, but its settings draw no "
                    "random numbers (a batch fit, or shuffle=False without early_stopping)")
            plan = _same_stream(plan, Seed()("resolved random_state", resolved["random_state"]))
        return plan

    def __eq__(self, other):
        if not isinstance(other, FitPlan):
            return NotImplemented
        a, b = self.to_dict(), other.to_dict()
        return _same(a, b)

    __hash__ = None

    def __reduce__(self):
        # the mappings are read-only proxies, which do not pickle: rebuild from plain
        # dicts, field for field (not re-resolved: the plan stays the one that ran)
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__}
        fields["settings"] = dict(self.settings)
        fields["reasons"] = dict(self.reasons)
        return (_rebuild_plan, (fields,))

    def __repr__(self):
        changed = {k: v for k, v in self.settings.items() if _differs(v, DEFAULTS[k])}
        args = ", ".join(f"{k}={_seed_repr(v) if k == 'random_state' else repr(v)}"
                         for k, v in changed.items())
        return (f"FitPlan({args}{', ' if args else ''}engine={self.engine!r}, "
                f"solver={self.solver!r}, optimizer={self.optimizer!r}, epochs={self.epochs}, "
                f"tol={self.tol!r}, n={self.facts.n}, d={self.facts.d})")


# ---------------------------------------------------------------------------------------
# The rules between parameters, one function per concern. Each reads the validated
# settings ``s`` and records in ``why`` the reason for every "auto" it resolves.
# ---------------------------------------------------------------------------------------

def _rule_penalty(s):
    """The effective ``(alpha, l1_ratio)``: no penalty means ``alpha = 0``; "l1" and
    "l2" fix the ratio."""
    alpha, l1_ratio = s["alpha"], s["l1_ratio"]
    if s["penalty"] is None:
        return 0.0, l1_ratio
    if s["penalty"] != "elasticnet":
        l1_ratio = 1.0 if s["penalty"] == "l1" else 0.0
    return alpha, l1_ratio


def _rule_batch_size(s, n, why):
    mode, bs = s["mode"], s["batch_size"]
    if mode == "batch":
        if bs is not None:
            raise ValueError(
                f"batch_size={bs!r} applies to mode='minibatch'; mode='batch' always uses "
                "all rows (leave batch_size=None)"
            )
        return None
    if mode == "sgd":
        if bs not in (None, 1):
            raise ValueError(
                f"mode='sgd' steps on one row at a time, got batch_size={bs!r}; use "
                "mode='minibatch' for larger batches"
            )
        return 1
    if bs is None:
        why["batch_size"] = f"{DEFAULT_BATCH_SIZE} rows a step (at most n)"
        return DEFAULT_BATCH_SIZE if n is None else min(DEFAULT_BATCH_SIZE, n)
    return V.check_int(bs, "batch_size", 1, n)


def _rule_scaling(s, n, sparse, why):
    """``(scaled, average, average_after_epochs, mixing)``."""
    mode, parallel = s["mode"], s["parallel"]
    lr_auto = s["learning_rate"] == "auto"
    scaled = s["scale"]
    if scaled == "auto":
        scaled = lr_auto
        why["scale"] = ("on: learning_rate='auto' fits in standardized coordinates" if lr_auto
                        else "off: a numeric learning_rate runs the exact update on the raw data")
    average = s["average"]
    if average == "auto":
        # on for per-row SGD only: a mini-batch epoch has n / batch_size steps, and an
        # average over few steps keeps the early iterates' error (5,000 rows, batch
        # 256, 5 epochs: coefficients 20% short averaged, 1% short without)
        average = 0 if (lr_auto and mode == "sgd") else False
        why["average"] = ("on from the first step: per-row SGD with the automatic rate"
                          if average is not False else "off")
    elif average is True:
        average = 0
    mixing = mode in STOCHASTIC and parallel is True
    auto_mix = (parallel == "auto" and mode == "sgd" and lr_auto and n is not None
                and n >= SGD_MIX_MIN_ROWS)
    if auto_mix and sparse:
        # each part starts from, and writes out, the whole O(d) state of the lazy CSR
        # epoch: on 10^6 x 2^18 hashed rows mixing took 0.72-0.77 s an epoch against 0.68
        # serially, and ended at 9 times the loss (4.17 against 0.46; measured)
        why["mixing"] = ("serial: parameter mixing on sparse X sets up each part's state "
                         "over all d columns (slower and less accurate: measured)")
    elif auto_mix:
        mixing = True
        why["mixing"] = (f"parameter mixing: per-row SGD with the automatic rate on n >= "
                         f"{SGD_MIX_MIN_ROWS} rows (faster, and as accurate: measured)")
    average_after = 0
    if mixing and s["average"] == "auto" and average is not False:
        # parameter mixing: each part's average would keep the first epoch's transient
        # over 1/parts of the steps (10^6 rows x 5, 3 epochs: excess 5.8e-5 averaged
        # from the first step, against 1.3e-6 serial); averaging from the second epoch
        # forgets it
        average_after = 1
        why["average"] = "on from the second epoch: parameter mixing of per-row SGD"
    return scaled, average, average_after, mixing


def _rule_engine(s, facts, scaled, average, alpha, l1_ratio, why):
    """``(engine, solver, optimizer)``, with the combinations that cannot run refused."""
    mode = s["mode"]
    d = facts.d
    lr_auto = s["learning_rate"] == "auto"
    loss = losses.get(s["loss"])
    # the loss's capabilities decide: only the squared loss has sufficient statistics
    # (the gram path, CG's exact line search on a quadratic, QR, the refinement)
    other = not loss.sufficient_statistics
    has_l1 = alpha > 0.0 and l1_ratio > 0.0
    solver, optimizer = s["solver"], s["optimizer"]
    if mode != "batch":
        # the automatic rate runs the scaled engine (in raw coordinates with scale=False):
        # its stopping rule (no improvement in n_iter_no_change epochs) holds for the
        # noisy losses of constant steps, where the textbook rule (the change over one
        # epoch) was never met and such a fit ran all its epochs
        extended = (s["learning_rate_schedule"] != "constant" or average is not False
                    or s["early_stopping"] or alpha > 0.0 or other or scaled or lr_auto)
        engine = "sgd_scaled" if extended else "sgd_raw"
        why["engine"] = (f"SGD with scaling, schedules, averaging, penalties, the automatic "
                         f"rate or loss={loss.name!r}"
                         if extended else "plain SGD on the raw data (a numeric rate)")
        return engine, "stream", "sgd"
    if other:
        if solver == "gram":
            raise ValueError(
                f"solver='gram' needs the squared loss (its sufficient statistics); "
                f"loss={loss.name!r} runs solver='stream' (leave solver='auto')"
            )
        if optimizer != "auto" and OPTIMIZERS[optimizer].quadratic_only:
            raise ValueError(
                f"optimizer={optimizer!r} assumes a quadratic (CG: an exact line search) and "
                f"needs the squared loss; loss={loss.name!r} runs 'nesterov' (the default), "
                "'momentum' or 'gd'"
            )
        solver = "stream"
        why["solver"] = f"stream: loss={loss.name!r} has no sufficient statistics"
    if optimizer == "auto":
        optimizer = ("nesterov" if (has_l1 or other) else "cg") if lr_auto else "gd"
        why["optimizer"] = (
            "gd: a numeric learning_rate runs plain gradient descent" if not lr_auto
            else "nesterov: proximal/non-quadratic objective" if optimizer == "nesterov"
            else "cg: fewest passes on the quadratic loss (measured)")
    if has_l1 and not OPTIMIZERS[optimizer].handles_l1:
        fits = " or ".join(repr(k) for k, v in OPTIMIZERS.items() if v.handles_l1)
        raise ValueError(
            f"penalty={s['penalty']!r} has an L1 part, fitted by proximal gradient steps: "
            f"optimizer must be {fits} (or 'auto'), got {optimizer!r}"
        )
    if not lr_auto and not OPTIMIZERS[optimizer].takes_learning_rate:
        takes = ", ".join(repr(k) for k, v in OPTIMIZERS.items() if v.takes_learning_rate)
        raise ValueError(
            f"optimizer={optimizer!r} chooses its own step lengths (CG: an exact line "
            f"search), but "
            f"learning_rate={s['learning_rate']!r} was given; leave learning_rate='auto' "
            f"or pick one of {takes}"
        )
    if (not scaled and optimizer == "gd" and not lr_auto and solver != "gram"
            and alpha == 0.0 and not other):
        why["engine"] = "the exact update on the raw data (numeric rate, no scaling)"
        return "textbook", "stream", optimizer
    why["engine"] = "batch optimizer in scaled coordinates" if scaled else "batch optimizer"
    need = gram_bytes(facts.n, d)
    over = need > GRAM_MAX_BYTES
    budget = (f"its d x d statistics would take {_mib(need)} at peak, over the budget "
              f"fastgd._plan.GRAM_MAX_BYTES = {_mib(GRAM_MAX_BYTES)}")
    if solver == "gram" and over:
        raise ValueError(
            f"solver='gram' at d = {d} features: {budget}; use solver='stream' (or 'auto'), "
            "which needs O(d) memory"
        )
    if solver == "auto":
        solver = "gram" if (d <= GRAM_MAX_D and not over) else "stream"
        why["solver"] = (
            f"gram: d = {d} <= {GRAM_MAX_D} features (one pass, then iterations on the "
            f"d x d statistics, {_mib(need)} at peak)" if solver == "gram"
            else f"stream: {budget}" if over
            else f"stream: d = {d} > {GRAM_MAX_D} features (the gram pass would cost more "
                 "than a streaming fit on all but ill-conditioned data; a squared-loss CG fit "
                 f"of dense rows not converged after "
                 f"{switch_passes(d)} passes moves "
                 "to the gram path)")
    return "batch", solver, optimizer


def _mib(nbytes):
    return f"{nbytes / 2**20:.3g} MiB" if nbytes < 2**30 else f"{nbytes / 2**30:.3g} GiB"


def _rule_stopping(s, engine, solver, why):
    """``(epochs, tol, n_iter_no_change)``: the defaults of each engine. ``tol=0`` is
    ``tol=None``: no stopping rule, exactly ``epochs``."""
    epochs, tol, patience = s["epochs"], s["tol"], s["n_iter_no_change"]
    lr_auto = s["learning_rate"] == "auto"
    watches = s["learning_rate_schedule"] == "adaptive" or s["early_stopping"]
    if tol == 0.0:
        tol = None
        why["tol"] = "None (tol=0): no stopping rule, exactly epochs"
    if patience == "auto":
        patience = 1 if engine in ("batch", "textbook") else SGD_PATIENCE
        why["n_iter_no_change"] = (
            f"{patience}: " + ("one epoch (the batch rules measure exact decreases)"
                               if patience == 1 else
                               "stochastic epochs: one that does not improve may be noise"))
    if engine == "batch":
        if epochs is None:
            epochs = DEFAULT_EPOCHS_GRAM if solver == "gram" else DEFAULT_EPOCHS_STREAM
            if not lr_auto:
                epochs = DEFAULT_EPOCHS
            why["epochs"] = f"{epochs}: the default cap of this path"
        if tol == "auto":
            tol = DEFAULT_TOL if lr_auto else None
            why["tol"] = f"{tol}: the automatic fit stops at the optimum" if lr_auto else "None"
        return epochs, tol, patience
    if epochs is None:
        epochs = DEFAULT_EPOCHS
        why["epochs"] = f"{DEFAULT_EPOCHS}"
    if engine == "sgd_scaled":
        if tol == "auto":
            tol = SGD_TOL
            why["tol"] = (f"{tol}: stop once the monitored loss improves by less than "
                          f"{tol} (relative) in n_iter_no_change epochs")
        elif tol is None and watches:
            raise ValueError(
                "learning_rate_schedule='adaptive' and early_stopping need tol (the "
                f"improvement that counts); leave tol='auto' ({SGD_TOL}) or give a number > 0"
            )
    elif tol == "auto":
        tol = None
        why["tol"] = ("None: a numeric rate on the raw data (the textbook update, batch or "
                      "stochastic) runs exactly epochs; give tol to stop earlier")
    return epochs, tol, patience


def _rule_parallel(s, facts, why):
    """Whether the passes over the data run the parallel kernels (None: per block)."""
    parallel = s["parallel"]
    if facts.n is None:
        par = None if parallel == "auto" else parallel
    else:
        par = V.use_parallel(parallel, facts.n, facts.d)
    if parallel == "auto":
        why["parallel"] = (f"{par}: passes on several threads from {V.PARALLEL_MIN_VALUES} "
                           "values (rows x (columns + 1)) with more than one thread"
                           if par is not None else "decided per block")
    return par


def _rule_seed(s, why):
    """Where the random stream starts: the seed or Generator state given; for None, in a
    fit that draws random numbers, a seed of fresh entropy (what ``default_rng(None)``
    draws), recorded so that a checkpoint resumes the same stream."""
    seed = s["random_state"]
    draws = s["mode"] in STOCHASTIC and (s["shuffle"] or s["early_stopping"])
    if seed is not None or not draws:
        return seed
    seed = int(np.random.SeedSequence().entropy)
    why["random_state"] = _seed_reason(seed)
    return seed


def _seed_reason(seed):
    return (f"None: fresh entropy drawn for this plan (seed {seed}); pass it as random_state "
            "to draw the same stream again")


def _same_stream(plan, seed):
    """``plan`` drawing from the stream ``seed`` (a seed drawn for ``random_state=None``:
    kept when a plan is rebuilt from its settings)."""
    if plan.settings["random_state"] is not None or plan.random_state is None:
        return plan
    reasons = _frozen({**plan.reasons, "random_state": _seed_reason(seed)})
    return dataclasses.replace(plan, random_state=seed, reasons=reasons)


def _seed_repr(v):
    return f"<{v['bit_generator']} state>" if isinstance(v, dict) else repr(v)


def _short(v):
    text = repr(v)
    return f"{type(v).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _rebuild_plan(fields):
    fields = dict(fields)
    fields["settings"] = _frozen(fields["settings"])
    fields["reasons"] = _frozen(fields["reasons"])
    return FitPlan(**fields)


def _differs(a, b):
    return not (a == b and type(a) is type(b))


def _same(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return not _differs(a, b)
