"""Checkpoints: the full state of a fit, written every ``k`` epochs, and resuming from it.

``fastgd.fit(X, y, ..., checkpoint="fit.ckpt", checkpoint_every=k)`` writes, after every
``k``-th epoch, what the engine needs to go on exactly where it is: the parameters and
the optimizer's state (conjugate-gradient directions, momentum, the stopping rule's
counters; SGD's parameters, running average, step count, schedule), the loss history,
the epoch, plus the fit plan and a fingerprint of the data. ``fastgd.resume(path, X, y)``
continues that fit and returns the result the uninterrupted fit returns, bit for bit (the
random stream of the stochastic modes is replayed: its draws depend only on the seed and
the epochs run).

Writes are atomic: a temporary file in the same folder, flushed to disk, then renamed
over the checkpoint, so a process killed at any moment leaves the previous checkpoint or
the new one, never half of one; the temporary files that killed writes leave are removed
by the next write (:mod:`fastgd._outputs`). The path is checked before the fit starts: an
input file of the fit, a folder, a missing or read-only folder, or an existing file that
is not a checkpoint (without ``overwrite=True``) is refused. The file is JSON (floats
written exactly), with a ``checksum`` of its content; :func:`read` checks every field and
the checksum before a fit resumes from it.
"""
import hashlib
import json
import math
import os

import numpy as np

from ._model import Fields, read_versioned, write_atomic
from ._outputs import check_outputs
from ._validation import check_int
from ._version import __version__

#: the checkpoint format: a file from a newer fastgd is refused clearly
CHECKPOINT_FORMAT = 1
#: engines that write checkpoints (the automatic fits)
ENGINES = ("batch", "sgd_scaled")


