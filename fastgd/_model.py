"""The JSON model file: :meth:`fastgd.FitResult.save` writes it, :func:`fastgd.load`
reads it (:mod:`fastgd.io`). Imports nothing of fastgd's but its version and the output
checks, so that ``FitResult`` can save without importing the engines."""
import json
import os

from ._outputs import check_outputs, write_bytes
from ._version import __version__

#: the model file's format version: a file written by a newer fastgd is refused clearly
MODEL_FORMAT = 1


def save(result, path, overwrite=False):
    """Write ``result`` (a :class:`fastgd.FitResult`) as a small JSON model file:
    coefficients, intercept, feature names, the fit plan's dict, the final loss, the
    fastgd version and the file format. Written atomically (a temporary file, then a
    rename): an interrupted save never leaves a half-written model.

    An existing model file (or an empty file) is replaced; any other existing file is
    refused with a ``ValueError`` unless ``overwrite=True``, as are a folder, a missing
    folder and a folder that is not writable (see :mod:`fastgd._outputs`)."""
    check_outputs([("model file", path, "model")], overwrite=overwrite)
    doc = {
        "format": MODEL_FORMAT,
        "fastgd_version": __version__,
        "coef": [float(c) for c in result.coef],
        "intercept": float(result.intercept),
        "feature_names": None if result.feature_names is None else list(result.feature_names),
        "one_d": bool(result.one_d),
        "final_loss": float(result.final_loss),
        "n_epochs": int(result.n_epochs),
        "converged": bool(result.converged),
        "scaled": bool(result.scaled),
        "plan": None if result.plan is None else result.plan.to_dict(),
    }
    write_atomic(path, doc, indent=1)


def write_atomic(path, doc, indent=None):
    """Write the JSON document ``doc`` to ``path`` atomically: a temporary file in the
    same folder, flushed to disk, then renamed over ``path``, so that a process killed at
    any moment leaves the previous file or the new one, never half of one (see
    :func:`fastgd._outputs.write_bytes`: errors name ``path``; temporary files left by
    killed writes of ``path`` are removed)."""
    write_bytes(path, json.dumps(doc, indent=indent).encode("utf-8"))


def read_versioned(path, what, required, newest):
    """The JSON document at ``path``: a fastgd ``what`` ("model file", "checkpoint") with
    the keys ``required`` and a ``format`` no newer than ``newest``, or a clear error."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a fastgd {what} (not JSON: {exc})") from None
    if not isinstance(doc, dict) or not all(k in doc for k in ("format",) + tuple(required)):
        keys = " and ".join(repr(k) for k in ("format",) + tuple(required))
        raise ValueError(f"{path} is not a fastgd {what} (no {keys})")
    if not isinstance(doc["format"], int) or doc["format"] > newest:
        raise ValueError(
            f"{path} was written by fastgd {doc.get('fastgd_version', '?')} in {what} format "
            f"{doc['format']}; this fastgd reads format {newest} and older: upgrade fastgd"
        )
    return doc
