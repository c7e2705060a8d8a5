"""The public API's docstrings document its parameters (issue 19): numpydoc's own checks.

Oracle: :func:`numpydoc.validate.validate`, run on the qualified name of every public
object (the way ``python -m numpydoc.hooks.validate_docstrings`` and pandas' docstring
check call it). Of its codes, those that say whether the parameters and the result are
documented are asserted; the others (summary style, See Also, ...) are not:

* GL08 (no docstring at all: nothing of the object is documented),
* PR01 (a parameter of the signature not documented), PR02 (a documented parameter
  not in the signature), PR03 (documented in another order than the signature's),
* PR04 (no type), PR05 (a type ending with a period), PR06 (``integer``/``boolean``/
  ``string`` for ``int``/``bool``/``str``), PR07 (no description), PR08/PR09 (a
  description not starting with a capital letter or not ending with a period), PR10
  (``name: type`` without a space before the colon),
* RT01 (no Returns section in a function or method that returns a value; numpydoc
  reads the source for a ``return`` with a value), RT02 (one value returned, but named:
  the type alone goes on its line), RT03 (a returned value without a description).

The public API: every function and non-exception class of ``fastgd.__all__``, the public
methods, classmethods, staticmethods and properties those classes define themselves
(not what they inherit from scikit-learn or ``object``), and the public functions of
``fastgd.io``, ``fastgd.plot``, ``fastgd.datasets`` and ``fastgd.losses`` (their
``__all__``). A classmethod is bound to its class when loaded, and numpydoc checks the
Returns section of plain functions only: its function is validated instead, so that
RT01 applies to it too.
"""
import importlib
import inspect

import numpydoc.validate
import pytest

import fastgd

#: the numpydoc codes asserted (see the module docstring)
CHECKED = ("GL08", "PR01", "PR02", "PR03", "PR04", "PR05", "PR06", "PR07", "PR08", "PR09",
           "PR10", "RT01", "RT02", "RT03")
#: the modules whose public functions are checked besides ``fastgd.__all__``
MODULES = ("fastgd.io", "fastgd.plot", "fastgd.datasets", "fastgd.losses")


def _members(qualname, cls):
    """The public methods, classmethods, staticmethods and properties ``cls`` defines."""
    return [f"{qualname}.{name}" for name, value in vars(cls).items()
            if not name.startswith("_")
            and (inspect.isfunction(value)
                 or isinstance(value, (classmethod, staticmethod, property)))]


def public_api():
    """The qualified names of the public objects whose docstrings are checked."""
    names = []
    for name in fastgd.__all__:
        obj = getattr(fastgd, name)
        if inspect.isfunction(obj):
            names.append(f"fastgd.{name}")
        elif inspect.isclass(obj) and not issubclass(obj, (BaseException, Warning)):
            names.append(f"fastgd.{name}")
            names += _members(f"fastgd.{name}", obj)
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        public = getattr(module, "__all__", None)
        if public is None:
            public = [k for k, v in vars(module).items()
                      if not k.startswith("_") and getattr(v, "__module__", None) == module_name]
        names += [f"{module_name}.{k}" for k in public
                  if inspect.isfunction(getattr(module, k))]
    return names


def docstring_errors(qualname):
    """``[(code, message), ...]``: numpydoc's errors among :data:`CHECKED` for the object
    called ``qualname``."""
    obj = numpydoc.validate.Validator._load_obj(qualname)
    if inspect.ismethod(obj) and inspect.isclass(obj.__self__):
        # a classmethod: validate its function (numpydoc checks Returns for functions
        # only; the signature's leading ``cls`` is dropped as ``self`` is)
        report = numpydoc.validate.validate(numpydoc.validate.get_doc_object(obj.__func__))
    else:
        report = numpydoc.validate.validate(qualname)
    return [(code, message) for code, message in report["errors"] if code in CHECKED]


API = public_api()


