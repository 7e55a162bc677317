"""Activation functions as specs: one entry per activation, which every part of micronet reads.

An entry holds each form the activation takes: its scalar op and slope (for
`Value.activate` and the fused neuron in `engine.dots`), its batch twin over
arrays (for the compiled executor and the playground's drawings), and how it
is shown (docs, `--help-config`, the playground's menu). nn's layers, the
config's allowed values and the checkpoint's checks read the same registry,
so adding an activation is one entry here, plus its tests.

Standard library only, like the engine that reads it: the batch forms take
the array namespace as their first argument, `xp` (the compiled executor
passes NumPy), so nothing here imports NumPy.

Each form is written from what its forward pass computed (tanh's slope is
1 - t*t of its own output), and the batch twin must give the scalar's
numbers to 1e-12, at the kinks and for NaN too: the tests check every entry.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ACTIVATIONS", "Activation", "get_activation"]


@dataclass(frozen=True)
class Activation:
    """One activation function and everything the engine, the batch executor and the doors need to know about it."""

    name: str  # what configs, layers and menus call it; also the op name of its nodes
    formula: str  # f(x), as the docs, --help-config and the playground's menu show it
    scalar: Callable[[float], tuple[float, float]]  # x -> (f(x), f'(x)), the slope from what f computed
    batch: Callable[[Any, Any], Any]  # (xp, X) -> f(X) elementwise; xp is the array namespace (NumPy)
    batch_slope: Callable[[Any, Any, Any], Any]  # (xp, X, f(X)) -> f'(X): the scalar slopes, kinks and NaN included
    init: str = "glorot"  # initial weights: "he" (+-sqrt(6/fan_in)) for relu-like, "glorot" otherwise
    kinks: tuple[float, ...] = ()  # where the slope jumps (a one-sided value is chosen; the tests look there)
    identity: bool = False  # f(x) = x: makes no node, and is no choice for a hidden layer
    onnx_op: str | None = None  # its ONNX operator, for micronet.export (None: not exportable, unless identity)
    torch_module: str | None = None  # its torch.nn module class, for to_torch and from_torch (None: none)


ACTIVATIONS: dict[str, Activation] = {}  # name -> spec, in the order menus and messages list them


def _register(spec: Activation) -> None:
    if spec.name in ACTIVATIONS:
        raise ValueError(f"activation {spec.name!r} is registered twice")
    if spec.init not in ("he", "glorot"):
        raise ValueError(f"activation {spec.name!r}: init must be 'he' or 'glorot', got {spec.init!r}")
    ACTIVATIONS[spec.name] = spec


def get_activation(name: object, what: str = "activation") -> Activation:
    """The registered activation called `name`; ValueError naming `what` and the choices otherwise."""
    spec = ACTIVATIONS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"{what} must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return spec


# ----- the activations ------------------------------------------------------------
# Each: the scalar form, then its entry with the batch twin beside it.


def _relu(x: float) -> tuple[float, float]:
    if x <= 0.0:  # the slope at 0 is 0, as in PyTorch
        return 0.0, 0.0
    # x > 0, or NaN: NaN passes through with slope 1, as PyTorch's relu gives
    # it, so a diverging run is seen as NaN rather than hidden as 0.
    return x, 1.0


_register(Activation(
    "relu", "max(x, 0)", _relu,
    batch=lambda xp, x: xp.maximum(x, 0.0),  # propagates NaN
    batch_slope=lambda xp, x, out: out != 0.0,  # exactly "x > 0 or NaN", as the scalar's
    init="he",
    kinks=(0.0,),
    onnx_op="Relu", torch_module="ReLU",
))


def _tanh(x: float) -> tuple[float, float]:
    t = math.tanh(x)
    return t, 1.0 - t * t  # d tanh = 1 - tanh^2


_register(Activation(
    "tanh", "(e^x - e^-x) / (e^x + e^-x)", _tanh,
    batch=lambda xp, x: xp.tanh(x),
    batch_slope=lambda xp, x, out: 1.0 - out * out,
    onnx_op="Tanh", torch_module="Tanh",
))


def _sigmoid(x: float) -> tuple[float, float]:
    if x >= 0.0:  # two branches: exp never sees a large positive argument
        s = 1.0 / (1.0 + math.exp(-x))
    else:
        e = math.exp(x)
        s = e / (1.0 + e)
    return s, s * (1.0 - s)  # s' = s(1 - s)


def _sigmoid_batch(xp: Any, x: Any) -> Any:
    e = xp.exp(-xp.abs(x))  # exp(-x) where x >= 0, exp(x) elsewhere: never large
    return xp.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


_register(Activation(
    "sigmoid", "1 / (1 + e^-x)", _sigmoid,
    batch=_sigmoid_batch,
    batch_slope=lambda xp, x, out: out * (1.0 - out),
    onnx_op="Sigmoid", torch_module="Sigmoid",
))


def _linear(x: float) -> tuple[float, float]:
    return x, 1.0


_register(Activation(
    "linear", "x", _linear,
    batch=lambda xp, x: x,
    batch_slope=lambda xp, x, out: xp.ones_like(x),
    identity=True,  # an output layer's raw logits
    torch_module="Identity",
))
