"""model.json: save/load round trips, atomic JSON writes, and clear mismatch errors.

Damaged-file fuzzing lives in its own file; here each case is one worked example.
"""

import json
import os
import stat

import pytest

from micronet.checkpoint import FORMAT, VERSION, load_checkpoint, load_model, save_model, write_json_atomic
from micronet.nn import MLP, Layer


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


def test_save_model_refuses_a_module_that_is_not_an_mlp(tmp_path):
    with pytest.raises(TypeError, match="save_model stores MLPs, got Layer"):
        save_model(Layer(2, 3, seed=0), tmp_path / "layer.json")
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
        (lambda d: d.update(version=2), r"version 2 is not supported"),
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
