"""Data frames and Arrow data in fastgd.fit and GDRegressor (issue 10). Oracle: the same
fit on the NumPy array of the same values."""
import numpy as np
import pytest

import fastgd

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")

NAMES = ["a", "b", "c"]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ [1.0, -2.0, 0.5] + 3 + 0.1 * rng.normal(size=300)
    return X, y


def containers(X, y):
    table = pa.table({n: X[:, j] for j, n in enumerate(NAMES)})
    return {
        "pandas": (pd.DataFrame(X, columns=NAMES), pd.Series(y)),
        "polars": (pl.DataFrame({n: X[:, j] for j, n in enumerate(NAMES)}), pl.Series(y)),
        "pyarrow": (table, pa.array(y)),
        "pyarrow-chunked": (pa.concat_tables([table.slice(0, 100), table.slice(100)]),
                            pa.chunked_array([y[:100], y[100:]])),
    }


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow", "pyarrow-chunked"])
def test_frames_fit_like_arrays_and_keep_names(data, kind):
    X, y = data
    Xf, yf = containers(X, y)[kind]
    ref = fastgd.fit(X, y)
    res = fastgd.fit(Xf, yf)
    assert np.array_equal(res.coef, ref.coef) and res.intercept == ref.intercept
    assert res.feature_names == tuple(NAMES)
    assert ref.feature_names is None


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow"])
def test_estimator_takes_frames(data, kind):
    from fastgd import GDRegressor

    X, y = data
    Xf, yf = containers(X, y)[kind]
    est = GDRegressor().fit(Xf, yf)
    assert list(est.feature_names_in_) == NAMES
    np.testing.assert_array_equal(est.predict(Xf), GDRegressor().fit(X, y).predict(X))


def test_missing_values_are_the_nan_error(data):
    X, y = data
    df = pd.DataFrame(X, columns=NAMES).astype("Float64")
    df.iloc[7, 1] = pd.NA
    with pytest.raises(ValueError, match=r"X has 1 row\(s\) with NaN or inf values \(first at row 7\)"):
        fastgd.fit(df, y)
    ys = pl.Series(y).scatter(11, None)
    with pytest.raises(ValueError, match=r"y has 1 row\(s\) with NaN .* \(first at row 11\)"):
        fastgd.fit(X, ys)
    arr = pa.array(list(y[:20]) + [None] + list(y[21:]))
    with pytest.raises(ValueError, match=r"first at row 20"):
        fastgd.fit(X, arr)
    ints = pd.DataFrame({"a": pd.array([1, None, 3] * 100, dtype="Int64"), "b": X[:, 1]})
    with pytest.raises(ValueError, match=r"first at row 1\)"):
        fastgd.fit(ints, y)


def test_non_numeric_columns_are_named(data):
    X, y = data
    df = pd.DataFrame(X, columns=NAMES)
    df["city"] = "Paris"
    with pytest.raises(TypeError, match=r"X\['city'\] has dtype .*encode it as numbers"):
        fastgd.fit(df, y)
    with pytest.raises(TypeError, match=r"X\['s'\] has dtype"):
        fastgd.fit(pl.DataFrame({"a": X[:, 0], "s": ["x"] * 300}), y)
    with pytest.raises(TypeError, match=r"X\['s'\] has dtype"):
        fastgd.fit(pa.table({"a": X[:, 0], "s": ["x"] * 300}), y)


def test_integer_boolean_and_float32_columns(data):
    X, y = data
    df = pd.DataFrame({"i": np.arange(300) % 7, "b": np.arange(300) % 2 == 0, "f": X[:, 0]})
    arr = np.column_stack([np.arange(300) % 7, np.arange(300) % 2 == 0, X[:, 0]]).astype(float)
    np.testing.assert_array_equal(fastgd.fit(df, y).coef, fastgd.fit(arr, y).coef)
    f32 = pd.DataFrame(X.astype(np.float32), columns=NAMES)
    res = fastgd.fit(f32, y.astype(np.float32))
    assert res.plan.facts.dtype == "float32"


def test_no_copy_where_the_memory_is_already_the_kernels(data):
    """A float64 Series, and a frame over a C-ordered float64 array, reach the kernels
    without a copy (the conversion returns a view of their memory)."""
    from fastgd._frames import to_numpy

    X, y = data
    s = pd.Series(y, copy=False)
    assert np.shares_memory(to_numpy(s, "y"), y)
    df = pd.DataFrame(X, columns=NAMES, copy=False)
    out = to_numpy(df, "X")
    assert out.flags.c_contiguous and np.shares_memory(out, X)
