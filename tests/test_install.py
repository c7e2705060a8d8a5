"""The installed package stays what pip installed: compiled kernels are cached outside it.

numba's default cache sits in ``__pycache__`` next to the source; pip does not know those
files, so ``pip uninstall`` left ``site-packages/fastgd/`` behind, and that folder then
shadowed a later editable install as a namespace package (the README's two commands, one
after the other, failed at collection). ``.ci/run`` runs that exact sequence in a fresh
virtual environment; this test checks the mechanism in a subprocess.
"""
import os
import subprocess
import sys
from pathlib import Path

import fastgd

PKG = Path(fastgd.__file__).resolve().parent


def _fit_in_subprocess(env):
    # an SGD epoch always runs a compiled kernel (small batch fits need none: fastgd.sources.small)
    code = ("import numpy as np, fastgd; fastgd.fit(np.arange(50.0), np.arange(50.0) * 2 + 1, "
            "mode='sgd', epochs=1)")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)


def test_kernel_cache_goes_to_the_user_cache_folder_not_the_package(tmp_path):
    before = set(PKG.rglob("*.nb[ic]"))
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "FASTGD_CACHE_DIR",
                                                            "FASTGD_DISABLE_CACHE")}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    _fit_in_subprocess(env)
    cached = list((tmp_path / "fastgd").rglob("*.nbi"))
    assert cached, "no kernel was cached in $XDG_CACHE_HOME/fastgd"
    assert set(PKG.rglob("*.nb[ic]")) == before, "kernel cache files written into the package"


def test_fastgd_cache_dir_wins_and_an_unwritable_one_falls_back_quietly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FASTGD_DISABLE_CACHE"}
    env["FASTGD_CACHE_DIR"] = str(tmp_path / "kernels")
    _fit_in_subprocess(env)
    assert list((tmp_path / "kernels").rglob("*.nbi"))
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    env["FASTGD_CACHE_DIR"] = str(blocked / "sub")
    before = set(PKG.rglob("*.nb[ic]"))
    _fit_in_subprocess(env)  # compiles without a cache, no error, nothing in the package
    assert set(PKG.rglob("*.nb[ic]")) == before
