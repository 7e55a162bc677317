"""Models that leave micronet: an ONNX graph for any runtime, a torch.nn.Sequential for PyTorch.

    micronet-export RUN_DIR --onnx model.onnx      (or python -m micronet.export ...)

`to_onnx` writes a run (or a model.json) as one ONNX graph that takes the raw
features and gives what `micronet.load(run)` gives: the stored input scaling
is part of the graph, and so is the softmax (class probabilities) or the
target's scaling (regression values in the target's units). A bare MLP is
written as the MLP alone: its raw outputs (logits), as calling it gives them.
The graph is built with the `onnx` package's helper API, in ONNX opset 17,
in float64 by default: onnxruntime has float64 kernels for every operator
used, so it agrees with `predict_proba` to about 1e-15. `dtype="float32"` is
for runtimes without them, at float32's precision.

`to_torch` and `from_torch` move an MLP to and from PyTorch with its float64
weights unchanged: the bridge to take when moving on to PyTorch.

onnx and torch are optional (the `onnx` and `torch` extras), imported only
inside the functions that need them, so importing this module stays light.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from micronet import __version__, files
from micronet.activations import ACTIVATIONS
from micronet.checkpoint import Checkpoint, load_checkpoint
from micronet.nn import MLP, Module

if TYPE_CHECKING:  # annotations only: an optional extra
    import torch

__all__ = ["OPSET", "ExportError", "to_onnx", "to_torch", "from_torch", "main"]

OPSET = 17  # ONNX 1.12 (2022): it has every operator the graph needs, and the runtimes of recent years read it

# Each activation's ONNX operator and torch.nn module are in its entry in micronet.activations.

DTYPES = ("float64", "float32")


class ExportError(ValueError):
    """A model the exporter cannot express: the message names the part that has no counterpart."""


def _need(package: str, extra: str, what: str) -> ImportError:
    """The error for a missing optional package: which extra to install."""
    return ImportError(
        f"{what} needs the {package} package, which is not installed: pip install 'micronet-nn[{extra}]'"
    )


# ----- what is exported: an MLP's layers, and a run's scaling ------------------------------


_LayerWeights = tuple[list[list[float]], list[float], str]  # one layer: weight rows (out x in), biases, activation


def _layers(model: Module, target: str) -> list[_LayerWeights]:
    """(weights as out x in rows, biases, activation) per layer of a built-in MLP; anything else is refused."""
    if type(model) is not MLP:
        kind = "an MLP subclass" if isinstance(model, MLP) else "a custom Module"
        raise ExportError(
            f"cannot export {type(model).__name__} to {target}: it is {kind}, whose forward pass is Python code "
            f"with no {target} form; only micronet's built-in MLP can be exported"
        )
    layers = []
    for layer in model.layers:
        if layer.activation not in _exportable(target):
            field = "onnx_op" if target == "ONNX" else "torch_module"
            raise ExportError(
                f"cannot export activation {layer.activation!r} to {target}: the exporter knows "
                f"{', '.join(_exportable(target))} (give its entry in micronet.activations a {field} to export it)"
            )
        weights = [[w.data for w in neuron.w] for neuron in layer.neurons]
        layers.append((weights, [neuron.b.data for neuron in layer.neurons], layer.activation))
    return layers


def _exportable(target: str) -> list[str]:
    """The activations whose entries name a counterpart in `target` (an identity needs no ONNX node)."""
    if target == "ONNX":
        return [name for name, spec in ACTIVATIONS.items() if spec.onnx_op or spec.identity]
    return [name for name, spec in ACTIVATIONS.items() if spec.torch_module]


def _run_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """The checkpoint of a run directory or a model.json, checked as micronet.load checks it."""
    from micronet.predict import load

    load(path)  # the same refusals as predicting from it (a missing model.json, a task that contradicts the run)
    path = Path(path)
    return load_checkpoint(path / "model.json" if path.is_dir() else path)


# ----- ONNX ----------------------------------------------------------------------------------


def to_onnx(model_or_run: MLP | str | os.PathLike[str], path: str | os.PathLike[str], *,
            dtype: str = "float64") -> Path:
    """Write an MLP, or a run directory or model.json with its scaling, as an ONNX graph at `path`.

    A run's graph maps input `X`, raw features (n, n_features), to
    `probabilities` (n, n_classes) in the order of its classes, or to
    `predictions` (n, n_outputs) in the target's units; its classes and
    feature names are in the model's metadata (`micronet.classes`,
    `micronet.feature_names`, as JSON). A bare MLP's graph maps `X` to
    `outputs`, the MLP's raw outputs. Returns the path written (atomically).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    out = _output_path(path, "path")
    if not isinstance(model_or_run, (str, os.PathLike, Module)):
        raise TypeError(
            "model_or_run must be a micronet MLP, or the path of a run directory or a model.json, "
            f"got {type(model_or_run).__name__}"
        )
    if isinstance(model_or_run, Module):
        _layers(model_or_run, "ONNX")  # a model ONNX cannot express is refused before anything else
    try:
        import onnx
    except ImportError:
        raise _need("onnx", "onnx", "exporting to ONNX") from None
    checkpoint: Checkpoint | None = None
    if isinstance(model_or_run, Module):
        model: Module = model_or_run
    else:
        checkpoint = _run_checkpoint(model_or_run)
        model = checkpoint.model
    layers = _layers(model, "ONNX")
    graph = _onnx_model(onnx, layers, checkpoint, dtype)
    onnx.checker.check_model(graph, full_check=True)  # shapes and types inferred and checked before writing
    files.write_bytes_atomic(out, graph.SerializeToString())
    return out


