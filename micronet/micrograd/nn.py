"""micrograd's Module, Neuron, Layer and MLP on micronet's engine, with micrograd's numbers.

Each neuron is micronet's fused dot node (one node with 2n+1 children, relu
folded in), so the graph is smaller than micrograd's and the sums are rounded in
another order: outputs agree with micrograd's to about 1e-16 relative. The
weights are drawn from Python's global `random` module, in micrograd's order,
so `random.seed(...)` gives micrograd's exact initial numbers.
"""

import random
from collections.abc import Iterable, Sequence

from micronet import engine, nn
from micronet.engine import dots
from micronet.micrograd.engine import Value

__all__ = ["Module", "Neuron", "Layer", "MLP"]


class Module(nn.Module):
    """micrograd's base class (zero_grad, parameters), and a micronet Module (state_dict, named_parameters).

    `parameters()` finds the Values held in attributes, in micrograd's order;
    a subclass may still define its own, as micrograd's do.
    """


class Neuron(Module):
    """relu(w . x + b), or w . x + b with nonlin=False; w uniform in [-1, 1) from `random`, b = 0."""

    def __init__(self, nin: int, nonlin: bool = True) -> None:
        _check_count("nin", nin)
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x: Sequence[Value | float]) -> Value:  # type: ignore[override]  # one Value, as micrograd
        _check_inputs(self, len(self.w), x)
        return _as_micrograd(dots([self.w], x, [self.b], "relu" if self.nonlin else None))[0]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


_NEURON_CALL = Neuron.__call__  # Layer calls its neurons at once unless Neuron.__call__ is replaced


class Layer(Module):
    """nout Neurons reading the same inputs; a single output is returned as the Value itself."""

    def __init__(self, nin: int, nout: int, **kwargs: bool) -> None:
        _check_count("nout", nout)
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:  # type: ignore[override]  # as micrograd
        neurons = self.neurons
        nonlin = {bool(n.nonlin) for n in neurons}
        if len(nonlin) == 1 and all(type(n) is Neuron for n in neurons) and Neuron.__call__ is _NEURON_CALL:
            # What calling each neuron does, in one call: the inputs are checked and made leaves once.
            _check_inputs(neurons[0], len(neurons[0].w), x)
            activation = "relu" if nonlin.pop() else None
            out = _as_micrograd(dots([n.w for n in neurons], x, [n.b for n in neurons], activation))
        else:
            out = [n(x) for n in neurons]
        return out[0] if len(out) == 1 else out

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """Layers of the sizes in `nouts`: relu on every hidden layer, linear on the last."""

    def __init__(self, nin: int, nouts: Iterable[int]) -> None:
        sizes = [nin, *nouts]
        if len(sizes) < 2:
            raise ValueError("MLP nouts must list at least one layer size, got []")
        last = len(sizes) - 2
        self.layers = [Layer(sizes[i], sizes[i + 1], nonlin=i != last) for i in range(len(sizes) - 1)]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:  # type: ignore[override]  # as micrograd
        out: Value | list[Value] = list(x)  # type: ignore[arg-type]  # numbers become leaves in the first layer
        for layer in self.layers:
            out = layer(out if isinstance(out, list) else [out])
        return out

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


def _as_micrograd(nodes: list[engine.Value]) -> list[Value]:
    """The engine's new nodes as micrograd Values: the same objects (the two classes share one layout)."""
    for node in nodes:
        node.__class__ = Value
    return nodes  # type: ignore[return-value]  # each one's class is now Value


def _check_count(name: str, n: object) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be an int >= 1, got {n!r}")


def _check_inputs(neuron: Neuron, expected: int, x: Sequence[Value | float]) -> None:
    try:
        n = len(x)
    except TypeError:
        raise TypeError(f"Neuron expects a list of {expected} numbers or Values, got {type(x).__name__}") from None
    if n != expected:
        raise ValueError(f"{neuron!r} expects {expected} inputs, got {n}")
