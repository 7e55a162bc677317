"""micronet.export against the real readers: onnxruntime runs the graphs, torch runs the Sequentials.

Every shipped config is trained for two epochs (agreement needs a model, not
a good one) and its ONNX graph run in onnxruntime against
`micronet.load(run).predict_proba` (or `.predict` for regression).
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import micronet
from micronet import nn
from micronet.checkpoint import load_checkpoint, save
from micronet.config import load_config, shipped_configs
from micronet.export import OPSET, ExportError, from_torch, main, to_onnx, to_torch
from micronet.losses import cross_entropy
from micronet.nn import MLP, Module
from micronet.train import run

ROOT = Path(__file__).parents[1]
CONFIGS = sorted(shipped_configs())


def run_onnx(path, X, dtype=np.float64):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"X": np.asarray(X, dtype=dtype)})
    return output


def raw_features(model_json, n=200, seed=0):
    """Rows as the run's data looks: its training mean, +-2 standard deviations (or standard normal)."""
    checkpoint = load_checkpoint(model_json)
    Z = np.random.default_rng(seed).standard_normal((n, len(checkpoint.model.layers[0].neurons[0].w)))
    if checkpoint.mean is None:
        return Z
    return np.asarray(checkpoint.mean) + 2.0 * Z * np.asarray(checkpoint.scale)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{config name: run directory}: each shipped config trained for two epochs."""
    root = tmp_path_factory.mktemp("runs")
    done = {}
    for name in CONFIGS:
        run_dir = root / name
        run_dir.mkdir()
        run(load_config(name, ["training.epochs=2"]), run_dir)
        done[name] = run_dir
    return done


IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Model files as the trainer writes them, without training: a classifier and a regressor, with scaling."""
    root = tmp_path_factory.mktemp("saved")
    save(MLP(4, [5, 3], "relu", seed=7), root / "iris.json", classes=IRIS_CLASSES, feature_names=IRIS_FEATURES,
         mean=[5.8, 3.0, 3.8, 1.2], scale=[0.8, 0.4, 1.8, 0.8])
    save(MLP(1, [6, 1], "tanh", seed=8), root / "sine.json", task="regression", mean=[0.1], scale=[1.8],
         target_mean=[0.02], target_scale=[0.7])
    return {"iris": root / "iris.json", "sine": root / "sine.json"}


# ----- ONNX: every shipped config in onnxruntime ------------------------------------------------


@pytest.mark.slow  # trains every shipped config (about 10 s for all of them on one core)
@pytest.mark.parametrize("name", CONFIGS)
def test_every_shipped_config_agrees_in_onnxruntime_to_1e_12(runs, name, tmp_path):
    predictor = micronet.load(runs[name])
    X = raw_features(runs[name] / "model.json")
    path = to_onnx(runs[name], tmp_path / "model.onnx")
    got = run_onnx(path, X)
    if predictor.task == "classification":
        expected = predictor.predict_proba(X)
        assert got.shape == expected.shape == (len(X), len(predictor.classes_))
        assert np.abs(got - expected).max() <= 1e-12
        meta = {p.key: p.value for p in onnx.load(path).metadata_props}
        classes = json.loads(meta["micronet.classes"])  # the labels, in the outputs' order
        assert [classes[i] for i in got.argmax(axis=1)] == predictor.predict(X).tolist()
    else:
        expected = predictor.predict(X).reshape(len(X), -1)  # the graph's output is (n, outputs) always
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_every_shipped_config_agrees_in_float32_to_1e_6(runs, name, tmp_path):
    predictor = micronet.load(runs[name])
    X = raw_features(runs[name] / "model.json")
    got = run_onnx(to_onnx(runs[name], tmp_path / "model.onnx", dtype="float32"), X, np.float32)
    assert got.dtype == np.float32
    if predictor.task == "classification":
        assert np.abs(got - predictor.predict_proba(X)).max() <= 1e-6
    else:  # regression values in the target's units: float32 keeps ~7 significant digits of them
        expected = predictor.predict(X).reshape(len(X), -1)
        assert np.abs(got - expected).max() <= 1e-6 * np.abs(expected).max()