def _output_path(path: object, name: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path, got {type(path).__name__}")
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a directory; give a file name")
    if not out.parent.is_dir():
        raise ValueError(f"{name} {str(path)!r}: the directory {str(out.parent)!r} does not exist")
    return out


def _onnx_model(onnx: Any, layers: list[_LayerWeights], checkpoint: Checkpoint | None, dtype: str) -> Any:
    """The graph, node by node: scaling, one Gemm (and activation) per layer, then softmax or target scaling."""
    import json

    helper = onnx.helper
    elem = onnx.TensorProto.DOUBLE if dtype == "float64" else onnx.TensorProto.FLOAT
    nodes: list[Any] = []
    initializers: list[Any] = []

    def constant(name: str, values: Sequence[float] | Sequence[Sequence[float]]) -> str:
        """An initializer holding `values` (a list, or a list of rows) exactly, as doubles or rounded to floats."""
        if isinstance(values[0], Sequence):
            rows = cast(Sequence[Sequence[float]], values)
            dims, flat = [len(rows), len(rows[0])], [float(v) for row in rows for v in row]
        else:
            dims, flat = [len(values)], [float(cast(float, v)) for v in values]
        initializers.append(helper.make_tensor(name, elem, dims, flat))
        return name

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    n_in, n_out = len(layers[0][0][0]), len(layers[-1][1])
    h = "X"
    if checkpoint is not None and checkpoint.mean is not None and checkpoint.scale is not None:
        # Predictor.decision_function's (X - mean) / scale, the same two roundings
        h = node("Sub", [h, constant("mean", checkpoint.mean)], "centered")
        h = node("Div", [h, constant("scale", checkpoint.scale)], "standardized")
    for i, (weights, biases, activation) in enumerate(layers):
        w, b = constant(f"layers.{i}.weight", weights), constant(f"layers.{i}.bias", biases)
        h = node("Gemm", [h, w, b], f"layers.{i}.linear", transB=1)  # h @ w.T + b, w laid out as torch's Linear
        op = ACTIVATIONS[activation].onnx_op
        if op is not None:
            h = node(op, [h], f"layers.{i}.{activation}")
    metadata: dict[str, str] = {}
    width = n_out
    if checkpoint is None:
        output = node("Identity", [h], "outputs")
        doc = "A micronet MLP: X (n, inputs) -> outputs (n, outputs), the MLP's raw outputs."
    elif checkpoint.task == "classification":
        if n_out == 1:  # one score: class 1 where it is > 0, as predict_proba reads it
            p = node("Sigmoid", [h], "p")
            q = node("Sub", [constant("one", [1.0]), p], "q")
            output, width = node("Concat", [q, p], "probabilities", axis=1), 2
        else:
            output = node("Softmax", [h], "probabilities", axis=1)
        metadata["micronet.classes"] = json.dumps(checkpoint.classes)
        doc = "A micronet run: X (n, features), raw -> probabilities (n, classes), in micronet.classes' order."
    else:
        if checkpoint.target_mean is not None and checkpoint.target_scale is not None:
            h = node("Mul", [h, constant("target_scale", checkpoint.target_scale)], "scaled_back")
            h = node("Add", [h, constant("target_mean", checkpoint.target_mean)], "target_units")
        output = node("Identity", [h], "predictions")
        doc = "A micronet run: X (n, features), raw -> predictions (n, outputs), in the target's units."
    if checkpoint is not None:
        metadata["micronet.task"] = checkpoint.task
        metadata["micronet.feature_names"] = json.dumps(checkpoint.feature_names)
    graph = helper.make_graph(
        nodes, "micronet",
        [helper.make_tensor_value_info("X", elem, ["n", n_in])],
        [helper.make_tensor_value_info(output, elem, ["n", width])],
        initializer=initializers,
        doc_string=doc,
    )
    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="micronet", producer_version=__version__,
                              doc_string=doc)
    model.ir_version = helper.find_min_ir_version_for(opsets)  # not the newest onnx's: older runtimes read it
    helper.set_model_props(model, metadata)
    return model


