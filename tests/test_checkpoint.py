"""Checkpoints and resume (issue 11). Oracle: the uninterrupted fit, bit for bit."""
import json
import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastgd
from tests.conftest import crash_then_resume


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 4))
    X[:, 1] = X[:, 0] + 1e-3 * X[:, 1]  # ill-conditioned: many iterations
    y = X @ [1.0, 2.0, 3.0, 4.0] + rng.normal(size=5000)
    return X, y


class _Stop(Exception):
    pass


CASES = [dict(), dict(solver="stream"), dict(solver="stream", optimizer="nesterov", epochs=300),
         dict(loss="huber", epochs=200), dict(penalty="l1", alpha=0.01, epochs=400),
         dict(penalty="l2", alpha=0.1),
         dict(mode="sgd", epochs=6, random_state=0),
         dict(mode="sgd", epochs=6, random_state=0, parallel=True),
         dict(mode="minibatch", epochs=6, random_state=3, learning_rate_schedule="adaptive"),
         dict(mode="sgd", epochs=6, random_state=0, early_stopping=True, tol=1e-12,
              n_iter_no_change=10),
         dict(mode="minibatch", epochs=5, random_state=1, learning_rate_schedule="invscaling",
              average=2)]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_resume_is_bit_identical(tmp_path, data, kw):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgd.ConvergenceWarning)
        ref = fastgd.fit(X, y, **kw)
        path = tmp_path / "fit.ckpt"
        crash_then_resume(lambda cb: fastgd.fit(X, y, checkpoint=path, callback=cb, **kw),
                          lambda: fastgd.resume(path, X, y), ref)


def test_a_killed_process_leaves_a_valid_checkpoint(tmp_path, data):
    """SIGKILL in the middle of a fit (epoch 4 of 6, from its callback): the checkpoint
    of epoch 3 is complete, and resuming it here gives the uninterrupted result."""
    X, y = data
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    code = (
        "import os, signal, sys, numpy as np, fastgd\n"
        "X = np.load(sys.argv[1]); y = np.load(sys.argv[2])\n"
        "def die(epoch, *a):\n"
        "    if epoch == 4:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "fastgd.fit(X, y, mode='sgd', epochs=6, random_state=7, checkpoint=sys.argv[3],\n"
        "           callback=die)\n"
    )
    ck = tmp_path / "fit.ckpt"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "X.npy"),
                          str(tmp_path / "y.npy"), str(ck)], capture_output=True, timeout=300)
    assert out.returncode == -signal.SIGKILL
    assert json.loads(ck.read_text())["epoch"] == 3
    res = fastgd.resume(ck, X, y)
    ref = fastgd.fit(X, y, mode="sgd", epochs=6, random_state=7)
    assert np.array_equal(res.coef, ref.coef) and res.intercept == ref.intercept


def test_an_interrupted_write_keeps_the_previous_checkpoint(tmp_path, data, monkeypatch):
    X, y = data
    path = tmp_path / "fit.ckpt"
    fastgd.fit(X, y, mode="sgd", epochs=2, random_state=0, checkpoint=path)
    before = path.read_text()

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        fastgd.fit(X, y, mode="sgd", epochs=2, random_state=1, checkpoint=path)
    assert path.read_text() == before


def test_resume_refuses_other_data_and_newer_files(tmp_path, data):
    X, y = data
    path = tmp_path / "fit.ckpt"
    fastgd.fit(X, y, mode="sgd", epochs=2, random_state=0, checkpoint=path)
    with pytest.raises(ValueError, match="written for data with rows 5000, got 4999"):
        fastgd.resume(path, X[:-1], y[:-1])
    with pytest.raises(ValueError, match="written for data with features 4, got 3"):
        fastgd.resume(path, X[:, :3], y)
    with pytest.raises(ValueError, match="other data .*different values"):
        fastgd.resume(path, X[::-1].copy(), y[::-1].copy())
    with pytest.raises(ValueError, match="sample weights"):
        fastgd.resume(path, X, y, sample_weight=np.ones(5000))
    doc = json.loads(path.read_text())
    doc["format"] = 7
    (tmp_path / "new.ckpt").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="checkpoint format 7; this fastgd reads format 1"):
        fastgd.resume(tmp_path / "new.ckpt", X, y)


def test_textbook_runs_refuse_checkpoints(tmp_path, data):
    X, y = data
    with pytest.raises(ValueError, match="checkpoints are written by the automatic fits"):
        fastgd.fit(X, y, learning_rate=0.01, epochs=3, checkpoint=tmp_path / "c")
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1"):
        fastgd.fit(X, y, checkpoint=tmp_path / "c", checkpoint_every=0)


