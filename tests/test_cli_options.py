"""``fastgd fit``'s options on a par with the API (issue 20, item 7): every setting of the
table :data:`fastgd._plan.PARAMS` is an option, with the table's help and default, and
checked by the table's own constraint. Oracles: the table itself (nothing left out), and
:func:`fastgd.fit_file` called with the same keywords in this process (the real command,
in a subprocess, must print the same coefficients bit for bit)."""
import argparse
import inspect
import json
import os
import subprocess
import tempfile
import warnings

import numpy as np
import pytest

import fastgd
from fastgd import cli
from fastgd._plan import ENTRY_PARAMS, PARAMS, Flag, FlagOrAuto

pytest.importorskip("pyarrow")

#: the subprocesses' own kernel cache (see tests/test_cli.py)
CACHE = tempfile.mkdtemp(prefix="fastgd-cli-options-cache-")


def _cli(*args):
    return subprocess.run(["fastgd", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "FASTGD_CACHE_DIR": CACHE})


def _fit_parser():
    return cli.build_parser().commands["fit"]


def _options(parser):
    """``{dest: action}`` of every option of ``parser``."""
    return {a.dest: a for a in parser._actions if a.option_strings}


def _parse(*argv):
    return cli.build_parser().parse_args(["fit", "data.csv", "--x", "a", "--y", "y", *argv])


# --- nothing left out ---------------------------------------------------------------------

def test_every_setting_of_the_table_is_an_option_with_its_help_and_default():
    options = _options(_fit_parser())
    for p in PARAMS:
        assert p.name in options, f"the setting {p.name} has no fastgd fit option"
        action = options[p.name]
        flag = isinstance(p.check, (Flag, FlagOrAuto))
        want = cli.flag_options(p) if flag else (cli.option_name(p.name),)
        assert tuple(action.option_strings) == tuple(want)
        assert action.default is argparse.SUPPRESS  # left out: not passed on
        # the help is the table's text, with the default unless the text describes it
        assert action.help.replace("%%", "%").startswith(p.doc)
        if p.default is None:
            assert "default" in p.doc
        else:
            assert "(default: " in action.help
    assert options["parallel"].option_strings == ["--parallel", "--serial"]
    assert options["fit_intercept"].option_strings == ["--intercept", "--no-intercept"]


def test_every_keyword_of_fit_and_fit_file_is_an_option_or_left_out_with_a_reason():
    options = _options(_fit_parser())
    strings = {s for a in options.values() for s in a.option_strings} | {"PATH"}
    table = {p.name for p in PARAMS}
    for fn in (fastgd.fit, fastgd.fit_file):
        for name, par in inspect.signature(fn).parameters.items():
            if par.kind is par.VAR_KEYWORD or name in table:
                continue
            if name in cli.NOT_OPTIONS:
                assert len(cli.NOT_OPTIONS[name]) > 20  # a reason, not a placeholder
                continue
            assert name in cli.OPTION_OF, f"fit keyword {name} has no option and no reason"
            assert cli.OPTION_OF[name] in strings, (name, cli.OPTION_OF[name])
    assert not set(cli.NOT_OPTIONS) & table  # every setting of the table has its option


