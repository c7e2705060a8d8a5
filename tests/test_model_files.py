"""Model files and the random streams plans store (issue 17).

Oracles: the fit that was saved (its coefficients, plan and predictions, bit for bit);
a refit from the loaded plan; and, for damaged files, the field each edit broke, which
the error must name together with the file.
"""
import copy
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import fastgd
from fastgd._plan import BIT_GENERATORS, DataFacts, FitPlan

FACTS = DataFacts(n=400, d=2, dtype="float64", weighted=False)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(17)
    X = rng.normal(size=(400, 2))
    y = X @ [1.5, -2.0] + 0.3 + 0.1 * rng.normal(size=400)
    return X, y


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    """A model file written by FitResult.save (an SGD fit, so every field is set)."""
    X, y = data
    res = fastgd.fit(X, y, mode="sgd", tol=None, epochs=3, random_state=np.random.default_rng(5))
    path = tmp_path_factory.mktemp("model") / "m.json"
    res.save(path)
    return res, json.loads(path.read_text())


# --- random_state: every documented type round-trips -----------------------------------------

@pytest.mark.parametrize("name", list(BIT_GENERATORS))
def test_a_generator_seed_round_trips_through_the_plan_dict(name):
    """Oracle: the stream of the Generator given, drawn from the plan rebuilt from JSON."""
    gen = np.random.Generator(BIT_GENERATORS[name](7))
    before = copy.deepcopy(gen.bit_generator.state)
    plan = FitPlan.build(FACTS, mode="sgd", tol=None, random_state=gen)
    text = json.dumps(plan.to_dict())  # plain JSON, as a checkpoint and a model file store it
    again = FitPlan.from_dict(json.loads(text))
    assert again == plan and again.to_dict() == plan.to_dict()
    expected = copy.deepcopy(gen).integers(0, 2**62, 5)
    assert np.array_equal(again.rng().integers(0, 2**62, 5), expected)
    assert np.array_equal(plan.rng().integers(0, 2**62, 5), expected)  # every call: the start
    # the plan copied the state: the user's Generator was not drawn from
    assert json.dumps(gen.bit_generator.state, default=str) == json.dumps(before, default=str)


def test_the_same_generator_gives_the_same_fit_and_is_never_drawn_from(data):
    """Oracle: the fit from a copy of the Generator and from its int seed's stream."""
    X, y = data
    gen = np.random.default_rng(11)
    first = fastgd.fit(X, y, mode="sgd", tol=None, epochs=3, random_state=gen)
    second = fastgd.fit(X, y, mode="sgd", tol=None, epochs=3, random_state=gen)
    seeded = fastgd.fit(X, y, mode="sgd", tol=None, epochs=3, random_state=11)
    assert np.array_equal(first.coef, second.coef) and first.intercept == second.intercept
    assert np.array_equal(first.coef, seeded.coef)  # default_rng(11) at its start
    assert first.plan == second.plan and json.dumps(first.plan.to_dict())


def test_a_plan_with_a_generator_saves_loads_and_refits(data, saved, tmp_path):
    """Oracle: the saved fit, and a refit from the loaded plan's settings (bit for bit)."""
    X, y = data
    res, _ = saved
    res.save(tmp_path / "m.json")
    back = fastgd.load(tmp_path / "m.json")
    assert back.plan == res.plan
    assert np.array_equal(back.predict(X), res.predict(X))
    again = fastgd.fit(X, y, **dict(back.plan.settings))
    assert np.array_equal(again.coef, res.coef) and again.intercept == res.intercept
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def test_random_state_none_records_the_entropy_it_drew(data):
    """Oracle: a refit with the seed the plan recorded (fresh entropy is still fresh)."""
    X, y = data
    a = fastgd.fit(X, y, mode="sgd", tol=None, epochs=2)
    b = fastgd.fit(X, y, mode="sgd", tol=None, epochs=2)
    assert a.plan.settings["random_state"] is None and isinstance(a.plan.random_state, int)
    assert a.plan.random_state != b.plan.random_state
    assert "fresh entropy" in a.plan.reasons["random_state"]
    again = fastgd.fit(X, y, mode="sgd", tol=None, epochs=2, random_state=a.plan.random_state)
    assert np.array_equal(again.coef, a.coef)
    assert np.array_equal(fastgd.fit(X, y, **a.plan.keywords()).coef, a.coef)
    assert FitPlan.from_dict(json.loads(json.dumps(a.plan.to_dict()))) == a.plan
    pytest.importorskip("matplotlib")
    from fastgd import plot

    one = fastgd.fit(X[:, 0], y, mode="sgd", tol=None, epochs=3)  # the path plotted is the one taken
    path = plot.descent_path(X[:, 0], y, one)
    assert path[-1, 0] == one.coef[0] and path[-1, 1] == one.intercept
    batch = FitPlan.build(FACTS)  # a fit that draws nothing keeps None (plans stay equal)
    assert batch.random_state is None and batch == FitPlan.build(FACTS)


