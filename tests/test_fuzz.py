"""The contract of ``fastgd.fit`` under generated input (issue 9, "keep it true").

For every input (to ``fastgd.fit``, and to ``fastgd.fit_chunks`` over uneven blocks of the
same rows): either a result whose coefficients, intercept and loss history are finite
and whose ``final_loss`` is the loss of its coefficients (``fastgd.mse``, for the squared
loss without a penalty), or a ``ValueError``, ``TypeError`` or ``DivergenceError`` (whose
``.result`` is finite); never a hang, a NumbaError or a leaked RuntimeWarning.

The inputs: 1 row and up; columns of magnitudes from 1e-300 to 1e300 and subnormal ones;
constant, duplicate and zero columns; targets of any magnitude; extreme weights (tiny,
huge, zeros); every mode with its options.

Profiles: ``FASTGD_FUZZ=ci`` (the default: a bounded example count, in CI) and
``FASTGD_FUZZ=long`` (on demand: ``FASTGD_FUZZ=long pytest tests/test_fuzz.py``). A
watchdog (``faulthandler``) ends the process with every thread's traceback if one
example runs past ``HANG_S`` seconds: a hang fails loudly instead of stalling CI.
"""
import faulthandler
import os
import warnings

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fastgd

PROFILE = os.environ.get("FASTGD_FUZZ", "ci")
EXAMPLES = {"ci": 150, "long": 5000}[PROFILE]
HANG_S = 120

settings.register_profile("fastgd-fuzz", max_examples=EXAMPLES, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large],
                          derandomize=PROFILE == "ci", print_blob=True)
FUZZ = settings.get_profile("fastgd-fuzz")

#: column kinds and their generators (rng, n, magnitude) -> column
KINDS = ("normal", "constant", "zero", "duplicate", "subnormal", "positive")


@st.composite
def problems(draw):
    n = draw(st.one_of(st.integers(1, 8), st.integers(9, 300), st.just(2500)))
    d = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cols = []
    for _ in range(d):
        kind = draw(st.sampled_from(KINDS))
        mag = 10.0 ** draw(st.integers(-300, 300))
        if kind == "normal":
            c = rng.normal(size=n) * mag
        elif kind == "positive":
            c = (1.0 + rng.uniform(size=n)) * mag
        elif kind == "constant":
            c = np.full(n, mag)
        elif kind == "zero":
            c = np.zeros(n)
        elif kind == "duplicate" and cols:
            c = cols[draw(st.integers(0, len(cols) - 1))].copy()
        else:  # subnormal (or a duplicate with nothing to copy)
            c = rng.integers(-1000, 1000, size=n) * 5e-324
        cols.append(c)
    X = np.column_stack(cols)
    target = draw(st.sampled_from(("linear", "constant", "noise")))
    ymag = 10.0 ** draw(st.integers(-300, 300))
    if target == "linear":
        unit = np.array([np.max(np.abs(c)) or 1.0 for c in cols])
        y = (X / unit) @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    elif target == "constant":
        y = np.ones(n)
    else:
        y = rng.normal(size=n)
    y = y * ymag
    weights = draw(st.sampled_from((None, "uniform", "zeros", "tiny", "huge")))
    if weights is None:
        sw = None
    elif weights == "uniform":
        sw = rng.uniform(0.5, 2.0, size=n)
    elif weights == "zeros":
        sw = rng.integers(0, 2, size=n).astype(float)
    elif weights == "tiny":
        sw = rng.uniform(0.5, 2.0, size=n) * 1e-140
    else:
        sw = rng.uniform(0.5, 2.0, size=n) * 1e140
    if draw(st.booleans()) and d == 1:
        X = X[:, 0]  # 1-D input
    return X, y, sw