def test_help_shows_every_option_with_its_text():
    proc = _cli("fit", "--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    for p in PARAMS:
        words = " ".join(p.doc.split())
        assert words[:60] in text, p.name
    for option in ("--penalty", "--alpha", "--l1-ratio", "--loss", "--epsilon",
                   "--no-intercept", "--weight", "--solver", "--optimizer", "--parallel",
                   "--serial", "--checkpoint-every", "(default: batch)", "(default: auto)"):
        assert option in text, option


def test_each_command_has_its_own_examples():
    helps = {c: _cli(c, "--help") for c in ("demo", "fit", "predict", "resume", "bench")}
    for c, proc in helps.items():
        assert proc.returncode == 0 and "examples:" in proc.stdout, c
        example_lines = [ln for ln in proc.stdout.split("examples:")[1].splitlines()
                         if ln.strip().startswith("fastgd ") or "| fastgd" in ln]
        assert any(f"fastgd {c}" in ln for ln in example_lines), c
        if c != "resume":  # (resume's examples begin with the fit that wrote the checkpoint)
            assert all(f"fastgd {c}" in ln for ln in example_lines), (c, example_lines)
    assert "CHECKPOINT" in helps["resume"].stdout
    assert "the checkpoint written by `fastgd fit ... --checkpoint" in " ".join(
        helps["resume"].stdout.split())


# --- only the options given are passed on -------------------------------------------------

def test_only_the_options_given_are_passed_on():
    assert cli.fit_keywords(_parse()) == {}
    cases = {
        ("--serial",): {"parallel": False},
        ("--parallel",): {"parallel": True},
        ("--parallel", "--serial"): {"parallel": False},  # the last one wins
        ("--no-intercept",): {"fit_intercept": False},
        ("--no-shuffle", "--early-stopping"): {"shuffle": False, "early_stopping": True},
        ("--scale",): {"scale": True},
        ("--tol", "none", "--epochs", "1e3"): {"tol": None, "epochs": 1000},
        ("--tol", "auto", "--learning-rate", "auto"): {"tol": "auto", "learning_rate": "auto"},
        ("--learning-rate", "0.5", "--random-state", "7"): {"learning_rate": 0.5,
                                                            "random_state": 7},
        ("--penalty", "none"): {"penalty": None},
        ("--penalty", "l1", "--alpha", "0"): {"penalty": "l1", "alpha": 0.0},
        ("--average", "true"): {"average": True},
        ("--average", "25"): {"average": 25},
        ("--average", "auto"): {"average": "auto"},
        ("--mode", "minibatch", "--batch-size", "64"): {"mode": "minibatch", "batch_size": 64},
    }
    for argv, want in cases.items():
        got = cli.fit_keywords(_parse(*argv))
        assert got == want and all(type(got[k]) is type(want[k]) for k in want), (argv, got)


@pytest.mark.parametrize("argv,message", [
    (["--alpha", "-1"], "alpha must be a finite number >= 0, got -1.0"),
    (["--penalty", "l3"], "penalty must be one of 'l2', 'l1', 'elasticnet'; got 'l3'"),
    (["--l1-ratio", "2"], "l1_ratio must be between 0 and 1, got 2.0"),
    (["--validation-fraction", "1"], "validation_fraction must be strictly between 0 and 1"),
    (["--epochs", "2.5"], "expected an integer, got '2.5'"),
    (["--epsilon", "auto"], "expected a number, got 'auto'"),
    (["--average", "0"], "average must be >= 1, got 0"),
    (["--batch-size", "0"], "batch_size must be >= 1, got 0"),
    (["--checkpoint-every", "0"], "checkpoint_every must be >= 1, got 0"),
])
def test_bad_values_are_usage_errors_with_the_api_message(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        _parse(*argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") <= 3, err  # the short usage, then the error


def test_a_bad_value_from_the_real_command_is_one_usage_error(tmp_path):
    proc = _cli("fit", tmp_path / "none.csv", "--x", "a", "--y", "y", "--solver", "fast")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "argument --solver: solver must be one of 'auto', 'stream', 'gram'; got 'fast'" \
        in proc.stderr


# --- each option round-trips, bit for bit -------------------------------------------------

#: option sets that together give every setting of the table a value other than its
#: default: (options, fit_file keywords)
ROUND_TRIPS = [
    (["--penalty", "l2", "--alpha", "0.1"], dict(penalty="l2", alpha=0.1)),
    (["--penalty", "elasticnet", "--alpha", "0.05", "--l1-ratio", "0.5", "--optimizer",
      "nesterov", "--solver", "stream", "--tol", "1e-10", "--epochs", "500",
      "--n-iter-no-change", "2"],
     dict(penalty="elasticnet", alpha=0.05, l1_ratio=0.5, optimizer="nesterov",
          solver="stream", tol=1e-10, epochs=500, n_iter_no_change=2)),
    (["--loss", "huber", "--epsilon", "0.3", "--reduction", "sum", "--no-intercept",
      "--serial", "--weight", "w"],
     dict(loss="huber", epsilon=0.3, reduction="sum", fit_intercept=False, parallel=False,
          weight="w")),
    (["--mode", "minibatch", "--batch-size", "64", "--epochs", "3", "--random-state", "5",
      "--learning-rate-schedule", "invscaling", "--power-t", "0.3", "--average", "10",
      "--no-shuffle", "--block-rows", "1000"],
     dict(mode="minibatch", batch_size=64, epochs=3, random_state=5,
          learning_rate_schedule="invscaling", power_t=0.3, average=10, shuffle=False,
          block_rows=1000)),
    (["--mode", "sgd", "--epochs", "4", "--random-state", "2", "--early-stopping",
      "--validation-fraction", "0.2", "--learning-rate-schedule", "adaptive", "--parallel"],
     dict(mode="sgd", epochs=4, random_state=2, early_stopping=True, validation_fraction=0.2,
          learning_rate_schedule="adaptive", parallel=True)),
    (["--learning-rate", "0.01", "--no-scale", "--tol", "none", "--epochs", "50"],
     dict(learning_rate=0.01, scale=False, tol=None, epochs=50)),
    (["--mode", "sgd", "--learning-rate", "0.001", "--scale", "--average", "false",
      "--epochs", "2", "--random-state", "0"],
     dict(mode="sgd", learning_rate=0.001, scale=True, average=False, epochs=2,
          random_state=0)),
]


def test_the_round_trips_cover_every_setting():
    covered = set()
    for argv, _ in ROUND_TRIPS:
        covered |= set(cli.fit_keywords(_parse(*argv)))
    assert covered == {p.name for p in PARAMS}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(20)
    X = rng.normal(size=(4000, 2))
    y = X @ [1.5, -0.5] + 2.0 + 0.2 * rng.normal(size=4000)
    w = rng.uniform(0.2, 3.0, size=4000)
    folder = tmp_path_factory.mktemp("options")
    path = folder / "d.csv"
    np.savetxt(path, np.c_[X, y, w], delimiter=",", header="a,b,y,w", comments="",
               fmt="%.17g")
    semi = folder / "nohead.txt"
    np.savetxt(semi, np.c_[X, y], delimiter=";", fmt="%.17g")
    return path, semi


@pytest.mark.parametrize("argv,kw", ROUND_TRIPS, ids=[" ".join(a[:2]) for a, _ in ROUND_TRIPS])
def test_each_option_round_trips_bit_for_bit(data, argv, kw):
    path, _ = data
    proc = _cli("fit", path, "--x", "a", "--x", "b", "--y", "y", "--format", "json", *argv)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    with warnings.catch_warnings():  # (the short stochastic fits run out of epochs; the
        # command prints the same warning on stderr)
        warnings.simplefilter("ignore", fastgd.ConvergenceWarning)
        ref = fastgd.fit_file(path, x=["a", "b"], y="y", **kw)
    assert got["coef"] == ref.coef.tolist() and got["intercept"] == ref.intercept
    assert got["epochs"] == ref.n_epochs and got["loss"] == ref.final_loss
    assert got["converged"] == ref.converged and got["features"] == ["a", "b"]


def test_reading_options_round_trip(data):
    _, semi = data
    proc = _cli("fit", semi, "--no-header", "--delimiter", ";", "--x", "0", "--x", "1",
                "--y", "2", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    ref = fastgd.fit_file(semi, x=["0", "1"], y="2", header=False, delimiter=";")
    assert got["coef"] == ref.coef.tolist() and got["intercept"] == ref.intercept
    assert got["features"] == ["0", "1"] == list(ref.feature_names)


def test_checkpoint_every_reaches_the_checkpoint(data, tmp_path):
    path, _ = data
    ckpt = tmp_path / "fit.ckpt"
    proc = _cli("fit", path, "--x", "a", "--y", "y", "--mode", "sgd", "--epochs", "5",
                "--random-state", "0", "--checkpoint", ckpt, "--checkpoint-every", "2")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(ckpt.read_text())
    assert doc["every"] == 2 and doc["epoch"] == 4  # epochs 2 and 4 written, not 5
    usage = _cli("fit", path, "--x", "a", "--y", "y", "--checkpoint-every", "2")
    assert usage.returncode == 2 and "--checkpoint-every needs --checkpoint" in usage.stderr
    assert ENTRY_PARAMS["checkpoint_every"].doc in " ".join(
        _cli("fit", "--help").stdout.split())
