"""The one entry pipeline: every public fit ends here.

:func:`fastgd.fit`, :func:`fastgd.fit_chunks`, :func:`fastgd.fit_file`,
:func:`fastgd.resume` and ``GDRegressor.fit`` each read: open a source
(:func:`fastgd.sources.open_source`, or :func:`~fastgd.sources.reopen` for a checkpoint),
build the plan from the source's facts, then :func:`start` (a new fit) or :func:`resume`
(a checkpoint's), which check the starting point, make the checkpoint writer, run the
plan's engine and give the result the source's column names and row count. No entry
point repeats that sequence, and none tests what kind of data it was given: the source
knows.
"""
import dataclasses
import time

import numpy as np

from . import _validation as V
from ._checkpoint import Checkpointer, check_same_data
from ._engine import run
from ._result import DivergenceError, FitInterrupted


def start(source, plan, *, init_coef=None, init_intercept=0.0, callback=None,
          progress="auto", checkpoint=None, checkpoint_every=1, overwrite=False, t0=None):
    """Fit ``source`` by ``plan`` from ``init_coef``/``init_intercept`` (zeros by
    default), writing the state to ``checkpoint`` every ``checkpoint_every`` epochs."""
    t0 = time.perf_counter() if t0 is None else t0
    coef = V.check_init(init_coef, init_intercept, source.d)
    ckpt = None
    if checkpoint is not None:
        if not source.reiterable:
            raise TypeError("a checkpointed fit must read its blocks again when resumed: pass "
                            "a list of blocks or a callable, not a one-shot iterator")
        inputs = [("the file fitted", source.reader.path)] if source.kind == "file" else []
        # the fingerprint of blocks costs a pass: computed once the path is checked
        ckpt = Checkpointer(checkpoint, checkpoint_every, plan, source.fingerprint,
                            overwrite=overwrite, inputs=inputs)
    return _finish(source, plan, coef, callback, progress, ckpt, None, t0)


def resume(source, doc, path, *, callback=None, progress="auto", checkpoint_every=None,
           t0=None):
    """Continue the fit of the checkpoint ``doc`` (read from ``path``) over ``source``
    (opened again with :func:`fastgd.sources.reopen`): the same data, or a clear error,
    then the same engine from the checkpoint's state."""
    from ._plan import FitPlan

    t0 = time.perf_counter() if t0 is None else t0
    plan = FitPlan.from_dict(doc["plan"])
    fp = source.fingerprint()
    check_same_data(doc, fp, path)
    ckpt = Checkpointer.resumed(doc, path, plan, fp, checkpoint_every)
    return _finish(source, plan, np.zeros(source.d + 1), callback, progress, ckpt,
                   doc["state"], t0)


def _finish(source, plan, coef, callback, progress, ckpt, state, t0):
    try:
        res = run(plan, source, coef, callback=callback, t0=t0, progress=progress,
                  checkpoint=ckpt, resume=state)
    except (DivergenceError, FitInterrupted) as exc:
        if exc.result is not None:  # the result it holds is the user's too
            # (its rows when known: counting a file's would read it again)
            exc.result = _described(exc.result, source, source.rows_known)
        raise
    return _described(res, source, source.n)


def _described(res, source, rows):
    """``res`` with the source's column names and row count ``rows``."""
    extra = {"n_rows": rows}
    if source.names is not None:
        extra["feature_names"] = tuple(source.names)
    return dataclasses.replace(res, **extra)
