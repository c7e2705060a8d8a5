"""Cold starts: a first call in a new Python process with an empty kernel cache.

Each case runs in a fresh interpreter whose ``FASTGD_CACHE_DIR`` is a new, empty folder
(a fresh container, CI job or pipeline worker), import included, and reports its wall
time and the kernels it compiled, slowest first: every top-level compilation is timed by
wrapping ``numba.core.dispatcher.Dispatcher.compile`` (a kernel's time includes the
helpers compiled inside it). ``bench/test_coldstart.py`` times each case once and the
benchmark session prints the table (``bench/conftest.py``).

Run as a script for a table of several processes per case (best and median)::

    python -m bench.coldstart 3            # every case, 3 processes each
    python -m bench.coldstart 3 "sgd 1e5x5"
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

_DATA = "import numpy as np; r = np.random.default_rng(0); "
_X1 = "x = r.normal(size=100_000); y = 2 * x + 1 + r.normal(size=100_000); "
_X5 = ("X = r.normal(size=(100_000, 5)); y = X @ [1., 2, 3, 4, 5] + 1 + "
       "r.normal(size=100_000); ")
_X5M = ("X = r.normal(size=(1_000_000, 5)); y = X @ [1., 2, 3, 4, 5] + 1 + "
        "r.normal(size=1_000_000); ")
_X100 = ("X = r.normal(size=(30_000, 100)); y = X @ np.linspace(-1, 1, 100) + 1 + "
         "r.normal(size=30_000); ")
_CHECK = "assert abs(res.intercept - 1.0) < 0.05, res.intercept; "

#: case -> Python code (each prints nothing; an assertion checks the fit)
CASES = {
    "import": "import fastgd",
    "fit 1e5x1": _DATA + _X1 + "import fastgd; res = fastgd.fit(x, y); " + _CHECK,
    "fit 1e5x5": _DATA + _X5 + "import fastgd; res = fastgd.fit(X, y); " + _CHECK,
    "sgd 1e5x5": _DATA + _X5 + "import fastgd; res = fastgd.fit(X, y, mode='sgd'); " + _CHECK,
    "minibatch 1e5x5": (_DATA + _X5 + "import fastgd; res = fastgd.fit(X, y, mode='minibatch'); "
                        + _CHECK),
    "GDRegressor 1e5x5": (_DATA + _X5 + "import fastgd; res = fastgd.GDRegressor().fit(X, y); "
                          "assert abs(res.intercept_ - 1.0) < 0.05"),
    "fit 1e6x5 (kernels)": _DATA + _X5M + "import fastgd; res = fastgd.fit(X, y); " + _CHECK,
    # the gram path of wide data: its moments from BLAS (nothing compiled for them), the
    # refinement's loss pass compiled
    "fit 3e4x100 (gram)": (_DATA + _X100 + "import fastgd; res = fastgd.fit(X, y); "
                           + _CHECK),
    "cli fit 1e5 csv": None,  # the command line, on a CSV file written once
    "demo warm-up": None,     # `fastgd demo --n 600000`: the warm-up line it prints
}

#: wraps numba's compile to time each top-level compilation; prints one JSON line
_PROBE = r'''
import atexit, importlib.util, json, sys, time
_times, _depth = [], [0]
def _install(d):
    orig = d.Dispatcher.compile
    def compile(self, sig):
        t = time.perf_counter()
        _depth[0] += 1
        try:
            return orig(self, sig)
        finally:
            _depth[0] -= 1
            if _depth[0] == 0:
                _times.append((time.perf_counter() - t, self.py_func.__qualname__))
    d.Dispatcher.compile = compile
class _Hook:
    # the timer is installed when numba's dispatcher is first imported, not before:
    # whether fastgd imports numba at all is part of what is measured
    def find_spec(self, name, path=None, target=None):
        if name != "numba.core.dispatcher":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            _install(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, _Hook())
def _report():
    print("@@cold@@" + json.dumps({"compiles": sorted(_times, reverse=True)[:10]}),
          file=sys.stderr)
atexit.register(_report)
'''


def _csv():
    path = os.path.join(tempfile.gettempdir(), "fastgd-coldstart-1e5.csv")
    if not os.path.exists(path):
        import numpy as np

        r = np.random.default_rng(0)
        x = r.normal(size=100_000)
        tmp = path + f".tmp{os.getpid()}"
        np.savetxt(tmp, np.c_[x, 2 * x + 1 + r.normal(size=100_000)], delimiter=",",
                   header="x,y", comments="", fmt="%.10g")
        os.replace(tmp, path)
    return path


def run(case, root=None):
    """``(wall_s, compiles)`` of ``case`` in a new process with an empty kernel cache:
    the wall time (the demo's: its printed warm-up), and the ten slowest top-level
    compilations as ``(seconds, kernel)``. ``root``: a source tree to put first on the
    path (to measure another checkout)."""
    with tempfile.TemporaryDirectory(prefix="fastgd-cold-") as cache:
        env = dict(os.environ, FASTGD_CACHE_DIR=cache, PYTHONWARNINGS="ignore")
        env.pop("NUMBA_CACHE_DIR", None)
        env.pop("FASTGD_DISABLE_CACHE", None)
        if root is not None:
            env["PYTHONPATH"] = str(root)
        probe = [sys.executable, "-c", _PROBE + "\nimport runpy, sys\n"
                 "sys.argv = ['fastgd'] + sys.argv[1:]\nrunpy.run_module('fastgd', "
                 "run_name='__main__')"]
        if case == "cli fit 1e5 csv":
            cmd = probe + ["fit", _csv(), "--x", "x", "--y", "y", "--quiet"]
        elif case == "demo warm-up":
            cmd = probe + ["demo", "--n", "600000"]
        else:
            cmd = [sys.executable, "-c", _PROBE + CASES[case]]
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600,
                              cwd=tempfile.gettempdir())
        wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"{case}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    if case == "demo warm-up":
        line = next(l for l in proc.stdout.splitlines() if l.startswith("JIT warm-up"))
        wall = float(line.split(":")[1].split()[0])
    info = [l for l in proc.stderr.splitlines() if l.startswith("@@cold@@")]
    compiles = json.loads(info[-1][len("@@cold@@"):])["compiles"] if info else []
    return wall, [(round(t, 3), name) for t, name in compiles]


def main(argv):
    reps = int(argv[0]) if argv else 3
    cases = argv[1:] or list(CASES)
    for case in cases:
        runs = [run(case) for _ in range(reps)]
        walls = [w for w, _ in runs]
        slow = ", ".join(f"{name} {t:.2f}" for t, name in runs[0][1][:5])
        print(f"{case:20s} best {min(walls):6.2f} s  median {statistics.median(walls):6.2f} s"
              f"  slowest compiles: {slow or '-'}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