def test_a_runs_graph_is_float64_opset_17_and_records_classes_and_features(saved, tmp_path):
    path = to_onnx(saved["iris"], tmp_path / "iris.onnx")
    model = onnx.load(path)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)] and OPSET == 17
    assert model.ir_version == 8  # what opset 17 needs, not the newest onnx's: older runtimes read the file
    (x,), (y,) = model.graph.input, model.graph.output
    assert (x.name, y.name) == ("X", "probabilities")
    assert x.type.tensor_type.elem_type == y.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["n", 4]
    assert [d.dim_param or d.dim_value for d in y.type.tensor_type.shape.dim] == ["n", 3]
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["micronet.classes"]) == IRIS_CLASSES
    assert json.loads(meta["micronet.feature_names"]) == IRIS_FEATURES
    assert meta["micronet.task"] == "classification"
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Sub", "Div", "Gemm", "Relu", "Gemm", "Softmax"]  # scaling, hidden layer, output layer


def test_a_regression_runs_graph_maps_back_to_the_targets_units(saved, tmp_path):
    path = to_onnx(saved["sine"], tmp_path / "sine.onnx")
    model = onnx.load(path)
    assert [n.op_type for n in model.graph.node] == ["Sub", "Div", "Gemm", "Tanh", "Gemm", "Mul", "Add", "Identity"]
    assert model.graph.output[0].name == "predictions"
    X = np.linspace(-4, 4, 81).reshape(-1, 1)
    expected = micronet.load(saved["sine"]).predict(X).reshape(-1, 1)
    np.testing.assert_allclose(run_onnx(path, X), expected, rtol=1e-12, atol=1e-12)


def test_a_classifiers_labels_are_its_classes_at_the_argmax(saved, tmp_path):
    path = to_onnx(saved["iris"], tmp_path / "iris.onnx")
    predictor = micronet.load(saved["iris"])
    X = raw_features(saved["iris"])
    got = run_onnx(path, X)
    assert np.abs(got - predictor.predict_proba(X)).max() <= 1e-12
    assert [IRIS_CLASSES[i] for i in got.argmax(axis=1)] == predictor.predict(X).tolist()


@pytest.mark.slow
def test_a_model_json_exports_as_its_run_does(runs, tmp_path):
    a = to_onnx(runs["moons"], tmp_path / "a.onnx").read_bytes()
    b = to_onnx(runs["moons"] / "model.json", tmp_path / "b.onnx").read_bytes()
    assert a == b


# ----- ONNX: bare models and saved files -------------------------------------------------------


def eager_outputs(model, X):
    return np.array([[v.data for v in model(row)] for row in X.tolist()])


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "linear"])
def test_a_bare_mlp_is_the_mlp_alone_its_raw_outputs(activation, tmp_path):
    model = MLP(3, [5, 4, 2], activation, seed=1)
    X = np.random.default_rng(1).standard_normal((50, 3)) * 3
    path = to_onnx(model, tmp_path / "m.onnx")
    graph = onnx.load(path).graph
    assert [o.name for o in graph.output] == ["outputs"] and not onnx.load(path).metadata_props
    assert "Softmax" not in [n.op_type for n in graph.node]
    assert np.abs(run_onnx(path, X) - eager_outputs(model, X)).max() <= 1e-12


def test_a_one_output_classifier_gives_the_sigmoid_pair_predict_proba_gives(tmp_path):
    model = MLP(2, [4, 1], "tanh", seed=2)
    save(model, tmp_path / "m.json", mean=[1.0, -1.0], scale=[2.0, 0.5])
    X = np.random.default_rng(2).standard_normal((100, 2)) * 4
    got = run_onnx(to_onnx(tmp_path / "m.json", tmp_path / "m.onnx"), X)
    predictor = micronet.load(tmp_path / "m.json")
    assert got.shape == (100, 2) and np.abs(got - predictor.predict_proba(X)).max() <= 1e-12
    assert set(got.argmax(axis=1)) == {0, 1}  # scores of both signs: both halves of the pair checked


