"""The JSON model file: :meth:`fastgd.FitResult.save` writes it, :func:`fastgd.load`
reads it (:mod:`fastgd.io`), through :func:`read_model`, which checks every field.
Imports nothing of fastgd's but its version and the output checks at import time, so
that ``FitResult`` can save without importing the engines (reading a plan imports
:mod:`fastgd._plan`).

The reading side is shared with checkpoints (:mod:`fastgd._checkpoint`): :func:`read_json`
turns any file that is not a JSON object (binary junk, other encodings, truncation) into
one ``ValueError`` naming the file, and :class:`Fields` checks each value, every error
naming the file and the field: ``"model.json: field 'coef[0]' is NaN; ..."``."""
import json
import math
import os
from types import MappingProxyType

import numpy as np

from ._outputs import check_outputs, write_bytes
from ._version import __version__

#: the model file's format version: a file written by a newer fastgd is refused clearly
MODEL_FORMAT = 1


def save(result, path, overwrite=False):
    """Write ``result`` as a small JSON model file, atomically.

    The file holds the coefficients, intercept, feature names, the fit plan's dict, the
    final loss, the fastgd version and the file format; :func:`fastgd.load` reads it
    back. It is written atomically (a temporary file, then a rename): an interrupted
    save never leaves a half-written model.

    Parameters
    ----------
    result : FitResult
        The fit to store (from :func:`fastgd.fit` and the other entry points, or
        :func:`fastgd.load`).
    path : str or path-like
        The model file to write. An existing model file (or an empty file) is replaced;
        a folder, a missing folder and a folder that is not writable are refused
        with a ``ValueError`` before anything is written (see :mod:`fastgd._outputs`).
    overwrite : bool
        Whether an existing file that is not a fastgd model file may be replaced
        (default False: such a file is someone's data, and is refused with a
        ``ValueError``).
    """
    check_outputs([("model file", path, "model")], overwrite=overwrite)
    doc = {
        "format": MODEL_FORMAT,
        "fastgd_version": __version__,
        "coef": [float(c) for c in result.coef],
        "intercept": float(result.intercept),
        "feature_names": None if result.feature_names is None else list(result.feature_names),
        "one_d": bool(result.one_d),
        # (a model loaded without its loss has NaN there: written as null, never as NaN)
        "final_loss": float(result.final_loss) if np.isfinite(result.final_loss) else None,
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


#: how much of a file is read to see whether it begins as a JSON object: a data file
#: given where a model file was expected is refused without reading it whole
PEEK_BYTES = 4096
#: the largest integer a counter in these files may hold: JSON numbers beyond 2^53 are
#: not exact in most readers, and counters reach the compiled kernels as int64
INT_MAX = 2 ** 53


def read_json(path, what):
    """The JSON object stored at ``path`` (a fastgd ``what``: "model file", "checkpoint"),
    or one ``ValueError`` naming the file: not UTF-8 text, not JSON (truncated, binary
    junk, too deeply nested), or JSON that is not an object. ``NaN`` and ``Infinity``
    literals and numbers beyond float64 (``1e400`` reads as inf) are left to the field
    checks (:class:`Fields`), which know where they are allowed."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"the {what}'s path must be a string or a path-like object, got "
                        f"{path!r:.80} ({type(path).__name__})")
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(PEEK_BYTES)
        start = head.removeprefix(b"\xef\xbb\xbf").lstrip()  # (a byte-order mark is allowed)
        if start and not start.startswith(b"{"):
            raise ValueError(
                f"{path} is not a fastgd {what}: it does not begin with '{{' (a JSON object; "
                f"it begins with {start[:20]!r}); check that the right file was given"
            )
        raw = head + f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not a fastgd {what}: it is not UTF-8 text (byte {exc.start} is "
            f"{raw[exc.start:exc.start + 1]!r}); the file is damaged or of another kind"
        ) from None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path} is not a fastgd {what} (not valid JSON: {exc}); the file "
                         "is damaged or truncated") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path} is not a fastgd {what}: it holds a JSON "
                         f"{_json_type(doc)}, not an object")
    return doc


def read_versioned(path, what, required, newest, fix=None):
    """The JSON document at ``path``: a fastgd ``what`` ("model file", "checkpoint") with
    the keys ``required`` and a ``format`` (an int >= 1) no newer than ``newest``, or a
    clear ``ValueError`` naming the file (and the field)."""
    doc = read_json(path, what)
    path = os.fspath(path)
    fields = Fields(path, fix or f"the file is not a fastgd {what}, or is damaged")
    if "format" not in doc:
        raise ValueError(f"{path} is not a fastgd {what}: it has no 'format' field")
    fmt = fields.integer(doc["format"], "format", 1)
    if fmt > newest:
        version = doc.get("fastgd_version")
        version = version if isinstance(version, str) else "?"
        raise ValueError(
            f"{path} was written by fastgd {version:.40} in {what} format {fmt}; this fastgd "
            f"reads format {newest} and older: upgrade fastgd"
        )
    missing = [k for k in required if k not in doc]
    if missing:
        raise ValueError(f"{path} is not a complete fastgd {what}: it has no "
                         f"{' and no '.join(repr(k) for k in missing)} field; {fields.fix}")
    return doc


class Fields:
    """Checks the values of one document read from ``path``: each method returns the value
    normalized, or raises ``ValueError("<path>: field '<field>' ...; <fix>")``."""

    def __init__(self, path, fix):
        self.path, self.fix = path, fix

    def error(self, field, problem):
        return ValueError(f"{self.path}: field {field!r} {problem}; {self.fix}")

    def keys(self, doc, field, required, optional=()):
        """``doc`` is an object holding every key of ``required``; a key neither there nor
        in ``optional`` is refused (a misspelt or foreign key would otherwise be ignored
        without a word). ``field`` None: the document itself."""
        where = f"{self.path}:" if field is None else f"{self.path}: field {field!r}"
        if not isinstance(doc, dict):
            raise self.error(field, f"must be an object, got {_shown(doc)}")
        missing = [k for k in required if k not in doc]
        if missing:
            raise ValueError(f"{where} has no {' and no '.join(map(repr, missing))}; {self.fix}")
        unknown = sorted(str(k) for k in doc if k not in required and k not in optional)
        if unknown:
            known = ", ".join(map(repr, tuple(required) + tuple(optional)))
            raise ValueError(f"{where} has the unknown key(s) {', '.join(map(repr, unknown))} "
                             f"(known: {known}); {self.fix}")
        return doc

    def integer(self, v, field, low, high=None):
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(field, f"must be an integer >= {low}, got {_shown(v)}")
        top = INT_MAX if high is None else high
        if v < low or v > top:
            rng = f">= {low}" if v < low and high is None else f"between {low} and {top}"
            shown = str(v) if abs(v) < 10**20 else f"{str(v)[:12]}... ({len(str(v))} digits)"
            raise self.error(field, f"must be an integer {rng}, got {shown}")
        return v

    def real(self, v, field, low=None, positive=False, nan=False, inf=False):
        """A number (ints allowed); NaN only with ``nan``, +-inf (or a number beyond
        float64's range, which JSON parses as inf) only with ``inf``."""
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(field, f"must be a number, got {_shown(v)}")
        try:
            x = float(v)
        except OverflowError:
            raise self.error(field, "is an integer beyond float64's range") from None
        if math.isnan(x) and not nan:
            raise self.error(field, "is NaN")
        if math.isinf(x) and not inf:
            raise self.error(field, "is infinite (inf, or a number beyond float64's range "
                                    "such as 1e400)")
        if positive and not x > 0.0:
            raise self.error(field, f"must be > 0, got {x!r}")
        if low is not None and x < low:
            raise self.error(field, f"must be >= {low}, got {x!r}")
        return x

    def flag(self, v, field):
        if not isinstance(v, bool):
            raise self.error(field, f"must be true or false, got {_shown(v)}")
        return v

    def text(self, v, field):
        if not isinstance(v, str):
            raise self.error(field, f"must be a string, got {_shown(v)}")
        return v

    def reals(self, v, field, length=None, low=None):
        """A list of finite numbers (at least one; ``length`` of them when given) as a
        float64 array."""
        if not isinstance(v, list):
            raise self.error(field, f"must be a list of numbers, got {_shown(v)}")
        if not v:
            raise self.error(field, "is empty; it needs at least one number")
        if length is not None and len(v) != length:
            raise self.error(field, f"must hold {length} number(s), got {len(v)}")
        return np.array([self.real(x, f"{field}[{i}]", low=low) for i, x in enumerate(v)],
                        dtype=np.float64)

    def plan(self, v, field="plan"):
        """A :class:`fastgd.FitPlan` from its dict (:meth:`fastgd.FitPlan.from_dict`'s
        validation, its errors naming the file and the field)."""
        from ._plan import FitPlan

        try:
            return FitPlan.from_dict(v)
        except (ValueError, TypeError) as exc:
            raise self.error(field, f"is not a valid fit plan ({exc})") from None


def _json_type(v):
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(v), type(v).__name__)


def _shown(v):
    text = json.dumps(v) if not isinstance(v, float) else repr(v)
    if len(text) > 40:
        text = text[:40] + "..."
    return f"{text} (a JSON {_json_type(v)})"


#: a model file's fields beyond ``format``: those a file must hold, and those it may (with
#: the value a missing one stands for). Format 1 files from ``FitResult.save`` hold all;
#: a hand-written model needs only the coefficients and the intercept.
MODEL_REQUIRED = ("format", "coef", "intercept")
MODEL_OPTIONAL = MappingProxyType({
    "fastgd_version": None, "feature_names": None, "one_d": False, "final_loss": None,
    "n_epochs": 0, "converged": False, "scaled": False, "plan": None,
})
MODEL_FIX = ("a fastgd model file holds exactly what FitResult.save writes: save the model "
             "again, or correct the field")


def read_model(path):
    """The fields of the model file at ``path``, each checked, as a dict (``coef`` a float64
    array, ``feature_names`` a tuple or None, ``final_loss`` NaN when absent, ``plan`` a
    :class:`fastgd.FitPlan` or None), or a ``ValueError`` naming the file and the field.

    Every field is checked for type, shape and finiteness, and against the others:
    ``coef`` a non-empty list of finite numbers; ``intercept`` finite; ``feature_names``
    None or unique strings, one per coefficient; ``one_d`` only with one coefficient;
    ``final_loss`` null or finite >= 0; ``n_epochs`` an int >= 0; ``converged`` and
    ``scaled`` booleans; ``plan`` None or a valid fit plan for as many features (and the
    same ``one_d`` and ``scaled``). Unknown keys are refused (a misspelt key would be
    ignored without a word)."""
    doc = read_versioned(path, "model file", MODEL_REQUIRED, MODEL_FORMAT, MODEL_FIX)
    f = Fields(os.fspath(path), MODEL_FIX)
    f.keys(doc, None, MODEL_REQUIRED, tuple(MODEL_OPTIONAL))
    doc = {**MODEL_OPTIONAL, **doc}
    coef = f.reals(doc["coef"], "coef")
    d = coef.shape[0]
    out = {"coef": coef, "intercept": f.real(doc["intercept"], "intercept")}
    if doc["fastgd_version"] is not None:
        f.text(doc["fastgd_version"], "fastgd_version")
    names = doc["feature_names"]
    if names is not None:
        if not isinstance(names, list):
            raise f.error("feature_names",
                          f"must be null or a list of strings, got {_shown(names)}")
        names = tuple(f.text(x, f"feature_names[{i}]") for i, x in enumerate(names))
        if len(names) != d:
            raise f.error("feature_names", f"holds {len(names)} name(s) for {d} coefficient(s)")
        if len(set(names)) != d:
            dup = next(x for x in names if names.count(x) > 1)
            raise f.error("feature_names", f"names the column {dup!r} twice")
    out["feature_names"] = names
    out["one_d"] = f.flag(doc["one_d"], "one_d")
    if out["one_d"] and d != 1:
        raise f.error("one_d", f"is true (a fit on 1-D X: one feature) but 'coef' holds {d} values")
    loss = doc["final_loss"]
    out["final_loss"] = math.nan if loss is None else f.real(loss, "final_loss", low=0.0)
    out["n_epochs"] = f.integer(doc["n_epochs"], "n_epochs", 0)
    out["converged"] = f.flag(doc["converged"], "converged")
    out["scaled"] = f.flag(doc["scaled"], "scaled")
    plan = None if doc["plan"] is None else f.plan(doc["plan"])
    if plan is not None:
        if plan.facts.d != d:
            raise f.error("plan", f"is a plan for {plan.facts.d} feature(s), but 'coef' holds {d} "
                                  "value(s)")
        if plan.facts.one_d != out["one_d"]:
            raise f.error("one_d", f"is {str(out['one_d']).lower()}, but the plan's facts.one_d "
                                   f"is {str(plan.facts.one_d).lower()}")
        if plan.scaled != out["scaled"]:
            raise f.error("scaled", f"is {str(out['scaled']).lower()}, but the plan ran "
                                    f"{'scaled' if plan.scaled else 'unscaled'}")
        if out["n_epochs"] > plan.epochs:
            raise f.error("n_epochs", f"is {out['n_epochs']}, more than the plan's epochs "
                                      f"({plan.epochs})")
    out["plan"] = plan
    return out
