"""Every bad input gets a specific exception that says what was wrong and how to fix it."""
import numpy as np
import pytest

import fastgd

X = np.arange(20.0).reshape(10, 2)
Y = np.arange(10.0)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(X=X, y=Y[:9]), ValueError, r"different lengths: X has 10 rows, y has 9"),
    (dict(X=np.empty((0, 2)), y=np.empty(0)), ValueError, r"X is empty \(0 rows\)"),
    (dict(X=np.empty((5, 0)), y=np.zeros(5)), ValueError, r"X has 0 features"),
    (dict(X=np.zeros((3, 2, 2)), y=np.zeros(3)), ValueError, r"1-D .* or 2-D .* got 3-D"),
    (dict(X=np.float64(3.0), y=np.zeros(1)), ValueError, r"got 0-D"),
    (dict(X=X, y=np.zeros((10, 2))), ValueError, r"y must be 1-D .* shape \(10, 2\)"),
    (dict(X=X.astype(complex), y=Y), TypeError, r"X is complex"),
    (dict(X=X, y=Y.astype(complex)), TypeError, r"y is complex"),
    (dict(X=np.array(["a", "b"]), y=np.zeros(2)), TypeError, r"X must be numeric, got dtype <U1"),
    # objects: None is a missing value (the NaN error), a string is not a number
    (dict(X=np.array([1, None], dtype=object), y=np.zeros(2)), ValueError,
     r"X has 1 row\(s\) with NaN or inf values \(first at row 1\)"),
    (dict(X=np.array([1, "a"], dtype=object), y=np.zeros(2)), TypeError,
     r"X has dtype object and a value that is not a number"),
    (dict(X=[[1.0, 2.0], [3.0]], y=[1.0, 2.0]), TypeError, r"X could not be turned into a numeric array"),
])
def test_bad_data(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fastgd.fit(kwargs["X"], kwargs["y"])


@pytest.mark.parametrize("where", ["X", "y", "sample_weight"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_values_counted_with_first_row(where, value):
    Xb, yb, w = X.copy(), Y.copy(), np.ones(10)
    arr = {"X": Xb, "y": yb, "sample_weight": w}[where]
    arr[7] = value
    arr[4] = value
    with pytest.raises(ValueError, match=rf"{where} has 2 row\(s\) with NaN or inf values \(first at row 4\); drop or impute"):
        fastgd.fit(Xb, yb, sample_weight=w)


# Every path of fit: mode="batch" leaves the NaN/inf check to the first pass of the fit
# (moments, diagonal moments or the loss at the start); the stochastic modes check first.
FIT_PATHS = {
    "batch-default-gram": dict(),
    "batch-stream-full": dict(solver="stream"),
    "batch-gd-auto": dict(optimizer="gd"),
    "batch-textbook": dict(learning_rate=0.001, scale=False, optimizer="gd", epochs=3),
    "batch-huber": dict(loss="huber"),
    "batch-l1": dict(alpha=0.1, l1_ratio=1.0),
    "minibatch": dict(mode="minibatch", epochs=2),
    "sgd": dict(mode="sgd", epochs=2),
    "sgd-raw": dict(mode="sgd", epochs=2, learning_rate=0.001),
    "sgd-mixing": dict(mode="sgd", epochs=2, learning_rate=0.001, parallel=True),
}


@pytest.mark.parametrize("path", list(FIT_PATHS))
@pytest.mark.parametrize("where,value,d", [("X", np.nan, 2), ("X", np.inf, 2), ("y", -np.inf, 2),
                                           ("X", np.inf, 40), ("y", np.nan, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_nonfinite_caught_on_every_path(path, where, value, d, weighted):
    rng = np.random.default_rng(7)
    Xb = rng.normal(size=(200, d))
    yb = Xb @ np.arange(1.0, d + 1) + 0.5
    arr = Xb if where == "X" else yb
    arr[150] = value
    arr[33] = value
    w = rng.uniform(0.5, 2.0, 200) if weighted else None
    if w is not None:
        w[33] = 0.0  # a weightless row still has to be finite
    with pytest.raises(ValueError, match=rf"{where} has 2 row\(s\) with NaN or inf values \(first at row 33\)"):
        fastgd.fit(Xb, yb, sample_weight=w, **FIT_PATHS[path])


def test_deferred_check_tells_overflow_from_nan():
    """Finite data whose first pass overflows is not NaN input: the deferred check runs,
    passes, and the fit says what overflowed. (It used to raise a DivergenceError whose
    .result held the infinite starting loss: a result must be finite.)"""
    Xb = np.array([[1e300], [2e300], [3e300]])
    yb = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="loss at the starting point is not finite") as info:
        fastgd.fit(Xb, yb, learning_rate=0.1, scale=False, optimizer="gd", init_coef=[1e10])
    assert "NaN or inf values" not in str(info.value)


def test_nonfinite_float32():
    Xb = X.astype(np.float32)
    Xb[9, 1] = np.nan
    with pytest.raises(ValueError, match=r"X has 1 row.*first at row 9"):
        fastgd.fit(Xb, Y.astype(np.float32))


@pytest.mark.parametrize("w,match", [
    (-np.ones(10), r"sample_weight has 10 negative value\(s\) \(first at row 0: -1\.0\); weights must be >= 0"),
    (np.zeros(10), r"sample_weight sums to zero"),
    (np.ones(9), r"one weight per row \(10\), got shape \(9,\)"),
    (np.ones((10, 1)), r"one weight per row"),
])
def test_bad_weights(w, match):
    with pytest.raises(ValueError, match=match):
        fastgd.fit(X, Y, sample_weight=w)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(epochs=0), ValueError, r"epochs must be >= 1, got 0"),
    (dict(epochs=2.5), TypeError, r"epochs must be an integer"),
    (dict(epochs=True), TypeError, r"epochs must be an integer"),
    (dict(learning_rate=0.0), ValueError, r"learning_rate must be a finite number > 0, got 0.0"),
    (dict(learning_rate=-1e-3), ValueError, r"learning_rate must be a finite number > 0"),
    (dict(learning_rate=np.inf), ValueError, r"learning_rate must be a finite number > 0, got inf"),
    (dict(learning_rate=np.nan), ValueError, r"learning_rate must be a finite number > 0, got nan"),
    (dict(learning_rate="fast"), ValueError, r"learning_rate must be a positive number or 'auto'"),
    (dict(mode="newton"), ValueError, r"mode must be one of 'batch', 'minibatch', 'sgd'; got 'newton'"),
    (dict(reduction="max"), ValueError, r"reduction must be one of 'mean', 'sum'"),
    (dict(mode="minibatch", batch_size=0), ValueError, r"batch_size must be between 1 and 10, got 0"),
    (dict(mode="minibatch", batch_size=11), ValueError, r"batch_size must be between 1 and 10, got 11"),
    (dict(mode="minibatch", batch_size=2.0), TypeError, r"batch_size must be an integer"),
    (dict(mode="batch", batch_size=4), ValueError, r"batch_size=4 applies to mode='minibatch'"),
    (dict(mode="sgd", batch_size=4), ValueError, r"mode='sgd' steps on one row"),
    (dict(tol=-1.0), ValueError, r"tol must be a finite number >= 0"),
    (dict(tol=np.nan), ValueError, r"tol must be a finite number >= 0"),
    (dict(parallel="yes"), ValueError, r"parallel must be True, False or 'auto'"),
    (dict(fit_intercept="no"), TypeError, r"fit_intercept must be True or False"),
    (dict(callback=3), TypeError, r"callback must be callable"),
    (dict(init_coef=[1.0]), ValueError, r"init_coef must have one value per feature \(2\), got 1"),
    (dict(init_coef=[1.0, np.nan]), ValueError, r"init_coef contains NaN"),
    (dict(init_intercept=np.inf), ValueError, r"init_intercept must be finite"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fastgd.fit(X, Y, **kwargs)


def test_bad_input_is_rejected_before_any_kernel(monkeypatch):
    """Validation happens first: the gradient kernel is never reached."""
    from fastgd.solvers import oracles

    def boom(*a, **k):
        raise AssertionError("kernel ran")

    monkeypatch.setattr(oracles.Objective, "__init__", boom)
    with pytest.raises(ValueError, match="epochs"):
        fastgd.fit(X, Y, epochs=0)
    with pytest.raises(ValueError, match="NaN"):
        fastgd.fit(np.array([1.0, np.nan]), np.array([1.0, 2.0]))


def test_inputs_not_modified():
    Xc, Yc = X.copy(), Y.copy()
    fastgd.fit(Xc, Yc, mode="sgd", tol=None, epochs=2, random_state=0)
    np.testing.assert_array_equal(Xc, X)
    np.testing.assert_array_equal(Yc, Y)


def test_mse_bad_coef():
    with pytest.raises(ValueError, match=r"coef has 1 value\(s\) but X has 2 feature"):
        fastgd.mse(X, Y, [1.0])
    with pytest.raises(ValueError, match="finite"):
        fastgd.mse(X, Y, [1.0, np.nan])


def test_missing_targets_are_named():
    with pytest.raises(TypeError, match="y is None: pass the targets"):
        fastgd.fit([1.0, 2.0], None)


# --- the entries' own parameters (issue 17): checked like the fit's settings ----------------

@pytest.mark.parametrize("call,exc,match", [
    (lambda: fastgd.fit(X, Y, checkpoint_every=0), ValueError, r"checkpoint_every must be >= 1, got 0"),
    (lambda: fastgd.fit(X, Y, checkpoint_every=1.5), TypeError, r"checkpoint_every must be an integer"),
    (lambda: fastgd.fit(X, Y, progress="yes"), ValueError, r"progress must be True, False or 'auto'"),
    (lambda: fastgd.fit(X, Y, callback=print, progress=1), ValueError, r"progress must be True"),
    (lambda: fastgd.fit(X, Y, callback="print"), TypeError, r"callback must be callable"),
    (lambda: fastgd.fit_chunks([(X, Y)], checkpoint_every=-2), ValueError,
     r"checkpoint_every must be >= 1, got -2"),
    (lambda: fastgd.fit_chunks([(X, Y)], progress=None), ValueError, r"progress must be True"),
    (lambda: fastgd.fit_chunks([(X, Y)], callback=3), TypeError, r"callback must be callable"),
    (lambda: fastgd.mse(X, Y, [1.0, 1.0], parallel="fast"), ValueError,
     r"parallel must be True, False or 'auto', got 'fast'"),
    (lambda: fastgd.sse(X, Y, [1.0, 1.0], parallel=2), ValueError, r"parallel must be True, False"),
    (lambda: fastgd.mse(X, Y, [1.0, 1.0], sample_weight=-np.ones(10)), ValueError,
     r"sample_weight has 10 negative value"),
    (lambda: fastgd.fit(X, Y, learning_rate=1e-3, epochs=1).loss(X, Y, sample_weight=np.ones(3)), ValueError,
     r"sample_weight must be 1-D with one weight per row \(10\)"),
    (lambda: fastgd.resume(None, X, Y), TypeError, r"checkpoint's path must be a string or a path-like"),
    (lambda: fastgd.load(["m.json"]), TypeError, r"model file's path must be a string or a path-like"),
])
def test_entry_parameters_are_checked_before_anything_runs(call, exc, match):
    """Before the issue, checkpoint_every and the rest were checked only when a checkpoint
    was asked for (or not at all): ``fit(X, y, checkpoint_every=0)`` ran."""
    with pytest.raises(exc, match=match):
        call()
