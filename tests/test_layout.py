"""The package's layout: which module may import which.

Oracle: the import statements themselves, read from the source (every ``import`` and
``from ... import``, at module level or inside a function). Modules import downwards
only: the graph is acyclic, and every import points from a layer to the same layer or
one below it, in this order (top first):

1. front ends: ``fastgd`` (the package), ``_api``, ``estimator``, ``cli``, ``io``,
   ``plot``, ``dask``, ``datasets``, ``_compare``;
2. ``_pipeline``: the one entry sequence;
3. ``_engine``: runs a plan's solver over a source;
4. results: ``_result``, ``_metrics``, ``_checkpoint``, ``_model``, ``_outputs``;
5. ``_plan``: the settings, validated and resolved;
6. ``solvers``: the algorithms;
7. ``sources`` and ``losses``: where rows live, what is minimized;
8. utilities: ``_frames``, ``_validation``;
9. base: ``kernels``, ``_config``, ``_threads``, ``_chunking``, ``_layout``,
   ``_intrinsics``, ``_callers``, ``_version``.
"""
import ast
from pathlib import Path

import pytest

import fastgd

LAYERS = [
    ("fastgd", "fastgd.__main__", "fastgd._api", "fastgd.estimator", "fastgd.cli",
     "fastgd.io", "fastgd.plot", "fastgd.dask", "fastgd.datasets", "fastgd._compare"),
    ("fastgd._pipeline",),
    ("fastgd._engine",),
    ("fastgd._result", "fastgd._metrics", "fastgd._checkpoint", "fastgd._model",
     "fastgd._outputs"),
    ("fastgd._plan",),
    ("fastgd.solvers",),
    ("fastgd.sources", "fastgd.losses"),
    ("fastgd._frames", "fastgd._validation"),
    ("fastgd.kernels", "fastgd._config", "fastgd._threads", "fastgd._chunking",
     "fastgd._layout", "fastgd._intrinsics", "fastgd._callers", "fastgd._version"),
]
ROOT = Path(fastgd.__file__).parent


def modules():
    """Every module of the package: dotted name -> path."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name, path, known):
    """The package's modules that module ``name`` imports. ``from . import sub`` is an
    edge to the submodule ``sub`` (not to the package's ``__init__``, which is
    necessarily being imported already)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            deps.update(a.name for a in node.names if a.name.startswith("fastgd"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("fastgd"):
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            deps.update(subs)
            if len(subs) < len(node.names):
                deps.add(target)
    deps.discard(name)
    return {d for d in deps if d in known}


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(name):
    for k, members in enumerate(LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members):
            return k
    raise AssertionError(f"{name} is in no layer: add it to LAYERS (and the docstring)")


def test_every_module_has_a_layer(graph):
    for name in graph:
        layer(name)


def test_imports_point_down(graph):
    up = [f"{m} (layer {layer(m) + 1}) imports {d} (layer {layer(d) + 1})"
          for m, deps in graph.items() for d in sorted(deps) if layer(d) < layer(m)]
    assert not up, "imports pointing up:\n" + "\n".join(up)


def test_no_import_cycles(graph):
    """Within a layer too: the graph is acyclic (the package's ``__init__``, which
    imports the public API by design, aside)."""
    g = {m: deps - {"fastgd"} for m, deps in graph.items() if m != "fastgd"}
    state = {}

    def visit(m, stack):
        state[m] = 1
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(stack + [m, d])}")
            if d not in state:
                visit(d, stack + [m])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [])


def test_the_kernels_import_numpy_numba_and_math_only():
    """Kernels are pure array functions: no strings of options, no package state beyond
    the compile flags (``_config``), the layouts (``_layout``), the intrinsics and
    fastgd's threads (the QR statistic, plain NumPy, factors its slices on them)."""
    allowed = {"numpy", "numba", "math", "fastgd._config", "fastgd._layout",
               "fastgd._intrinsics", "fastgd._threads"}
    for path in (ROOT / "kernels").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    continue  # the package's own kernels
                if node.level == 2:
                    names = ([f"fastgd.{node.module}"] if node.module
                             else [f"fastgd.{a.name}" for a in node.names])
                else:
                    names = [node.module.split(".")[0]]
            else:
                continue
            assert set(names) <= allowed, (path.name, names)