def test_file_fits_resume_from_the_file(tmp_path, data):
    """fit_file with a checkpoint, interrupted: resume(path) reopens the file (Parquet
    with shuffled row groups, and CSV) and returns the uninterrupted result."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X, y = data
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "y": y})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=700)
    np.savetxt(tmp_path / "d.csv", np.c_[X[:, :2], y], delimiter=",", header="a,b,y",
               comments="", fmt="%.17g")
    for name in ("d.parquet", "d.csv"):
        for kw in (dict(mode="sgd", epochs=5, random_state=2), dict(solver="stream")):
            common = dict(x=["a", "b"], y="y", block_rows=1000, **kw)
            ref = fastgd.fit_file(tmp_path / name, **common)

            def crash(epoch, *_):
                if epoch == 2:
                    raise _Stop

            ck = tmp_path / f"{name}.ckpt"
            with pytest.raises(_Stop):
                fastgd.fit_file(tmp_path / name, checkpoint=ck, callback=crash, **common)
            res = fastgd.resume(ck)
            assert np.array_equal(res.coef, ref.coef) and res.intercept == ref.intercept, name
            assert np.array_equal(res.loss_history, ref.loss_history)
    with pytest.raises(TypeError, match="without X, y"):
        fastgd.resume(ck, X, y)
    os.utime(tmp_path / "d.csv", ns=(0, 0))
    with pytest.raises(ValueError, match="which changed since"):
        fastgd.resume(ck)


def test_cli_checkpoint_and_resume(tmp_path, data):
    pytest.importorskip("pyarrow")
    X, y = data
    np.savetxt(tmp_path / "d.csv", np.c_[X[:, :2], y], delimiter=",", header="a,b,y",
               comments="", fmt="%.17g")
    ck = tmp_path / "fit.ckpt"
    run = [sys.executable, "-m", "fastgd"]
    out = subprocess.run(run + ["fit", str(tmp_path / "d.csv"), "--x", "a", "--x", "b", "--y", "y",
                                "--mode", "sgd", "--epochs", "3", "--random-state", "0",
                                "--checkpoint", str(ck), "--format", "json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    assert json.loads(ck.read_text())["epoch"] == 3
    again = subprocess.run(run + ["resume", str(ck), "--format", "json"], capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["coef"] == done["coef"]  # nothing left to do: the same fit
    piped = subprocess.run(run + ["fit", "-", "--x", "a", "--y", "y", "--checkpoint", str(ck)],
                           input="a,y\n1,2\n", capture_output=True, text=True, timeout=300)
    assert piped.returncode == 1 and "--checkpoint needs a file" in piped.stderr


@pytest.mark.parametrize("kw", [dict(solver="stream"), dict(mode="sgd", epochs=6, random_state=0),
                                dict(mode="minibatch", epochs=6, random_state=2, early_stopping=True,
                                     tol=1e-12, n_iter_no_change=10)],
                         ids=["stream", "sgd", "minibatch-early-stop"])
def test_fit_chunks_resumes_bit_for_bit(tmp_path, data, kw):
    X, y = data
    blocks = [(X[i:i + 1700], y[i:i + 1700]) for i in range(0, len(y), 1700)]
    ref = fastgd.fit_chunks(blocks, **kw)
    path = tmp_path / "fit.ckpt"
    crash_then_resume(lambda cb: fastgd.fit_chunks(blocks, checkpoint=path, callback=cb, **kw),
                      lambda: fastgd.resume(path, chunks=blocks), ref)


def test_fit_chunks_checkpoints_refuse_other_blocks_and_one_shot_iterators(tmp_path, data):
    X, y = data
    blocks = [(X[i:i + 1700], y[i:i + 1700]) for i in range(0, len(y), 1700)]
    path = tmp_path / "fit.ckpt"
    fastgd.fit_chunks(blocks, mode="sgd", epochs=2, checkpoint=path)
    other = [(X[i:i + 2500], y[i:i + 2500]) for i in range(0, len(y), 2500)]
    with pytest.raises(ValueError, match="3 blocks of 1700, 1700, 1600 rows, got 2 of 2500"):
        fastgd.resume(path, chunks=other)
    with pytest.raises(TypeError, match="pass the same blocks again"):
        fastgd.resume(path, X, y)
    with pytest.raises(ValueError, match="continues a fit of in-memory arrays"):
        arrays = tmp_path / "arrays.ckpt"
        fastgd.fit(X, y, mode="sgd", epochs=1, checkpoint=arrays)
        fastgd.resume(arrays, chunks=blocks)
    with pytest.raises(TypeError, match="one-shot iterator"):
        fastgd.fit_chunks(iter(blocks), checkpoint=path)