def test_random_states_that_cannot_be_stored_are_refused_up_front(data):
    X, y = data

    class MyBits(np.random.PCG64):
        pass

    with pytest.raises(TypeError, match="bit generator MyBits, whose state fastgd cannot store"):
        fastgd.fit(X, y, mode="sgd", tol=None, random_state=np.random.Generator(MyBits(0)))
    with pytest.raises(TypeError, match="random_state must be None, an int >= 0 or a numpy"):
        fastgd.fit(X, y, mode="sgd", tol=None, random_state=np.random.RandomState(0))
    state = FitPlan.build(FACTS, mode="sgd", tol=None, random_state=np.random.default_rng(0)).to_dict()
    bad = state["settings"]["random_state"]
    bad["state"]["state"] = "x"
    with pytest.raises(ValueError, match="random_state is not a valid PCG64 state"):
        FitPlan.from_dict(state)
    bad["bit_generator"] = "Mersenne"
    with pytest.raises(ValueError, match="random_state as a dict must be the state"):
        FitPlan.from_dict(state)


# --- model files: every field checked, every error naming the file and the field -------------

def _edit(doc, path, value):
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


NAN, INF = float("nan"), float("inf")
#: (edit path, new value (KeyError: delete), the field the error names, a phrase of it)
BAD_FIELDS = [
    (("coef",), [NAN, 1.0], "coef[0]", "is NaN"),
    (("coef",), [1.0, INF], "coef[1]", "is infinite"),
    (("coef",), [1.0, -INF], "coef[1]", "is infinite"),
    (("coef",), [], "coef", "is empty"),
    (("coef",), "1,2", "coef", "must be a list of numbers"),
    (("coef",), [True, 1.0], "coef[0]", "must be a number"),
    (("coef",), [1.0], "plan", "plan for 2 feature(s), but 'coef' holds 1"),
    (("coef",), KeyError, "coef", "no 'coef'"),
    (("intercept",), NAN, "intercept", "is NaN"),
    (("intercept",), "0.3", "intercept", "must be a number"),
    (("intercept",), KeyError, "intercept", "no 'intercept'"),
    (("format",), True, "format", "must be an integer >= 1"),
    (("format",), -7, "format", "must be an integer >= 1, got -7"),
    (("format",), "1", "format", "must be an integer >= 1, got \"1\" (a JSON string)"),
    (("format",), 1.0, "format", "must be an integer >= 1"),
    (("format",), KeyError, "format", "no 'format'"),
    (("feature_names",), ["a"], "feature_names", "holds 1 name(s) for 2 coefficient(s)"),
    (("feature_names",), ["a", "a"], "feature_names", "names the column 'a' twice"),
    (("feature_names",), ["a", 3], "feature_names[1]", "must be a string"),
    (("feature_names",), "ab", "feature_names", "must be null or a list"),
    (("one_d",), True, "one_d", "is true (a fit on 1-D X: one feature) but 'coef' holds 2"),
    (("one_d",), 0, "one_d", "must be true or false"),
    (("final_loss",), NAN, "final_loss", "is NaN"),
    (("final_loss",), -1.0, "final_loss", "must be >= 0.0"),
    (("n_epochs",), -1, "n_epochs", "must be an integer >= 0"),
    (("n_epochs",), 2.5, "n_epochs", "must be an integer >= 0"),
    (("n_epochs",), 1000, "n_epochs", "more than the plan's epochs (3)"),
    (("converged",), "yes", "converged", "must be true or false"),
    (("scaled",), False, "scaled", "but the plan ran scaled"),
    (("fastgd_version",), 1, "fastgd_version", "must be a string"),
    (("plan",), [1, 2], "plan", "is not a valid fit plan"),
    (("plan", "settings", "mode"), "fast", "plan", "mode must be one of"),
    (("plan", "settings", "epochs"), "3", "plan", "epochs must be an integer"),
    (("plan", "settings", "speed"), 3, "plan", "unknown fit parameter(s) 'speed'"),
    (("plan", "facts", "d"), 0, "plan", "facts.d must be >= 1"),
    (("plan", "facts", "dtype"), "int8", "plan", "facts.dtype must be 'float32' or 'float64'"),
    (("plan", "facts", "n"), KeyError, "plan", "missing ['n']"),
    (("plan", "format"), "1", "plan", "'format' must be an int >= 1"),
    (("plan", "settings", "random_state", "bit_generator"), "X", "plan", "random_state as a dict"),
    (("coefs",), [1.0], "", "unknown key(s) 'coefs'"),
]


