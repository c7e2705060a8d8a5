"""Nothing lost and nothing silently wrong (issue 17): output paths, files and the command
line. Real CSV and Parquet files in a temp folder; the real ``fastgd`` command in a
subprocess. Oracles: the input files byte for byte (nothing destroyed), the in-memory
fit of the same rows (nothing silently wrong), and the exact line and column of a bad
cell (written by the test)."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

import fastgd
from fastgd import _outputs

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

#: the subprocesses' own kernel cache (see tests/test_cli.py)
CACHE = tempfile.mkdtemp(prefix="fastgd-outputs-cache-")
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def _cli(*args, stdin=None, code=None):
    """The real command (or ``code`` run by the same interpreter, for a command with a
    patched write), in a subprocess."""
    argv = [sys.executable, "-c", code, *map(str, args)] if code else \
        [sys.executable, "-m", "fastgd", *map(str, args)]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "FASTGD_CACHE_DIR": CACHE})


def _one_line_error(proc, status=1):
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("fastgd")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(17)
    X = rng.normal(size=(6000, 2))
    y = X @ [2.0, -3.0] + 1.0 + 0.1 * rng.normal(size=6000)
    return X, y


@pytest.fixture
def csv(rows, tmp_path):
    X, y = rows
    p = tmp_path / "v.csv"
    np.savetxt(p, np.c_[X, y], delimiter=",", header="a,b,y", comments="", fmt="%.17g")
    return p


# --- 1. an output path that is an input, or another output ---------------------------------

@pytest.mark.parametrize("opts", [["--checkpoint", "{v}"], ["--save-model", "{v}"],
                                  ["--plot", "{v}"], ["--save-model", "{link}"],
                                  ["--checkpoint", "{hard}"]])
def test_cli_refuses_to_write_over_its_input(csv, opts):
    """The data file, reached by its name, a symbolic link or a hard link, is never
    an output: refused before any work, the file byte-identical afterwards."""
    os.symlink(csv, csv.parent / "link.csv")
    os.link(csv, csv.parent / "hard.csv")
    before = _digest(csv)
    paths = dict(v=csv, link=csv.parent / "link.csv", hard=csv.parent / "hard.csv")
    args = [o.format(**paths) for o in opts]
    proc = _cli("fit", csv, "--x", "a", "--y", "y", "--mode", "sgd", "--epochs", "2",
                "--quiet", *args)
    line = _one_line_error(proc)
    assert f"{opts[0]} " in line and "is the input file" in line and proc.stdout == ""
    assert _digest(csv) == before


def test_cli_refuses_one_path_for_two_outputs(csv, tmp_path):
    proc = _cli("fit", csv, "--x", "a", "--y", "y", "--mode", "sgd", "--epochs", "2",
                "--checkpoint", tmp_path / "f", "--save-model", tmp_path / "f")
    line = _one_line_error(proc)
    assert "--save-model and --checkpoint are the same file" in line
    assert not (tmp_path / "f").exists()


def test_cli_replaces_only_its_own_kind_of_file_without_force(csv, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    for opt in ("--save-model", "--checkpoint", "--plot"):
        line = _one_line_error(_cli("fit", csv, "--x", "a", "--y", "y", opt, notes))
        assert f"{opt} {notes} exists and is not a" in line and "add --force" in line
        assert notes.read_text() == "my notes\n"
    # a model file is replaced by a model file (re-saving is the normal use)
    model = tmp_path / "m.json"
    assert _cli("fit", csv, "--x", "a", "--y", "y", "--save-model", model).returncode == 0
    again = _cli("fit", csv, "--x", "b", "--y", "y", "--save-model", model)
    assert again.returncode == 0, again.stderr
    assert fastgd.load(model).feature_names == ("b",)
    # a checkpoint is not a model: refused without --force
    ckpt = tmp_path / "fit.ckpt"
    assert _cli("fit", csv, "--x", "a", "--y", "y", "--mode", "sgd", "--epochs", "2",
                "--checkpoint", ckpt, "--quiet").returncode == 0
    assert "is not a fastgd model file" in _one_line_error(
        _cli("fit", csv, "--x", "a", "--y", "y", "--save-model", ckpt))
    # --force replaces any file that is not an input
    forced = _cli("fit", csv, "--x", "a", "--y", "y", "--save-model", notes, "--force",
                  "--format", "json")
    assert forced.returncode == 0, forced.stderr
    np.testing.assert_allclose(fastgd.load(notes).coef, json.loads(forced.stdout)["coef"])
    assert "is the input file" in _one_line_error(
        _cli("fit", csv, "--x", "a", "--y", "y", "--save-model", csv, "--force"))


def test_cli_resume_and_bench_outputs(csv, tmp_path):
    ckpt = tmp_path / "fit.ckpt"
    fit = _cli("fit", csv, "--x", "a", "--y", "y", "--mode", "sgd", "--epochs", "2",
               "--random-state", "0", "--checkpoint", ckpt, "--quiet")
    assert fit.returncode == 0, fit.stderr
    before, ckpt_before = _digest(csv), _digest(ckpt)
    assert "same file" in _one_line_error(_cli("resume", ckpt, "--save-model", ckpt))
    assert "is the file fitted" in _one_line_error(_cli("resume", ckpt, "--save-model", csv))
    assert _digest(csv) == before and _digest(ckpt) == ckpt_before
    ok = _cli("resume", ckpt, "--save-model", tmp_path / "m.json")
    assert ok.returncode == 0, ok.stderr
    assert "is the input file" in _one_line_error(
        _cli("bench", csv, "--x", "a", "--y", "y", "--rounds", "1", "--json", csv))
    assert _digest(csv) == before
    notes = tmp_path / "notes.txt"
    notes.write_text("keep")
    assert "is not a fastgd bench result" in _one_line_error(
        _cli("bench", "--n", "500", "--d", "1", "--rounds", "1", "--json", notes))
    assert notes.read_text() == "keep"
    forced = _cli("bench", "--n", "500", "--d", "1", "--rounds", "1", "--json", notes, "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(notes.read_text())["rows"] == 500


def test_api_refuses_inputs_and_other_files(csv, rows, tmp_path):
    X, y = rows
    before = _digest(csv)
    with pytest.raises(ValueError, match="checkpoint .*v.csv is the file fitted"):
        fastgd.fit_file(csv, x=["a"], y="y", mode="sgd", tol=None, epochs=2, checkpoint=csv)
    assert _digest(csv) == before
    # an existing file that fastgd did not write: refused, unless overwrite=True
    with pytest.raises(ValueError, match=r"exists and is not a fastgd checkpoint: .*"
                                         r"pass overwrite=True"):
        fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, checkpoint=csv)
    with pytest.raises(ValueError, match="is not a fastgd checkpoint"):
        fastgd.fit_chunks([(X, y)], mode="sgd", tol=None, epochs=2, checkpoint=csv)
    res = fastgd.fit(X, y)
    with pytest.raises(ValueError, match=r"model file .*v.csv exists and is not a fastgd "
                                         r"model file"):
        res.save(csv)
    assert _digest(csv) == before
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        res.save(tmp_path / "m.json", overwrite="yes")
    # the same kind, or an empty file, is replaced without asking
    res.save(tmp_path / "m.json")
    res.save(tmp_path / "m.json")
    (tmp_path / "empty").touch()
    res.save(tmp_path / "empty")
    assert fastgd.load(tmp_path / "empty").intercept == res.intercept
    ckpt = tmp_path / "fit.ckpt"
    fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, random_state=0, checkpoint=ckpt)
    fastgd.fit(X, y, mode="sgd", tol=None, epochs=3, random_state=0, checkpoint=ckpt)
    assert json.loads(ckpt.read_text())["epoch"] == 3
    # overwrite=True replaces another file
    other = tmp_path / "other.txt"
    other.write_text("x")
    res.save(other, overwrite=True)
    fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, checkpoint=tmp_path / "o2.txt")  # new: fine
    (tmp_path / "o3.txt").write_text("x")
    fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, random_state=0, checkpoint=tmp_path / "o3.txt",
               overwrite=True)
    assert "state" in json.loads((tmp_path / "o3.txt").read_text())


# --- 2. a result lost at the end ------------------------------------------------------------

def test_cli_checks_output_folders_before_the_fit(csv, tmp_path):
    for opt, target in (("--save-model", "/nonexistent/dir/m.json"),
                        ("--plot", "/nonexistent/dir/p.png"),
                        ("--checkpoint", "/nonexistent/dir/f.ckpt"),
                        ("--checkpoint", tmp_path)):
        proc = _cli("fit", csv, "--x", "a", "--y", "y", opt, target)
        line = _one_line_error(proc)
        assert f"{opt} {target}" in line and proc.stdout == ""  # no fit ran
        assert "does not exist" in line or "is a folder" in line


def test_api_checks_the_checkpoint_folder_before_epoch_1(rows, tmp_path):
    X, y = rows
    seen = []
    for bad, what in ((tmp_path / "no" / "f.ckpt", "does not exist"), (tmp_path, "is a folder")):
        with pytest.raises(ValueError, match=what):
            fastgd.fit(X, y, mode="sgd", tol=None, epochs=3, checkpoint=bad,
                       callback=lambda *a: seen.append(a))
    assert seen == []


@pytest.mark.skipif(ROOT, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused_up_front(rows, tmp_path):
    X, y = rows
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="is not writable"):
            fastgd.fit(X, y).save(ro / "m.json")
    finally:
        ro.chmod(0o755)


#: a command whose disk fills at the first fsync: fsync raises ENOSPC
FULL_DISK = ("import errno, os, sys\n"
             "def full(fd):\n"
             "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
             "os.fsync = full\n"
             "from fastgd.cli import main\n"
             "sys.exit(main(sys.argv[1:]))\n")


def test_a_write_failing_at_the_end_prints_the_result_first(csv, rows, tmp_path):
    pytest.importorskip("matplotlib")
    X, y = rows
    model, figure = tmp_path / "m.json", tmp_path / "fit.png"
    proc = _cli("fit", csv, "--x", "a", "--x", "b", "--y", "y", "--format", "json",
                "--save-model", model, "--plot", figure, code=FULL_DISK)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    # the result is on standard output, whole; each error names the user's path
    np.testing.assert_allclose(json.loads(proc.stdout)["coef"], fastgd.fit(X, y).coef,
                               rtol=1e-12)
    assert proc.stderr.splitlines() == [
        f"fastgd fit: error: could not write --save-model {model}: No space left on device",
        f"fastgd fit: error: could not write --plot {figure}: No space left on device"]
    assert os.listdir(tmp_path) == ["v.csv"]  # no model, no figure, no temporary file


# --- 4. temporary files left behind ---------------------------------------------------------

def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_writes_remove_the_temporary_files_of_killed_writers(rows, tmp_path):
    """A writer killed (SIGKILL) between writing its temporary file and the rename
    leaves ``fit.ckpt.tmp<PID>``; the next write of the same target removes it, and never
    the temporary file of a live writer, nor those of other targets."""
    X, y = rows
    target = tmp_path / "fit.ckpt"
    code = ("import os, sys, time\n"
            "def stall(fd):\n"
            "    print('writing', flush=True)\n"
            "    time.sleep(120)\n"
            "os.fsync = stall\n"
            "from fastgd._model import write_atomic\n"
            "write_atomic(sys.argv[1], {'a': 1})\n")
    killed = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE,
                              text=True)
    assert killed.stdout.readline() == "writing\n"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    stale = tmp_path / f"fit.ckpt.tmp{killed.pid}"
    assert stale.exists()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        time.sleep(0.05)
        live_tmp = tmp_path / f"fit.ckpt.tmp{live.pid}"  # written after its process started
        live_tmp.write_text("{")
        reused_pid_tmp = tmp_path / f"fit.ckpt.tmp{os.getppid()}"  # an old file, a newer PID?
        reused_pid_tmp.write_text("{")
        os.utime(reused_pid_tmp, (0, 0))  # written in 1970: before any process alive now
        other = tmp_path / f"other.ckpt.tmp{_dead_pid()}"
        other.write_text("{")
        dead = tmp_path / f"fit.ckpt.tmp{_dead_pid()}"
        dead.write_text("{")
        fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, random_state=0, checkpoint=target)
        assert not stale.exists() and not dead.exists() and not reused_pid_tmp.exists()
        assert live_tmp.exists() and other.exists()
        assert json.loads(target.read_text())["epoch"] == 2
    finally:
        live.kill()
        live.wait()


def test_a_failed_write_removes_its_temporary_file_and_names_the_path(rows, tmp_path,
                                                                     monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    res = fastgd.fit(*rows)
    with pytest.raises(OSError, match=r"No space left on device: '.*m.json'") as info:
        res.save(tmp_path / "m.json")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "m.json")
    assert os.listdir(tmp_path) == []


# --- 7. duplicate header names --------------------------------------------------------------

def test_duplicate_header_names_are_read_by_position(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 2))
    y = X @ [2.0, -3.0] + 0.5
    p = tmp_path / "dup.csv"
    np.savetxt(p, np.c_[X, y], delimiter=",", header="x,x,y", comments="", fmt="%.17g")
    ref = np.linalg.lstsq(np.c_[X, np.ones(3000)], y, rcond=None)[0]
    for x in (["0", "1"], [0, 1]):
        res = fastgd.fit_file(p, x=x, y="y")
        np.testing.assert_allclose(res.coef, ref[:2], rtol=1e-10)
        assert res.feature_names == ("x", "x")
    with pytest.raises(ValueError, match=r"the name 'x' \(x\) is shared by 2 columns, at "
                                         r"positions 0, 1: give the position instead"):
        fastgd.fit_file(p, x=["x"], y="y")
    t = pa.table([pa.array(X[:, 0]), pa.array(X[:, 1]), pa.array(y)], names=["x", "x", "y"])
    pq.write_table(t, tmp_path / "dup.parquet", row_group_size=1000)
    res = fastgd.fit_file(tmp_path / "dup.parquet", x=["0", "1"], y="y")
    np.testing.assert_allclose(res.coef, ref[:2], rtol=1e-10)
    with pytest.raises(ValueError, match="shared by 2 columns"):
        fastgd.fit_file(tmp_path / "dup.parquet", x=["x"], y="y")
    proc = _cli("fit", p, "--x", "x", "--y", "y")
    assert "positions 0, 1" in _one_line_error(proc)
    ok = _cli("fit", p, "--x", "0", "--x", "1", "--y", "2", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    np.testing.assert_allclose(json.loads(ok.stdout)["coef"], ref[:2], rtol=1e-10)


def test_a_digit_name_is_the_column_of_that_name_and_an_int_a_position(tmp_path):
    p = tmp_path / "digits.csv"
    p.write_text("1,0,y\n1,10,3\n2,20,5\n3,30,7.5\n4,41,9\n")
    from fastgd.io import FileReader

    assert FileReader(p, ["0"], "y").xpos == [1]  # the column named "0"
    assert FileReader(p, [0], "y").xpos == [0]  # position 0
    assert FileReader(p, ["y"], 2).ypos == 2
    with pytest.raises(ValueError, match="position 5 is out of range: the file has 3"):
        FileReader(p, [5], "y")


def test_a_resumed_fit_of_a_repeated_name_reads_the_same_positions(tmp_path):
    from tests.conftest import crash_then_resume

    rng = np.random.default_rng(2)
    X = rng.normal(size=(4000, 2))
    y = X @ [1.0, 4.0] - 1
    p = tmp_path / "dup.csv"
    np.savetxt(p, np.c_[X, y], delimiter=",", header="x,x,y", comments="", fmt="%.17g")
    kw = dict(x=[1, 0], y="y", mode="sgd", tol=None, epochs=4, random_state=0, block_rows=1000)
    ref = fastgd.fit_file(p, **kw)
    crash_then_resume(lambda cb: fastgd.fit_file(p, checkpoint=tmp_path / "c", callback=cb, **kw),
                      lambda: fastgd.resume(tmp_path / "c"), ref)


# --- 8. a file rewritten during a fit -------------------------------------------------------

def test_a_file_rewritten_during_a_fit_is_an_error(tmp_path):
    """A callback rewrites the CSV with its columns a and b swapped, at the same size: the
    next pass over the file refuses it (batch, and stochastic over one block or many)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 2))
    y = X @ [1.0, 2.0] + 0.3
    p = tmp_path / "d.csv"
    np.savetxt(p, np.c_[X, y], delimiter=",", header="a,b,y", comments="", fmt="%.6f")
    original = p.read_bytes()
    rows = [r.split(",") for r in original.decode().splitlines()[1:]]
    swapped = ("a,b,y\n" + "".join(f"{b},{a},{c}\n" for a, b, c in rows)).encode()
    assert len(swapped) == len(original) and swapped != original

    def rewrite(epoch, *a):
        if epoch == 1:
            p.write_bytes(swapped)

    for kw in (dict(solver="stream"), dict(mode="sgd", tol=None, epochs=5, random_state=0),
               dict(mode="sgd", tol=None, epochs=5, random_state=0, block_rows=500)):
        p.write_bytes(original)
        with pytest.raises(ValueError, match=r"^the data changed during the fit: .*d.csv was "
                                             r"rewritten since the fit began \(its "
                                             r".*modification time"):
            fastgd.fit_file(p, x=["a", "b"], y="y", callback=rewrite, **kw)