def test_the_public_api_is_enumerated():
    """The list is the API, not an empty or partial one (which would pass vacuously)."""
    expected = {
        "fastgd.fit", "fastgd.fit_chunks", "fastgd.fit_file", "fastgd.resume", "fastgd.load",
        "fastgd.mse", "fastgd.sse", "fastgd.get_num_threads", "fastgd.set_num_threads",
        "fastgd.FitPlan", "fastgd.FitPlan.build", "fastgd.FitPlan.from_dict",
        "fastgd.FitPlan.single_pass", "fastgd.DataFacts", "fastgd.DataFacts.to_dict",
        "fastgd.FitResult", "fastgd.FitResult.predict", "fastgd.FitResult.slope",
        "fastgd.GDRegressor", "fastgd.GDRegressor.fit", "fastgd.GDRegressor.partial_fit",
        "fastgd.GDRegressor.predict", "fastgd.GDRegressor.score", "fastgd.io.save",
        "fastgd.plot.fit_line", "fastgd.plot.summary", "fastgd.datasets.load_bike_calories",
        "fastgd.datasets.make_demo", "fastgd.losses.register", "fastgd.losses.get",
    }
    assert expected <= set(API), sorted(expected - set(API))
    # inherited methods (scikit-learn's get_params, score's mixin) and exceptions are not
    assert "fastgd.GDRegressor.get_params" not in API
    assert not any(name.startswith("fastgd.DivergenceError") for name in API)
    assert len(API) == len(set(API))


@pytest.mark.parametrize("qualname", API)
def test_parameters_and_returns_are_documented(qualname):
    errors = docstring_errors(qualname)
    assert not errors, f"{qualname}: " + "; ".join(f"{code} {msg}" for code, msg in errors)


# -- the checker itself: a badly documented function and class fail it ------------------

def _badly_documented(alpha, beta, gamma, *, eps=1):
    """Add things.

    Parameters
    ----------
    beta : integer
        the second
    alpha : float
    gamma
        The third, without a type.
    delta : str.
        Not a parameter, with a type that ends with a period.
    """
    return alpha + beta + gamma + eps


def _vague_returns(x):
    """Nothing.

    Parameters
    ----------
    x : float
        The value.

    Returns
    -------
    y : float
    """
    return x


def _undocumented(x):
    return x


def _out_of_order(a, b):
    """Nothing.

    Parameters
    ----------
    b : float
        The second.
    a : float
        The first.
    """


def _no_space(x):
    """Nothing.

    Parameters
    ----------
    x: float
        The value.
    """


class _BadClass:
    """A class whose classmethod returns a value without a Returns section.

    Parameters
    ----------
    x : float
        The value.
    """

    def __init__(self, x):
        self.x = x

    @classmethod
    def make(cls, x):
        """Make one.

        Parameters
        ----------
        x : float
            The value.
        """
        return cls(x)


def test_the_checker_catches_bad_docstrings():
    """Each asserted code is raised where it applies (the helper used above, on objects
    of this module whose faults are known): the check cannot pass silently."""
    codes = dict(docstring_errors(f"{__name__}._badly_documented"))
    # eps is not documented, delta is not a parameter and its type ends with a period;
    # gamma has no type; beta says "integer", has a lowercase description without a
    # period; alpha has no description; no Returns section
    assert {"PR01", "PR02", "PR04", "PR05", "PR06", "PR07", "PR08", "PR09",
            "RT01"} <= set(codes), codes
    assert "eps" in codes["PR01"] and "delta" in codes["PR02"] and "gamma" in codes["PR04"]
    assert sorted(c for c, _ in docstring_errors(f"{__name__}._vague_returns")) == ["RT02", "RT03"]
    assert [c for c, _ in docstring_errors(f"{__name__}._undocumented")] == ["GL08"]
    assert [c for c, _ in docstring_errors(f"{__name__}._out_of_order")] == ["PR03"]
    assert "PR10" in dict(docstring_errors(f"{__name__}._no_space"))
    assert [c for c, _ in docstring_errors(f"{__name__}._BadClass.make")] == ["RT01"]
    assert docstring_errors(f"{__name__}._BadClass") == []
