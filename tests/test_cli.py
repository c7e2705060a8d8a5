"""The real command, in a subprocess."""
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

import numpy as np
import pytest

import fastgd

#: the subprocesses' own kernel cache: kept apart from the test process's, which then
#: only ever loads kernels it compiled itself (see fastgd/_config.py on cached kernels)
CACHE = tempfile.mkdtemp(prefix="fastgd-cli-cache-")


def _run(*args):
    return subprocess.run(args, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning",
                               "FASTGD_CACHE_DIR": CACHE})


@pytest.mark.parametrize("prefix", [["fastgd"], [sys.executable, "-m", "fastgd"]])
def test_demo_runs_and_recovers_the_line(prefix):
    proc = _run(*prefix, "demo", "--n", "200000", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    # nothing to warn about: the warm-up's one-epoch fits are not the user's
    assert "warning" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"(batch|minibatch|sgd|lstsq)\s+(\S+)\s+\S+\s+\S+\s+(\S+)\s+(\S+)\s+(\S+)$", line)
        if m:
            rows[(m[1], m[2])] = tuple(float(v) for v in m.group(3, 4, 5))
    assert set(rows) == {(m, p) for m in ("batch", "minibatch", "sgd") for p in ("False", "True")} | {("lstsq", "-")}
    best_loss, best_m, best_c = rows[("lstsq", "-")]
    # the embedded line is y = 2.5 x - 1 with noise sd 0.5: lstsq lands next to it
    assert abs(best_m - 2.5) < 0.01 and abs(best_c + 1.0) < 0.01
    for (mode, parallel), (loss, m, c) in rows.items():
        assert loss >= best_loss * (1 - 1e-9), (mode, loss)
        if mode == "batch":  # converged: the lstsq optimum to the printed digits
            assert abs(m - best_m) <= 2e-6 and abs(c - best_c) <= 2e-6, (mode, m, c)
        elif mode == "sgd":  # scaled, averaged SGD, serial or mixed: at the optimum
            assert loss <= best_loss * (1 + 1e-4), (mode, parallel, loss)
        else:  # 3 epochs of constant mini-batch steps: a neighbourhood
            assert loss < 1.5 * best_loss and abs(m - 2.5) < 0.15, (mode, loss, m)
    assert rows[("batch", "False")] == rows[("batch", "True")]  # bit-identical


def test_version_and_errors():
    proc = _run("fastgd", "--version")
    assert proc.returncode == 0 and fastgd.__version__ in proc.stdout
    proc = _run("fastgd", "demo", "--n", "10")
    assert proc.returncode == 2 and "--n must be at least 4096" in proc.stderr
    proc = _run("fastgd")
    assert proc.returncode == 2 and "demo" in proc.stderr


