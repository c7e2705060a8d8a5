"""The real command, in a subprocess."""
import os
import re
import subprocess
import sys
import tempfile

import pytest

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
    import fastgd

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
    import numpy as np

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