def test_a_regression_model_without_target_scaling_gives_its_raw_outputs(tmp_path):
    model = MLP(2, [3, 2], "sigmoid", seed=3)
    save(model, tmp_path / "m.json", task="regression")
    X = np.random.default_rng(3).standard_normal((20, 2))
    got = run_onnx(to_onnx(tmp_path / "m.json", tmp_path / "m.onnx"), X)
    assert np.abs(got - micronet.load(tmp_path / "m.json").predict(X)).max() <= 1e-12


class TwoHeads(Module):
    def __init__(self):
        self.body = MLP(2, [3], seed=0)

    def __call__(self, x):
        return [v.tanh() for v in self.body(x)]


class Wider(MLP):
    pass


@pytest.mark.parametrize(
    "model, message",
    [
        (TwoHeads(), r"^cannot export TwoHeads to ONNX: it is a custom Module, whose forward pass is Python code "
                     r"with no ONNX form; only micronet's built-in MLP can be exported$"),
        (Wider(2, [2], seed=0), r"^cannot export Wider to ONNX: it is an MLP subclass"),
        (nn.Layer(2, 3, seed=0), r"^cannot export Layer to ONNX: it is a custom Module"),
    ],
    ids=["custom", "subclass", "layer"],
)
def test_a_model_onnx_cannot_express_is_refused_by_name(model, message, tmp_path):
    with pytest.raises(ExportError, match=message):
        to_onnx(model, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_an_activation_the_exporter_lacks_is_refused_by_name(monkeypatch, tmp_path):
    tanh = nn.ACTIVATIONS["tanh"]  # an entry that names no ONNX operator and no torch module
    monkeypatch.setitem(nn.ACTIVATIONS, "softsign", dataclasses.replace(tanh, name="softsign", onnx_op=None,
                                                                        torch_module=None))
    model = MLP(2, [3, 2], "softsign", seed=0)
    with pytest.raises(ExportError, match=r"^cannot export activation 'softsign' to ONNX: the exporter knows relu, "
                                          r"tanh, sigmoid, linear"):
        to_onnx(model, tmp_path / "m.onnx")
    with pytest.raises(ExportError, match=r"^cannot export activation 'softsign' to PyTorch: .* \(give its entry "
                                          r"in micronet.activations a torch_module to export it\)$"):
        to_torch(model)


def test_every_activation_micronet_has_can_be_exported(tmp_path):
    for activation in nn.ACTIVATIONS:
        to_onnx(MLP(2, [2, 2], activation, seed=0), tmp_path / f"{activation}.onnx")
        to_torch(MLP(2, [2, 2], activation, seed=0))


def test_a_custom_modules_model_json_is_refused_with_what_to_do(tmp_path):
    save(TwoHeads(), tmp_path / "m.json")
    with pytest.raises(ValueError, match=r"holds a custom module's parameters \(architecture null\)"):
        to_onnx(tmp_path / "m.json", tmp_path / "m.onnx")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"model_or_run": "{tmp}/nope"}, ValueError, r"nope does not exist; expected a run directory or a model.json"),
        ({"model_or_run": 3}, TypeError, r"^model_or_run must be a micronet MLP, or the path of a run directory or "
                                         r"a model.json, got int$"),
        ({"path": "{tmp}"}, ValueError, r"^path '.*' is a directory; give a file name$"),
        ({"path": "{tmp}/no/such/m.onnx"}, ValueError, r"^path '.*m.onnx': the directory '.*such' does not exist$"),
        ({"path": None}, TypeError, r"^path must be a file path, got NoneType$"),
        ({"dtype": "float16"}, ValueError, r"^dtype must be one of float64, float32, got 'float16'$"),
    ],
    ids=["no-run", "not-a-model", "dir", "no-parent", "no-path", "dtype"],
)
def test_mistakes_are_refused_before_anything_is_written(kwargs, error, message, tmp_path):
    arguments = {"model_or_run": MLP(2, [2], seed=0), "path": "{tmp}/m.onnx", "dtype": "float64", **kwargs}
    arguments = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in arguments.items()}
    with pytest.raises(error, match=message):
        to_onnx(**arguments)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_extra_says_which_pip_install_to_run(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed: `import onnx` raises ImportError
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"^exporting to ONNX needs the onnx package, which is not installed: "
                                          r"pip install 'micronet-nn\[onnx\]'$"):
        to_onnx(MLP(2, [2], seed=0), tmp_path / "m.onnx")
    with pytest.raises(ImportError, match=r"to_torch needs the torch package.*pip install 'micronet-nn\[torch\]'$"):
        to_torch(MLP(2, [2], seed=0))
    with pytest.raises(ImportError, match=r"from_torch needs the torch package.*'micronet-nn\[torch\]'$"):
        from_torch(None)


