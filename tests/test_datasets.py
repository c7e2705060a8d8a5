"""fastgd.datasets (issue 20): the tutorial's data shipped in the package, the demo's
generator. Oracles: the shared reference CSV (when ``../shared`` exists), the tutorial
program's printed figures and the 40-digit least-squares solve recorded in
``../shared/data/README.md``, and the wheel that ``pip wheel`` builds."""
import doctest
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastgd
import fastgd.datasets
from fastgd.datasets import load_bike_calories, make_demo

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ROOT / "fastgd" / "data" / "bike_calories.csv"

# the tutorial program's printed figures (plain sequential float sums; another summation
# order moves them in the 10th digit, hence rel 1e-9): ../shared/data/README.md
TUTORIAL = dict(start=5565.107834483211, intercept=0.08893651993741346,
                slope=1.4777440851894448, final=112.61481011613473)
# the least-squares optimum from a 40-digit solve (same README)
OPTIMUM = dict(intercept=7.9910209857344440, slope=1.3224310226878684, mse=110.25738344912884)


def test_the_packaged_data_is_the_shared_reference_csv(shared_data):
    ref = np.loadtxt(shared_data / "bike_calories.csv", delimiter=",")
    x, y = load_bike_calories()
    assert np.array_equal(x, ref[:, 0]) and np.array_equal(y, ref[:, 1])
    assert PACKAGED.read_bytes() == (shared_data / "bike_calories.csv").read_bytes()


def test_load_bike_calories_returns_fresh_float64_arrays():
    x, y = load_bike_calories()
    for a in (x, y):
        assert a.shape == (100,) and a.dtype == np.float64
        assert a.flags.c_contiguous and a.flags.writeable and a.flags.owndata
        assert np.isfinite(a).all()
    x[:] = 0.0  # a caller's edit never reaches the next call
    x2, _ = load_bike_calories()
    assert x2[0] == 32.50234527  # the file's first row, as written


def test_the_tutorial_run_gives_the_tutorial_figures():
    x, y = load_bike_calories()
    res = fastgd.fit(x, y, learning_rate=1e-4, epochs=1000)
    assert res.n_epochs == 1000 and len(res.loss_history) == 1001
    assert res.loss_history[0] == pytest.approx(TUTORIAL["start"], rel=1e-9)
    assert res.intercept == pytest.approx(TUTORIAL["intercept"], rel=1e-9)
    assert res.slope == pytest.approx(TUTORIAL["slope"], rel=1e-9)
    assert res.final_loss == pytest.approx(TUTORIAL["final"], rel=1e-9)


def test_the_default_fit_reaches_the_least_squares_optimum():
    x, y = load_bike_calories()
    res = fastgd.fit(x, y)
    assert res.intercept == pytest.approx(OPTIMUM["intercept"], rel=1e-10)
    assert res.slope == pytest.approx(OPTIMUM["slope"], rel=1e-10)
    assert res.final_loss == pytest.approx(OPTIMUM["mse"], rel=1e-12)


def test_the_docstring_examples_run_and_print_what_they_say():
    out = doctest.testmod(fastgd.datasets, optionflags=doctest.ELLIPSIS, verbose=False)
    assert out.attempted >= 8 and out.failed == 0, out


def test_make_demo_is_the_demo_generator():
    from fastgd import cli

    assert cli.make_demo_data is make_demo  # the old name, kept importable
    # the stream is pinned: the demo's printed figures and the CLI tests depend on it
    x, y = make_demo(3)
    assert x.tolist() == [1.369616873214543, -2.302132862361297, -4.590264760638053]
    assert y.tolist() == [2.4764922416128776, -7.023166842483798, -12.29486437414039]
    x, y = make_demo(3, seed=7)
    assert x.tolist() == [1.2509546660466695, 3.9721380096957546, 2.7568569024519354]
    a, b = make_demo(50_000, seed=3)
    a2, b2 = make_demo(50_000, seed=3)
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    assert a.min() >= -5.0 and a.max() < 5.0
    # the line it promises, within the noise: lstsq on 50,000 points (slope sd about 0.0008)
    (m, c), *_ = np.linalg.lstsq(np.c_[a, np.ones_like(a)], b, rcond=None)
    assert abs(m - 2.5) < 0.005 and abs(c + 1.0) < 0.01
    assert np.std(b - (m * a + c)) == pytest.approx(0.5, rel=0.02)


