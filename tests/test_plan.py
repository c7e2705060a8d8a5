"""The fit plan: one validated, frozen object of every setting, round-trippable.

Oracles: the keyword table against fit's own signature, a refit from the plan's settings
(bit for bit), the documented resolution rules.
"""
import inspect
import json

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastgd
from fastgd._plan import GRAM_MAX_D, PARAM_TABLE, DataFacts, FitPlan

FACTS = DataFacts(n=1000, d=3, dtype="float64", weighted=False)


def test_the_table_holds_every_setting_of_fit():
    # the data, the start, and what watches the fit (not settings: they change no result)
    data_args = {"X", "y", "sample_weight", "init_coef", "init_intercept", "callback", "progress",
                 "checkpoint", "checkpoint_every", "overwrite"}
    sig = inspect.signature(fastgd.fit)
    assert set(sig.parameters) - data_args == set(PARAM_TABLE)
    for name, p in PARAM_TABLE.items():
        assert sig.parameters[name].default == p.default or (
            p.default is None and sig.parameters[name].default is None), name


@pytest.mark.parametrize("kw,engine,solver,optimizer", [
    (dict(), "batch", "gram", "cg"),
    (dict(learning_rate=0.01), "textbook", "stream", "gd"),
    (dict(penalty="l1"), "batch", "gram", "nesterov"),
    (dict(loss="huber"), "batch", "stream", "nesterov"),
    (dict(mode="sgd"), "sgd_scaled", "stream", "sgd"),
    (dict(mode="sgd", learning_rate=0.01), "sgd_raw", "stream", "sgd"),
    (dict(mode="minibatch", penalty="l2"), "sgd_scaled", "stream", "sgd"),
])
def test_resolution(kw, engine, solver, optimizer):
    plan = FitPlan.build(FACTS, **kw)
    assert (plan.engine, plan.solver, plan.optimizer) == (engine, solver, optimizer)
    assert "engine" in plan.reasons


def test_every_auto_has_its_reason():
    plan = FitPlan.build(FACTS)
    for key in ("scale", "optimizer", "solver", "epochs", "tol", "parallel"):
        assert plan.reasons[key], key
    assert plan.reasons["solver"].startswith(f"gram: d = 3 <= {GRAM_MAX_D} features")
    d = GRAM_MAX_D + 1
    wide = FitPlan.build(DataFacts(n=1000, d=d, dtype="float64", weighted=False))
    assert wide.solver == "stream"
    assert wide.reasons["solver"].startswith(f"stream: d = {d} > {GRAM_MAX_D} features")
    edge = FitPlan.build(DataFacts(n=1000, d=GRAM_MAX_D, dtype="float64", weighted=False))
    assert edge.solver == "gram"


def test_gram_memory_budget_switches_to_streaming(monkeypatch):
    """Past the budget of the d x d statistics the automatic fit streams (the reason says
    so, with the figures), and an explicit solver='gram' is refused naming the way out.
    Oracle: the budget's own formula, 8 (d + 1)^2 bytes a matrix."""
    from fastgd import _plan

    facts = DataFacts(n=1000, d=200, dtype="float64", weighted=False)
    need = _plan.gram_bytes(1000, 200)
    assert need == _plan.GRAM_SOLVE_MATRICES * 8 * 201 ** 2  # one block: the solve's peak
    assert FitPlan.build(facts).solver == "gram"
    monkeypatch.setattr(_plan, "GRAM_MAX_BYTES", need // 2)
    plan = FitPlan.build(facts)
    assert plan.solver == "stream"
    assert plan.reasons["solver"] == (
        "stream: its d x d statistics would take 1.85 MiB at peak, over the budget "
        "fastgd._plan.GRAM_MAX_BYTES = 0.925 MiB")
    with pytest.raises(ValueError, match=r"solver='gram' at d = 200 features: its d x d "
                                         r"statistics would take .* use solver='stream'"):
        FitPlan.build(facts, solver="gram")
    # the plan round-trips, and the fit runs streaming
    assert FitPlan.from_dict(plan.to_dict()) == plan
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 200))
    res = fastgd.fit(X, X @ np.ones(200))
    assert res.solver == "stream" and res.converged
    monkeypatch.setattr(_plan, "GRAM_MAX_BYTES", need)
    assert FitPlan.build(facts).solver == "gram"


def test_gram_budget_counts_the_blocks_of_the_pass():
    """More rows, more blocks of the pass, each holding a co-moment until the merge
    (fastgd._chunking.gram_layout); unknown rows count the most blocks. Oracle: the
    layout's block count."""
    from fastgd._chunking import (
        GRAM_BLOCK_ROWS,
        GRAM_BLOCK_VALUES,
        GRAM_MAX_BLOCKS,
        GRAM_MAX_SLICE_ROWS,
        GRAM_MIN_BLOCKS,
    )
    from fastgd._plan import GRAM_SOLVE_MATRICES, gram_bytes

    m = 8 * 11 ** 2  # d = 10: slices of GRAM_MAX_SLICE_ROWS rows, blocks of GRAM_BLOCK_ROWS
    assert gram_bytes(GRAM_MAX_SLICE_ROWS, 10) == 6 * m  # one block
    # a few slices: GRAM_MIN_BLOCKS blocks (for the threads), then more rows, more blocks
    assert gram_bytes(GRAM_MIN_BLOCKS * GRAM_MAX_SLICE_ROWS, 10) == (2 * GRAM_MIN_BLOCKS + 2) * m
    assert gram_bytes(6 * GRAM_BLOCK_ROWS, 10) == 14 * m
    m = 8 * 1001 ** 2  # d = 1000: blocks of about GRAM_BLOCK_VALUES values
    rows = GRAM_BLOCK_VALUES // 1001
    assert gram_bytes(rows, 1000) == max(2 * GRAM_MIN_BLOCKS + 2, GRAM_SOLVE_MATRICES) * m
    assert gram_bytes(6 * rows, 1000) == max(14, GRAM_SOLVE_MATRICES) * m
    assert gram_bytes(10**9, 100) == gram_bytes(None, 100) == (
        2 * GRAM_MAX_BLOCKS + 2) * 8 * 101 ** 2