# ----- PyTorch -------------------------------------------------------------------------------


def to_torch(model: MLP) -> "torch.nn.Sequential":
    """A torch.nn.Sequential computing the MLP's function: Linear layers with its float64 weights.

    Each hidden layer is a Linear followed by the activation's module (ReLU,
    Tanh, Sigmoid, or Identity for linear); the last Linear gives the raw
    outputs. Linear's weight[j, i] is neuron j's weight i, as in the graph.
    """
    layers = _layers(model, "PyTorch")
    try:
        import torch
    except ImportError:
        raise _need("torch", "torch", "micronet.export.to_torch") from None
    modules: list[torch.nn.Module] = []
    for i, (weights, biases, activation) in enumerate(layers):
        linear = torch.nn.Linear(len(weights[0]), len(weights), dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(weights, dtype=torch.float64))
            linear.bias.copy_(torch.tensor(biases, dtype=torch.float64))
        modules.append(linear)
        if i < len(layers) - 1:
            module_name = ACTIVATIONS[activation].torch_module
            assert module_name is not None  # _layers refused the activations without one
            modules.append(getattr(torch.nn, module_name)())
    return torch.nn.Sequential(*modules)


def from_torch(sequential: "torch.nn.Sequential") -> MLP:
    """The MLP computing a torch.nn.Sequential's function, with its weights as Python floats.

    The Sequential must be what an MLP is: Linear layers (with bias), one
    and the same activation between each two of them (ReLU, Tanh, Sigmoid,
    or Identity or nothing for linear), and a Linear last. Any other layer
    is refused by name. float32 weights are taken exactly, as doubles.
    """
    try:
        import torch
    except ImportError:
        raise _need("torch", "torch", "micronet.export.from_torch") from None
    if not isinstance(sequential, torch.nn.Sequential):
        raise TypeError(f"from_torch takes a torch.nn.Sequential, got {type(sequential).__name__}")
    names = {spec.torch_module: name for name, spec in ACTIVATIONS.items() if spec.torch_module}
    children = list(sequential)
    if not children:
        raise ExportError("the Sequential is empty; an MLP needs at least one Linear layer")
    linears: list[torch.nn.Linear] = []
    between: list[str | None] = []  # the activation after each Linear but the last (None: none)
    for index, module in enumerate(children):
        kind = type(module).__name__
        if type(module) is torch.nn.Linear:
            if module.bias is None:
                raise ExportError(f"layer {index} of the Sequential is a Linear without bias; every micronet "
                                  "neuron has one (build it with bias=True)")
            if linears and module.in_features != linears[-1].out_features:
                raise ExportError(f"layer {index} of the Sequential takes {module.in_features} inputs, but the "
                                  f"Linear before it gives {linears[-1].out_features}")
            if len(between) < len(linears):
                between.append(None)  # two Linears in a row: nothing between them
            linears.append(module)
        elif kind in names and getattr(torch.nn, kind) is type(module):
            if not linears or len(between) == len(linears):
                where = "starts with" if not linears else "has two activations in a row at"
                raise ExportError(f"the Sequential {where} {kind} (layer {index}); an MLP applies one activation "
                                  "after each Linear but the last")
            between.append(names[kind])
        else:
            raise ExportError(
                f"layer {index} of the Sequential is {kind}, which micronet's MLP has no counterpart for; "
                f"from_torch takes Linear layers with {', '.join(names)} between them"
            )
    if len(between) == len(linears):
        raise ExportError(f"the Sequential ends with {type(children[-1]).__name__}; an MLP's last layer is a Linear "
                          "(its raw outputs are the logits): drop the final activation")
    chosen = {a if a is not None else "linear" for a in between}
    if len(chosen) > 1:
        raise ExportError(f"the Sequential's hidden activations differ ({', '.join(sorted(chosen))}); an MLP uses "
                          "one activation for every hidden layer")
    activation = chosen.pop() if chosen else "relu"  # one Linear: no hidden layer, any activation is the same
    if activation not in ACTIVATIONS:
        raise ExportError(f"activation {activation!r} is not one of micronet's ({', '.join(ACTIVATIONS)})")
    mlp = MLP(linears[0].in_features, [linear.out_features for linear in linears], activation, seed=0)
    state: dict[str, Any] = {}
    for i, linear in enumerate(linears):
        weights = linear.weight.detach().to(torch.float64).cpu().tolist()
        biases = linear.bias.detach().to(torch.float64).cpu().tolist()
        for j, (row, bias) in enumerate(zip(weights, biases)):
            state[f"layers.{i}.neurons.{j}.w"] = row
            state[f"layers.{i}.neurons.{j}.b"] = bias
    mlp.load_state_dict(state)  # checked: a non-finite weight is refused by name
    return mlp


