"""Column names meet a fitted model (issue 17, items 5, 6, 14): names are checked, never
used to reorder, with the same rule on every surface (``FitResult``, a loaded model,
``GDRegressor``, dask frames, the blocks of ``fit_chunks``, the command line). Oracle: the
prediction on the columns in the fitted order, bit for bit, or a ``ValueError``."""
import itertools
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastgd

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")

NAMES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(17)
    X = rng.normal(size=(400, 4)) * [1.0, 10.0, 0.1, 3.0]
    y = X @ [1.0, -2.0, 30.0, 0.5] + 3.0 + 0.01 * rng.normal(size=400)
    return pd.DataFrame(X, columns=NAMES), y


@pytest.fixture(scope="module")
def fitted(frame, tmp_path_factory):
    df, y = frame
    res = fastgd.fit(df, y)
    path = tmp_path_factory.mktemp("model") / "m.json"
    res.save(path)
    from fastgd import GDRegressor

    return {"result": res, "loaded": fastgd.load(path), "estimator": GDRegressor().fit(df, y)}


def _predict(model, X):
    return model.predict(X)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(perm=st.permutations(range(4)), kind=st.sampled_from(["pandas", "polars"]),
       which=st.sampled_from(["result", "loaded", "estimator"]))
def test_a_permutation_of_the_columns_predicts_the_same_bits_or_raises(frame, fitted, perm,
                                                                       kind, which):
    df, _ = frame
    model = fitted[which]
    ref = _predict(model, df)
    cols = [NAMES[j] for j in perm]
    X = df[cols] if kind == "pandas" else pl.from_pandas(df[cols])
    if cols == NAMES:
        assert np.array_equal(_predict(model, X), ref)
    else:
        with pytest.raises(ValueError, match="same order as they were in fit") as err:
            _predict(model, X)
        assert str(cols) in str(err.value) or repr(cols[0]) in str(err.value)


@pytest.mark.parametrize("which", ["result", "loaded", "estimator"])
def test_other_or_missing_names_are_named(frame, fitted, which):
    df, y = frame
    model = fitted[which]
    with pytest.raises(ValueError, match="unseen at fit time:\n- e\n") as err:
        model.predict(df.rename(columns={"c": "e"}))
    assert "yet now missing:\n- c" in str(err.value)
    with pytest.raises(ValueError, match="yet now missing:\n- d"):
        model.predict(df[["a", "b", "c"]])


def test_loss_checks_names_too(frame, fitted):
    df, y = frame
    res = fitted["result"]
    assert res.loss(df, y) == pytest.approx(res.final_loss, rel=1e-12)
    with pytest.raises(ValueError, match="same order"):
        res.loss(df[["b", "a", "c", "d"]], y)


@pytest.mark.parametrize("which", ["result", "loaded", "estimator"])
def test_names_on_one_side_only_warn_and_go_by_position(frame, fitted, which):
    df, y = frame
    model = fitted[which]
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        got = model.predict(df.to_numpy())
    assert np.array_equal(got, model.predict(df))
    unnamed = fastgd.fit(df.to_numpy(), y)
    with pytest.warns(UserWarning, match="has feature names, but this FitResult was fitted "
                                         "without"):
        got = unnamed.predict(df)
    assert np.array_equal(got, unnamed.predict(df.to_numpy()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unnamed.predict(df.to_numpy())  # neither side: silent


def test_dask_frames_are_checked_before_anything_runs(frame, fitted):
    dd = pytest.importorskip("dask.dataframe")
    df, _ = frame
    ddf = dd.from_pandas(df[["b", "a", "c", "d"]], npartitions=2)
    for which in ("result", "loaded", "estimator"):
        with pytest.raises(ValueError, match="same order"):
            fitted[which].predict(ddf)
    lazy = fitted["result"].predict(dd.from_pandas(df, npartitions=2))
    assert np.array_equal(lazy.compute(scheduler="sync"), fitted["result"].predict(df))


def test_fit_chunks_blocks_must_name_the_columns_like_block_0(frame):
    df, y = frame
    good = [(df.iloc[:200], y[:200]), (df.iloc[200:], y[200:])]
    res = fastgd.fit_chunks(good)
    ref = fastgd.fit(df.to_numpy(), y)
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-12)
    assert res.feature_names == tuple(NAMES)
    swapped = [(df.iloc[:200], y[:200]), (df.iloc[200:][["b", "a", "c", "d"]], y[200:])]
    with pytest.raises(ValueError, match=r"block 1's columns are named \['b', 'a', 'c', 'd'\], "
                                         r"but block 0's are named \['a', 'b', 'c', 'd'\]"):
        fastgd.fit_chunks(swapped)
    with pytest.raises(ValueError, match="block 1's columns are unnamed"):
        fastgd.fit_chunks([(df.iloc[:200], y[:200]), (df.iloc[200:].to_numpy(), y[200:])])
    # a callable's blocks are checked as they are read
    with pytest.raises(ValueError, match="block 1's columns"):
        fastgd.fit_chunks(lambda: iter(swapped), mode="sgd", tol=None, epochs=1)


def test_lazy_frames_are_refused_without_leaking_warnings(frame):
    df, y = frame
    lazy = pl.from_pandas(df).lazy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match=r"LazyFrame.*call X.collect\(\) first"):
            fastgd.fit(lazy, y)
        with pytest.raises(TypeError, match=r"call y.collect\(\) first"):
            fastgd.fit(df, pl.DataFrame({"y": y}).lazy())