def test_sgd_auto_mixing_depends_on_rows_not_threads():
    from fastgd._plan import SGD_MIX_MIN_ROWS

    m = SGD_MIX_MIN_ROWS
    small = FitPlan.build(DataFacts(n=m - 1, d=2, dtype="float64", weighted=False), mode="sgd", tol=None)
    big = FitPlan.build(DataFacts(n=m, d=2, dtype="float64", weighted=False), mode="sgd", tol=None)
    assert not small.mixing and big.mixing and big.average_after_epochs == 1
    assert str(m) in big.reasons["mixing"]
    raw = FitPlan.build(DataFacts(n=10**6, d=2, dtype="float64", weighted=False), mode="sgd", tol=None,
                        learning_rate=0.01)
    mb = FitPlan.build(DataFacts(n=10**6, d=2, dtype="float64", weighted=False), mode="minibatch", tol=None)
    assert not raw.mixing and not mb.mixing


def test_round_trip_through_a_plain_dict():
    plan = FitPlan.build(FACTS, mode="minibatch", batch_size=32, penalty="elasticnet",
                         alpha=0.01, random_state=3, learning_rate_schedule="invscaling")
    d = plan.to_dict()
    text = json.dumps(d)  # plain: JSON-able as it is
    again = FitPlan.from_dict(json.loads(text))
    assert again == plan and again.to_dict() == d
    assert d["settings"]["batch_size"] == 32 and d["resolved"]["batch_size"] == 32


def test_result_reports_its_plan_and_the_plan_refits_bit_for_bit(rng):
    X = rng.normal(size=(500, 2))
    y = X @ [1.0, -1.0] + rng.normal(0, 0.1, 500)
    res = fastgd.fit(X, y, mode="sgd", tol=None, epochs=3, random_state=4)
    assert isinstance(res.plan, fastgd.FitPlan) and res.plan.mode == "sgd"
    assert res.plan.facts == DataFacts(n=500, d=2, dtype="float64", weighted=False)
    again = fastgd.fit(X, y, **dict(res.plan.settings))
    assert_array_equal(again.coef, res.coef)
    assert again.intercept == res.intercept
    with pytest.raises(AttributeError):
        res.plan.epochs = 5  # frozen


@pytest.mark.parametrize("kw,exc,match", [
    (dict(nonsense=1), TypeError, r"(unknown fit parameter\(s\)|unexpected keyword argument) 'nonsense'"),
    (dict(random_state=-1), ValueError, r"random_state must be an int >= 0"),
    (dict(random_state="seed"), TypeError, r"random_state must be None, an int >= 0 or a numpy"),
    (dict(shuffle="no"), TypeError, r"shuffle must be True or False, got 'no'"),
    (dict(solver="gram", mode="sgd"), ValueError, r"solver='gram' applies to mode='batch' only"),
    (dict(average=True), ValueError, r"average=True applies to mode='minibatch' and mode='sgd' only"),
])
def test_bad_settings(kw, exc, match):
    with pytest.raises(exc, match=match):
        FitPlan.build(FACTS, **kw)
    with pytest.raises(exc, match=match):
        fastgd.fit(np.zeros((10, 3)), np.arange(10.0), **kw)


def test_from_dict_refuses_a_newer_format():
    d = FitPlan.build(FACTS).to_dict()
    d["format"] = 99
    with pytest.raises(ValueError, match="newer than this fastgd reads"):
        FitPlan.from_dict(d)


def test_plan_result_and_errors_pickle_and_copy(rng):
    """Results cross process boundaries (process pools, Dask): everything pickles."""
    import copy
    import pickle

    X = rng.normal(size=(200, 2))
    y = X @ [1.0, 2.0] + 0.5
    res = fastgd.fit(X, y)
    for clone in (pickle.loads(pickle.dumps(res)), copy.deepcopy(res), copy.copy(res)):
        assert clone.plan == res.plan and clone.plan.reasons == res.plan.reasons
        assert_array_equal(clone.coef, res.coef)
    try:
        fastgd.fit(X, y * 1e3, learning_rate=10.0, epochs=50)
    except fastgd.DivergenceError as err:
        again = pickle.loads(pickle.dumps(err))
        assert str(again) == str(err) and again.epoch == err.epoch
        assert again.learning_rate == err.learning_rate
        assert_array_equal(again.result.coef, err.result.coef)
        assert copy.copy(err).epoch == err.epoch
    else:
        raise AssertionError("learning_rate=10 did not diverge")