def test_import_needs_only_numpy_and_numba():
    # (numba itself imports scipy when it is installed; fastgd never needs it)
    code = ("import sys, fastgd; bad = [m for m in ('sklearn', 'dask', 'pyarrow', 'matplotlib', "
            "'pandas', 'torch', 'tqdm') if m in sys.modules]; print(bad)")
    proc = _run(sys.executable, "-c", code)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_the_first_run_says_it_compiles(tmp_path):
    """With an empty kernel cache a command that needs kernels says so on stderr, once;
    with the cache filled, or for small data that needs no kernel, it says nothing."""
    data = tmp_path / "d.csv"
    x = np.linspace(0, 1, 500)
    np.savetxt(data, np.c_[x, 2 * x + 1], delimiter=",", header="x,y", comments="", fmt="%.17g")
    env = {**os.environ, "FASTGD_CACHE_DIR": str(tmp_path / "cache")}

    def fit(*extra):
        return subprocess.run(["fastgd", "fit", str(data), "--x", "x", "--y", "y", "--quiet",
                               *extra], capture_output=True, text=True, timeout=300, env=env)

    note = "fastgd: compiling kernels for the first run"
    proc = fit()  # the default fit of 500 rows: NumPy's passes, nothing to compile
    assert proc.returncode == 0 and note not in proc.stderr, proc.stderr
    proc = fit("--mode", "sgd", "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count(note) == 1 and str(tmp_path / "cache") in proc.stderr
    proc = fit("--mode", "sgd", "--epochs", "1")
    assert proc.returncode == 0 and note not in proc.stderr, proc.stderr


# --- issue 20: first steps as a user expects them ------------------------------------------
def _csv(path, n, seed=0, header="a,b,y", **kw):
    """A CSV of ``n`` rows ``a, b, y = a - 2 b + 3 + noise``; returns the path."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = X @ [1.0, -2.0] + 3.0 + 0.1 * rng.normal(size=n)
    np.savetxt(path, np.c_[X, y], delimiter=",", header=header or "", comments="",
               fmt="%.17g", **kw)
    return path


def _said(err):
    """The lines of stderr the command wrote (the first run's compile note aside)."""
    return [ln for ln in err.splitlines() if not ln.startswith("fastgd: compiling")]


def _env():
    return {**os.environ, "FASTGD_CACHE_DIR": CACHE}


# --- 6. Ctrl-C and closed pipes ----------------------------------------------------------

def _interrupt_on_the_bar(argv, pattern=re.compile(rb"(\d+)/1000000")):
    """Run ``fastgd argv`` with stderr on a terminal (a pseudo-terminal: the progress bar
    shows once the fit has run a second), send SIGINT once the bar shows an epoch done,
    and return ``(returncode, stdout, stderr)``. The bar says the fit is in its epochs,
    so the first Ctrl-C reaches the fit's own handler, whatever the machine's speed."""
    master, slave = pty.openpty()
    # a terminal's size: tqdm draws nothing on a terminal 0 columns wide (a fresh pty's)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
    proc = subprocess.Popen(["fastgd", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=slave, env=_env())
    os.close(slave)
    seen, sent, deadline = b"", False, time.monotonic() + 240
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:  # the child closed its end
                    break
            m = pattern.findall(seen)
            if not sent and m and int(m[-1]) >= 1:
                proc.send_signal(signal.SIGINT)
                sent = True
        if not sent:
            proc.kill()
        out = proc.stdout.read()
        proc.wait(timeout=60)
        try:  # what the child wrote last
            while select.select([master], [], [], 0.1)[0]:
                seen += os.read(master, 65536)
        except OSError:
            pass
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert sent, seen[-2000:]
    return proc.returncode, out.decode(), seen.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def sgd_csv(tmp_path_factory):
    return _csv(tmp_path_factory.mktemp("ctrl_c") / "rows.csv", 20_000)


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_ctrl_c_prints_the_parameters_reached_and_exits_130(sgd_csv, fmt):
    """Oracle: the same fit stopped by its callback after the epoch printed, in this
    process, bit for bit (json) or to the 10 digits printed (table)."""
    kw = dict(mode="sgd", epochs=1_000_000, random_state=3, tol=None)
    status, out, err = _interrupt_on_the_bar(
        ["fit", sgd_csv, "--x", "a", "--x", "b", "--y", "y", "--mode", "sgd",
         "--epochs", "1000000", "--tol", "none", "--random-state", "3", "--format", fmt])
    assert status == 130, (out, err)
    assert "Traceback" not in err and "interrupted (Ctrl-C) after epoch" in err
    if fmt == "json":
        doc = json.loads(out)
        k = doc["epochs"]
        assert doc["interrupted"] is True and doc["converged"] is False
        assert doc["rows"] == 20_000 and doc["features"] == ["a", "b"]
    else:
        k = int(re.search(r"interrupted after epoch (\d+) \(Ctrl-C\)", out).group(1))
        assert out.startswith(f"fastgd fit of {sgd_csv}: 20,000 rows, mode sgd, interrupted")
    assert 1 <= k < 1_000_000 and f"after epoch {k}:" in err
    ref = fastgd.fit_file(sgd_csv, x=["a", "b"], y="y", callback=lambda e, *_: e < k, **kw)
    if fmt == "json":
        assert doc["coef"] == ref.coef.tolist() and doc["intercept"] == ref.intercept
        assert doc["loss"] == ref.final_loss
    else:
        assert f"  {'a':<12} {ref.coef[0]: .10g}\n" in out
        assert f"  {'(intercept)':<12} {ref.intercept: .10g}\n" in out


def _wait_for_epoch(ckpt, proc, epoch):
    """Wait until the checkpoint ``ckpt`` holds ``epoch`` or later (the fit is then in
    its epochs, watching for Ctrl-C); returns the epoch it holds."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            held = json.loads(ckpt.read_text())["epoch"]
        except (OSError, ValueError, KeyError):
            held = 0
        if held >= epoch:
            return held
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint of epoch {epoch}: {proc.poll()}")


def test_ctrl_c_keeps_the_checkpoint_which_resumes_bit_for_bit(sgd_csv, tmp_path):
    ckpt, model = tmp_path / "fit.ckpt", tmp_path / "m.json"
    argv = ["fastgd", "fit", sgd_csv, "--x", "a", "--x", "b", "--y", "y", "--mode", "sgd",
            "--epochs", "300", "--tol", "none", "--random-state", "4", "--checkpoint", ckpt,
            "--save-model", model]
    proc = subprocess.Popen(list(map(str, argv)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    _wait_for_epoch(ckpt, proc, 10)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130 and "Traceback" not in err, err
    k = int(re.search(r"interrupted after epoch (\d+)", out).group(1))
    held = json.loads(ckpt.read_text())["epoch"]
    assert _said(err) == [f"fastgd fit: interrupted (Ctrl-C) after epoch {k}: the parameters "
                          f"reached are printed and saved to {model}; {ckpt} holds epoch "
                          f"{held}: `fastgd resume {ckpt}` continues the fit"]
    assert 10 <= held <= k < 300
    saved = fastgd.load(model)  # the parameters printed, not converged
    assert saved.n_epochs == k and not saved.converged
    resumed = subprocess.run(["fastgd", "resume", str(ckpt), "--format", "json"],
                             capture_output=True, text=True, timeout=300, env=_env())
    assert resumed.returncode == 0, resumed.stderr
    ref = fastgd.fit_file(sgd_csv, x=["a", "b"], y="y", mode="sgd", epochs=300,
                          random_state=4, tol=None)
    doc = json.loads(resumed.stdout)
    assert doc["coef"] == ref.coef.tolist() and doc["intercept"] == ref.intercept
    assert doc["epochs"] == 300 and doc["features"] == ["a", "b"] and doc["rows"] == 20_000


def test_a_second_ctrl_c_stops_at_once_with_one_line(tmp_path):
    data = _csv(tmp_path / "big.csv", 100_000, seed=1)
    ckpt = tmp_path / "fit.ckpt"
    # small blocks: Python's handler runs between two of them, so the first Ctrl-C is
    # taken before the second arrives (signals that arrive during one long compiled
    # call reach Python as one). They also make an epoch long (about 0.27 s here, 400
    # blocks), so both signals land in the epoch that has just begun, however late the
    # checkpoint is seen
    proc = subprocess.Popen(["fastgd", "fit", str(data), "--x", "a", "--y", "y", "--mode",
                             "sgd", "--epochs", "100000", "--tol", "none", "--random-state", "0",
                             "--block-rows", "250", "--checkpoint", str(ckpt)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    _wait_for_epoch(ckpt, proc, 2)  # (an epoch has just begun)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # within the same epoch
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130 and out == "", (out, err)
    held = json.loads(ckpt.read_text())["epoch"]
    assert _said(err) == [f"fastgd fit: interrupted (Ctrl-C) at once: no result to print; "
                          f"{ckpt} holds epoch {held}: `fastgd resume {ckpt}` continues the fit"]
    assert "Traceback" not in err


def test_a_ctrl_c_after_the_result_is_ignored_while_the_command_exits(tmp_path):
    # Ctrl-C pressed twice, the second after the fit had said its result: it reached the
    # interpreter's exit handlers and printed a KeyboardInterrupt traceback
    data = _csv(tmp_path / "d.csv", 20_000, seed=2)
    ckpt = tmp_path / "fit.ckpt"
    proc = subprocess.Popen(["fastgd", "fit", str(data), "--x", "a", "--y", "y", "--mode",
                             "sgd", "--epochs", "100000", "--tol", "none", "--random-state", "0",
                             "--checkpoint", str(ckpt)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    _wait_for_epoch(ckpt, proc, 2)
    proc.send_signal(signal.SIGINT)
    said = []
    while not said or not said[-1].startswith("fastgd fit: interrupted"):
        said.append(proc.stderr.readline())  # the last line the command writes
        assert said[-1], said
    while proc.poll() is None:  # Ctrl-C again and again while it exits
        proc.send_signal(signal.SIGINT)
        time.sleep(0.001)
    rest = proc.stderr.read()
    assert proc.returncode == 130 and rest == "", rest
    assert "interrupted after epoch" in proc.stdout.read()


def test_a_closed_pipe_ends_the_output_quietly(tmp_path):
    data = _csv(tmp_path / "d.csv", 50_000)
    model = tmp_path / "m.json"
    # `fastgd demo | head -3`: the exit status of fastgd (pipefail), nothing on stderr
    proc = subprocess.run(["bash", "-c", "set -o pipefail; fastgd demo --n 1000000 | head -3"],
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 3, proc.stderr
    assert "Error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    # the reader gone before the first line: fit still writes its model, then ends quietly
    for argv in (["fit", data, "--x", "a", "--x", "b", "--y", "y", "--save-model", model],
                 ["demo", "--n", "4096"], ["predict", model, data]):
        p = subprocess.Popen(["fastgd", *map(str, argv)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=_env())
        p.stdout.close()
        err = p.stderr.read().decode()
        assert p.wait(timeout=300) == 0 and "Traceback" not in err and "Error" not in err, \
            (argv, err)
    assert fastgd.load(model).feature_names == ("a", "b")
    # `fastgd predict ... | head -1`: 50,000 predictions are more than a pipe holds
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; fastgd predict {model} {data} "
                                         "| head -2"],
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    m = fastgd.load(model)
    first = np.loadtxt(data, delimiter=",", skiprows=1, max_rows=1, usecols=(0, 1))
    assert proc.stdout.splitlines() == ["prediction", f"{first @ m.coef + m.intercept:.17g}"]


# --- 8. CSV details ----------------------------------------------------------------------

def test_a_headerless_csv_without_no_header_is_refused(tmp_path):
    data = _csv(tmp_path / "nohead.csv", 1000, header=None)
    first = data.read_text().splitlines()[0].split(",")
    proc = _run("fastgd", "fit", str(data), "--x", "0", "--y", "2")
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"fastgd fit: error: {data}: the first line looks like data "
                                  f"(numbers: {first[0]!r}, ")
    assert "pass header=False (--no-header on the command line)" in proc.stderr
    with pytest.raises(ValueError, match="the first line looks like data"):
        fastgd.fit_file(data, x=["0"], y="2")
    piped = subprocess.run(["fastgd", "fit", "-", "--x", "0", "--y", "2"], input=data.read_text(),
                           capture_output=True, text=True, timeout=300, env=_env())
    assert piped.returncode == 1 and piped.stderr.startswith(
        "fastgd fit: error: standard input: the first line looks like data"), piped.stderr
    # a header with some numeric names is a header (and with a blank cell, still data)
    ok = tmp_path / "years.csv"
    ok.write_text("x,2020,y\n1,2,3\n2,3,5\n3,5,8\n")
    assert fastgd.fit_file(ok, x=["x", "2020"], y="y").feature_names == ("x", "2020")
    gap = tmp_path / "gap.csv"
    gap.write_text("1.5,,3\n2,3,5\n")
    with pytest.raises(ValueError, match="the first line looks like data"):
        fastgd.fit_file(gap, x=["0"], y="2")


def test_a_headerless_file_names_its_columns_by_position_everywhere(tmp_path):
    """Fit, JSON, table, model file and predict all say "0", "1"; a model fitted on a
    headerless file predicts on one without --x and without a note."""
    data = _csv(tmp_path / "nohead.csv", 3000, header=None)
    model = tmp_path / "m.json"
    ref = fastgd.fit_file(data, x=["0", "1"], y="2", header=False)
    assert ref.feature_names == ("0", "1")
    proc = _run("fastgd", "fit", str(data), "--no-header", "--x", "0", "--x", "1", "--y", "2",
                "--format", "json", "--save-model", str(model))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["features"] == ["0", "1"] and doc["rows"] == 3000
    assert doc["coef"] == ref.coef.tolist()
    assert json.loads(model.read_text())["feature_names"] == ["0", "1"]
    table = _run("fastgd", "fit", str(data), "--no-header", "--x", "0", "--x", "1", "--y", "2")
    assert [ln.split()[0] for ln in table.stdout.splitlines()[1:3]] == ["0", "1"]
    pred = _run("fastgd", "predict", str(model), str(data), "--no-header")
    assert pred.returncode == 0 and pred.stderr == "", pred.stderr
    X = np.loadtxt(data, delimiter=",")[:, :2]
    np.testing.assert_array_equal(np.array(pred.stdout.split()[1:], dtype=float),
                                  X @ ref.coef + ref.intercept)
    # the same columns in a file with a header: taken by position, and stderr says so
    headed = _csv(tmp_path / "headed.csv", 10)
    note = _run("fastgd", "predict", str(model), str(headed))
    assert note.returncode == 0 and "fitted on a file without a header" in note.stderr
    assert "columns 0, 1 of" in note.stderr and "('a', 'b')" in note.stderr


def test_row_messages_name_the_file_line_and_column(tmp_path):
    """Lines are 1-based lines of the file (the header and blank lines counted), in any
    block of the file; no message speaks of blocks."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(5000, 2))
    y = X @ [1.0, 2.0] + 0.5
    w = rng.uniform(1, 2, 5000)
    lines = ["a,b,y,w"] + [",".join(f"{v:.17g}" for v in row) for row in np.c_[X, y, w]]
    lines.insert(101, "")  # a blank line: a line of the file, not a row
    cases = {  # line (1-based, after the blank one) -> (column, new field), message
        4321: ("b", "", "column 'b': a missing value (an empty cell, null or NaN)"),
        3000: ("y", "inf", "column 'y': inf"),
        4800: ("w", "-2.5", "column 'w' (the weights): -2.5 is negative"),
        2500: ("y", "x", "column 'y' (position 2): 'x' is not a number"),
    }
    cols = lines[0].split(",")
    for line, (col, value, message) in cases.items():
        rows = list(lines)
        fields = rows[line - 1].split(",")
        fields[cols.index(col)] = value
        rows[line - 1] = ",".join(fields)
        path = tmp_path / f"bad{line}.csv"
        path.write_text("\n".join(rows) + "\n")
        for extra in ([], ["--mode", "sgd", "--epochs", "1", "--random-state", "0"]):
            proc = _run("fastgd", "fit", str(path), "--x", "a", "--x", "b", "--y", "y",
                        "--weight", "w", "--block-rows", "1000", *extra)
            assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
            assert proc.stderr.startswith(f"fastgd fit: error: {path}, line {line}, {message}"), \
                (line, extra, proc.stderr)
            assert "block" not in proc.stderr and proc.stderr.count("\n") == 1
    # predict and bench say the same
    model = tmp_path / "m.json"
    fastgd.fit(X, y).save(model)
    nan = tmp_path / "bad4321.csv"
    pred = _run("fastgd", "predict", str(model), str(nan), "--x", "a", "--x", "b")
    assert pred.returncode == 1 and f"{nan}, line 4321, column 'b': a missing value" in pred.stderr
    bench = _run("fastgd", "bench", str(nan), "--x", "a", "--x", "b", "--y", "y", "--rounds", "1")
    assert bench.returncode == 1 and f"{nan}, line 4321, column 'b'" in bench.stderr
    # a Parquet file has rows, 1-based
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    yy = y.copy()
    yy[1234] = np.nan
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "y": yy}), tmp_path / "d.parquet",
                   row_group_size=1000)
    with pytest.raises(ValueError, match=r"d.parquet, row 1235, column 'y': a missing value"):
        fastgd.fit_file(tmp_path / "d.parquet", x=["a", "b"], y="y")