# ----- the command line ----------------------------------------------------------------------


def _describe(path: Path, run: str | os.PathLike[str], dtype: str) -> str:
    """One line saying what was written: the graph's input and output."""
    checkpoint = load_checkpoint(Path(run) / "model.json" if Path(run).is_dir() else run)
    n_in = len(checkpoint.model.layers[0].neurons[0].w)  # type: ignore[attr-defined]  # load_checkpoint: an MLP
    if checkpoint.task == "classification":
        result = f"probabilities (n, {len(checkpoint.classes or [])}) for classes {checkpoint.classes}"
    else:
        result = f"predictions (n, {len(checkpoint.model.layers[-1].neurons)}) in the target's units"  # type: ignore[attr-defined]
    return f"wrote {path}: X (n, {n_in}) raw features -> {result}; {dtype}, ONNX opset {OPSET}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `micronet-export` and `python -m micronet.export`."""
    from micronet.commands import CommandParser, program_name

    parser = CommandParser(
        prog=program_name("export", sys.argv[0] if sys.argv else ""),
        description="Export a trained run as an ONNX graph: raw features in, what micronet-predict gives out.",
        epilog="The graph applies the run's input scaling, then the MLP, then the softmax (classification: "
        "class probabilities, in the order of the classes stored in its metadata) or the target's scaling "
        f"(regression: values in the target's units). ONNX opset {OPSET}, float64 unless --float32. Needs the "
        "onnx extra: pip install 'micronet-nn[onnx]'.\n\nexamples:\n"
        "  %(prog)s runs/moons-20261130-101500 --onnx moons.onnx\n"
        "  %(prog)s runs/iris/model.json --onnx iris.onnx --float32",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_version()
    parser.add_argument("run", metavar="RUN_DIR", help="a run directory (or a model.json)")
    parser.add_argument("--onnx", metavar="PATH", required=True, help="write the ONNX graph here")
    parser.add_argument("--float32", action="store_true",
                        help="single precision, for runtimes without float64 kernels (default: float64)")
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        dtype = "float32" if args.float32 else "float64"
        written = to_onnx(args.run, args.onnx, dtype=dtype)
        print(_describe(written, args.run, dtype))
    except (ValueError, TypeError, ImportError, OSError) as e:
        message = f"{e.strerror}: {e.filename!r}" if isinstance(e, OSError) and e.strerror else str(e)
        print(f"{getattr(e, 'usage', '')}error: {message}", file=sys.stderr)  # a usage mistake: the usage line first
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
