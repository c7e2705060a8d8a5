"""Files and the command line (issue 11): real CSV and Parquet files in a temp folder, the
real ``fastgd`` command in a subprocess. Oracle: the in-memory fit of the same rows."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fastgd

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 3))
    y = X @ [1.0, -2.0, 0.5] + 3 + 0.1 * rng.normal(size=20_000)
    w = rng.uniform(0.5, 2.0, size=20_000)
    return X, y, w


@pytest.fixture(scope="module")
def files(rows, tmp_path_factory):
    X, y, w = rows
    d = tmp_path_factory.mktemp("files")
    data = np.c_[X, y, w]
    np.savetxt(d / "h.csv", data, delimiter=",", header="a,b,c,y,w", comments="", fmt="%.17g")
    np.savetxt(d / "nh.csv", data, delimiter=",", fmt="%.17g")
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y, "w": w})
    pq.write_table(table, d / "groups.parquet", row_group_size=3_000)
    pq.write_table(table, d / "one.parquet")
    return d


CASES = [("h.csv", dict(x=["a", "b", "c"], y="y")),
         ("nh.csv", dict(x=["0", "1", "2"], y="3", header=False)),
         ("groups.parquet", dict(x=["a", "b", "c"], y="y")),
         ("one.parquet", dict(x=["0", "1", "2"], y="y"))]


@pytest.mark.parametrize("name,cols", CASES)
@pytest.mark.parametrize("kw", [dict(), dict(solver="stream"), dict(optimizer="nesterov"),
                                dict(penalty="l1", alpha=0.01), dict(loss="huber")])
def test_batch_fits_of_files_equal_the_in_memory_fit(files, rows, name, cols, kw):
    X, y, _ = rows
    ref = fastgd.fit(X, y, **kw)
    res = fastgd.fit_file(files / name, block_rows=4_096, **cols, **kw)
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-12)
    assert res.intercept == pytest.approx(ref.intercept, rel=1e-12)
    assert res.final_loss == pytest.approx(ref.final_loss, rel=1e-12)
    assert res.n_rows == 20_000 and len(res.feature_names) == 3


def test_weights_from_a_column(files, rows):
    X, y, w = rows
    ref = fastgd.fit(X, y, sample_weight=w)
    res = fastgd.fit_file(files / "groups.parquet", x=["a", "b", "c"], y="y", weight="w")
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-12)


@pytest.mark.parametrize("name", ["h.csv", "groups.parquet"])
def test_stochastic_modes_over_files(files, rows, name):
    """One block: the in-memory fit bit for bit (serial: with an unknown row count the
    plan does not choose parameter mixing). Several: deterministic for a seed, and near
    the optimum."""
    X, y, _ = rows
    kw = dict(mode="sgd", tol=None, epochs=2, random_state=0, parallel=False)
    one = fastgd.fit_file(files / name, x=["a", "b", "c"], y="y", block_rows=1 << 20, **kw)
    if name.endswith(".csv"):
        ref = fastgd.fit(X, y, **kw)
        assert np.array_equal(one.coef, ref.coef) and one.intercept == ref.intercept
    a = fastgd.fit_file(files / name, x=["a", "b", "c"], y="y", block_rows=4_096, **kw)
    b = fastgd.fit_file(files / name, x=["a", "b", "c"], y="y", block_rows=4_096, **kw)
    assert np.array_equal(a.coef, b.coef)
    np.testing.assert_allclose(a.coef, [1.0, -2.0, 0.5], atol=0.02)
    mb = fastgd.fit_file(files / name, x=["a", "b", "c"], y="y", mode="minibatch", tol=None, epochs=5,
                         random_state=1, block_rows=4_096)
    np.testing.assert_allclose(mb.coef, [1.0, -2.0, 0.5], atol=0.05)


def test_file_errors(files, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        fastgd.fit_file(tmp_path / "nope.csv", x=["a"], y="y")
    with pytest.raises(ValueError, match=r"no column 'z'; the file has 5 column\(s\): 'a', 'b'"):
        fastgd.fit_file(files / "h.csv", x=["z"], y="y")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,y\n1,2\n3,x\n")
    with pytest.raises(ValueError, match=r"bad.csv, line 3, column 'y' \(position 1\): 'x' is not a number"):
        fastgd.fit_file(bad, x=["a"], y="y")
    gap = tmp_path / "gap.csv"
    gap.write_text("a,y\n1,2\n3,\n4,5\n")
    with pytest.raises(ValueError, match=r"gap.csv, line 3, column 'y': a missing value"):
        fastgd.fit_file(gap, x=["a"], y="y")
    text = tmp_path / "text.parquet"
    pq.write_table(pa.table({"a": ["x", "y"], "y": [1.0, 2.0]}), text)
    with pytest.raises(TypeError, match="column 'a' has type string"):
        fastgd.fit_file(text, x=["a"], y="y")


def test_memmap_fits_without_a_copy(tmp_path, rows):
    from fastgd import _validation as V

    X, y, _ = rows
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert np.shares_memory(V.check_data(mm, y).X, mm)
    np.testing.assert_array_equal(fastgd.fit(mm, y).coef, fastgd.fit(X, y).coef)


def test_model_files(tmp_path, rows):
    X, y, _ = rows
    res = fastgd.fit(X, y)
    res.save(tmp_path / "m.json")
    back = fastgd.load(tmp_path / "m.json")
    np.testing.assert_array_equal(back.predict(X[:10]), res.predict(X[:10]))
    assert back.plan == res.plan and back.final_loss == res.final_loss
    doc = json.loads((tmp_path / "m.json").read_text())
    doc["format"] = 99
    (tmp_path / "new.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="model file format 99; this fastgd reads format 1"):
        fastgd.load(tmp_path / "new.json")
    (tmp_path / "junk.json").write_text("not json")
    with pytest.raises(ValueError, match="not a fastgd model file"):
        fastgd.load(tmp_path / "junk.json")


def test_memory_stays_bounded_by_the_block(tmp_path):
    """A Parquet file of 8 million rows (128 MB of float64) fitted in blocks of 2^18 rows:
    the process's peak RSS grows by far less than the data (measured in a subprocess)."""
    code = (
        "import resource, sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq, fastgd\n"
        "path = sys.argv[1]\n"
        "rng = np.random.default_rng(0)\n"
        "w = pq.ParquetWriter(path, pa.schema([('x', pa.float64()), ('y', pa.float64())]))\n"
        "for _ in range(8):\n"
        "    x = rng.normal(size=1_000_000)\n"
        "    w.write_table(pa.table({'x': x, 'y': 2.5 * x - 1 + rng.normal(size=x.size)}),\n"
        "                  row_group_size=250_000)\n"
        "w.close()\n"
        "del x\n"
        # warm up: the same (parallel) kernels over small blocks: the peak measured
        # below is the fit's, not the compiler's
        "fastgd.fit_file(path, x=['x'], y='y', block_rows=4096, parallel=True)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "res = fastgd.fit_file(path, x=['x'], y='y', block_rows=1 << 18, parallel=True)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print((after - before) / 1024, res.n_rows, res.coef[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.parquet")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    grown, n, slope = out.stdout.split()
    assert int(n) == 8_000_000 and float(slope) == pytest.approx(2.5, abs=1e-3)
    assert float(grown) < 64, f"peak RSS grew by {grown} MB for 128 MB of data"


# --- the command line -------------------------------------------------------------------------

def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "fastgd", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_cli_fit_predict_and_pipes(files, rows, tmp_path):
    X, y, _ = rows
    ref = fastgd.fit(X, y)
    out = _cli("fit", files / "h.csv", "--x", "a", "--x", "b", "--x", "c", "--y", "y",
               "--format", "json", "--save-model", tmp_path / "m.json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    np.testing.assert_allclose(doc["coef"], ref.coef, rtol=1e-12)
    assert doc["rows"] == 20_000 and doc["converged"] is True
    assert set(doc) >= {"coef", "intercept", "loss", "epochs", "converged", "elapsed_s", "rows"}
    table = _cli("fit", files / "groups.parquet", "--x", "a", "--y", "y", "--mode", "sgd",
                 "--epochs", "2", "--random-state", "0")
    assert table.returncode == 0 and "20,000 rows, mode sgd, 2 epoch(s)" in table.stdout
    csv_text = (files / "h.csv").read_text()
    piped = _cli("fit", "-", "--x", "a", "--x", "b", "--x", "c", "--y", "y", "--format", "json",
                 stdin=csv_text)
    assert piped.returncode == 0, piped.stderr
    np.testing.assert_allclose(json.loads(piped.stdout)["coef"], ref.coef, rtol=1e-12)
    pred = _cli("predict", tmp_path / "m.json", files / "h.csv")
    assert pred.returncode == 0, pred.stderr
    lines = pred.stdout.splitlines()
    assert lines[0] == "prediction" and len(lines) == 20_001
    np.testing.assert_allclose(np.array(lines[1:6], dtype=float), ref.predict(X[:5]), rtol=1e-12)


def test_cli_errors_are_one_line_with_exit_status(files, tmp_path):
    missing = _cli("fit", tmp_path / "none.csv", "--x", "a", "--y", "y")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "no such file" in missing.stderr and "Traceback" not in missing.stderr
    unknown = _cli("fit", files / "h.csv", "--x", "zz", "--y", "y")
    assert unknown.returncode == 1 and "no column 'zz'" in unknown.stderr
    usage = _cli("fit", files / "h.csv", "--x", "a")
    assert usage.returncode == 2 and "--y" in usage.stderr
    bad_mode = _cli("fit", files / "h.csv", "--x", "a", "--y", "y", "--mode", "fast")
    assert bad_mode.returncode == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("a,y\n1,2\n3,x\n")
    unparsable = _cli("fit", bad, "--x", "a", "--y", "y")
    assert unparsable.returncode == 1 and "line 3, column 'y'" in unparsable.stderr
    assert "Traceback" not in unparsable.stderr
    helped = _cli("fit", "--help")
    assert helped.returncode == 0 and "examples:" in helped.stdout and "--save-model" in helped.stdout


# --- Ctrl-C and progress --------------------------------------------------------------------

def test_ctrl_c_stops_at_the_end_of_the_epoch_with_the_result():
    """A SIGINT during a fit (sent from the callback, i.e. mid-fit): the fit ends that
    epoch and raises FitInterrupted carrying a finite result that the same fit, stopped
    by its callback at the same epoch, reproduces bit for bit."""
    import signal

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=2000)
    kw = dict(mode="sgd", tol=None, epochs=50, random_state=0)

    def interrupt(epoch, coef, intercept, loss):
        if epoch == 1:
            time.sleep(0.1)  # fits take Ctrl-C over once they have run 0.05 s
        if epoch == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(fastgd.FitInterrupted) as info:
        fastgd.fit(X, y, callback=interrupt, **kw)
    res = info.value.result
    assert isinstance(info.value, KeyboardInterrupt) and res.n_epochs == 3 and not res.converged
    ref = fastgd.fit(X, y, callback=lambda e, *a: e < 3, **kw)
    assert np.array_equal(res.coef, ref.coef) and res.intercept == ref.intercept
    # the handler is restored afterwards
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_progress_bar_on_request(capsys):
    pytest.importorskip("tqdm")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 2))
    fastgd.fit(X, X @ [1.0, 2.0], mode="sgd", tol=None, epochs=3, progress=True)
    err = capsys.readouterr().err
    assert "0/3" in err and "epoch" in err  # the bar (its loss shows once it refreshes)
    fastgd.fit(X, X @ [1.0, 2.0], mode="sgd", tol=None, epochs=3, progress="auto")  # not a terminal
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="progress must be True, False or 'auto'"):
        fastgd.fit(X, X @ [1.0, 2.0], progress="yes")