# --- 9. output that reads well -------------------------------------------------------------

def test_the_repr_summarises_long_histories():
    history = np.linspace(2.0, 1.0, 100_001)
    res = fastgd.FitResult(coef=np.arange(3.0), intercept=0.5, loss_history=history,
                           n_epochs=100_000, converged=False, mode="batch",
                           learning_rate=0.1, elapsed_s=1.0)
    text = repr(res)
    assert len(text) < 400 and "\n" not in text
    assert "loss_history=array([2.     , 1.99999, 1.99998, ..., 1.00002, 1.00001, 1.     ], " \
           "shape=(100001,))" in text
    assert "coef=array([0., 1., 2.])" in text and "n_epochs=100000" in text
    short = fastgd.fit([0.0, 1.0, 2.0], [1.0, 3.0, 5.0], learning_rate=0.1, epochs=3, tol=None)
    assert f"loss_history={short.loss_history!r}" in repr(short)  # short: in full


def test_a_loaded_model_says_its_history_is_the_final_loss(tmp_path):
    res = fastgd.fit([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.5])
    res.save(tmp_path / "m.json")
    back = fastgd.load(tmp_path / "m.json")
    assert back.loss_history.tolist() == [res.final_loss]
    assert "(the final loss only: a loaded model; model files keep no history)" in repr(back)
    assert "final loss only" not in repr(res)


