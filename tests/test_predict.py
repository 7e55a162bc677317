"""Predictions: bare modules (compiled and eager), saved models, whole runs, and the CLI.

Oracles: the eager engine called row by row with the softmax written out by
hand, and small models whose weights are set so the answer can be worked out
on paper.
"""

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import micronet
from micronet import MLP, Layer, Module, Value
from micronet import predict as predict_module
from micronet.checkpoint import save
from micronet.config import parse_config
from micronet.predict import Predictor, load, main, model_outputs
from micronet.train import run

RNG = np.random.default_rng(0)
X5 = RNG.normal(size=(5, 2))


def eager_outputs(model, X):
    return [[v.data for v in model(row)] for row in np.asarray(X).tolist()]


def softmax_by_hand(row):
    top = max(row)
    exps = [math.exp(x - top) for x in row]
    return [e / sum(exps) for e in exps]


def set_parameters(model, values):
    for p, v in zip(model.parameters(), values, strict=True):
        p.data = float(v)
    return model


# ----- bare modules --------------------------------------------------------------------


def test_predict_proba_is_the_softmax_of_the_eager_outputs():
    model = MLP(2, [5, 3], seed=1)
    probs = micronet.predict_proba(model, X5)
    expected = [softmax_by_hand(row) for row in eager_outputs(model, X5)]
    np.testing.assert_allclose(probs, expected, rtol=1e-12, atol=0)
    assert isinstance(probs, np.ndarray) and probs.shape == (5, 3)


def test_predict_is_the_argmax_class_index():
    model = MLP(2, [5, 3], seed=1)
    expected = [max(range(3), key=row.__getitem__) for row in eager_outputs(model, X5)]
    assert micronet.predict(model, X5).tolist() == expected


def test_the_model_is_traced_once_and_follows_later_parameter_changes(monkeypatch):
    model = MLP(2, [4, 2], seed=0)
    traced = []
    real = predict_module.compile_model
    monkeypatch.setattr(predict_module, "compile_model", lambda *a, **k: traced.append(a[1]) or real(*a, **k))
    first = model_outputs(model, X5)
    for p in model.parameters():
        p.data *= -2.0
    second = model_outputs(model, X5)
    assert traced == [2]  # one trace, reused
    np.testing.assert_allclose(second, eager_outputs(model, X5), rtol=1e-12, atol=1e-15)  # but the new weights are used
    assert not np.array_equal(first, second)


def scale_weights(model):
    for p in model.parameters():
        p.data *= -2.0


def replace_a_bias(model):
    model.layers[1].neurons[0].b = Value(5.0)


def switch_the_hidden_activation(model):
    model.layers[0].activation = "tanh"


def add_a_layer(model):
    model.layers.append(Layer(2, 3, activation="linear", seed=1))


def replace_a_layer(model):
    model.layers[0] = Layer(2, 4, activation="sigmoid", seed=2)


@pytest.mark.parametrize("change", [scale_weights, replace_a_bias, switch_the_hidden_activation, add_a_layer,
                                    replace_a_layer])
def test_predict_follows_a_model_changed_after_a_first_predict(change):
    model = MLP(2, [4, 2], seed=0)
    first = model_outputs(model, X5)
    change(model)
    second = model_outputs(model, X5)
    np.testing.assert_allclose(second, eager_outputs(model, X5), rtol=1e-12, atol=1e-15)
    assert second.shape != first.shape or not np.allclose(second, first)
    assert micronet.predict(model, X5).tolist() == np.argmax(eager_outputs(model, X5), axis=1).tolist()


class Scaled(Module):
    """A constant stored on the module: the trace bakes it in."""

    def __init__(self):
        self.layer = Layer(2, 2, activation="linear", seed=0)
        self.scale = 2.0

    def __call__(self, x):
        return [v * self.scale for v in self.layer(x)]


def test_predict_follows_a_constant_changed_after_a_first_predict():
    model = Scaled()
    first = model_outputs(model, X5)
    model.scale = -3.0
    np.testing.assert_allclose(model_outputs(model, X5), -1.5 * first, rtol=1e-12)