# --- pictures ---------------------------------------------------------------------------------

def test_plots_render_to_png(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from fastgd import plot

    rng = np.random.default_rng(0)
    x = rng.uniform(-5, 5, 100_000)
    y = 2.5 * x - 1 + rng.normal(0, 0.5, x.size)
    res = fastgd.fit(x, y, mode="sgd", tol=None, epochs=4, random_state=0)
    ax = plot.fit_line(res, x, y)
    assert len(ax.collections[0].get_offsets()) == plot.MAX_POINTS  # subsampled
    line = ax.lines[0].get_xydata()
    assert (line[1, 1] - line[0, 1]) / (line[1, 0] - line[0, 0]) == pytest.approx(res.coef[0])
    ax = plot.loss_curve(res)
    assert np.allclose(ax.lines[0].get_ydata(), res.loss_history)
    path = plot.descent_path(x, y, res)
    assert path.shape == (5, 2) and path[-1, 0] == res.coef[0] and path[-1, 1] == res.intercept
    ax = plot.loss_surface(x, y, res, path=path)
    assert np.array_equal(ax.lines[0].get_xydata(), path)
    fig = plot.summary(res, x, y, path=path, file=tmp_path / "all.png")
    assert len(fig.axes) >= 3
    assert (tmp_path / "all.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="draws one feature"):
        plot.fit_line(res, np.c_[x, x], y)


def test_cli_plot(files, tmp_path):
    pytest.importorskip("matplotlib")
    out = _cli("fit", files / "h.csv", "--x", "a", "--y", "y", "--mode", "sgd", "--epochs", "3",
               "--random-state", "0", "--plot", tmp_path / "fit.png", "--quiet")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "fit.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_bench(files, tmp_path):
    out = _cli("bench", "--n", "3000", "--d", "2", "--rounds", "1", "--json", tmp_path / "b.json")
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "b.json").read_text())
    names = [r["name"] for r in doc["results"]]
    assert names[0].startswith("fastgd default fit") and "numpy.linalg.lstsq" in names
    by = {r["name"]: r for r in doc["results"]}
    assert abs(by["fastgd default fit (batch, to the optimum)"]["excess_mse"]) < 1e-12
    assert by["numpy.linalg.lstsq"]["excess_mse"] == 0.0
    assert "x fastgd fit" in out.stdout and "excess MSE" in out.stdout
    on_file = _cli("bench", files / "h.csv", "--x", "a", "--y", "y", "--rounds", "1")
    assert on_file.returncode == 0 and "20,000 rows x 1 feature(s)" in on_file.stdout
    missing = _cli("bench", files / "h.csv", "--x", "a")
    assert missing.returncode == 1 and "--y COL" in missing.stderr