@pytest.mark.parametrize("path,value,field,phrase", BAD_FIELDS,
                         ids=[f"{'.'.join(p)}={v!r}" for p, v, _, _ in BAD_FIELDS])
def test_every_bad_field_is_one_error_naming_the_file_and_the_field(saved, tmp_path, path,
                                                                     value, field, phrase):
    _, doc = saved
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_edit(doc, path, value)))  # NaN/Infinity literals: json.dumps's
    with pytest.raises(ValueError) as info:
        fastgd.load(bad)
    msg = str(info.value)
    assert msg.startswith(str(bad)), msg
    assert phrase in msg, msg
    if field and "no '" not in phrase:
        assert f"field {field!r}" in msg, msg


@pytest.mark.parametrize("text", ["1e400", "-1e400", "Infinity", "NaN", "1" + "0" * 400])
def test_numbers_beyond_float64_in_the_text_are_refused(saved, tmp_path, text):
    _, doc = saved
    raw = json.dumps(_edit(doc, ("coef",), ["HERE", 1.0])).replace('"HERE"', text)
    (tmp_path / "m.json").write_text(raw)
    with pytest.raises(ValueError, match=r"m\.json: field 'coef\[0\]' is (NaN|infinite|an integer beyond)"):
        fastgd.load(tmp_path / "m.json")


@pytest.mark.parametrize("content,phrase", [
    (b"", "not valid JSON"),
    (b'{"format": 1, "coef": [1.0, 2.', "not valid JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\x00junk", "does not begin with '{'"),
    (b"{\xff\xfe\x00junk}", "not UTF-8 text"),
    ('{"format": 1, "coef": [1.0], "intercept": 0.5}'.encode("utf-16"), "does not begin with '{'"),
    (b'{"format": 1, "coef": [1.0], "intercept": 0.5, "feature_names": ["\xe9"]}', "not UTF-8 text"),
    (b"[1, 2, 3]", "does not begin with '{'"),
    (b"{" * 100_000, "not valid JSON"),
    (b"a,b,y\n1,2,3\n", "does not begin with '{'"),
])
def test_files_that_are_not_json_objects_are_one_error_naming_the_file(tmp_path, content, phrase):
    path = tmp_path / "m.json"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        fastgd.load(path)
    assert str(info.value).startswith(str(path)) and phrase in str(info.value), str(info.value)


def test_hand_written_and_round_tripped_models_load(data, tmp_path):
    """Oracle: the model's formula, and the result that was saved."""
    X, y = data
    (tmp_path / "hand.json").write_text('{"format": 1, "coef": [2.0, -1.0], "intercept": 0.5}')
    hand = fastgd.load(tmp_path / "hand.json")
    assert np.array_equal(hand.predict(X), X @ [2.0, -1.0] + 0.5)
    assert np.isnan(hand.final_loss) and hand.plan is None and hand.feature_names is None
    # a loaded model has no loss (NaN): saved again, that is written as null, never as NaN
    hand.save(tmp_path / "again.json")
    text = (tmp_path / "again.json").read_text()
    assert "NaN" not in text and json.loads(text)["final_loss"] is None
    again = fastgd.load(tmp_path / "again.json")
    assert np.array_equal(again.coef, hand.coef) and again.intercept == hand.intercept
    one = fastgd.fit(X[:, 0], y)
    one.save(tmp_path / "one.json")
    back = fastgd.load(tmp_path / "one.json")
    assert back.one_d and back.slope == one.slope and back.plan == one.plan


def test_load_refuses_a_path_that_is_not_one(tmp_path):
    with pytest.raises(TypeError, match="path must be a string or a path-like object, got None"):
        fastgd.load(None)
    with pytest.raises(FileNotFoundError):
        fastgd.load(tmp_path / "absent.json")


def test_cli_predict_refuses_a_damaged_model_with_one_line(data, saved, tmp_path):
    """The issue's case: a model with NaN coefficients printed 'nan' and exited 0."""
    X, y = data
    _, doc = saved
    np.savetxt(tmp_path / "d.csv", X[:5], delimiter=",", header="a,b", comments="")
    (tmp_path / "nan.json").write_text(json.dumps(_edit(doc, ("coef",), [NAN, 1.0])))
    out = subprocess.run([sys.executable, "-m", "fastgd", "predict", str(tmp_path / "nan.json"),
                          str(tmp_path / "d.csv"), "--x", "a", "--x", "b"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "nan" not in out.stdout.lower()
    assert "nan.json: field 'coef[0]' is NaN" in out.stderr and "Traceback" not in out.stderr


def test_results_with_generator_plans_pickle_and_copy(saved):
    res, _ = saved
    for clone in (pickle.loads(pickle.dumps(res)), copy.deepcopy(res)):
        assert clone.plan == res.plan
        assert np.array_equal(clone.plan.rng().integers(0, 100, 4), res.plan.rng().integers(0, 100, 4))
