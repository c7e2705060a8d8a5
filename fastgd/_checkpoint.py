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
written exactly).
"""
import hashlib
import os

import numpy as np

from ._model import read_versioned, write_atomic
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


def _decode(v):
    if isinstance(v, dict):
        if "__array__" in v:
            return np.array(v["__array__"], dtype=np.float64).reshape(v["shape"])
        return {k: _decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


def fingerprint(data):
    """What identifies the data of an in-memory fit: shape, dtype, weights, and a hash
    of 257 rows spread over it (cheap at any size; a different file or a shuffled copy
    is caught, a change of one row between the sampled ones is not)."""
    return {"n": int(data.n), "d": int(data.d), "dtype": str(data.X.dtype),
            "weighted": bool(data.sw.shape[0]), "sha256": sampled_hash(data, 257)}


def sampled_hash(data, count):
    """sha256 (hex) of ``count`` rows of X, y and the weights spread over ``data``."""
    n = data.n
    rows = np.unique(np.linspace(0, n - 1, min(n, count)).astype(np.int64))
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.X[rows]).tobytes())
    h.update(np.ascontiguousarray(data.y[rows]).tobytes())
    if data.sw.shape[0]:
        h.update(np.ascontiguousarray(data.sw[rows]).tobytes())
    return h.hexdigest()


def file_fingerprint(reader):
    """What identifies a file fit: the file (path, size, modification time) and how it is
    read (columns, header, delimiter, block size): enough to open it again on resume.
    The columns are kept by name (``x``, ``y``, ``weight``) and by position
    (``columns``: x, then y and the weight column): resume reads the positions, since a
    CSV header may repeat a name."""
    st = os.stat(reader.path)
    return {"file": os.path.abspath(reader.path), "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "x": list(reader.x), "y": reader.y, "weight": reader.w,
            "columns": list(reader.positions), "header": reader.header,
            "delimiter": reader.delimiter, "block_rows": reader.block_rows}


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
        write_atomic(self.path, doc)
        self.written += 1


def read(path):
    """The checkpoint at ``path`` as a dict (``state`` decoded), or a clear error."""
    doc = read_versioned(path, "checkpoint", ("state", "plan", "fingerprint"), CHECKPOINT_FORMAT)
    doc["state"] = _decode(doc["state"])
    return doc


def check_same_data(doc, fp, path):
    """A clear error when ``fp`` (the data given to resume) is not the checkpoint's."""
    want = doc["fingerprint"]
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