def test_cli_bench_lists_missing_peers():
    from tests._without import run_without

    out = run_without({"sklearn"}, (
        "import sys\n"
        "from fastgd.cli import main\n"
        "sys.exit(main(['bench', '--n', '2000', '--d', '1', '--rounds', '1']))\n"))
    assert out.returncode == 0, out.stderr
    assert 'skipped: scikit-learn is not installed (pip install "fastgd[sklearn]")' in out.stdout


def test_the_version_is_the_projects():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', text, re.M).group(1) == fastgd.__version__


@pytest.mark.parametrize("name", ["h.csv", "groups.parquet"])
def test_file_blocks_are_read_in_shuffled_order(files, rows, name):
    """The blocks of a file (CSV byte ranges, Parquet row groups) are the blocks of a
    list: the stochastic fit of the file equals fit_chunks of that list bit for bit (the
    same shuffled block order), and the blocks hold every row once, in order."""
    from fastgd.io import FileReader

    X, y, _ = rows
    reader = FileReader(files / name, ["a", "b", "c"], "y", block_rows=4_096)
    k = reader.random_access()
    assert k > 1
    blocks = [reader.block(j) for j in range(k)]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in blocks]), X)
    kw = dict(mode="sgd", tol=None, epochs=2, random_state=5, parallel=False)
    res = fastgd.fit_file(files / name, x=["a", "b", "c"], y="y", block_rows=4_096, **kw)
    ref = fastgd.fit_chunks(blocks, **kw)
    assert np.array_equal(res.coef, ref.coef) and res.intercept == ref.intercept