BATCH = st.fixed_dictionaries({}, optional={
    "solver": st.sampled_from(("gram", "stream")),
    "optimizer": st.sampled_from(("cg", "gd", "momentum", "nesterov")),
    "penalty": st.sampled_from(("l2", "l1", "elasticnet")),
    "alpha": st.sampled_from((1e-8, 1e-4, 1.0)),
    "loss": st.just("huber"),
    "fit_intercept": st.booleans(),
    "reduction": st.just("sum"),
    "scale": st.booleans(),
    "parallel": st.booleans(),
    "learning_rate": st.sampled_from((1e-3, 0.1)),
    "epochs": st.integers(1, 50),
})
STOCHASTIC = st.fixed_dictionaries(
    {"mode": st.sampled_from(("sgd", "minibatch")), "epochs": st.integers(1, 4),
     "random_state": st.integers(0, 3)},
    optional={
        "batch_size": st.sampled_from((1, 7, 64)),
        "penalty": st.sampled_from(("l2", "l1", "elasticnet")),
        "loss": st.just("huber"),
        "fit_intercept": st.booleans(),
        "learning_rate_schedule": st.sampled_from(("invscaling", "adaptive")),
        "average": st.booleans(),
        "early_stopping": st.booleans(),
        "shuffle": st.booleans(),
        "parallel": st.booleans(),
        "scale": st.booleans(),
        "learning_rate": st.sampled_from((1e-4, 1e-2)),
    })


def _finite_result(res):
    assert np.isfinite(res.coef).all(), res.coef
    assert np.isfinite(res.intercept), res.intercept
    assert np.isfinite(res.loss_history).all(), res.loss_history


def check_contract(X, y, sw, kw):
    if kw.get("mode") == "sgd" and kw.get("batch_size") not in (None, 1):
        kw = {k: v for k, v in kw.items() if k != "batch_size"}
    return outcome(lambda: fastgd.fit(X, y, sample_weight=sw, **kw), X, y, sw)


def outcome(fit, X, y, sw):
    """Run ``fit()`` under the contract; returns "fitted", "refused" or "diverged"."""
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            warnings.simplefilter("ignore", fastgd.ConvergenceWarning)
            try:
                res = fit()
            except fastgd.DivergenceError as err:
                _finite_result(err.result)
                return "diverged"
            except (ValueError, TypeError) as err:
                assert not isinstance(err, numba.core.errors.NumbaError), err
                # LinAlgError is a ValueError, but LAPACK's words are not a clear error
                assert not isinstance(err, np.linalg.LinAlgError), err
                assert str(err), "an error must say what was wrong"
                return "refused"
    finally:
        faulthandler.cancel_dump_traceback_later()
    _finite_result(res)
    _loss_is_measured(res, X, y, sw)
    return "fitted"


def _loss_is_measured(res, X, y, sw):
    """``final_loss`` is ``fastgd.mse`` of the returned coefficients: to 1e-12, above the
    rounding floor of the residuals themselves. Each residual carries a rounding of about
    eps (|y| + |X w| + |b|) = eps size, so sum w r^2 is determined only to about
    2 eps sum w |r| size + (eps size)^2: at an exact fit the rounding is all there is, and
    where the residuals are far smaller than the terms that make them (a near-exact fit)
    it exceeds 1e-12 of the loss. The default fit reports the loss of its final Newton
    step from the statistics when the step is well determined (see
    :func:`fastgd.solvers.refine`): that estimate and a measurement then agree to this
    floor, not to 1e-12 (a 4-row fit with residuals 1/20,000 of the terms: 1.1e-12, found
    by the long profile)."""
    if not (res.plan.loss == "squared" and not res.plan.alpha and res.reduction == "mean"):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        loss = fastgd.mse(X, y, res.coef, res.intercept, sample_weight=sw)
    with np.errstate(all="ignore"):  # the floor estimate may overflow: then it is inf
        X2 = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
        size = np.abs(y) + np.abs(X2) @ np.abs(res.coef) + abs(res.intercept)
        r = np.abs(y - (X2 @ res.coef + res.intercept))
        w = np.ones(len(y)) if sw is None else sw
        eps = np.finfo(np.float64).eps
        floor = float((w * (4 * eps * r * size + 64 * eps ** 2 * size * size)).sum() / w.sum())
    if not np.isfinite(floor):
        floor = 0.0
    assert res.final_loss == pytest.approx(loss, rel=1e-12, abs=max(floor, 1e-300)), (
        res.final_loss, loss)


@FUZZ
@given(problems(), BATCH)
def test_batch_contract(problem, kw):
    event(check_contract(*problem, kw))


@FUZZ
@given(problems(), STOCHASTIC)
def test_stochastic_contract(problem, kw):
    event(check_contract(*problem, kw))