def test_bench_prints_rounding_as_zero():
    from fastgd import _compare

    proc = _run("fastgd", "bench", "--n", "20000", "--d", "3", "--rounds", "1")
    assert proc.returncode == 0, proc.stderr
    rows = {ln[:46].strip(): ln[46:].split() for ln in proc.stdout.splitlines()[2:-1]}
    assert rows["numpy.linalg.lstsq"][-2:] == ["0", "(rounding)"]
    for name, fields in rows.items():
        if fields[0] != "skipped:" and fields[-1] != "(rounding)":
            assert float(fields[-1]) > 0, (name, fields)  # never a negative excess
    # the rule: within ROUNDING of the optimum is rounding, of either sign
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 2))
    y = X @ [1.0, 2.0] + rng.normal(size=3000)
    by = {r["name"]: r for r in _compare.run(X, y, rounds=1)}
    sol = np.linalg.lstsq(np.c_[X, np.ones(3000)], y, rcond=None)[0]
    opt = fastgd.mse(X, y, sol[:2], float(sol[2]))
    fit = by["fastgd default fit (batch, to the optimum)"]
    assert fit["rounding"] and fit["excess_mse"] == 0.0 and opt > 0
    assert not by["NumPy gradient epoch (vectorized)"]["rounding"]


def test_resume_names_the_data_it_fitted(tmp_path):
    data = _csv(tmp_path / "d.csv", 3000)
    ckpt = tmp_path / "fit.ckpt"
    fit = _run("fastgd", "fit", str(data), "--x", "a", "--y", "y", "--mode", "sgd",
               "--epochs", "3", "--random-state", "0", "--checkpoint", str(ckpt))
    assert fit.returncode == 0, fit.stderr
    proc = _run("fastgd", "resume", str(ckpt))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"fastgd fit of {data} (resumed from {ckpt}): 3,000 rows, "
                                  "mode sgd, 3 epoch(s)")