class Branchy(Module):
    """A graph that depends on the data (Python `if` on .data): it cannot be compiled."""

    def __init__(self):
        self.w = Value(2.0)
        self.one = Value(1.0)

    def __call__(self, x):
        first, second = self.w * x[0], self.one * x[1]
        return [first, second] if first.data > 0 else [second, first]


def test_a_model_that_cannot_be_compiled_runs_eagerly():
    X = np.array([[1.0, 3.0], [-1.0, 3.0], [2.0, -5.0]])
    assert model_outputs(Branchy(), X).tolist() == [[2.0, 3.0], [3.0, -2.0], [4.0, -5.0]]
    assert micronet.predict(Branchy(), X).tolist() == [1, 0, 0]


def test_a_one_output_model_is_a_score_for_class_1():
    model = set_parameters(Layer(1, 1, activation="linear", seed=0), [1.0, -0.5])  # score = x - 0.5
    X = np.array([[0.0], [0.5], [2.0]])
    assert micronet.predict(model, X).tolist() == [0, 0, 1]  # 0.5 scores exactly 0: not class 1
    p1 = 1 / (1 + math.exp(-1.5))
    np.testing.assert_allclose(micronet.predict_proba(model, X)[2], [1 - p1, p1], rtol=1e-15)


def test_regression_task_gives_the_raw_outputs():
    model = set_parameters(Layer(1, 1, activation="linear", seed=0), [3.0, 1.0])
    assert micronet.predict(model, [[0.0], [2.0]], task="regression").tolist() == [1.0, 7.0]  # 1-D for one output
    two = set_parameters(Layer(1, 2, activation="linear", seed=0), [1.0, 0.0, -1.0, 0.0])
    assert micronet.predict(two, [[2.0]], task="regression").tolist() == [[2.0, -2.0]]


@pytest.mark.parametrize(
    "X, message",
    [
        ([0.5, 1.0], r"X must be 2-D \(n_samples, n_features\), got shape \(2,\); for one sample use X.reshape"),
        ([[0.5, 1.0, 2.0]], r"X has 3 features, but the model takes 2"),
        ([[0.5, float("nan")]], r"X must be finite, got nan at row 0, column 1"),
        ([["a", "b"]], r"X must hold real numbers, got an array of dtype <U1"),
        (np.zeros((0, 2)), r"X has no rows"),
        ([[1.0, 2.0], [3.0]], r"X must hold real numbers"),
    ],
    ids=["1-d", "width", "nan", "strings", "empty", "ragged"],
)
def test_bad_X_is_a_value_error_naming_X(X, message):
    with pytest.raises(ValueError, match=message):
        micronet.predict(MLP(2, [3, 2], seed=0), X)


def test_predict_refuses_what_is_not_a_module_and_an_unknown_task():
    with pytest.raises(TypeError, match="model must be a micronet Module, got function"):
        micronet.predict_proba(lambda x: x, X5)
    with pytest.raises(ValueError, match="task must be one of classification, regression, got 'ranking'"):
        micronet.predict(MLP(2, [2], seed=0), X5, task="ranking")


def test_micronet_predict_is_callable_although_it_is_also_a_submodule():
    import micronet.predict  # importing the submodule rebinds the attribute

    assert callable(micronet.predict)
    assert micronet.predict(MLP(2, [3], seed=0), X5).shape == (5,)
    assert micronet.predict.main is main


def test_import_micronet_stays_light():
    heavy = ("sklearn", "matplotlib", "micronet.predict")
    code = f"import sys, micronet; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ----- saved models: a worked example --------------------------------------------------


