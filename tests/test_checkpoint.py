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

#: the stochastic fits here run fixed epochs with early stopping at a tolerance they never
#: meet (tol=1e-12: every epoch runs, as the checks of bit-identical backends and resumes
#: need); the warning that they ran out of epochs is expected, and tested elsewhere
#: (tests/test_stochastic.py)
pytestmark = pytest.mark.filterwarnings(
    "ignore:the (sgd|minibatch) fit did not meet its stopping rule:fastgd.ConvergenceWarning")



@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 4))
    X[:, 1] = X[:, 0] + 1e-3 * X[:, 1]  # ill-conditioned: many iterations
    y = X @ [1.0, 2.0, 3.0, 4.0] + rng.normal(size=5000)
    return X, y


class _Stop(Exception):
    pass


# plain CG on the statistics (tol=None), with and without the L2 penalty; the default,
# preconditioned CG on them, ends in one epoch here (nothing to resume: its resume on the
# statistics is tested after the move of a streaming fit, tests/test_gram.py)
CASES = [dict(tol=None, epochs=8), dict(solver="stream"), dict(solver="stream", optimizer="nesterov", epochs=300),
         dict(loss="huber", epochs=200), dict(penalty="l1", alpha=0.01, epochs=400),
         dict(penalty="l2", alpha=0.1, tol=None, epochs=8),
         dict(mode="sgd", tol=None, epochs=6, random_state=0),
         dict(mode="sgd", tol=None, epochs=6, random_state=0, parallel=True),
         dict(mode="minibatch", epochs=6, random_state=3, learning_rate_schedule="adaptive"),
         dict(mode="sgd", epochs=6, random_state=0, early_stopping=True, tol=1e-12,
              n_iter_no_change=10),
         dict(mode="minibatch", epochs=5, random_state=1, learning_rate_schedule="invscaling",
              average=2),
         # the stopping rule's counters hold NaN (no tol: nothing measured) in the file
         dict(solver="stream", epochs=6, tol=None)]


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
    ref = fastgd.fit(X, y, mode="sgd", tol=None, epochs=6, random_state=7)
    assert np.array_equal(res.coef, ref.coef) and res.intercept == ref.intercept


def test_an_interrupted_write_keeps_the_previous_checkpoint(tmp_path, data, monkeypatch):
    X, y = data
    path = tmp_path / "fit.ckpt"
    fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, random_state=0, checkpoint=path)
    before = path.read_text()

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, random_state=1, checkpoint=path)
    assert path.read_text() == before


def test_resume_refuses_other_data_and_newer_files(tmp_path, data):
    X, y = data
    path = tmp_path / "fit.ckpt"
    fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, random_state=0, checkpoint=path)
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
        for kw in (dict(mode="sgd", tol=None, epochs=5, random_state=2), dict(solver="stream")):
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