def test_int128_columns_and_sparse_pandas_columns_fit_like_float64(frame):
    df, y = frame
    Xi = np.rint(df.to_numpy() * 100)
    ref = fastgd.fit(Xi, y)
    wide = pl.DataFrame({n: pl.Series(Xi[:, j].astype(np.int64), dtype=pl.Int128)
                         for j, n in enumerate(NAMES)})
    got = fastgd.fit(wide, y)
    assert np.array_equal(got.coef, ref.coef) and got.feature_names == tuple(NAMES)
    sparse = df.copy()
    sparse["a"] = pd.arrays.SparseArray(np.where(np.abs(df["a"]) > 1, df["a"], 0.0), fill_value=0.0)
    dense = sparse.copy()
    dense["a"] = sparse["a"].sparse.to_dense()
    assert np.array_equal(fastgd.fit(sparse, y).coef, fastgd.fit(dense.to_numpy(), y).coef)
    assert np.array_equal(fastgd.fit(sparse["a"], y).coef, fastgd.fit(dense["a"].to_numpy(), y).coef)


# -- the command line ----------------------------------------------------------------------

CACHE = os.environ.get("FASTGD_CACHE_DIR")


def _cli(*args):
    env = dict(os.environ)
    return subprocess.run(["fastgd", *args], capture_output=True, text=True, timeout=300, env=env)


def test_cli_predict_uses_names_and_refuses_a_swap(tmp_path):
    rng = np.random.default_rng(3)
    x, a = rng.normal(size=50), rng.normal(size=50) * 5
    y = 2 * x - 3 * a + 1
    data = tmp_path / "data.csv"
    np.savetxt(data, np.c_[a, x, y], delimiter=",", header="a,x,y", comments="", fmt="%.17g")
    model = tmp_path / "m.json"
    proc = _cli("fit", str(data), "--x", "x", "--x", "a", "--y", "y", "--save-model", str(model),
                "--quiet")
    assert proc.returncode == 0, proc.stderr
    res = fastgd.load(model)
    want = np.c_[x, a] @ res.coef + res.intercept
    for cols in ([], ["--x", "x", "--x", "a"]):  # the model's names, in its order
        proc = _cli("predict", str(model), str(data), *cols)
        assert proc.returncode == 0, proc.stderr
        got = np.loadtxt(proc.stdout.splitlines()[1:])
        assert np.array_equal(got, want)
    for swap in itertools.permutations(["x", "a"]):
        if list(swap) == ["x", "a"]:
            continue
        proc = _cli("predict", str(model), str(data), "--x", swap[0], "--x", swap[1])
        assert proc.returncode == 1 and proc.stdout == ""
        assert "same order" in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    # columns that are none of the model's names map by position, and stderr says so
    other = tmp_path / "other.csv"
    np.savetxt(other, np.c_[x, a], delimiter=",", header="p,q", comments="", fmt="%.17g")
    proc = _cli("predict", str(model), str(other), "--x", "p", "--x", "q")
    assert proc.returncode == 0 and "by position" in proc.stderr
    assert np.array_equal(np.loadtxt(proc.stdout.splitlines()[1:]), want)


# -- threads of the user's (numba's workqueue layer aborted on them) ----------------------------------------------------

WORKQUEUE = r"""
import threading, numpy as np, fastgd
from fastgd import GDRegressor
rng = np.random.default_rng(0)
X = rng.normal(size=(1_000_000, 3)); y = X @ [1.0, 2.0, 3.0] + 0.5
est = GDRegressor(epochs=3, tol=None, learning_rate=0.1).fit(X, y)
res = fastgd.fit(X, y, epochs=3)
want = {"est": est.predict(X), "res": res.predict(X), "mse": fastgd.mse(X, y, res.coef, res.intercept),
        "score": est.score(X, y)}
got, errors = {}, []
def run(name, f):
    try:
        for _ in range(3):
            got[name] = f()
    except BaseException as exc:
        errors.append(repr(exc))
jobs = [("est", lambda: est.predict(X)), ("est2", lambda: est.predict(X)),
        ("res", lambda: res.predict(X)), ("mse", lambda: fastgd.mse(X, y, res.coef, res.intercept)),
        ("score", lambda: est.score(X, y)), ("fit", lambda: GDRegressor().fit(X, y).coef_)]
threads = [threading.Thread(target=run, args=job) for job in jobs]
for t in threads: t.start()
for t in threads: t.join()
import numba, pytest
# fastgd's parallel passes run on its own threads: numba's threading layer never starts
with pytest.raises(ValueError, match="not initialized"):
    numba.threading_layer()
assert not errors, errors
for k in ("est", "res", "mse", "score"):
    assert np.array_equal(got[k], want[k]), k
assert np.array_equal(got["est2"], want["est"])
print("ok")
"""


def test_concurrent_predict_score_mse_and_fit_under_workqueue():
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    proc = subprocess.run([sys.executable, "-c", WORKQUEUE], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"
