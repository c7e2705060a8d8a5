"""The README's examples run, and print what the README says they print (issue 20).

The convention (also stated in the README, "How the README is tested"):

* every ```python block is a script of its own: it is written to ``block.py`` in a new,
  empty folder and run as ``python block.py`` there, as a user who copies it would (so
  it defines the data it uses, and a block that starts worker processes must guard them
  with ``if __name__ == "__main__":``);
* a comment ``# -> TEXT`` (notes may come before the arrow) states a line the block
  prints: the lines on standard output must match those comments one for one, in order.
  In TEXT, a number followed by ``...`` matches a printed number within one unit of its
  last digit (``0.0889365199...`` matches 0.08893651996682); ``...`` on its own matches
  any text; anything else must match exactly (runs of spaces match any run of spaces);
* a block that is only a stub ``def NAME(...): ...`` states the signature of
  ``fastgd.NAME``: names, kinds and defaults must be the function's;
* the ```bash blocks may only call known programs; every ``fastgd`` command line in them
  is parsed by the real command line (its work replaced by a recorder, so that ``fastgd
  demo`` does not fit 10^7 points), and a block made only of ``fastgd`` (and ``cat``)
  commands is run for real by bash, in a folder holding the files it names.

A block must not warn: no ``fastgd.ConvergenceWarning`` (or its subclass) on standard
error, and no warning pointing at a line of the block. Oracle: the README's own text.
"""
import ast
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

import fastgd

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: the blocks' own kernel cache, shared by them (compiled once per test session) and kept
#: apart from the test process's (see tests/test_cli.py)
CACHE = tempfile.mkdtemp(prefix="fastgd-readme-cache-")
#: the extras that bring a block's optional imports (a block needing one that is missing
#: skips with that reason; the test extra installs them all)
OPTIONAL = {"pandas": "frames", "polars": "frames", "pyarrow": "io", "sklearn": "sklearn",
            "dask": "dask", "distributed": "dask", "matplotlib": "plot"}
#: the programs the bash blocks may call
PROGRAMS = {"fastgd", "pip", "pytest", "cat"}


@dataclass(frozen=True)
class Block:
    lang: str
    line: int      # the README line of the opening fence
    code: str

    def __str__(self):
        return f"{self.lang}-line{self.line}"


def _blocks(text=None):
    text = README.read_text(encoding="utf-8") if text is None else text
    out, lang, start, lines = [], None, 0, []
    for i, line in enumerate(text.splitlines(), start=1):
        if lang is None:
            m = re.match(r"^```(\w+)\s*$", line)
            if m:
                lang, start, lines = m[1], i, []
        elif line.startswith("```"):
            out.append(Block(lang, start, "\n".join(lines) + "\n"))
            lang = None
        else:
            lines.append(line)
    assert lang is None, f"README.md: the block opened at line {start} is never closed"
    return out


BLOCKS = _blocks()
PYTHON = [b for b in BLOCKS if b.lang == "python"]
BASH = [b for b in BLOCKS if b.lang == "bash"]


def _env():
    bindir = os.path.dirname(sys.executable)  # the `fastgd` console script beside python
    return {**os.environ, "FASTGD_CACHE_DIR": CACHE, "PATH": bindir + os.pathsep + os.environ["PATH"],
            "MPLBACKEND": "Agg"}


# --- the expected output --------------------------------------------------------------------

_NUMBER_DOTS = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\.\.\."
_PRINTED_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


def expected_lines(code):
    """The TEXT of every ``# -> TEXT`` comment of ``code``, in order."""
    import io
    import tokenize

    out = []
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT and "-> " in tok.string:
            out.append(tok.string.split("-> ", 1)[1].strip())
    return out


def matches(expected, printed):
    """Whether a printed line matches the README's ``expected`` (rules: module docstring).
    Returns None when it does, else the reason."""
    pattern, numbers = [], []
    for part in re.split(f"({_NUMBER_DOTS}|\\.\\.\\.)", expected):
        if not part:
            continue
        if part == "...":
            pattern.append(".*?")
        elif re.fullmatch(_NUMBER_DOTS, part):
            shown = part[:-3]
            mantissa, _, exponent = shown.lower().partition("e")
            decimals = len(mantissa.partition(".")[2])
            numbers.append((float(shown), 10.0 ** (int(exponent or 0) - decimals), part))
            pattern.append(_PRINTED_NUMBER)
        else:
            pattern.append(r"\s+".join(re.escape(w) for w in re.split(r"\s+", part)) if part.strip()
                           else r"\s+")
    m = re.fullmatch("".join(pattern), printed.strip())
    if m is None:
        return f"printed {printed!r}, the README says {expected!r}"
    for (value, unit, shown), got in zip(numbers, m.groups()):
        if not abs(float(got) - value) <= unit * (1 + 1e-6):  # (slack: the decimal unit in binary)
            return f"printed {got} where the README says {shown} (off by more than {unit:g})"
    return None