def test_importing_the_exporter_loads_neither_extra():
    probe = ("import sys, json; before = set(sys.modules); import micronet.export; "
             "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
             "print(json.dumps(sorted(new - set(sys.stdlib_module_names) - {'micronet'})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    # onnx, onnxruntime and torch load only when a function needs them; NumPy, a base dependency, comes
    # with the checkpoint reader (its memory budget reads the dataset specs)
    assert set(json.loads(out.stdout)) <= {"numpy"}


# ----- the command line ------------------------------------------------------------------------


def run_main(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_the_graph_and_says_what_it_holds(saved, tmp_path, capsys):
    code, out, err = run_main([saved["iris"], "--onnx", tmp_path / "iris.onnx"], capsys)
    assert code == 0 and err == ""
    assert out == (f"wrote {tmp_path / 'iris.onnx'}: X (n, 4) raw features -> probabilities (n, 3) for classes "
                   "['setosa', 'versicolor', 'virginica']; float64, ONNX opset 17\n")
    X = raw_features(saved["iris"])
    assert np.abs(run_onnx(tmp_path / "iris.onnx", X) - micronet.load(saved["iris"]).predict_proba(X)).max() <= 1e-12


def test_cli_float32_and_regression(saved, tmp_path, capsys):
    code, out, _ = run_main([saved["sine"], "--onnx", tmp_path / "sine.onnx", "--float32"], capsys)
    assert code == 0 and out.endswith("-> predictions (n, 1) in the target's units; float32, ONNX opset 17\n")
    assert onnx.load(tmp_path / "sine.onnx").graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


@pytest.mark.parametrize(
    "args, usage, message",
    [
        (["{run}"], True, r"the following arguments are required: --onnx"),
        (["{run}", "--onnx", "{tmp}/m.onnx", "--float16"], True, r"unrecognized arguments: --float16"),
        (["{tmp}/nope", "--onnx", "{tmp}/m.onnx"], False, r"nope does not exist"),
        (["{run}", "--onnx", "{tmp}"], False, r"path .* is a directory"),
        (["{run}", "--onnx", "{tmp}/no/such/m.onnx"], False, r"the directory .* does not exist"),
    ],
    ids=["no-onnx", "unknown-option", "no-run", "out-dir", "out-parent"],
)
def test_cli_mistakes_are_one_error_line_and_status_2(saved, tmp_path, capsys, args, usage, message):
    code, out, err = run_main([a.format(run=saved["iris"], tmp=tmp_path) for a in args], capsys)
    lines = [line for line in err.splitlines() if not line.startswith(("usage: ", " "))]
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: ")
    assert err.startswith("usage: ") == usage  # a usage mistake shows the usage line first
    assert re.search(message, lines[0]), err
    assert not (tmp_path / "m.onnx").exists()


def test_cli_without_the_onnx_extra_says_what_to_install(saved, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, out, err = run_main([saved["iris"], "--onnx", tmp_path / "m.onnx"], capsys)
    assert code == 2 and out == ""
    assert err == ("error: exporting to ONNX needs the onnx package, which is not installed: "
                   "pip install 'micronet-nn[onnx]'\n")


def test_cli_help_ends_in_examples_and_version_names_the_distribution(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: ") and "--onnx PATH" in help_text
    assert re.search(r"examples:\n(  \S.*\n)+$", help_text), help_text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip().endswith(f"(micronet-nn) {micronet.__version__}")


def test_the_console_script_end_to_end(saved, tmp_path):
    script = Path(sys.executable).parent / "micronet-export"
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    command = [str(script)] if script.exists() else [sys.executable, "-m", "micronet.export"]
    good = subprocess.run([*command, saved["iris"], "--onnx", tmp_path / "m.onnx"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert good.returncode == 0 and good.stderr == "" and good.stdout.startswith("wrote ")
    bad = subprocess.run([sys.executable, "-m", "micronet.export", tmp_path / "nope", "--onnx", tmp_path / "x.onnx"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


# ----- PyTorch -------------------------------------------------------------------------------------


def micronet_loss_and_grads(model, X, y):
    """The summed cross-entropy over the batch, and every parameter's gradient, with the eager engine."""
    model.zero_grad()
    total = 0.0
    for row, label in zip(X.tolist(), y.tolist()):
        loss = cross_entropy(model(row), label)
        loss.backward()
        total += loss.data
    return total, [p.grad for p in model.parameters()]


def torch_loss_and_grads(sequential, X, y):
    """The same, in torch; the gradients flattened into micronet's parameter order (neuron by neuron, w then b)."""
    sequential.zero_grad()
    loss = torch.nn.functional.cross_entropy(sequential(torch.tensor(X)), torch.tensor(y), reduction="sum")
    loss.backward()
    grads = []
    for linear in [m for m in sequential if isinstance(m, torch.nn.Linear)]:
        for w_row, b in zip(linear.weight.grad.tolist(), linear.bias.grad.tolist()):
            grads += [*w_row, b]
    return loss.item(), grads


def batch(seed=0, n=40, features=3, classes=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)) * 2, rng.integers(0, classes, n)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "linear"])
def test_to_torch_gives_the_same_outputs_and_gradients(activation):
    model = MLP(3, [6, 5, 4], activation, seed=4)
    sequential = to_torch(model)
    X, y = batch()
    with torch.no_grad():
        out = sequential(torch.tensor(X)).numpy()
    assert np.abs(out - eager_outputs(model, X)).max() <= 1e-12
    loss, grads = micronet_loss_and_grads(model, X, y)
    torch_loss, torch_grads = torch_loss_and_grads(sequential, X, y)
    assert abs(loss - torch_loss) <= 1e-12 * abs(loss)
    assert np.abs(np.array(grads) - np.array(torch_grads)).max() <= 1e-12


def test_to_torch_is_a_sequential_of_float64_linears_with_the_weights_exactly():
    model = MLP(2, [3, 2], "tanh", seed=5)
    sequential = to_torch(model)
    assert [type(m).__name__ for m in sequential] == ["Linear", "Tanh", "Linear"]
    assert all(p.dtype == torch.float64 for p in sequential.parameters())
    assert sequential[0].weight.tolist() == [[w.data for w in n.w] for n in model.layers[0].neurons]
    assert sequential[2].bias.tolist() == [n.b.data for n in model.layers[1].neurons]


@pytest.mark.parametrize("hidden, activation", [(torch.nn.ReLU, "relu"), (torch.nn.Tanh, "tanh"),
                                                (torch.nn.Sigmoid, "sigmoid"), (torch.nn.Identity, "linear")])
def test_from_torch_gives_the_same_outputs_and_gradients(hidden, activation):
    torch.manual_seed(0)
    sequential = torch.nn.Sequential(torch.nn.Linear(3, 6), hidden(), torch.nn.Linear(6, 5), hidden(),
                                     torch.nn.Linear(5, 4)).double()
    model = from_torch(sequential)
    assert type(model) is MLP and model.activation == activation
    X, y = batch(seed=1)
    with torch.no_grad():
        out = sequential(torch.tensor(X)).numpy()
    assert np.abs(out - eager_outputs(model, X)).max() <= 1e-12
    loss, grads = micronet_loss_and_grads(model, X, y)
    torch_loss, torch_grads = torch_loss_and_grads(sequential, X, y)
    assert abs(loss - torch_loss) <= 1e-12 * abs(loss)
    assert np.abs(np.array(grads) - np.array(torch_grads)).max() <= 1e-12


def test_round_trips_keep_every_weight_identical():
    model = MLP(4, [7, 3], "sigmoid", seed=6)
    assert from_torch(to_torch(model)).state_dict() == model.state_dict()
    torch.manual_seed(1)
    sequential = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).double()
    back = to_torch(from_torch(sequential))
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), sequential.state_dict().values()))
    assert list(back.state_dict()) == list(sequential.state_dict())


def test_from_torch_takes_float32_weights_exactly_and_linears_in_a_row_as_linear():
    torch.manual_seed(2)
    sequential = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 2))  # float32, nothing between
    model = from_torch(sequential)
    assert model.activation == "linear"
    assert [w.data for w in model.layers[0].neurons[0].w] == sequential[0].weight[0].double().tolist()
    single = from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2)))  # no hidden layer: a linear model
    assert [len(layer.neurons) for layer in single.layers] == [2]


