"""``bench/report.py`` on a small hand-made pytest-benchmark file, so the report cannot rot
either (the smoke run saves no JSON to feed it)."""
import json

import pytest

from . import report


def _bench(group, contender, t, **info):
    return {"group": group, "name": f"test_{contender}", "stats": {"min": t, "median": 1.1 * t},
            "extra_info": {"contender": contender, **info}}


WL = dict(n=1000, d=1, dtype="float64", threads=2, bytes=16000)


@pytest.fixture
def saved(tmp_path):
    data = {
        "machine_info": {"node": "box", "cpu": {"brand_raw": "cpu", "count": 2}},
        "commit_info": {"id": "0123456789abcdef", "branch": "main", "dirty": False},
        "datetime": "2026-11-23T00:00:00", "version": "5.2.3",
        "benchmarks": [
            _bench("batch-epoch|n=1000|d=1|float64", "bandwidth-reference", 1e-6,
                   reference=True, epochs=1, **WL),
            _bench("batch-epoch|n=1000|d=1|float64", "fastgd-epoch-serial", 2e-6, epochs=1,
                   loss=0.5, loss_rel_err=1e-16, **WL),
            _bench("batch-epoch|n=1000|d=1|float64", "numpy", 8e-6, epochs=1, loss=0.5, **WL),
            _bench("batch-fit|n=1000|d=1|float64", "fastgd-fit-serial", 1e-5, epochs=5, **WL),
            _bench("fit|n=1000|d=1|float64", "fastgd-default", 3e-5, epochs=None, excess=0.0, **WL),
            _bench("fit|n=1000|d=1|float64", "numpy-lstsq", 9e-5, epochs=None, excess=0.0, **WL),
            _bench("memory|n=1000|d=1|float64", "fastgd-sgd", 0.6, timed="process",
                   extra_mb=1.5, **WL),
            _bench("coldstart", "import", 0.3),
            {"group": None, "name": "test_bare", "stats": {"min": 1.0, "median": 1.0}},
        ],
    }
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(data))
    return path


def test_markdown(saved):
    md = report.markdown(report.load(saved))
    lines = md.splitlines()

    def row(contender):
        return next(line for line in lines if f"| {contender}" in line)

    # the reference first, ratios against it and against each peer
    assert "| A | bandwidth-reference (reference) |" in md
    assert "| 2 | 2 | 1 | 0.25 |" in row("fastgd-epoch-serial")
    # per epoch = min / epochs; a group without a reference borrows the workload's
    assert "| 10 us | 11 us | 2 us |" in row("fastgd-fit-serial")
    assert "2 \u2020" in row("fastgd-fit-serial")
    # fits to convergence: no per-epoch figure, no reference, but peer ratios
    assert "| - | - | - | - | 1 | 0.333 |" in row("fastgd-default")
    # the memory probe's time is a whole process: no ratios
    assert "extra_mb=1.5" in row("fastgd-sgd") and "| - | - | - | - | - |" in row("fastgd-sgd")
    assert "## coldstart" in md and "## (no group)" in md


def test_groups_filter_and_main(saved, tmp_path, capsys):
    out = tmp_path / "r.md"
    assert report.main([str(saved), "--out-md", str(out), "--groups", "^fit"]) == 0
    text = out.read_text()
    assert "## fit|n=1000|d=1|float64" in text and "batch-epoch" not in text
    assert "\u2020" not in text  # no per-epoch figures there, so nothing borrowed
    report.main([str(saved), "--groups", "nothing-matches"])
    assert "(no benchmarks in groups matching" in capsys.readouterr().out


def test_png(saved, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "r.png"
    report.main([str(saved), "--out-md", str(tmp_path / "r.md"), "--out-png", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