@pytest.mark.parametrize("expected,printed,ok", [
    ("0.0889365199...", "0.0889365199668202", True),
    ("0.0889365199...", "0.08893652", True),          # within one unit of the last digit
    ("0.0889365199...", "0.0889365197", False),
    ("5565.10783449...", "5565.107834490553", True),
    ("-0.99...", "-0.9987", True),
    ("-0.99...", "0.9987", False),
    ("7.991020985734... 1.322431022687...", "7.991020985734451 1.3224310226878684", True),
    ("7.991020985734... 1.322431022687...", "7.991020985734451 1.3224310226", False),
    ("batch gram cg", "batch  gram cg", True),
    ("batch gram cg", "batch gram gd", False),
    ("True", "False", False),
    ("the fit diverged in epoch 9 with learning_rate=0.001 ...",
     "the fit diverged in epoch 9 with learning_rate=0.001 (the loss exploded); use ...", True),
    ("the fit diverged in epoch 9 with learning_rate=0.001 ...",
     "the fit diverged in epoch 7 with learning_rate=0.001 (the loss exploded)", False),
    ("{'distance': 30.0..., 'climb': 0.8...}", "{'distance': 29.975, 'climb': 0.803}", True),
    ("{'distance': 30.0..., 'climb': 0.8...}", "{'distance': 29.875, 'climb': 0.803}", False),
    ("[ 1.  -2.   0.5] 3.0", "[ 1.  -2.   0.5] 3.0", True),
    ("8 9", "8 10", False),
])
def test_the_matching_rule(expected, printed, ok):
    assert (matches(expected, printed) is None) == ok


def test_the_readme_has_its_blocks():
    # (the parser cannot quietly lose blocks: the README's count, by its fences)
    text = README.read_text(encoding="utf-8")
    assert len(PYTHON) == len(re.findall(r"^```python\s*$", text, re.M)) >= 10
    assert len(BASH) == len(re.findall(r"^```bash\s*$", text, re.M)) >= 3
    assert sum(len(expected_lines(b.code)) for b in PYTHON) >= 20


# --- python blocks ----------------------------------------------------------------------------

def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module.split(".")[0]


def _stub(tree):
    """The function of a block that is only ``def NAME(...): ...``, else None."""
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef):
        body = tree.body[0].body
        if (len(body) == 1 and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and body[0].value.value is Ellipsis):
            return tree.body[0].name
    return None