def test_a_parquet_file_replaced_with_its_times_kept_is_an_error(tmp_path):
    """Replaced by a rename, with the old modification time put back: the inode and the
    footer still tell."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(4000, 2))
    t = pa.table({"a": X[:, 0], "b": X[:, 1], "y": X @ [1.0, 2.0]})
    p = tmp_path / "d.parquet"
    pq.write_table(t, p, row_group_size=1000)
    st = os.stat(p)

    def replace(epoch, *a):
        if epoch == 1:
            pq.write_table(t.select(["b", "a", "y"]).rename_columns(["a", "b", "y"]),
                           tmp_path / "new.parquet", row_group_size=1000)
            os.replace(tmp_path / "new.parquet", p)
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))

    with pytest.raises(ValueError, match=r"the data changed during the fit: .*(inode|footer)"):
        fastgd.fit_file(p, x=["a", "b"], y="y", mode="sgd", tol=None, epochs=3, random_state=0,
                        block_rows=1000, callback=replace)


# --- 11. the CLI: one line, exit status 1 or 2 ----------------------------------------------

def test_cli_numbers_are_checked_as_usage(csv):
    for args in (["bench", "--rounds", "0"], ["bench", "--n", "1"], ["bench", "--d", "0"],
                 ["bench", "--n", "ten"], ["fit", csv, "--x", "a", "--y", "y", "--epochs", "0"],
                 ["fit", csv, "--x", "a", "--y", "y", "--batch-size", "-5"],
                 ["fit", csv, "--x", "a", "--y", "y", "--learning-rate", "nan"],
                 ["fit", csv, "--x", "a", "--y", "y", "--tol", "-1"],
                 ["fit", csv, "--x", "a", "--y", "y", "--random-state", "-1"]):
        proc = _cli(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.stderr.strip().splitlines()[-1].startswith(f"fastgd {args[0]}: error: argument")


def test_cli_bench_refuses_more_rows_than_memory():
    proc = _cli("bench", "--n", "100000000000")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "GiB of memory" in proc.stderr and "use a smaller --n" in proc.stderr


def test_cli_damaged_model_and_checkpoint_files_are_one_line(csv, tmp_path):
    model = tmp_path / "m.json"
    assert _cli("fit", csv, "--x", "a", "--y", "y", "--save-model", model).returncode == 0
    doc = json.loads(model.read_text())
    del doc["intercept"]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    _one_line_error(_cli("predict", tmp_path / "bad.json", csv))
    ckpt = tmp_path / "fit.ckpt"
    assert _cli("fit", csv, "--x", "a", "--y", "y", "--mode", "sgd", "--epochs", "2",
                "--checkpoint", ckpt, "--quiet").returncode == 0
    doc = json.loads(ckpt.read_text())
    del doc["fingerprint"]["size"]
    ckpt.write_text(json.dumps(doc))
    _one_line_error(_cli("resume", ckpt))
    _one_line_error(_cli("resume", tmp_path / "none.ckpt"))


# --- 12. empty row groups and files without rows --------------------------------------------

def test_empty_row_groups_and_blank_csv_ranges_are_skipped(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(5000, 1))
    y = 2.5 * X[:, 0] - 1 + 0.1 * rng.normal(size=5000)
    p = tmp_path / "gaps.parquet"
    with pq.ParquetWriter(p, pa.schema([("x", pa.float64()), ("y", pa.float64())])) as w:
        for a, b in ((0, 2000), (2000, 2000), (2000, 5000)):
            w.write_table(pa.table({"x": X[a:b, 0], "y": y[a:b]}))
    meta = pq.ParquetFile(p).metadata
    assert [meta.row_group(k).num_rows for k in range(3)] == [2000, 0, 3000]
    ref = fastgd.fit(X, y)
    for block_rows in (None, 2000):
        res = fastgd.fit_file(p, x=["x"], y="y", block_rows=block_rows)
        np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-12)
    # the stochastic modes visit the two row groups with rows: fit_chunks of those blocks
    kw = dict(mode="sgd", tol=None, epochs=2, random_state=0, parallel=False)
    res = fastgd.fit_file(p, x=["x"], y="y", block_rows=3000, **kw)
    blocks = [(X[:2000], y[:2000]), (X[2000:], y[2000:])]
    chunks = fastgd.fit_chunks(blocks, **kw)
    assert np.array_equal(res.coef, chunks.coef) and res.intercept == chunks.intercept
    # a CSV whose last byte ranges hold only blank lines
    c = tmp_path / "blank.csv"
    np.savetxt(c, np.c_[X, y], delimiter=",", header="x,y", comments="", fmt="%.17g")
    with open(c, "a") as f:
        f.write("\n" * 20_000)
    from fastgd.io import FileReader

    reader = FileReader(c, ["x"], "y", block_rows=500)
    sizes = [reader.block(k)[0].shape[0] for k in range(reader.random_access())]
    assert 0 in sizes and sum(sizes) == 5000  # there are empty ranges
    for kw in (dict(), dict(mode="sgd", tol=None, epochs=2, random_state=0)):
        res = fastgd.fit_file(c, x=["x"], y="y", block_rows=500, **kw)
        assert res.n_rows == 5000
    np.testing.assert_allclose(fastgd.fit_file(c, x=["x"], y="y", block_rows=500).coef,
                               ref.coef, rtol=1e-12)


def test_a_file_without_data_rows_says_so(tmp_path):
    (tmp_path / "h.csv").write_text("x,y\n")
    (tmp_path / "hb.csv").write_text("x,y\n\n\n")
    (tmp_path / "e.csv").write_text("")
    pq.write_table(pa.table({"x": pa.array([], pa.float64()), "y": pa.array([], pa.float64())}),
                   tmp_path / "e.parquet")
    for name in ("h.csv", "hb.csv", "e.csv", "e.parquet"):
        with pytest.raises(ValueError, match="the file has no data rows"):
            fastgd.fit_file(tmp_path / name, x=["0"], y="1")
    assert "the file has no data rows" in _one_line_error(
        _cli("fit", tmp_path / "h.csv", "--x", "x", "--y", "y"))
    assert "the file has no data rows" in _one_line_error(
        _cli("bench", tmp_path / "h.csv", "--x", "x", "--y", "y"))


# --- 13. pyarrow's errors, located ----------------------------------------------------------

def test_csv_errors_name_the_file_line_and_column(tmp_path):
    rng = np.random.default_rng(6)
    data = rng.normal(size=(30_000, 3))
    lines = ["a,b,y"] + [f"{u:.17g},{v:.17g},{w:.17g}" for u, v, w in data]
    lines[25_001] = f"{data[25_000, 0]:.17g},zz,{data[25_000, 2]:.17g}"  # file line 25,002
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    for block_rows in (None, 4096):
        with pytest.raises(ValueError, match=r"bad.csv, line 25002, column 'b' \(position 1\): "
                                             r"'zz' is not a number"):
            fastgd.fit_file(bad, x=["a", "b"], y="y", block_rows=block_rows)
    lines[25_001] = "1,2,3,4"
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"ragged.csv, line 25002: 4 field\(s\), but the file "
                                         r"has 3 column\(s\) \('1,2,3,4'\)"):
        fastgd.fit_file(ragged, x=["a"], y="y", block_rows=4096)
    proc = _cli("fit", ragged, "--x", "a", "--y", "y")
    assert "line 25002: 4 field(s)" in _one_line_error(proc)
    proc = _cli("predict", "/dev/null", ragged)  # a model that is not one: still one line
    _one_line_error(proc)


def test_pipes_are_spooled_by_the_cli_and_refused_by_the_api(csv, rows, tmp_path):
    X, y = rows
    ref = fastgd.fit(X, y)
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is not a regular file .*save the data to a file"):
        fastgd.fit_file(fifo, x=["a"], y="y")
    proc = subprocess.Popen([sys.executable, "-m", "fastgd", "fit", str(fifo), "--x", "a",
                             "--x", "b", "--y", "y", "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "FASTGD_CACHE_DIR": CACHE})
    writer = threading.Thread(target=lambda: fifo.write_bytes(csv.read_bytes()))
    writer.start()
    out, err = proc.communicate(timeout=300)
    writer.join()
    assert proc.returncode == 0, err
    np.testing.assert_allclose(json.loads(out)["coef"], ref.coef, rtol=1e-12)
    piped = _cli("fit", "/dev/stdin", "--x", "a", "--x", "b", "--y", "y", "--format", "json",
                 stdin=csv.read_text())
    assert piped.returncode == 0, piped.stderr
    np.testing.assert_allclose(json.loads(piped.stdout)["coef"], ref.coef, rtol=1e-12)
    assert "needs a file to read again" in _one_line_error(
        _cli("fit", "/dev/stdin", "--x", "a", "--y", "y", "--checkpoint", tmp_path / "c",
             stdin=csv.read_text()))


# --- 15. fit_file's parameters --------------------------------------------------------------

@pytest.mark.parametrize("kw,exc,msg", [
    (dict(block_rows=-5), ValueError, "block_rows must be >= 1, got -5"),
    (dict(block_rows=0), ValueError, "block_rows must be >= 1"),
    (dict(block_rows="10"), TypeError, "block_rows must be an integer, got '10'"),
    (dict(block_rows=2.5), TypeError, "block_rows must be an integer, got 2.5"),
    (dict(header="no"), TypeError, "header must be True or False, got 'no'"),
    (dict(header=1), TypeError, "header must be True or False, got 1"),
    (dict(delimiter=";;"), ValueError, "delimiter must be one ASCII character"),
    (dict(delimiter="\n"), ValueError, "delimiter must be one ASCII character"),
    (dict(x=[1.5]), TypeError, "each column of x must be a column name"),
    (dict(x=[]), ValueError, "give at least one column of X"),
    (dict(x=["a", True]), TypeError, "each column of x must be"),
    (dict(x={"a"}), TypeError, "x must be a list of columns"),
    (dict(y=None), TypeError, "fit_file needs the target column"),
    (dict(y=2.0), TypeError, "y must be a column name"),
    (dict(weight=[1]), TypeError, "weight must be a column name"),
])
@pytest.mark.parametrize("name", ["v.csv", "v.parquet"])
def test_fit_file_parameters_are_checked_up_front(csv, name, kw, exc, msg):
    path = csv
    if name.endswith(".parquet"):
        path = csv.parent / name
        X = np.loadtxt(csv, delimiter=",", skiprows=1)
        pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "y": X[:, 2]}), path)
    args = dict(x=["a"], y="y")
    args.update(kw)
    with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)")):
        fastgd.fit_file(path, **args)


def test_a_header_row_is_never_eaten_silently(tmp_path):
    """header=False reads every line as data: the in-memory fit of all the rows."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 1))
    y = 3 * X[:, 0] + 1 + rng.normal(size=50)
    p = tmp_path / "nh.csv"
    np.savetxt(p, np.c_[X, y], delimiter=",", fmt="%.17g")
    res = fastgd.fit_file(p, x=["0"], y="1", header=False)
    assert res.n_rows == 50
    np.testing.assert_allclose(res.coef, fastgd.fit(X, y).coef, rtol=1e-12)


# --- the output checks themselves ------------------------------------------------------------

def test_output_kinds_are_read_not_guessed_from_the_name(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    svg = tmp_path / "a.svg"
    svg.write_text('<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg xmlns="..."></svg>')
    fake = tmp_path / "fake.png"
    fake.write_text("a,b\n1,2\n")
    assert _outputs.is_kind(png, "image") and _outputs.is_kind(svg, "image")
    assert not _outputs.is_kind(fake, "image")
    model = tmp_path / "m.json"
    fastgd.fit([0.0, 1.0, 2.0], [1.0, 3.0, 5.0]).save(model)
    assert _outputs.is_kind(model, "model") and not _outputs.is_kind(model, "checkpoint")
    (tmp_path / "j.json").write_text('{"coef": [1]}')  # JSON, but not a whole model
    assert not _outputs.is_kind(tmp_path / "j.json", "model")
    with pytest.raises(ValueError, match="is not a regular file"):
        _outputs.check_outputs([("--save-model", "/dev/null", "model")])