def test_a_numeric_rate_that_makes_the_fit_worse_warns_on_the_command_line(tmp_path):
    """Issue 20 item 4 as a command: the exact update runs (exit 0, the parameters it
    reached printed), and one warning line gives the stable limit. Oracle: 2/L with L the
    largest eigenvalue of the mean loss's Hessian (NumPy)."""
    rng = np.random.default_rng(3)
    x = rng.normal(50.0, 10.0, 500)
    y = 3.0 * x + 2.0 + rng.normal(0.0, 10.0, 500)
    path = tmp_path / "small.csv"
    np.savetxt(path, np.c_[x, y], delimiter=",", header="x,y", comments="", fmt="%.17g")
    A = np.column_stack([x, np.ones_like(x)])
    limit = 2.0 / (2.0 * np.linalg.eigvalsh(A.T @ A / len(x))[-1])
    proc = _run("fastgd", "fit", str(path), "--x", "x", "--y", "y", "--learning-rate",
                f"{1.1 * limit:.6g}", "--epochs", "30", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["epochs"] == 30 and doc["loss"] > np.mean((y - y.mean()) ** 2)
    lines = [ln for ln in proc.stderr.splitlines() if "compiling kernels" not in ln]
    assert len(lines) == 1 and lines[0].startswith("fastgd fit: warning: the fit ended with "
                                                   "a loss of "), proc.stderr
    assert f"about {limit:.3g} (2/L" in lines[0] and "learning_rate='auto'" in lines[0]