@FUZZ
@given(problems(), BATCH, st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_blocks_contract(problem, kw, n_blocks, seed):
    """fit_chunks over uneven blocks of the same rows: the same contract."""
    X, y, sw = problem
    n = y.shape[0]
    cuts = np.unique(np.r_[0, np.random.default_rng(seed).integers(1, max(n, 2), n_blocks - 1), n])
    cuts = cuts[cuts <= n]
    blocks = [(X[a:b], y[a:b]) if sw is None else (X[a:b], y[a:b], sw[a:b])
              for a, b in zip(cuts, cuts[1:]) if b > a]
    event(outcome(lambda: fastgd.fit_chunks(blocks, **kw), X, y, sw))


@FUZZ
@given(problems(), st.one_of(BATCH, STOCHASTIC), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_dask_blocks_contract(problem, kw, n_blocks, seed):
    """dask arrays cut into uneven blocks (run by dask's in-process scheduler): the same
    outcome as fit_chunks over the same blocks (the same per-block functions and merges
    in the same process: the same bits; parameter mixing aside, which runs within each
    block locally and across blocks on dask), and the same contract."""
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    X, y, sw = problem
    if kw.get("mode") == "sgd" and kw.get("batch_size") not in (None, 1):
        kw = {k: v for k, v in kw.items() if k != "batch_size"}
    n = y.shape[0]
    cuts = np.unique(np.r_[0, np.random.default_rng(seed).integers(1, max(n, 2), n_blocks - 1), n])
    sizes = tuple(int(b - a) for a, b in zip(cuts, cuts[1:]) if b > a)
    blocks, a = [], 0
    for m in sizes:
        blocks.append((X[a:a + m], y[a:a + m]) + (() if sw is None else (sw[a:a + m],)))
        a += m
    Xd = da.from_array(X, chunks=(sizes,) + X.shape[1:])
    yd = da.from_array(y, chunks=(sizes,))
    swd = None if sw is None else da.from_array(sw, chunks=(sizes,))

    def run(fit):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fastgd.ConvergenceWarning)
                return fit()
        except (ValueError, TypeError, fastgd.DivergenceError) as err:
            return type(err)

    local = run(lambda: fastgd.fit_chunks(blocks, **kw))
    with dask.config.set(scheduler="sync"):
        event(outcome(lambda: fastgd.fit(Xd, yd, sample_weight=swd, **kw), X, y, sw))
        remote = run(lambda: fastgd.fit(Xd, yd, sample_weight=swd, **kw))
    if isinstance(local, type):
        assert remote is local, (local, remote)
    else:
        assert not isinstance(remote, type), remote
        if local.plan.mixing:
            return  # mixing is within blocks locally, across blocks on dask: by design
        assert np.array_equal(remote.coef, local.coef) and remote.intercept == local.intercept
        assert np.array_equal(remote.loss_history, local.loss_history)


# --- model files and checkpoints under random edits (issue 17) --------------------------------
#
# A valid file, edited at random (a key deleted, a value of another type, NaN or inf, a number
# changed, an unknown key, the text truncated, bytes of junk, a number beyond float64): either it
# still holds a valid model that predicts finite values (a checkpoint that resumes to a finite
# result, or diverges with a finite .result), or reading it raises one ValueError or TypeError
# whose message begins with the file's path. Never another exception, a traceback from inside,
# or NaN out of predict.

#: values an edit may put anywhere: every JSON type, NaN and inf, moderate numbers (a huge one
#: would make a valid model's predictions overflow, or a valid checkpoint run for ever)
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10),
    st.floats(-1e6, 1e6), st.sampled_from((float("nan"), float("inf"), float("-inf"))),
    st.text(max_size=4), st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-3, 3), max_size=2))


def _paths(v, prefix=()):
    """Every path into the JSON value ``v`` (dict keys and list indices)."""
    out = []
    items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
    for k, x in items:
        out.append(prefix + (k,))
        out.extend(_paths(x, prefix + (k,)))
    return out


