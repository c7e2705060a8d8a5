"""Files: a streaming batch epoch against pyarrow reading the same batches, and the
memory of a fit over a Parquet file (issue 11).

Group ``file-epoch|rows=...``: contenders ``pyarrow-read`` (pyarrow alone decodes every
batch of the x and y columns of the file, and touches each value through ``to_numpy``)
and ``fastgd-stream-epoch`` (one loss-and-gradient pass of ``fastgd.fit_file`` over the
same batches: read, convert, kernel). The target: the epoch within 1.5x the read.
Group ``file-memory|rows=...``: the peak-RSS growth of ``fastgd.fit_file`` (the default
fit, two passes) in a fresh process; ``extra_info["grown_mb"]`` is the figure (the
target at 2e7 rows, a 320 MB file of float64: at most 200 MB). 10^6 rows run in the smoke
run; 2e7 rows are ``slow``.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import fastgd  # noqa: E402
from fastgd.io import FileReader  # noqa: E402
from fastgd.sources import ChunkSource  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = [pytest.param(10**6, id="rows1e6"),
         pytest.param(2 * 10**7, id="rows2e7", marks=pytest.mark.slow)]
BLOCK_ROWS = 1 << 20


def _write(path, n):
    rng = np.random.default_rng(0)
    schema = pa.schema([("x", pa.float64()), ("y", pa.float64())])
    with pq.ParquetWriter(path, schema) as w:
        for start in range(0, n, 1_000_000):
            m = min(1_000_000, n - start)
            x = rng.normal(size=m)
            w.write_table(pa.table({"x": x, "y": 2.5 * x - 1 + rng.normal(size=m)}),
                          row_group_size=BLOCK_ROWS)


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    made = {}

    def get(n):
        if n not in made:
            made[n] = tmp_path_factory.mktemp("files") / f"rows{n}.parquet"
            _write(made[n], n)
        return made[n]

    return get


def _read_only(path):
    total = 0.0
    for b in pq.ParquetFile(path).iter_batches(batch_size=BLOCK_ROWS, columns=["x", "y"]):
        total += float(b.column(0).to_numpy()[-1]) + float(b.column(1).to_numpy()[-1])
    return total


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("contender", ["pyarrow-read", "fastgd-stream-epoch"])
def test_file_epoch(benchmark, parquet, n, contender):
    path = parquet(n)
    benchmark.group = f"file-epoch|rows={n}"
    benchmark.extra_info.update(contender=contender, n=n, d=1, bytes=16 * n)
    if contender == "pyarrow-read":
        benchmark.pedantic(_read_only, args=(path,), rounds=3, iterations=1, warmup_rounds=1)
        return
    reader = FileReader(path, ["x"], "y", block_rows=BLOCK_ROWS)
    source = ChunkSource(reader, parallel="auto")
    coef = np.array([2.0, -0.5])
    sums = benchmark.pedantic(source.sse_grad, args=(coef,), rounds=3, iterations=1,
                              warmup_rounds=1)
    # the oracle: the in-memory pass over the same rows
    t = pq.read_table(path)
    ref = fastgd.sse(t.column("x").to_numpy(), t.column("y").to_numpy(), [2.0], -0.5)
    assert sums[0] == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("n", SIZES)
def test_file_memory(benchmark, parquet, n):
    path = parquet(n)
    benchmark.group = f"file-memory|rows={n}"
    code = (
        "import resource, sys, fastgd\n"
        # warm up: the same kernels (parallel ones) compiled over small blocks, so the
        # peak RSS measured below is the fit's, not the compiler's
        "fastgd.fit_file(sys.argv[1], x=['x'], y='y', block_rows=4096, parallel=True)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "res = fastgd.fit_file(sys.argv[1], x=['x'], y='y', parallel=True)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print((after - before) / 1024, res.n_rows, res.coef[0], res.elapsed_s)\n"
    )

    def probe():
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                             text=True, timeout=600, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    grown, rows, slope, fit_s = benchmark.pedantic(probe, rounds=1, iterations=1)
    assert int(rows) == n and float(slope) == pytest.approx(2.5, abs=1e-2)
    benchmark.extra_info.update(contender="fastgd-fit-file", n=n, d=1, grown_mb=float(grown),
                                file_mb=16 * n / 1024**2, fit_s=float(fit_s), timed="process")
    assert float(grown) <= 200, f"peak RSS grew by {grown} MB"