def test_a_loaded_classifier_scales_raw_features_and_returns_the_labels(tmp_path):
    # logits = [x0s, -x0s] on standardised x0s = (x0 - 10) / 2; x1 is ignored
    model = set_parameters(MLP(2, [2], seed=0), [1.0, 0.0, 0.0, -1.0, 0.0, 0.0])
    save(model, tmp_path / "m.json", classes=["big", "small"], mean=[10.0, 0.0], scale=[2.0, 1.0])
    predictor = load(tmp_path / "m.json")
    assert predictor.config is None and predictor.task == "classification" and predictor.n_features_in_ == 2
    assert predictor.classes_.tolist() == ["big", "small"]
    assert predictor.predict([[12.0, 5.0], [8.0, 5.0]]).tolist() == ["big", "small"]
    p = 1 / (1 + math.exp(-2.0))  # x0 = 12: logits [1, -1], softmax = [sigmoid(2), 1 - sigmoid(2)]
    np.testing.assert_allclose(predictor.predict_proba([[12.0, 5.0]]), [[p, 1 - p]], rtol=1e-14)
    with pytest.raises(ValueError, match="X has 1 features, but the model takes 2"):
        predictor.predict([[12.0]])


def test_a_loaded_regressor_answers_in_the_targets_units(tmp_path):
    model = set_parameters(MLP(1, [1], seed=0), [2.0, 0.5])  # out = 2 * xs + 0.5
    save(model, tmp_path / "m.json", task="regression", mean=[10.0], scale=[2.0], target_mean=[100.0],
         target_scale=[5.0])
    predictor = load(tmp_path / "m.json")
    # x = 12: xs = 1, out = 2.5, in target units 2.5 * 5 + 100
    assert predictor.predict([[12.0], [10.0]]).tolist() == [112.5, 102.5]
    assert predictor.classes_ is None
    assert not hasattr(predictor, "predict_proba")  # as for scikit-learn regressors
    with pytest.raises(AttributeError, match="predict_proba is only defined for classification.*use predict"):
        predictor.predict_proba([[12.0]])


def test_a_custom_module_needs_to_be_passed_in(tmp_path):
    class Twice(Module):
        def __init__(self):
            self.w = Value(1.0)

        def __call__(self, x):
            return [self.w * x[0], -self.w * x[0]]

    saved = Twice()
    saved.w.data = 3.0
    save(saved, tmp_path / "t.json", classes=["pos", "neg"])
    with pytest.raises(ValueError, match=r"micronet.load_state\(module, path\)"):
        load(tmp_path / "t.json")
    predictor = load(tmp_path / "t.json", module=Twice())
    assert predictor.model.w.data == 3.0
    assert predictor.predict([[1.0], [-2.0]]).tolist() == ["pos", "neg"]
    assert predictor.n_features_in_ is None  # the module checks its own inputs


def test_load_of_a_path_that_is_not_a_run_says_so(tmp_path):
    with pytest.raises(ValueError, match="has no model.json: not a run directory"):
        load(tmp_path)
    with pytest.raises(ValueError, match="does not exist; expected a run directory or a model.json"):
        load(tmp_path / "missing")


# ----- whole runs and the CLI -----------------------------------------------------------

TINY = {"seed": 1, "dataset": {"name": "moons", "n_samples": 60, "noise": 0.2}, "model": {"hidden": [4]},
        "training": {"epochs": 3, "batch_size": 16}}