def _parameters(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("block", PYTHON, ids=str)
def test_python_block_runs_and_prints_what_the_readme_says(block, tmp_path):
    tree = ast.parse(block.code, filename=f"README.md block at line {block.line}")
    name = _stub(tree)
    if name is not None:
        namespace = {}
        exec(compile(tree, f"README.md:{block.line}", "exec"), namespace)
        assert _parameters(namespace[name]) == _parameters(getattr(fastgd, name)), (
            f"README.md line {block.line}: the signature shown is not fastgd.{name}'s: "
            f"{inspect.signature(getattr(fastgd, name))}")
        return
    for module in sorted(set(_imports(tree)) & set(OPTIONAL)):
        if find_spec(module) is None:
            pytest.skip(f"README.md line {block.line} needs {module} "
                        f'(pip install "fastgd[{OPTIONAL[module]}]")')
    (tmp_path / "block.py").write_text(block.code, encoding="utf-8")
    proc = subprocess.run([sys.executable, "block.py"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    where = f"README.md block at line {block.line}"
    assert proc.returncode == 0, f"{where} failed:\n{proc.stderr[-4000:]}"
    warned = [line for line in proc.stderr.splitlines()
              if re.search(r"block\.py:\d+: \w*Warning|ConvergenceWarning|IllConditionedWarning", line)]
    assert not warned, f"{where} warns:\n" + "\n".join(warned)
    printed = [line for line in proc.stdout.splitlines() if line.strip()]
    expected = expected_lines(block.code)
    assert len(printed) == len(expected), (
        f"{where} printed {len(printed)} lines for {len(expected)} '# ->' comments:\n"
        + "\n".join(printed))
    for n, (want, got) in enumerate(zip(expected, printed), start=1):
        reason = matches(want, got)
        assert reason is None, f"{where}, printed line {n}: {reason}"


# --- bash blocks ------------------------------------------------------------------------------

def _commands(code):
    """Each command line of a bash block as a list of words, redirections dropped."""
    out = []
    for line in code.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words, skip = [], False
        for tok in lexer:
            if skip:
                skip = False
            elif tok in ("&&", "||", "|", ";"):
                if words:
                    out.append(words)
                words = []
            elif tok in (">", ">>", "<", "2>"):
                skip = True
            else:
                words.append(tok)
        if words:
            out.append(words)
    return out


def test_bash_blocks_call_known_programs_and_name_real_extras_and_paths():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml on Python 3.10")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for block in BASH:
        for words in _commands(block.code):
            assert words[0] in PROGRAMS, f"README.md line {block.line}: unknown program {words}"
            for word in words[1:]:
                for named in re.findall(r"\.\[([\w,-]+)\]", word):
                    for extra in named.split(","):
                        assert extra in extras, f"README.md line {block.line}: no extra {extra!r}"
            if words[0] == "pytest":
                paths = [w for w in words[1:] if not w.startswith("-") and w != "not slow"]
                assert all((ROOT / p).exists() for p in paths), words


# a recorder in place of each command's work: main() parses and checks the arguments as
# always, then says which command it would run
_DRY_RUN = """
import json, sys
from fastgd import cli
seen = []
def recorder(name):
    def run(*args, **kwargs):
        seen.append(name)
        return []
    return run
cli.demo = recorder("demo")
for name in ("fit", "bench", "resume", "predict"):
    setattr(cli, f"_{name}_command", recorder(name))
results = []
for argv in json.loads(sys.argv[1]):
    del seen[:]
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    results.append([code, list(seen)])
print(json.dumps(results))
"""


def test_every_fastgd_command_line_of_the_readme_parses():
    argvs = [words[1:] for block in BASH for words in _commands(block.code) if words[0] == "fastgd"]
    assert len(argvs) >= 7 and ["demo"] in argvs
    proc = subprocess.run([sys.executable, "-c", _DRY_RUN, json.dumps(argvs)], env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for argv, (code, ran) in zip(argvs, json.loads(proc.stdout)):
        assert code == 0 and ran == [argv[0]], f"fastgd {' '.join(argv)}: exit {code}\n{proc.stderr}"


def _ride_files(folder):
    """The files the README's command lines name: rides with a header, new rides to
    predict, and a Parquet file with columns a and b."""
    rng = np.random.default_rng(1)
    distance, climb = rng.uniform(1, 60, 3000), rng.uniform(0, 900, 3000)
    calories = 30 * distance + 0.8 * climb + rng.normal(0, 25, 3000)
    np.savetxt(folder / "rides.csv", np.c_[distance, climb, calories], delimiter=",",
               header="distance,climb,calories", comments="", fmt="%.10g")
    np.savetxt(folder / "new_rides.csv", np.c_[distance[:50], climb[:50]], delimiter=",",
               header="distance,climb", comments="", fmt="%.10g")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    a = rng.normal(size=20_000)
    pq.write_table(pa.table({"a": a, "b": 2 * a - 1 + rng.normal(0, 0.1, 20_000)}),
                   folder / "big.parquet", row_group_size=5000)


@pytest.mark.parametrize("block", [b for b in BASH if all(w[0] in ("fastgd", "cat")
                                                          for w in _commands(b.code))], ids=str)
def test_the_command_line_block_runs(block, tmp_path):
    _ride_files(tmp_path)
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.code], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"README.md block at line {block.line}:\n{proc.stderr[-4000:]}"
    assert "error" not in proc.stderr.lower(), proc.stderr
    predictions = (tmp_path / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 51  # a header and one line per new ride
    model = fastgd.load(tmp_path / "model.json")
    assert model.feature_names == ("distance", "climb")
