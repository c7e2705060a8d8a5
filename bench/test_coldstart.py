"""Start-up costs, each a fresh Python process timed once (``pedantic(rounds=1)``).

Group ``coldstart``:

* ``import``: ``python -c "import fastgd"`` (numba's import included);
* ``first-fit-cold-cache``: the first fit with an empty ``FASTGD_CACHE_DIR``: import,
  compilation of every kernel the fit uses, and writing them to the cache;
* ``first-fit-no-cache``: the same with ``FASTGD_DISABLE_CACHE=1`` (compilation alone);
* ``first-fit-warm-cache``: the first fit in a new process whose cache was filled by an
  earlier process, import included: what a user pays on every run after the first.

Each process prints the fit's slope and intercept, checked (y = x exactly).
"""
import os
import subprocess
import sys
import time

FIT = ("import fastgd, numpy as np; "
       "res = fastgd.fit(np.arange(100.0), np.arange(100.0), epochs=1); "
       "print(repr(res.slope), repr(res.intercept))")


def _env(cache_dir, disable_cache=False):
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    env["FASTGD_CACHE_DIR"] = str(cache_dir)  # fastgd's kernel cache (fastgd/_config.py)
    env.pop("FASTGD_DISABLE_CACHE", None)
    if disable_cache:
        env["FASTGD_DISABLE_CACHE"] = "1"
    return env


def _run(code, env, cwd):
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _check_fit(stdout):
    slope, intercept = (float(v) for v in stdout.split())
    assert abs(slope - 1.0) <= 1e-9 and abs(intercept) <= 1e-7, stdout
    return slope, intercept


def _bench(benchmark, name, code, env, cwd, check=None):
    benchmark.group = "coldstart"
    t0 = time.perf_counter()
    stdout = benchmark.pedantic(_run, args=(code, env, cwd), rounds=1, iterations=1)
    wall = time.perf_counter() - t0
    if check is not None:
        check(stdout)
    benchmark.extra_info.update(contender=name, python=sys.executable, wall_s=wall)


def test_import(benchmark, tmp_path):
    _bench(benchmark, "import", "import fastgd", _env(tmp_path / "cache"), tmp_path)


def test_first_fit_cold_cache(benchmark, tmp_path):
    cache = tmp_path / "cache"
    _bench(benchmark, "first-fit-cold-cache", FIT, _env(cache), tmp_path, _check_fit)
    assert any(cache.rglob("*.nbi")), "the cold run wrote nothing to FASTGD_CACHE_DIR"


def test_first_fit_no_cache(benchmark, tmp_path):
    cache = tmp_path / "cache"
    _bench(benchmark, "first-fit-no-cache", FIT, _env(cache, disable_cache=True), tmp_path,
           _check_fit)
    assert not any(cache.rglob("*.nbi")), "FASTGD_DISABLE_CACHE=1 still wrote a cache"


def test_first_fit_warm_cache(benchmark, tmp_path):
    env = _env(tmp_path / "cache")
    _check_fit(_run(FIT, env, tmp_path))  # fills the cache, untimed
    _bench(benchmark, "first-fit-warm-cache", FIT, env, tmp_path, _check_fit)

