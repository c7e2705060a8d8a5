"""The linter, as CI runs it: ruff with the project's small rule set (pyproject.toml,
``[tool.ruff]``) over the package, the tests, the benchmarks and the docs' scripts.

Oracle: ruff's own report; the test prints it. ``tox -e lint`` runs the same check (and the
docstring check of ``tests/test_docstrings.py``)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ruff():
    """The ruff command: the module of the test environment, else one on the PATH."""
    try:
        import ruff  # noqa: F401
    except ImportError:
        exe = shutil.which("ruff")
        if exe is None:
            pytest.fail("ruff is not installed: pip install -e '.[test]' installs it")
        return [exe]
    return [sys.executable, "-m", "ruff"]


def test_ruff_finds_nothing():
    proc = subprocess.run(ruff() + ["check", "--no-cache", "fastgd", "tests", "bench", "docs"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_reads_the_project_rules(tmp_path):
    """The check is live: a file with an unused import fails it (F401), and a long line
    (E501) fails it outside the tests."""
    bad = tmp_path / "fastgd_style_probe.py"
    bad.write_text("import os\n" + "x = '" + "a" * 120 + "'\n")
    proc = subprocess.run(ruff() + ["check", "--no-cache", "--config",
                                    str(ROOT / "pyproject.toml"), str(bad)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "F401" in proc.stdout and "E501" in proc.stdout