@pytest.mark.parametrize("kw", [dict(solver="stream"), dict(mode="sgd", tol=None, epochs=6, random_state=0),
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
    fastgd.fit_chunks(blocks, mode="sgd", tol=None, epochs=2, checkpoint=path)
    other = [(X[i:i + 2500], y[i:i + 2500]) for i in range(0, len(y), 2500)]
    with pytest.raises(ValueError, match="3 blocks of 1700, 1700, 1600 rows, got 2 of 2500"):
        fastgd.resume(path, chunks=other)
    with pytest.raises(TypeError, match="pass the same blocks again"):
        fastgd.resume(path, X, y)
    with pytest.raises(ValueError, match="continues a fit of in-memory arrays"):
        arrays = tmp_path / "arrays.ckpt"
        fastgd.fit(X, y, mode="sgd", tol=None, epochs=1, checkpoint=arrays)
        fastgd.resume(arrays, chunks=blocks)
    with pytest.raises(TypeError, match="one-shot iterator"):
        fastgd.fit_chunks(iter(blocks), checkpoint=path)


# --- random streams (issue 17): every documented random_state resumes bit for bit -----------

@pytest.mark.parametrize("kw", [dict(mode="sgd", tol=None, epochs=6),
                                dict(mode="minibatch", epochs=6, early_stopping=True, tol=1e-12,
                                     n_iter_no_change=10)], ids=["sgd", "minibatch-early-stop"])
def test_resume_with_a_generator_seed_is_bit_identical(tmp_path, data, kw):
    """The issue's case: a Generator seed made the first checkpoint write fail (not JSON
    serializable) and left a temporary file. Oracle: the uninterrupted fit from the same
    Generator, bit for bit; the Generator itself is never drawn from."""
    X, y = data
    gen = np.random.default_rng(0)
    state = json.dumps(gen.bit_generator.state, default=str)
    ref = fastgd.fit(X, y, random_state=gen, **kw)
    path = tmp_path / "g.ckpt"
    crash_then_resume(lambda cb: fastgd.fit(X, y, checkpoint=path, callback=cb, random_state=gen, **kw),
                      lambda: fastgd.resume(path, X, y), ref)
    assert json.dumps(gen.bit_generator.state, default=str) == state
    assert os.listdir(tmp_path) == ["g.ckpt"]  # no temporary file left behind
    ref.save(tmp_path / "m.json")
    assert fastgd.load(tmp_path / "m.json").plan == ref.plan


def test_resume_without_a_seed_continues_the_same_stream(tmp_path, data):
    """random_state=None: the plan draws its seed once and the checkpoint stores it, so the
    resumed epochs see the same stream (and early stopping the same held-out rows).
    Oracle: the fit run from the seed the checkpoint recorded, uninterrupted."""
    X, y = data
    kw = dict(mode="sgd", epochs=6, early_stopping=True, tol=1e-12, n_iter_no_change=10)
    path = tmp_path / "n.ckpt"

    def crash(epoch, *_):
        if epoch == 3:
            raise _Stop

    with pytest.raises(_Stop):
        fastgd.fit(X, y, checkpoint=path, callback=crash, **kw)
    seed = json.loads(path.read_text())["plan"]["resolved"]["random_state"]
    res = fastgd.resume(path, X, y)
    ref = fastgd.fit(X, y, random_state=seed, **kw)
    assert np.array_equal(res.coef, ref.coef) and np.array_equal(res.loss_history, ref.loss_history)
    assert res.plan.random_state == seed


# --- damaged checkpoints (issue 17): every field checked on load ---------------------------

@pytest.fixture(scope="module")
def checkpoints(data, tmp_path_factory):
    """A batch (CG, streaming) and an SGD checkpoint, as fastgd wrote them."""
    X, y = data
    folder = tmp_path_factory.mktemp("ckpt")
    docs = {}
    for name, kw in (("batch", dict(solver="stream", epochs=5, tol=None)),
                     ("sgd", dict(mode="sgd", tol=None, epochs=3, random_state=1))):
        fastgd.fit(X, y, checkpoint=folder / name, **kw)
        docs[name] = json.loads((folder / name).read_text())
    return docs


def _edited(doc, path, value):
    import copy

    doc = copy.deepcopy(doc)
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


NAN = float("nan")
#: (checkpoint, edit path, new value (KeyError: delete), what the error says)
DAMAGE = [
    ("sgd", ("state", "state", "__array__", 1), NAN, "field 'state.state.__array__[1]' is NaN"),
    ("sgd", ("state", "eta"), 0.0, "field 'state.eta' must be > 0"),
    ("sgd", ("state", "eta"), float("inf"), "field 'state.eta' is infinite"),
    ("sgd", ("state", "t"), -1, "field 'state.t' must be an integer >= 0"),
    ("sgd", ("state", "t"), 2 ** 70, "field 'state.t' must be an integer between"),
    ("sgd", ("state", "state", "shape"), [3, 2], "field 'state.state' has the shape [3, 2], expected [2, 5]"),
    ("sgd", ("state", "history", "__array__"), [1.0, 2.0], "field 'state.history.__array__' must hold 4"),
    ("sgd", ("state", "epoch"), 2, "field 'state.epoch' is 2, but the checkpoint's 'epoch' is 3"),
    ("sgd", ("state", "passes"), KeyError, "field 'state' has no 'passes'"),
    ("sgd", ("state", "speed"), 1, "field 'state' has the unknown key(s) 'speed'"),
    ("sgd", ("epoch",), 1000, "field 'epoch' must be an integer between 1 and 3, got 1000"),
    ("sgd", ("epoch",), "3", "field 'epoch' must be an integer"),
    ("sgd", ("epoch",), True, "field 'epoch' must be an integer"),
    ("sgd", ("every",), 0, "field 'every' must be an integer >= 1"),
    ("sgd", ("format",), True, "field 'format' must be an integer >= 1"),
    ("sgd", ("format",), -7, "field 'format' must be an integer >= 1, got -7"),
    ("sgd", ("format",), "1", "field 'format' must be an integer >= 1, got \"1\""),
    ("sgd", ("engine",), "batch", "field 'engine' is 'batch', but the plan runs the 'sgd_scaled'"),
    ("sgd", ("engine",), "textbook", "field 'engine' must be one of"),
    ("sgd", ("plan", "settings", "mode"), "fast", "field 'plan' is not a valid fit plan"),
    ("sgd", ("plan",), None, "field 'plan' is not a valid fit plan"),
    ("sgd", ("fingerprint", "sha256"), "xyz", "field 'fingerprint.sha256' must be 64 hexadecimal"),
    ("sgd", ("fingerprint", "n"), 4999, "field 'fingerprint.n' is 4999, but the plan's facts.n is 5000"),
    ("sgd", ("fingerprint", "d"), KeyError, "field 'fingerprint' has no 'd'"),
    ("sgd", ("fingerprint", "source"), "cluster", "field 'fingerprint.source' must be 'chunks' or 'dask'"),
    ("sgd", ("fingerprint", "weighted"), 0, "field 'fingerprint.weighted' must be true or false"),
    ("sgd", ("state",), KeyError, "has no 'state' field"),
    ("sgd", ("stamp",), 1, "has the unknown key(s) 'stamp'"),
    ("batch", ("state", "theta", "__array__", 0), float("-inf"), "field 'state.theta.__array__[0]' is infinite"),
    ("batch", ("state", "p"), [1, 2], "field 'state.p' must be an object"),
    ("batch", ("state", "t"), -0.5, "field 'state.t' must be > 0"),
    ("batch", ("state", "loss"), NAN, "field 'state.loss' is NaN"),
    ("batch", ("state", "stop", "quiet"), 0.5, "field 'state.stop.quiet' must be an integer >= 0"),
    ("batch", ("state", "stop", "last_cos"), "x", "field 'state.stop.last_cos' must be a number"),
    ("batch", ("state", "stop", "curv_max"), NAN, "field 'state.stop.curv_max' is NaN"),
    ("batch", ("state", "history", "shape"), [9], "field 'state.history' has the shape [9], expected [6]"),
]


@pytest.mark.parametrize("which,path,value,phrase", DAMAGE,
                         ids=[f"{w}:{'.'.join(map(str, p))}={v!r}" for w, p, v, _ in DAMAGE])
def test_damaged_checkpoints_are_one_error_naming_the_file_and_the_field(
        tmp_path, data, checkpoints, which, path, value, phrase):
    X, y = data
    bad = tmp_path / "bad.ckpt"
    bad.write_text(json.dumps(_edited(checkpoints[which], path, value)))
    with pytest.raises(ValueError) as info:
        fastgd.resume(bad, X, y)
    assert str(info.value).startswith(str(bad)) and phrase in str(info.value), str(info.value)


@pytest.mark.parametrize("content,phrase", [(b"", "not valid JSON"), (b"\x00\x01\xfe\xff", "does not begin"),
                                            (b'{"format": 1, "state": {', "not valid JSON"),
                                            (b'{"format": 1, "state": "\xe9"}', "not UTF-8")])
def test_checkpoints_that_are_not_json_objects_name_the_file(tmp_path, data, content, phrase):
    X, y = data
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=phrase) as info:
        fastgd.resume(bad, X, y)
    assert str(info.value).startswith(str(bad))


def test_resume_checks_its_own_parameters(tmp_path, data, checkpoints):
    X, y = data
    path = tmp_path / "c.ckpt"
    path.write_text(json.dumps(checkpoints["sgd"]))
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1, got 0"):
        fastgd.resume(path, X, y, checkpoint_every=0)
    with pytest.raises(TypeError, match="callback must be callable"):
        fastgd.resume(path, X, y, callback="print")
    with pytest.raises(ValueError, match="progress must be True, False or 'auto'"):
        fastgd.resume(path, X, y, progress="yes")
    blocks = [(X[i:i + 1700], y[i:i + 1700]) for i in range(0, len(y), 1700)]
    fastgd.fit_chunks(blocks, mode="sgd", tol=None, epochs=1, checkpoint=tmp_path / "b.ckpt")
    with pytest.raises(TypeError, match="weights come with the blocks"):
        fastgd.resume(tmp_path / "b.ckpt", chunks=blocks, sample_weight=np.ones(len(y)))


def test_edits_no_field_check_can_see_are_refused_by_the_checksum(tmp_path, data, checkpoints):
    """Another value of the right type (a learning rate, a weight of theta) passes every
    field check; the checksum fastgd writes catches it. A checkpoint without a checksum
    (as written before there was one) is read on its fields alone and resumes."""
    X, y = data
    doc = checkpoints["sgd"]
    assert len(doc["checksum"]) == 64
    for path, value in ((("state", "eta"), doc["state"]["eta"] * 2),
                        (("state", "state", "__array__", 0), 0.5),
                        (("plan", "settings", "epochs"), 4)):
        bad = tmp_path / "edited.ckpt"
        bad.write_text(json.dumps(_edited(doc, path, value)))
        with pytest.raises(ValueError, match=r"edited\.ckpt: field 'checksum' does not match"):
            fastgd.resume(bad, X, y)
    old = tmp_path / "old.ckpt"
    old.write_text(json.dumps(_edited(doc, ("checksum",), KeyError)))
    ref = fastgd.fit(X, y, mode="sgd", tol=None, epochs=3, random_state=1)
    res = fastgd.resume(old, X, y)
    assert np.array_equal(res.coef, ref.coef) and res.intercept == ref.intercept
