"""model.json: save/load round trips, atomic JSON writes, and clear mismatch errors.

Damaged-file fuzzing lives in its own file; here each case is one worked example.
"""

import json
import os
import stat

import numpy as np
import pytest

from micronet.checkpoint import (
    FORMAT,
    VERSION,
    load_checkpoint,
    load_model,
    load_state,
    save,
    save_model,
    write_json_atomic,
)
from micronet.engine import Value
from micronet.nn import MLP, Layer, Module


def strict_json(path):
    """The file's JSON, failing on NaN/Infinity literals (not JSON for other tools)."""
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} literal in {path}"))


def parameter_data(model):
    return [p.data for p in model.parameters()]


@pytest.fixture
def model():
    """A 3 -> 5 -> 4 -> 2 tanh MLP with a few awkward floats among its parameters."""
    m = MLP(3, [5, 4, 2], activation="tanh", seed=7)
    params = m.parameters()
    params[0].data = 0.1 + 0.2  # 0.30000000000000004: repr must round-trip it
    params[1].data = 5e-324  # the smallest subnormal
    params[2].data = -1.7976931348623157e308
    params[3].data = 1 / 3
    params[4].data = -0.0
    return m


@pytest.fixture
def umask():
    """Set the process umask for one test, then put the old one back."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


# ----- round trips ----------------------------------------------------------------


def test_round_trip_restores_every_parameter_exactly(tmp_path, model):
    path = tmp_path / "model.json"
    save_model(model, path)
    loaded = load_model(path)
    assert isinstance(loaded, MLP)
    assert parameter_data(loaded) == parameter_data(model)
    assert [repr(x) for x in parameter_data(loaded)] == [repr(x) for x in parameter_data(model)]  # keeps -0.0
    assert loaded.activation == "tanh"
    assert [len(layer.neurons) for layer in loaded.layers] == [5, 4, 2]
    assert len(loaded.layers[0].neurons[0].w) == 3


def test_loaded_model_makes_the_same_predictions(tmp_path):
    model = MLP(2, [6, 3], activation="relu", seed=1)
    save_model(model, tmp_path / "m.json")
    loaded = load_model(str(tmp_path / "m.json"))  # a str path works too
    for x in ([0.5, -1.25], [3.0, 2.0], [-0.1, 0.0]):
        assert [v.data for v in loaded(x)] == [v.data for v in model(x)]


def test_round_trip_keeps_classes_preprocessing_and_training_state(tmp_path, model):
    path = tmp_path / "model.json"
    training = {"epoch": 4, "optimizer": {"lr": 0.1}}
    save_model(
        model, path, classes=["setosa", "versicolor"], mean=[1.0, -2.5, 0.1], scale=[2.0, 0.5, 3.0], training=training
    )
    ckpt = load_checkpoint(path)
    assert parameter_data(ckpt.model) == parameter_data(model)
    assert ckpt.classes == ["setosa", "versicolor"]
    assert ckpt.mean == [1.0, -2.5, 0.1]
    assert ckpt.scale == [2.0, 0.5, 3.0]
    assert ckpt.training == training


def test_default_classes_are_the_output_indices_and_no_preprocessing(tmp_path, model):
    save_model(model, tmp_path / "model.json")
    ckpt = load_checkpoint(tmp_path / "model.json")
    assert ckpt.classes == [0, 1]
    assert ckpt.mean is None and ckpt.scale is None
    assert ckpt.training is None


def test_linear_model_round_trips(tmp_path):
    model = MLP(4, [3], seed=2)  # hidden [] in a config: one linear layer
    save_model(model, tmp_path / "linear.json")
    assert parameter_data(load_model(tmp_path / "linear.json")) == parameter_data(model)


def test_file_is_readable_json_with_format_and_version(tmp_path, model):
    save_model(model, tmp_path / "model.json", mean=[0.0, 0.0, 0.0], scale=[1.0, 1.0, 1.0])
    data = strict_json(tmp_path / "model.json")
    assert data["format"] == FORMAT == "micronet-model"
    assert data["version"] == VERSION
    assert data["architecture"] == {"type": "MLP", "nin": 3, "nouts": [5, 4, 2], "activation": "tanh"}
    assert data["preprocessing"] == {"mean": [0.0, 0.0, 0.0], "scale": [1.0, 1.0, 1.0]}


def test_save_model_refuses_what_is_not_a_module(tmp_path):
    with pytest.raises(TypeError, match="model must be a micronet Module, got dict"):
        save_model({"w": 1.0}, tmp_path / "m.json")
    assert list(tmp_path.iterdir()) == []


def test_saving_twice_gives_identical_bytes(tmp_path, model):
    save_model(model, tmp_path / "a.json", classes=["x", "y"])
    save_model(model, tmp_path / "b.json", classes=["x", "y"])
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


# ----- write_json_atomic ------------------------------------------------------------


def test_write_json_atomic_leaves_only_the_target(tmp_path):
    for i in range(3):
        write_json_atomic(tmp_path / "summary.json", {"i": i})
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    assert strict_json(tmp_path / "summary.json") == {"i": 2}


def test_write_json_atomic_writes_null_for_nan_and_inf(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"loss": float("nan"), "rows": [1.5, float("inf"), {"x": -float("inf")}], "n": 3})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert strict_json(path) == {"loss": None, "rows": [1.5, None, {"x": None}], "n": 3}


def test_write_json_atomic_keeps_the_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"status": "completed"})
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_json_atomic(path, {"status": "x", "bad": object()})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_write_json_atomic_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"status": "completed"})
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_json_atomic(path, {"status": "half written"})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # the temporary file is gone


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, model, mask, mode):
    umask(mask)
    write_json_atomic(tmp_path / "summary.json", {"a": 1})
    save_model(model, tmp_path / "model.json")
    for name in ("summary.json", "model.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


# ----- mismatch errors ---------------------------------------------------------------


def edit_saved(tmp_path, model, edit):
    """Save `model`, apply `edit(data)` to the JSON, write it back, return the path."""
    path = tmp_path / "model.json"
    save_model(model, path)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format="something-else"), r"format is 'something-else', expected 'micronet-model'"),
        (lambda d: d.update(version=3), r"version 3 is not supported \(this micronet reads versions 1 and 2\)"),
        (lambda d: d.pop("version"), r"version None is not supported"),
        # 3 -> 5 -> 4 -> 2 has (3+1)*5 + (5+1)*4 + (4+1)*2 = 54 parameters
        (lambda d: d["parameters"]["layers.2.neurons.1.w"].pop(), r"has 54 parameters, the file stores 53"),
        (lambda d: d["architecture"].update(nouts=[5, 4, 3]), r"has 59 parameters, the file stores 54"),
        (lambda d: d.update(classes=["only one"]), r"classes must be a list of 2 labels"),
        (lambda d: d["architecture"].update(activation="gelu"), r"architecture.activation must be one of"),
        (lambda d: d.pop("parameters"), r"missing field 'parameters'"),
    ],
    ids=[
        "format", "version", "no-version", "parameter-missing", "architecture-grown", "classes", "activation",
        "no-parameters",
    ],
)
def test_mismatched_file_raises_value_error_naming_the_problem(tmp_path, model, edit, message):
    path = edit_saved(tmp_path, model, edit)
    with pytest.raises(ValueError, match=message) as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_parameters_under_the_wrong_names_are_refused(tmp_path, model):
    def rename(data):
        params = data["parameters"]
        params["layers.9.w"] = params.pop("layers.0.neurons.0.w")

    with pytest.raises(ValueError, match="parameters do not match the architecture"):
        load_model(edit_saved(tmp_path, model, rename))


# ----- format version 2: any module, regression, feature names -------------------------


class Residual(Module):
    """A custom module: a hidden layer plus a skip connection, and a free scalar gain."""

    def __init__(self, seed=0):
        self.inner = Layer(2, 3, activation="tanh", seed=seed)
        self.out = Layer(3, 2, activation="linear", seed=seed + 1)
        self.gain = Value(0.5)

    def __call__(self, x):
        h = self.inner(x)
        return [o + self.gain * xi for o, xi in zip(self.out(h), x)]


def test_a_custom_module_round_trips_through_save_and_load_state(tmp_path):
    saved = Residual(seed=0)
    saved.gain.data = -1.25
    path = save(saved, tmp_path / "residual.json", classes=["no", "yes"])
    assert path == tmp_path / "residual.json"
    data = strict_json(path)
    assert data["version"] == 2 and data["architecture"] is None
    assert data["parameters"] == saved.state_dict()
    fresh = Residual(seed=5)
    assert parameter_data(fresh) != parameter_data(saved)
    assert load_state(fresh, path) is fresh
    assert parameter_data(fresh) == parameter_data(saved)
    assert [v.data for v in fresh([0.3, -0.7])] == [v.data for v in saved([0.3, -0.7])]


def test_load_checkpoint_of_a_custom_module_points_to_load_state(tmp_path):
    save(Residual(), tmp_path / "residual.json")
    with pytest.raises(ValueError, match=r"custom module.*cannot rebuild.*micronet.load_state\(module, path\)"):
        load_checkpoint(tmp_path / "residual.json")


class Narrower(Residual):
    def __init__(self):
        super().__init__()
        self.out = Layer(3, 1, activation="linear", seed=1)


class Renamed(Residual):
    def __init__(self):
        super().__init__()
        self.head = self.out
        del self.out


class Longer(Residual):
    def __init__(self):
        super().__init__()
        self.extra = Value(1.0)


@pytest.mark.parametrize(
    "other, message",
    [
        (Narrower, r"state_dict has unexpected entry 'out.neurons.1.w'"),
        (Renamed, r"state_dict is missing 'head.neurons.0.w'"),
        (Longer, r"state_dict is missing 'extra'"),
    ],
    ids=["fewer-outputs", "renamed-layer", "extra-parameter"],
)
def test_load_state_into_another_shape_names_the_first_wrong_entry(tmp_path, other, message):
    save(Residual(), tmp_path / "residual.json")
    model = other()
    before = parameter_data(model)
    with pytest.raises(ValueError, match=message) as info:
        load_state(model, tmp_path / "residual.json")
    assert f"does not fit {other.__name__}" in str(info.value)
    assert parameter_data(model) == before  # nothing half-loaded


def test_load_state_names_a_weight_list_of_the_wrong_length(tmp_path):
    save(MLP(3, [4, 2], seed=0), tmp_path / "m.json")
    wider = Module()
    wider.layers = MLP(2, [4, 2], seed=0).layers  # same names, first layer reads 2 inputs, not 3
    message = r"state_dict\['layers.0.neurons.0.w'\] must be a list of 2 numbers, got a list of 3"
    with pytest.raises(ValueError, match=message):
        load_state(wider, tmp_path / "m.json")


def test_load_state_into_an_mlp_checks_its_architecture(tmp_path):
    save(MLP(2, [4, 2], activation="tanh", seed=0), tmp_path / "m.json")
    with pytest.raises(ValueError, match=r"architecture.activation is 'tanh' in the file, 'relu' in the model"):
        load_state(MLP(2, [4, 2], activation="relu", seed=0), tmp_path / "m.json")
    model = load_state(MLP(2, [4, 2], activation="tanh", seed=9), tmp_path / "m.json")
    assert parameter_data(model) == parameter_data(MLP(2, [4, 2], activation="tanh", seed=0))


def test_an_mlp_subclass_is_saved_without_an_architecture_record(tmp_path):
    class Scaled(MLP):
        pass

    save(Scaled(2, [3, 2], seed=0), tmp_path / "m.json")
    assert strict_json(tmp_path / "m.json")["architecture"] is None  # rebuilding it as a plain MLP would be wrong


def test_regression_round_trip_keeps_target_scaling_and_has_no_classes(tmp_path):
    model = MLP(3, [4, 2], seed=0)
    save(model, tmp_path / "m.json", task="regression", mean=[0.0, 1.0, 2.0], scale=[1.0, 2.0, 3.0],
         target_mean=[10.0, -4.0], target_scale=[2.5, 0.5])
    data = strict_json(tmp_path / "m.json")
    assert data["task"] == "regression" and data["classes"] is None
    assert data["target_preprocessing"] == {"mean": [10.0, -4.0], "scale": [2.5, 0.5]}
    ckpt = load_checkpoint(tmp_path / "m.json")
    assert (ckpt.task, ckpt.classes) == ("regression", None)
    assert (ckpt.target_mean, ckpt.target_scale) == ([10.0, -4.0], [2.5, 0.5])
    assert ckpt.mean == [0.0, 1.0, 2.0] and ckpt.version == 2


def test_feature_names_round_trip(tmp_path):
    save(MLP(2, [2], seed=0), tmp_path / "m.json", feature_names=["height", "weight"])
    assert load_checkpoint(tmp_path / "m.json").feature_names == ["height", "weight"]


def test_numpy_values_are_written_as_plain_json(tmp_path):
    save(MLP(2, [3], seed=0), tmp_path / "m.json", classes=np.array([3, 5, 8]), mean=np.array([0.5, 1.5]),
         scale=np.array([2.0, 4.0]))
    data = strict_json(tmp_path / "m.json")
    assert data["classes"] == [3, 5, 8] and data["preprocessing"] == {"mean": [0.5, 1.5], "scale": [2.0, 4.0]}


def test_a_version_1_file_still_loads_as_a_classifier(tmp_path):
    """The exact layout micronet wrote before version 2: no task, no target scaling."""
    model = MLP(2, [3, 2], seed=4)
    v1 = {
        "format": "micronet-model",
        "version": 1,
        "architecture": {"type": "MLP", "nin": 2, "nouts": [3, 2], "activation": "relu"},
        "parameters": model.state_dict(),
        "classes": ["a", "b"],
        "preprocessing": {"mean": [1.0, 2.0], "scale": [3.0, 4.0]},
        "training": {"epoch": 7},
    }
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    ckpt = load_checkpoint(tmp_path / "v1.json")
    assert parameter_data(ckpt.model) == parameter_data(model)
    assert (ckpt.version, ckpt.task, ckpt.classes, ckpt.mean, ckpt.training) == (1, "classification", ["a", "b"],
                                                                                   [1.0, 2.0], {"epoch": 7})
    assert ckpt.target_mean is None and ckpt.feature_names is None
    v1["architecture"] = None  # version 1 had no custom modules
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    with pytest.raises(ValueError, match="architecture must be an object with type 'MLP'$"):
        load_checkpoint(tmp_path / "v1.json")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"task": "clustering"}, ValueError, r"task must be one of classification, regression, got 'clustering'"),
        ({"task": "regression", "classes": [0, 1]}, ValueError, r"classes is for classification"),
        ({"target_mean": [0.0, 0.0], "target_scale": [1.0, 1.0]}, ValueError,
         r"target_mean and target_scale are for regression"),
        ({"task": "regression", "target_mean": [0.0, 0.0]}, ValueError, r"target_mean needs target_scale too"),
        ({"task": "regression", "target_mean": [0.0], "target_scale": [1.0]}, ValueError,
         r"target_mean and target_scale must have 2 numbers each, got 1 and 1"),
        ({"mean": [0.0, 0.0, 0.0], "scale": [1.0, 1.0]}, ValueError,
         r"mean and scale must have 3 numbers each, got 3 and 2"),
        ({"scale": [1.0, 1.0, 1.0]}, ValueError, r"scale needs mean too"),
        ({"mean": [0.0] * 3, "scale": [1.0, 0.0, 1.0]}, ValueError, r"scale must be finite and > 0"),
        ({"classes": ["a", "b", "c"]}, ValueError, r"classes must be a list of 2 labels"),
        ({"classes": ["a", "a"]}, ValueError, r"classes must be distinct labels"),
        ({"classes": [{"x": 1}, "b"]}, ValueError, r"classes must be strings or finite numbers"),
        ({"feature_names": ["a", "b"]}, ValueError, r"feature_names must be a list of 3 column names"),
        ({"feature_names": ["a", "a", "b"]}, ValueError, r"feature_names must be distinct non-empty strings"),
        ({"training": [1, 2]}, TypeError, r"training must be a dict or None, got list"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_save_refuses_inconsistent_arguments_before_writing(tmp_path, model, kwargs, error, message):
    with pytest.raises(error, match=message):
        save(model, tmp_path / "model.json", **kwargs)
    assert list(tmp_path.iterdir()) == []


V2_DAMAGE = {
    "task-unknown": (lambda d: d.update(task="clustering"), r"task must be one of classification, regression"),
    "task-missing": (lambda d: d.pop("task"), r"missing field 'task'"),
    "target-preprocessing-missing": (lambda d: d.pop("target_preprocessing"), r"missing field 'target_preprocessing'"),
    "classes-in-regression": (lambda d: d.update(task="regression"), r"classes must be null for a regression model"),
    "target-scaling-in-classification": (
        lambda d: d.update(target_preprocessing={"mean": [0.0, 0.0], "scale": [1.0, 1.0]}),
        r"target_preprocessing must be null for a classification model"),
    "target-scaling-wrong-length": (
        lambda d: d.update(task="regression", classes=None, target_preprocessing={"mean": [0.0], "scale": [1.0]}),
        r"target_preprocessing.mean must be a list of 2 finite numbers"),
    "target-scale-negative": (
        lambda d: d.update(task="regression", classes=None, target_preprocessing={"mean": [0, 0], "scale": [1, -1]}),
        r"target_preprocessing.scale must be positive"),
    "feature-names-wrong-length": (lambda d: d.update(feature_names=["a"]), r"feature_names must be a list of 3"),
    "feature-names-not-strings": (lambda d: d.update(feature_names=[1, 2, 3]), r"feature_names must be distinct"),
    "classes-duplicated": (lambda d: d.update(classes=[1, 1]), r"classes must be distinct labels"),
    "forged-huge-layer": (
        lambda d: d["architecture"].update(nouts=[10**12, 2]), r"has 6,000,000,000,002 parameters, over micronet.s budget of 10,000,000"),
}


@pytest.mark.parametrize("edit, message", V2_DAMAGE.values(), ids=V2_DAMAGE.keys())
def test_a_damaged_version_2_field_is_a_value_error_naming_it(tmp_path, model, edit, message):
    path = edit_saved(tmp_path, model, edit)
    with pytest.raises(ValueError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_a_custom_modules_file_with_damaged_parameters_is_refused(tmp_path):
    path = save(Residual(), tmp_path / "r.json")
    data = json.loads(path.read_text())
    data["parameters"] = [1.0, 2.0]
    path.write_text(json.dumps(data))
    message = r"parameters must be an object of name -> number or list of numbers, got list"
    with pytest.raises(ValueError, match=message):
        load_state(Residual(), path)


def test_load_state_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(ValueError, match=r"nothing.json does not exist"):
        load_state(Residual(), tmp_path / "nothing.json")