@pytest.mark.parametrize(
    "layers, message",
    [
        (lambda: [torch.nn.Linear(2, 3), torch.nn.Dropout(0.5), torch.nn.Linear(3, 2)],
         r"^layer 1 of the Sequential is Dropout, which micronet's MLP has no counterpart for; from_torch takes "
         r"Linear layers with ReLU, Tanh, Sigmoid, Identity between them$"),
        (lambda: [torch.nn.Linear(2, 3), torch.nn.LeakyReLU(), torch.nn.Linear(3, 2)], r"layer 1 .* is LeakyReLU"),
        (lambda: [torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2), torch.nn.Softmax(dim=1)],
         r"layer 3 of the Sequential is Softmax"),
        (lambda: [torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2), torch.nn.Sigmoid()],
         r"^the Sequential ends with Sigmoid; an MLP's last layer is a Linear"),
        (lambda: [torch.nn.ReLU(), torch.nn.Linear(2, 2)], r"^the Sequential starts with ReLU \(layer 0\)"),
        (lambda: [torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.Linear(3, 2)],
         r"has two activations in a row at ReLU \(layer 2\)"),
        (lambda: [torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 3), torch.nn.Tanh(),
                  torch.nn.Linear(3, 1)], r"hidden activations differ \(relu, tanh\)"),
        (lambda: [torch.nn.Linear(2, 3), torch.nn.Linear(3, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)],
         r"hidden activations differ \(linear, tanh\)"),
        (lambda: [torch.nn.Linear(2, 3, bias=False)], r"^layer 0 of the Sequential is a Linear without bias"),
        (lambda: [torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(4, 2)],
         r"^layer 2 of the Sequential takes 4 inputs, but the Linear before it gives 3$"),
        (lambda: [torch.nn.Sequential(torch.nn.Linear(2, 2))], r"layer 0 of the Sequential is Sequential"),
        (lambda: [], r"^the Sequential is empty"),
    ],
    ids=["dropout", "leaky", "softmax", "ends-with-activation", "starts-with-activation", "two-in-a-row",
         "mixed", "mixed-with-none", "no-bias", "widths", "nested", "empty"],
)
def test_from_torch_refuses_what_an_mlp_cannot_be_by_name(layers, message):
    with pytest.raises(ExportError, match=message):
        from_torch(torch.nn.Sequential(*layers()))


def test_from_torch_refuses_non_finite_weights_and_other_modules():
    sequential = torch.nn.Sequential(torch.nn.Linear(2, 2)).double()
    with torch.no_grad():
        sequential[0].weight[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"state_dict\['layers.0.neurons.1.w.0'\] must be finite, got nan"):
        from_torch(sequential)
    with pytest.raises(TypeError, match=r"^from_torch takes a torch.nn.Sequential, got Linear$"):
        from_torch(torch.nn.Linear(2, 2))


def test_to_torch_refuses_a_custom_module_by_name():
    with pytest.raises(ExportError, match=r"^cannot export TwoHeads to PyTorch: it is a custom Module"):
        to_torch(TwoHeads())