@pytest.fixture(scope="module")
def moons_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("moons") / "run"
    run_dir.mkdir()
    config = parse_config(TINY, name="tiny")
    run(config, run_dir)
    return run_dir, config


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A run trained on a CSV file whose label column sits between two feature columns."""
    root = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=40), rng.normal(size=40)
    pairs = zip(a.tolist(), b.tolist())
    lines = ["b,kind,a"] + [f"{bi!r},{'up' if ai + bi > 0 else 'down'},{ai!r}" for ai, bi in pairs]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    config = parse_config({"dataset": {"name": "csv", "path": str(root / "train.csv"), "target": "kind"},
                           "model": {"hidden": [3]}, "training": {"epochs": 2, "batch_size": 8}}, name="csvrun")
    (root / "run").mkdir()
    run(config, root / "run")
    return root


def test_load_of_a_run_directory_gives_its_config_and_reproduces_its_model(moons_run):
    run_dir, config = moons_run
    predictor = load(run_dir)
    assert predictor.config == config
    ckpt = micronet.checkpoint.load_checkpoint(run_dir / "model.json")
    X_raw = np.array([[0.0, 0.0], [1.5, -0.5], [-1.0, 1.0]])
    scaled = (X_raw - np.array(ckpt.mean)) / np.array(ckpt.scale)
    expected = [softmax_by_hand(row) for row in eager_outputs(ckpt.model, scaled)]
    np.testing.assert_allclose(predictor.predict_proba(X_raw), expected, rtol=1e-12)
    assert predictor.predict(X_raw).tolist() == [int(np.argmax(p)) for p in expected]


def run_main(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def rows_of(text):
    return list(csv.reader(io.StringIO(text)))


def test_cli_prints_a_label_and_probabilities_per_row(moons_run, tmp_path, capsys):
    run_dir, _ = moons_run
    (tmp_path / "new.csv").write_text("x0,x1\n0.0,0.0\n1.5,-0.5\n-1.0,1.0\n")
    code, out, err = run_main([run_dir, tmp_path / "new.csv"], capsys)
    assert (code, err) == (0, "")
    header, *rows = rows_of(out)
    assert header == ["prediction", "proba_0", "proba_1"]
    probs = load(run_dir).predict_proba([[0.0, 0.0], [1.5, -0.5], [-1.0, 1.0]])
    assert [[float(x) for x in row[1:]] for row in rows] == probs.tolist()  # every digit kept
    assert [int(row[0]) for row in rows] == probs.argmax(axis=1).tolist()


def test_cli_matches_a_csv_runs_columns_by_name_and_ignores_the_label(csv_run, tmp_path, capsys):
    (tmp_path / "new.csv").write_text("id,a,kind,b\n7,1.0,?,2.0\n8,-3.0,?,0.5\n")  # other order, extra columns
    code, out, err = run_main([csv_run / "run", tmp_path / "new.csv", "--out", tmp_path / "p.csv"], capsys)
    assert (code, out, err) == (0, "", "")
    header, *rows = rows_of((tmp_path / "p.csv").read_text())
    assert header == ["prediction", "proba_down", "proba_up"]
    expected = load(csv_run / "run").predict(np.array([[2.0, 1.0], [0.5, -3.0]]))  # the run's order: b, a
    assert [row[0] for row in rows] == expected.tolist()


def test_the_csv_header_fallback_drops_the_label_column(csv_run, tmp_path, capsys):
    # A checkpoint written before feature names were stored: the columns come from the header of the CSV the run
    # was trained on ("b,kind,a"), without the label column "kind".
    old = tmp_path / "old"
    old.mkdir()
    saved = json.loads((csv_run / "run" / "model.json").read_text())
    assert saved.pop("feature_names") == ["b", "a"]
    (old / "model.json").write_text(json.dumps(saved))
    shutil.copy(csv_run / "run" / "config.yaml", old / "config.yaml")
    assert load(old).feature_names_in_ is None
    (tmp_path / "new.csv").write_text("a,kind,b,id\n1.0,?,2.0,7\n-3.0,?,0.5,8\n")
    code, out, err = run_main([old, tmp_path / "new.csv"], capsys)
    assert (code, err) == (0, "")
    expected = load(csv_run / "run").predict(np.array([[2.0, 1.0], [0.5, -3.0]]))  # the run's order: b, a
    assert [row[0] for row in rows_of(out)[1:]] == expected.tolist()


def test_cli_refuses_a_csv_missing_a_feature_column(csv_run, tmp_path, capsys):
    (tmp_path / "new.csv").write_text("a,c\n1.0,2.0\n")
    code, out, err = run_main([csv_run / "run", tmp_path / "new.csv"], capsys)
    assert code == 2 and out == ""
    assert err == f"error: {tmp_path / 'new.csv'} lacks the model's feature column b; it needs b, a and has a, c\n"
    (tmp_path / "new.csv").write_text("x0,x1\n1.0,2.0\n")
    code, _, err = run_main([csv_run / "run", tmp_path / "new.csv"], capsys)
    assert code == 2 and "has none of the model's feature columns; it needs b, a and has x0, x1" in err


@pytest.mark.parametrize(
    "text, message",
    [
        ("x0,x1,x2\n1,2,3\n", r"has 3 columns \(x0, x1, x2\), but the model takes 2 features; give exactly 2 numeric "
                              r"columns, e.g. x0, x1"),
        ("0.5,1.0\n1,2\n", r"the first row looks like data; add a header row"),
        ("x0,x1\n", r"has a header but no data rows"),
        ("x0,x1\n1,abc\n", r"column 'x1' at line 2 is not a number: 'abc'"),
        ("x0,x1\n1,inf\n", r"column 'x1' at line 2 is not finite: 'inf'"),
        ("x0,x1\n1,2,3\n", r"line 2 has 3 fields, the header has 2"),
        ("", r"is empty; expected a header row"),
    ],
    ids=["columns", "no-header", "no-rows", "text", "inf", "ragged", "empty"],
)
def test_cli_refuses_a_bad_csv_in_one_error_line(moons_run, tmp_path, capsys, text, message):
    (tmp_path / "new.csv").write_text(text)
    code, out, err = run_main([moons_run[0], tmp_path / "new.csv", "--out", tmp_path / "p.csv"], capsys)
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
    assert re.search(message, err), err
    assert not (tmp_path / "p.csv").exists()


def test_cli_replaces_a_symlink_at_out_instead_of_writing_through_it(moons_run, tmp_path, capsys):
    (tmp_path / "new.csv").write_text("x0,x1\n0,0\n")
    (tmp_path / "precious.txt").write_text("keep me")
    (tmp_path / "p.csv").symlink_to(tmp_path / "precious.txt")
    code, _, _ = run_main([moons_run[0], tmp_path / "new.csv", "--out", tmp_path / "p.csv"], capsys)
    assert code == 0
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert not (tmp_path / "p.csv").is_symlink() and (tmp_path / "p.csv").read_text().startswith("prediction,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv", "p.csv", "precious.txt"]  # no temporary left


def test_cli_writes_regression_values(tmp_path, capsys):
    model = set_parameters(MLP(1, [1], seed=0), [2.0, 0.5])
    save(model, tmp_path / "m.json", task="regression", target_mean=[1.0], target_scale=[10.0])
    (tmp_path / "x.csv").write_text("x\n0\n1\n")
    code, out, _ = run_main([tmp_path / "m.json", tmp_path / "x.csv"], capsys)
    assert code == 0 and rows_of(out) == [["prediction"], ["6.0"], ["26.0"]]  # (2x + 0.5) * 10 + 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["{run}"], r"the following arguments are required: DATA_CSV"),
        (["{tmp}/nope", "{tmp}/x.csv"], r"nope does not exist"),
        (["{run}", "{tmp}/missing.csv"], r"cannot read .*missing.csv"),
        (["{run}", "{tmp}/x.csv", "--out", "{tmp}"], r"--out .* is a directory"),
        (["{run}", "{tmp}/x.csv", "--out", "{tmp}/no/such/dir/p.csv"], r"the directory .* does not exist"),
    ],
    ids=["no-data", "no-run", "no-csv", "out-dir", "out-parent"],
)
def test_cli_usage_errors_are_one_line(moons_run, tmp_path, capsys, args, message):
    (tmp_path / "x.csv").write_text("x0,x1\n0,0\n")
    code, out, err = run_main([a.format(run=moons_run[0], tmp=tmp_path) for a in args], capsys)
    lines = [line for line in err.splitlines() if not line.startswith(("usage: ", " "))]  # a usage mistake shows usage
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: ")
    assert err.startswith("usage: ") == (args == ["{run}"])
    assert re.search(message, lines[0]), err


def test_python_dash_m_micronet_predict_end_to_end(moons_run, tmp_path):
    (tmp_path / "ok.csv").write_text("x0,x1\n0.25,0.5\n")
    (tmp_path / "bad.csv").write_text("x0\n0.25\n")
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    good = subprocess.run([sys.executable, "-m", "micronet.predict", moons_run[0], tmp_path / "ok.csv"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert good.returncode == 0 and good.stderr == "" and len(good.stdout.splitlines()) == 2
    bad = subprocess.run([sys.executable, "-m", "micronet.predict", moons_run[0], tmp_path / "bad.csv"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_predictor_repr_names_the_model_and_classes(tmp_path):
    save(MLP(2, [2], seed=0), tmp_path / "m.json", classes=["a", "b"])
    assert repr(load(tmp_path / "m.json")) == (
        "Predictor(MLP(2 -> 2, activation='relu', parameters=6), classes=['a', 'b'])"
    )


def test_predictor_can_be_built_from_a_model_in_memory():
    predictor = Predictor(MLP(2, [3], seed=0), classes=[10, 20, 30], mean=[1.0, 1.0], scale=[2.0, 2.0])
    X = np.array([[3.0, -1.0]])
    index = micronet.predict(predictor.model, (X - 1.0) / 2.0)
    assert predictor.predict(X).tolist() == [[10, 20, 30][index[0]]]


# ----- regression runs ------------------------------------------------------------------------

SINE = {"dataset": {"name": "sine", "n_samples": 60}, "model": {"hidden": [8]}, "training": {"epochs": 3}}


@pytest.fixture(scope="module")
def sine_run(tmp_path_factory):
    """A regression run whose model.json records the task and target scaling, as the trainer's checkpoint should."""
    from micronet.checkpoint import load_checkpoint
    from micronet.data import prepare_data

    run_dir = tmp_path_factory.mktemp("sine") / "run"
    run_dir.mkdir()
    config = parse_config(SINE, name="sine")
    run(config, run_dir)
    data = prepare_data(config.dataset, config.seed, config.task)  # the run's own split and scaling
    model = load_checkpoint(run_dir / "model.json").model
    target = {f"target_{k}": v for k, v in data.target_scaler.to_dict().items()}
    save(model, run_dir / "model.json", task="regression", **data.scaler.to_dict(), **target)
    return run_dir, data