def test_make_demo_dtype():
    x64, y64 = make_demo(1000, seed=1)
    x32, y32 = make_demo(1000, seed=1, dtype="float32")
    assert x32.dtype == y32.dtype == np.float32 and x64.dtype == np.float64
    assert np.array_equal(x32, x64.astype(np.float32)) and np.array_equal(y32, y64.astype(np.float32))


@pytest.mark.parametrize("kw,exc,match", [
    (dict(n=0), ValueError, "n must be at least 1, got 0"),
    (dict(n=-5), ValueError, "n must be at least 1, got -5"),
    (dict(n=10.0), TypeError, "n must be an int .* got float 10.0"),
    (dict(n=True), TypeError, "n must be an int .* got bool True"),
    (dict(n="100"), TypeError, "n must be an int"),
    (dict(n=10, seed=-1), ValueError, "seed must be an int >= 0 or None, got -1"),
    (dict(n=10, seed=1.5), ValueError, "seed must be an int >= 0 or None, got 1.5"),
    (dict(n=10, dtype=np.int64), ValueError, "dtype must be float64 or float32, got int64"),
    (dict(n=10, dtype="float16"), ValueError, "dtype must be float64 or float32, got float16"),
    (dict(n=10, dtype="nonsense"), TypeError, "dtype must be float64 or float32, got 'nonsense'"),
])
def test_make_demo_refuses_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        make_demo(**kw)


def test_make_demo_accepts_numpy_integers_and_no_seed():
    x, _ = make_demo(np.int64(10), seed=np.uint8(2))
    assert x.shape == (10,) and np.array_equal(x, make_demo(10, seed=2)[0])
    assert make_demo(5, seed=None)[0].shape == (5,)


def test_datasets_import_neither_numba_nor_extras_and_work_from_any_folder(tmp_path):
    code = ("import sys, fastgd.datasets as d; x, y = d.load_bike_calories(); d.make_demo(10); "
            "print(x.shape, y.sum()); print(sorted(m for m in ('numba', 'llvmlite', 'pandas', "
            "'pyarrow', 'matplotlib', 'sklearn', 'dask') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    shape, loaded = proc.stdout.splitlines()
    assert shape.startswith("(100,)") and loaded == "[]", proc.stdout


def test_a_built_wheel_ships_the_data_and_loads_it(tmp_path):
    """A non-editable install: the wheel pip builds from a copy of the source holds the CSV,
    and the package unpacked from it (no source tree on the path) loads the data."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copytree(ROOT / "fastgd", src / "fastgd",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "-w", str(tmp_path / "dist"),
           "--no-deps", "-q"]
    if importlib.util.find_spec("wheel") and importlib.util.find_spec("setuptools"):
        cmd.append("--no-build-isolation")  # the installed build tools: no index needed
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = glob.glob(str(tmp_path / "dist" / "fastgd-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        assert z.read("fastgd/data/bike_calories.csv") == PACKAGED.read_bytes()
        assert "fastgd/datasets.py" in z.namelist()
        # every module of the package: the role folders (kernels, losses, sources, ...) too
        shipped = {n for n in z.namelist() if n.endswith(".py")}
        modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "fastgd").rglob("*.py")}
        assert modules <= shipped, sorted(modules - shipped)
        z.extractall(tmp_path / "site")
    code = ("import fastgd, fastgd.datasets as d; x, y = d.load_bike_calories(); "
            "print(fastgd.__file__); print(repr(float(x.sum())), repr(float(y.sum())))")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    where, sums = proc.stdout.splitlines()
    assert where.startswith(str(tmp_path / "site"))
    x, y = load_bike_calories()
    assert sums == f"{float(x.sum())!r} {float(y.sum())!r}"