def _encode(v):
    if isinstance(v, np.ndarray):
        return {"__array__": [float(x) for x in v.ravel()], "shape": list(v.shape)}
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, dict):
        return {k: _encode(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_encode(x) for x in v]
    return v


def check_same_file(doc, path):
    """A clear error when the checkpoint's file changed or vanished since."""
    fp = doc["fingerprint"]
    try:
        st = os.stat(fp["file"])
    except OSError:
        raise ValueError(f"{path} continues a fit of {fp['file']}, which is gone") from None
    if st.st_size != fp["size"] or st.st_mtime_ns != fp["mtime_ns"]:
        raise ValueError(
            f"{path} continues a fit of {fp['file']}, which changed since (size or "
            "modification time): start the fit again"
        )


def _rows(sizes):
    return ", ".join(str(m) for m in sizes[:4]) + (", ..." if len(sizes) > 4 else "")


class Checkpointer:
    """Writes the state an engine hands it, every ``every`` epochs, atomically."""

    def __init__(self, path, every, plan, fingerprint, *, overwrite=False, inputs=()):
        """``fingerprint``: the data's (a dict), or a function computing it (called after
        ``every`` and the path are validated: for blocks, the fingerprint costs a pass).

        The path is checked before the fit starts (see :mod:`fastgd._outputs`): not one
        of ``inputs`` (``(label, path)`` pairs: the file a fit reads), in a writable
        folder, and, when it exists, a checkpoint or an empty file unless ``overwrite``."""
        self.path = os.fspath(path)
        self.every = check_int(every, "checkpoint_every", 1)
        check_outputs([("checkpoint", self.path, "checkpoint")], inputs, overwrite=overwrite)
        self.plan = plan
        self.fingerprint = fingerprint() if callable(fingerprint) else fingerprint
        self.written = 0

    @classmethod
    def resumed(cls, doc, path, plan, fingerprint, every=None):
        """The writer of a fit resumed from the checkpoint ``doc`` (read from ``path``):
        the same file, every ``every`` epochs (None: as ``doc`` was written). Its folder
        is checked again (it must still be writable)."""
        return cls(path, doc.get("every", 1) if every is None else every, plan, fingerprint)

    def due(self, epoch):
        return epoch % self.every == 0

    def save(self, engine, epoch, state):
        doc = {"format": CHECKPOINT_FORMAT, "fastgd_version": __version__, "engine": engine,
               "epoch": int(epoch), "every": self.every, "plan": self.plan.to_dict(),
               "fingerprint": self.fingerprint, "state": _encode(state)}
        doc["checksum"] = checksum(doc)
        write_atomic(self.path, doc)
        self.written += 1


def checksum(doc):
    """sha256 (hex) of the document ``doc`` (without its ``checksum``) in a canonical JSON
    form: sorted keys, no spaces. The JSON written is exact (floats by ``repr``), so the
    document read back gives the same text, and any edit another one."""
    body = {k: v for k, v in doc.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


#: what is done when a checkpoint cannot be read
CHECKPOINT_FIX = ("a checkpoint holds exactly what fastgd wrote: resume from an intact copy, or "
                  "start the fit again")
#: a checkpoint's fields: all required (fastgd_version aside, only used in messages)
CHECKPOINT_KEYS = ("format", "engine", "epoch", "every", "plan", "fingerprint", "state")


def read(path):
    """The checkpoint at ``path`` as a dict (``state`` decoded into arrays), every field
    checked, or one ``ValueError`` naming the file and the field.

    Checked: the format (an int >= 1, no newer than this fastgd's); ``plan`` a valid fit
    plan; ``engine`` a checkpointing engine, the plan's; ``epoch`` an int from 1 to the
    plan's ``epochs``; ``every`` an int >= 1; ``fingerprint`` the keys and types of its
    kind of data (arrays, blocks, dask collections or a file), agreeing with the plan's
    facts; ``state`` the keys of the engine's state (see :func:`_batch_state`,
    :func:`_sgd_state`), each array of the plan's shape and finite, the loss history
    ``epoch + 1`` long. Unknown keys are refused. ``NaN`` and ``inf`` are refused
    everywhere except in the stopping rule's counters that hold them by design (no
    relative decrease measured yet: NaN; no curvature met yet: inf). Last, the
    ``checksum`` fastgd writes (sha256 of the rest, see :func:`checksum`) must match: an
    edit of the right type (another target column, block size or value) is refused too.
    A checkpoint without one (written before checksums) is read on its fields alone."""
    doc = read_versioned(path, "checkpoint", CHECKPOINT_KEYS, CHECKPOINT_FORMAT, CHECKPOINT_FIX)
    f = Fields(os.fspath(path), CHECKPOINT_FIX)
    f.keys(doc, None, CHECKPOINT_KEYS, ("fastgd_version", "checksum"))
    if doc.get("fastgd_version") is not None:
        f.text(doc["fastgd_version"], "fastgd_version")
    # the checksum is compared once every field is known to be well formed (a field that
    # is not gets its own message): it catches the edits no field check can see, such as
    # another target column, block size or parameter value of the right type
    written = doc.get("checksum")
    if written is not None and not (isinstance(written, str) and len(written) == 64):
        raise f.error("checksum", "must be 64 hexadecimal digits (a sha256)")
    actual = checksum(doc) if written is not None else None
    plan = f.plan(doc["plan"])
    engine = doc["engine"]
    if not isinstance(engine, str) or engine not in ENGINES:
        raise f.error("engine",
                      f"must be one of {', '.join(map(repr, ENGINES))}, got {engine!r:.40}")
    if engine != plan.engine:
        raise f.error("engine", f"is {engine!r}, but the plan runs the {plan.engine!r} engine")
    epoch = f.integer(doc["epoch"], "epoch", 1, plan.epochs)
    f.integer(doc["every"], "every", 1)
    _check_fingerprint(f, doc["fingerprint"], plan)
    spec = (_batch_state if engine == "batch" else _sgd_state)(plan.facts.d, epoch)
    doc["state"] = _decode_state(f, doc["state"], "state", spec)
    if written is not None and written != actual:
        raise f.error("checksum", "does not match the checkpoint's content: the file was "
                                  "edited or damaged after fastgd wrote it")
    return doc


def _batch_state(d, epoch):
    """The state of the batch optimizers' loop (:class:`fastgd.solvers.BatchSolver`): what each key
    holds, as ``(kind, argument)`` (see :func:`_decode_state`)."""
    vec = ("array", (d + 1,))
    return {
        "theta": vec, "loss": ("real", 0.0), "S": vec, "pen1": ("real", 0.0),
        "history": ("array", (epoch + 1,)), "y_pt": vec, "S_y": vec, "prev": vec,
        "t": ("positive", None), "p": ("array_or_null", (d + 1,)),
        "g_old": ("array_or_null", (d + 1,)),
        # the stopping rule: NaN before its first measure (or without tol), inf before CG
        # met a curvature
        "stop": ("object", {"quiet": ("int", 0), "last_cos": ("real_or_nan", 0.0),
                            "last_rel": ("real_or_nan", None),
                            "curv_min": ("real_or_inf", 0.0), "curv_max": ("real", 0.0)}),
        "n_passes": ("int", 0), "epoch": ("equal", epoch),
        # the stream passes after which the fit moved to the gram path (0: it has not;
        # absent from checkpoints of fastgd before the move existed)
        "gram_from": ("optional_int", 0),
    }


def _sgd_state(d, epoch):
    """The state of the stochastic driver (:class:`fastgd.solvers.StochasticSolver`): the kernel's
    parameters and running average, the step count, the schedule's rate and counters."""
    return {
        "state": ("array", (2, d + 1)), "t": ("int", 0), "eta": ("positive", None),
        "quiet": ("int", 0), "best": ("real", 0.0), "avg_start": ("real", 0.0),
        "history": ("array", (epoch + 1,)), "passes": ("int", 0), "epoch": ("equal", epoch),
    }


def _decode_state(f, v, field, spec):
    """The state object ``v`` checked against ``spec`` (key: ``(kind, argument)``), its
    arrays (``{"__array__": [...], "shape": [...]}``) decoded into float64 arrays."""
    optional = tuple(k for k, (kind, _) in spec.items() if kind.startswith("optional_"))
    f.keys(v, field, tuple(k for k in spec if k not in optional), optional)
    out = {}
    for key, (kind, arg) in spec.items():
        if key not in v:  # (an optional key: its default)
            out[key] = arg
            continue
        x, name = v[key], f"{field}.{key}"
        if kind == "optional_int":
            out[key] = f.integer(x, name, arg)
        elif kind == "object":
            out[key] = _decode_state(f, x, name, arg)
        elif kind == "array" or (kind == "array_or_null" and x is not None):
            out[key] = _array(f, x, name, arg)
        elif kind == "array_or_null":
            out[key] = None
        elif kind == "int":
            out[key] = f.integer(x, name, arg)
        elif kind == "equal":
            if f.integer(x, name, 0) != arg:
                raise f.error(name, f"is {x}, but the checkpoint's 'epoch' is {arg}")
            out[key] = x
        elif kind == "positive":
            out[key] = f.real(x, name, positive=True)
        else:  # "real", "real_or_nan", "real_or_inf"
            nan, inf = kind == "real_or_nan", kind == "real_or_inf"
            out[key] = f.real(x, name, low=arg, nan=nan, inf=inf)
            if inf and out[key] == -math.inf:
                raise f.error(name, "is -inf")
    return out


def _array(f, v, field, shape):
    """An array written by :func:`_encode`: finite values, of the shape expected."""
    f.keys(v, field, ("__array__", "shape"))
    if v["shape"] != list(shape):
        raise f.error(field, f"has the shape {_plain_shape(v['shape'])}, expected {list(shape)}")
    values = f.reals(v["__array__"], f"{field}.__array__", length=math.prod(shape))
    return values.reshape(shape)


def _plain_shape(shape):
    text = json.dumps(shape)
    return text if len(text) <= 40 else text[:40] + "..."


#: the fingerprint of each kind of data: its keys
_FINGERPRINT_KEYS = {
    None: ("n", "d", "dtype", "weighted", "sha256"),
    "chunks": ("source", "n", "d", "dtype", "weighted", "blocks", "sha256"),
    "dask": ("source", "n", "d", "dtype", "weighted", "blocks", "sha256"),
    "file": ("file", "size", "mtime_ns", "x", "y", "weight", "header", "delimiter",
             "block_rows"),
}
#: keys a fingerprint may have besides: the positions of a file's columns (written since
#: CSV headers may repeat a name; older checkpoints go by the names)
_FINGERPRINT_OPTIONAL = {"file": ("columns",)}


def _check_fingerprint(f, fp, plan):
    """The fingerprint ``fp``: the keys of its kind, their types, and the plan's facts."""
    if not isinstance(fp, dict):
        raise f.error("fingerprint", "must be an object")
    kind = "file" if "file" in fp else fp.get("source")
    if kind not in _FINGERPRINT_KEYS:
        raise f.error("fingerprint.source", f"must be 'chunks' or 'dask' (or absent, for "
                                            f"arrays), got {kind!r:.40}")
    f.keys(fp, "fingerprint", _FINGERPRINT_KEYS[kind], _FINGERPRINT_OPTIONAL.get(kind, ()))
    facts = plan.facts
    if kind == "file":
        if not f.text(fp["file"], "fingerprint.file") or "\x00" in fp["file"]:
            raise f.error("fingerprint.file", "must be a file's path (not empty, no NUL character)")
        f.integer(fp["size"], "fingerprint.size", 0)
        f.integer(fp["mtime_ns"], "fingerprint.mtime_ns", -2**63, 2**63 - 1)
        if not isinstance(fp["x"], list) or not fp["x"]:
            raise f.error("fingerprint.x", "must be a non-empty list of column names")
        for i, c in enumerate(fp["x"]):
            f.text(c, f"fingerprint.x[{i}]")
        if len(fp["x"]) != facts.d:
            raise f.error("fingerprint.x", f"names {len(fp['x'])} column(s), but the plan has "
                                           f"{facts.d} feature(s)")
        f.text(fp["y"], "fingerprint.y")
        if fp["weight"] is not None:
            f.text(fp["weight"], "fingerprint.weight")
        if (fp["weight"] is not None) != facts.weighted:
            raise f.error("fingerprint.weight", "disagrees with the plan's facts.weighted")
        f.flag(fp["header"], "fingerprint.header")
        if len(f.text(fp["delimiter"], "fingerprint.delimiter")) != 1:
            raise f.error("fingerprint.delimiter",
                          f"must be one character, got {fp['delimiter']!r:.20}")
        f.integer(fp["block_rows"], "fingerprint.block_rows", 1)
        if "columns" in fp:
            cols = fp["columns"]
            want = facts.d + 1 + (fp["weight"] is not None)
            if not isinstance(cols, list) or len(cols) != want:
                raise f.error("fingerprint.columns", f"must be a list of {want} column positions")
            for i, c in enumerate(cols):
                f.integer(c, f"fingerprint.columns[{i}]", 0)
        return
    n = f.integer(fp["n"], "fingerprint.n", 1)
    d = f.integer(fp["d"], "fingerprint.d", 1)
    dtype = f.text(fp["dtype"], "fingerprint.dtype")
    weighted = f.flag(fp["weighted"], "fingerprint.weighted")
    sha = f.text(fp["sha256"], "fingerprint.sha256")
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise f.error("fingerprint.sha256", "must be 64 hexadecimal digits (a sha256)")
    for key, got, want in (("n", n, facts.n), ("d", d, facts.d), ("dtype", dtype, facts.dtype),
                           ("weighted", weighted, facts.weighted)):
        if want is not None and got != want:
            raise f.error(f"fingerprint.{key}",
                          f"is {got!r}, but the plan's facts.{key} is {want!r}")
    if kind is not None:
        blocks = fp["blocks"]
        if not isinstance(blocks, list) or not blocks:
            raise f.error("fingerprint.blocks", "must be a non-empty list of block sizes")
        sizes = [f.integer(m, f"fingerprint.blocks[{i}]", 1) for i, m in enumerate(blocks)]
        if sum(sizes) != n:
            raise f.error("fingerprint.blocks", f"add up to {sum(sizes)} rows, but "
                                                f"fingerprint.n is {n}")


def check_same_data(doc, fp, path):
    """A clear error when ``fp`` (the fingerprint of the data given to resume, see
    :meth:`fastgd.sources.Source.fingerprint`) is not the checkpoint's."""
    want = doc["fingerprint"]
    if "file" in want:
        check_same_file(doc, path)
        return
    kinds = {None: "in-memory arrays (resume(path, X, y))",
             "dask": "dask collections (resume(path, X, y) with the same collections)",
             "chunks": "blocks of rows (resume(path, chunks=...) with the same blocks)"}
    if want.get("source") != fp.get("source"):
        raise ValueError(f"{path} continues a fit of {kinds[want.get('source')]}: pass the "
                         "same kind of data again")
    if want.get("blocks") and want["blocks"] != fp["blocks"]:
        raise ValueError(
            f"{path} was written for {len(want['blocks'])} blocks of "
            f"{_rows(want['blocks'])} rows, got {len(fp['blocks'])} of {_rows(fp['blocks'])}: "
            "the blocks decide the result; resume with the array chunked as it was"
        )
    for key, what in (("n", "rows"), ("d", "features"), ("dtype", "dtype"),
                      ("weighted", "sample weights")):
        if want[key] != fp[key]:
            raise ValueError(
                f"{path} was written for data with {what} {want[key]!r}, got {fp[key]!r}: "
                "resume the fit with the data it started on"
            )
    if want["sha256"] != fp["sha256"]:
        raise ValueError(
            f"{path} was written for other data (same shape, different values: the "
            "fingerprint of sampled rows differs): resume the fit with the data it "
            "started on"
        )