def test_a_regression_run_predicts_in_the_targets_units(sine_run):
    run_dir, data = sine_run
    predictor = load(run_dir)
    assert predictor.task == "regression" and predictor.config.task == "regression"
    raw = data.scaler.inverse_transform(data.X_test)  # the test split's features as the user has them
    expected = data.target_scaler.inverse_transform(eager_outputs(predictor.model, data.X_test))
    np.testing.assert_allclose(predictor.predict(raw), np.asarray(expected)[:, 0], rtol=1e-12, atol=1e-12)


def test_cli_writes_a_regression_runs_predictions(sine_run, tmp_path, capsys):
    run_dir, _ = sine_run
    (tmp_path / "x.csv").write_text("x\n0.5\n-1.0\n")
    code, out, _ = run_main([run_dir, tmp_path / "x.csv"], capsys)
    assert code == 0
    header, *rows = rows_of(out)
    assert header == ["prediction"]
    assert [float(r[0]) for r in rows] == load(run_dir).predict([[0.5], [-1.0]]).tolist()


def test_a_checkpoint_that_contradicts_its_runs_task_is_refused(sine_run, tmp_path):
    import shutil

    run_dir, _ = sine_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    model = micronet.checkpoint.load_checkpoint(copy / "model.json").model
    save(model, copy / "model.json")  # what a trainer that does not record the task writes
    with pytest.raises(ValueError, match=r"says task 'classification' but the run's config.yaml says 'regression'"):
        load(copy)


def test_a_data_dependent_model_is_caught_even_when_the_first_rows_agree():
    X = np.array([[1.0, 3.0], [2.0, 3.0], [3.0, 3.0], [-1.0, 3.0]])  # the first three rows take the same branch
    assert model_outputs(Branchy(), X).tolist() == [[2.0, 3.0], [4.0, 3.0], [6.0, 3.0], [3.0, -2.0]]