def _edit_document(data, doc):
    """``doc`` (a deep copy) after 1 to 3 random edits, as the bytes of a file."""
    import copy
    import json

    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        paths = _paths(doc)
        path = paths[data.draw(st.integers(0, len(paths) - 1), label="path")]
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        op = data.draw(st.sampled_from(("delete", "replace", "number", "add")), label="op")
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = data.draw(JSON_VALUES, label="value")
        elif op == "number" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            factor = data.draw(st.sampled_from((-1, 0, 0.5, 2, 1000)), label="factor")
            parent[key] = type(parent[key])(parent[key] * factor)
        elif isinstance(parent[key], dict):
            parent[key][data.draw(st.text(max_size=6), label="new key")] = data.draw(JSON_VALUES)
    raw = json.dumps(doc).encode()
    damage = data.draw(st.sampled_from(("none", "truncate", "junk", "1e400")), label="damage")
    if damage == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1), label="at")]
    elif damage == "junk":
        at = data.draw(st.integers(0, len(raw)), label="at")
        raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=16), label="junk") + raw[at + 1:]
    elif damage == "1e400":
        raw = raw.replace(b"0.", b"1e400", 1) if b"0." in raw else raw
    return raw


def _names_the_file(err, path):
    assert isinstance(err, (ValueError, TypeError)), repr(err)
    assert not isinstance(err, np.linalg.LinAlgError), err
    assert str(err).startswith(str(path)), f"the error does not begin with the file: {err}"


@pytest.fixture(scope="module")
def file_fuzz(tmp_path_factory):
    """Data, a folder, and valid documents: two model files and four checkpoints (batch
    gram and streaming, SGD with an int seed and early stopping, SGD from a Generator)."""
    import json

    folder = tmp_path_factory.mktemp("file-fuzz")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 2))
    y = X @ [1.0, -2.0] + 0.5 + 0.1 * rng.normal(size=300)
    models = []
    for kw in (dict(), dict(mode="sgd", tol=None, epochs=2, random_state=np.random.default_rng(1))):
        fastgd.fit(X, y, **kw).save(folder / "m.json")
        models.append(json.loads((folder / "m.json").read_text()))
    ckpts = []
    for kw in (dict(epochs=3, tol=None), dict(solver="stream", optimizer="nesterov", epochs=3),
               dict(mode="sgd", epochs=3, random_state=2, early_stopping=True, tol=1e-12,
                    n_iter_no_change=5),
               dict(mode="minibatch", tol=None, epochs=3, random_state=np.random.default_rng(3))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fastgd.ConvergenceWarning)  # 3 epochs: on purpose
            fastgd.fit(X, y, checkpoint=folder / "c.ckpt", **kw)
        ckpts.append(json.loads((folder / "c.ckpt").read_text()))
    return X, y, folder, models, ckpts


@FUZZ
@given(st.data())
def test_edited_model_files_load_or_name_the_file(file_fuzz, data):
    X, _, folder, models, _ = file_fuzz
    doc = models[data.draw(st.integers(0, len(models) - 1), label="model")]
    path = folder / "edited.json"
    path.write_bytes(_edit_document(data, doc))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            model = fastgd.load(path)
            pred = model.predict(np.random.default_rng(0).uniform(-1, 1, (5, model.coef.shape[0])))
    except Exception as err:  # noqa: BLE001 - the property is about which exceptions
        _names_the_file(err, path)
        event("refused")
        return
    assert np.isfinite(model.coef).all() and np.isfinite(model.intercept)
    assert np.isfinite(pred).all(), pred
    assert model.plan is None or model.plan.facts.d == model.coef.shape[0]
    event("loaded")


@FUZZ
@given(st.data())
def test_edited_checkpoints_resume_or_name_the_file(file_fuzz, data):
    X, y, folder, _, ckpts = file_fuzz
    doc = ckpts[data.draw(st.integers(0, len(ckpts) - 1), label="checkpoint")]
    if data.draw(st.booleans(), label="without checksum"):
        # as a checkpoint from before checksums: the edits that keep every field well
        # formed then reach the fit, which must resume from them or refuse clearly
        doc = {k: v for k, v in doc.items() if k != "checksum"}
    path = folder / "edited.ckpt"
    path.write_bytes(_edit_document(data, doc))
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            warnings.simplefilter("ignore", fastgd.ConvergenceWarning)
            res = fastgd.resume(path, X, y)
    except fastgd.DivergenceError as err:
        _finite_result(err.result)
        event("diverged")
        return
    except Exception as err:  # noqa: BLE001 - the property is about which exceptions
        _names_the_file(err, path)
        event("refused")
        return
    finally:
        faulthandler.cancel_dump_traceback_later()
    _finite_result(res)
    event("resumed")
