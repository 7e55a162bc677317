"""Neural-net modules built from Values: Module, Neuron, Layer, MLP.

A Module finds its parameters by walking its attributes in assignment order:
every `Value` or `Module` stored on it, directly or inside lists, tuples and
dicts (nested to any depth), is part of the model, so a custom model needs no
registration code. Lists and tuples are walked in index order and dicts in
insertion order; a dict that holds parameters needs string keys (they name
the parameters), and a set of them, which has no order, is refused. That
walk fixes the public parameter order: layer by layer, neuron by neuron,
weights then bias. A Module or Value reachable twice (tied weights) counts
once, where the walk first meets it.
"""

import functools
import math
import numbers
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec

from micronet.activations import ACTIVATIONS, get_activation
from micronet.engine import Value, dots

__all__ = ["Module", "Neuron", "Layer", "MLP", "ACTIVATIONS", "Outputs", "mlp_layout"]


class Module:
    """Base class: parameters, gradients and plain-data state of a model."""

    if TYPE_CHECKING:  # every model defines it: a list of numbers or Values in, a list of Values out

        def __call__(self, x: Sequence[Value | float]) -> list[Value]: ...

    def named_parameters(self) -> list[tuple[str, Value]]:
        """(dotted name, Value) pairs in the fixed order, each Value once.

        A name is the path of attributes, list and tuple indices and dict keys
        that leads to the Value: `blocks.encoder.neurons.0.w.1`.
        """
        seen = set()
        pairs = []
        for name, entry in self._entries(""):
            items = [(f"{name}.{i}", v) for i, v in enumerate(entry)] if isinstance(entry, list) else [(name, entry)]
            for item_name, value in items:
                if id(value) not in seen:  # a shared Value is one parameter, as in PyTorch
                    seen.add(id(value))
                    pairs.append((item_name, value))
        return pairs

    def parameters(self) -> list[Value]:
        """All parameters as one flat list of Values, in the fixed order (named_parameters' order)."""
        values: list[Value] = []
        for _, entry in self._entries(""):  # without the per-Value names: called every step
            if isinstance(entry, list):
                values.extend(entry)
            else:
                values.append(entry)
        return list(dict.fromkeys(values))  # each Value once (Values hash by identity), first place kept

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0 (leaves accumulate over backward calls)."""
        for p in self.parameters():
            p.grad = 0.0

    def state_dict(self) -> dict[str, float | list[float]]:
        """Parameters as plain JSON-ready data: name -> float or list of floats."""
        return {
            name: [v.data for v in entry] if isinstance(entry, list) else entry.data
            for name, entry in self._entries("")
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy parameter values from `state`; validate all of it before changing anything."""
        if not isinstance(state, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state).__name__}")
        entries = dict(self._entries(""))
        for name in entries:
            if name not in state:
                raise KeyError(f"state_dict is missing {name!r}")
        for name in state:
            if name not in entries:
                raise KeyError(
                    f"state_dict has unexpected entry {name!r} (expected names like {next(iter(entries))!r})"
                )
        updates: list[tuple[Value, float]] = []
        for name, entry in entries.items():
            given = state[name]
            if isinstance(entry, list):
                if not isinstance(given, (list, tuple)) or len(given) != len(entry):
                    shape = f"a list of {len(given)}" if isinstance(given, (list, tuple)) else type(given).__name__
                    raise ValueError(f"state_dict[{name!r}] must be a list of {len(entry)} numbers, got {shape}")
                updates.extend((v, _finite(f"{name}.{i}", x)) for i, (v, x) in enumerate(zip(entry, given)))
            else:
                updates.append((entry, _finite(name, given)))
        for value, data in updates:
            value.data = data

    def _entries(self, prefix: str) -> Iterator[tuple[str, Value | list[Value]]]:
        """(name, Value or list of Values) for every parameter tensor, in the walk's order, each once."""
        seen = {id(self)}
        owner = type(self).__name__
        for name, attribute in vars(self).items():
            yield from _entries_of(owner, prefix + name, attribute, seen)

    def __repr__(self) -> str:
        """The class, each part that holds parameters (one per line, as PyTorch prints), and the count."""
        parts = list(self._parts())
        if not parts:
            return f"{type(self).__name__}(parameters=0)"
        lines = [f"  ({name}): {text.replace(chr(10), chr(10) + '  ')}" for name, text, _ in parts]
        return "\n".join([f"{type(self).__name__}(", *lines, f"  parameters={len(self.parameters())}", ")"])

    def _repr_html_(self) -> str:
        """Jupyter: a table of the parts that hold parameters, with their counts."""
        import html

        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(_one_line(text))}</td>"
            f'<td style="text-align:right">{count:,}</td></tr>'
            for name, text, count in self._parts()
        )
        title = _one_line(repr(self))
        caption = html.escape(title if "parameters=" in title else f"{title}: {len(self.parameters()):,} parameters")
        return (
            f'<table class="micronet-module"><caption>{caption}</caption><thead><tr><th>part</th><th>what</th>'
            f"<th>parameters</th></tr></thead><tbody>{rows}</tbody></table>"
        )

    def _parts(self) -> Iterator[tuple[str, str, int]]:
        """(name, description, parameter count) for each attribute that holds parameters, in order."""
        owner = type(self).__name__
        for name, attribute in vars(self).items():
            yield from _parts_of(owner, name, attribute)


def _entries_of(owner: str, name: str, obj: object, seen: set[int]) -> Iterator[tuple[str, Value | list[Value]]]:
    """The parameter entries under one attribute; `seen` holds the ids of Values and Modules already given."""
    if isinstance(obj, Value):
        if id(obj) not in seen:
            seen.add(id(obj))
            yield name, obj
    elif isinstance(obj, Module):
        if id(obj) not in seen:  # a shared module (or a cycle back to an owner) counts once
            seen.add(id(obj))
            for attribute, value in vars(obj).items():
                yield from _entries_of(owner, f"{name}.{attribute}", value, seen)
    elif isinstance(obj, (list, tuple)):
        if obj and all(isinstance(x, Value) for x in obj):
            known = len(seen)
            seen.update(map(id, obj))
            if len(seen) > known:  # one entry, unless every Value in it was given before
                yield name, list(obj)
        else:
            for i, item in enumerate(obj):
                yield from _entries_of(owner, f"{name}.{i}", item, seen)
    elif isinstance(obj, dict):
        for key, item in obj.items():
            if _holds_parameters(item):
                _check_key(owner, name, key)
            yield from _entries_of(owner, f"{name}.{key}", item, seen)
    elif isinstance(obj, (set, frozenset)) and _holds_parameters(obj):
        raise TypeError(
            f"{owner}.{name} holds Modules or Values in a {type(obj).__name__}, which has no fixed order; "
            "hold them in a list, tuple or dict"
        )


def _holds_parameters(obj: object) -> bool:
    """Whether a Value or Module is inside `obj` (itself, or in its lists, tuples, dicts and sets)."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, (Value, Module)):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return False


def _check_key(owner: str, name: str, key: object) -> None:
    """A dict key that names parameters: a non-empty string without dots (a dot would split the name)."""
    if not isinstance(key, str):
        raise TypeError(
            f"{owner}.{name} holds Modules or Values under the key {key!r} ({type(key).__name__}); "
            "the keys name the parameters, so they must be strings"
        )
    if not key or "." in key:
        raise ValueError(
            f"{owner}.{name} holds Modules or Values under the key {key!r}; "
            "the keys name the parameters, so they must be non-empty and without '.'"
        )


def _parts_of(owner: str, name: str, obj: object) -> Iterator[tuple[str, str, int]]:
    if isinstance(obj, Module):
        count = len(obj.parameters())
        if count:
            yield name, repr(obj), count
    elif isinstance(obj, Value):
        yield name, f"scalar parameter (data={obj.data:.4g})", 1
    elif isinstance(obj, (list, tuple)) and obj and all(isinstance(x, Value) for x in obj):
        yield name, f"{len(obj)} scalar parameters", len(obj)
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _parts_of(owner, f"{name}.{i}", item)
    elif isinstance(obj, dict):
        for key, item in obj.items():
            if _holds_parameters(item):
                _check_key(owner, name, key)
            yield from _parts_of(owner, f"{name}.{key}", item)


def _one_line(text: str) -> str:
    """A repr in one line: a custom module's multi-line one becomes its class name."""
    return text if "\n" not in text else text.split("(", 1)[0]


def _finite(name: str, x: object) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"state_dict[{name!r}] must be a number, got {type(x).__name__}: {x!r}")
    try:
        number = float(x)
    except OverflowError:  # an int beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"state_dict[{name!r}] must be finite, got {number!r}")
    return number


class Outputs(list[Value]):
    """What a module returns: a list of Values, one per output, that refuses arithmetic.

    micrograd's MLP returns a bare Value for one output, so its code writes
    `model(x) - y`. On a plain list that fails with a puzzling message, or
    worse, `2 * out` repeats the list and `np.int64(-1) * out` empties it.
    Here every arithmetic operator with a number or Value says what to do
    instead; list operations with other lists (`out + [v]`) still work.
    """

    __array_ufunc__ = None  # NumPy scalars and arrays defer to the operators below

    def _refuse(self, op: str, other: object = None, error: type[Exception] = TypeError) -> NoReturn:
        n = len(self)
        what = f"a model's output (a list of {n} Value{'s' if n != 1 else ''})"
        raise error(
            f"{op.format(out=what, other=type(other).__name__)}: micronet models return a list of Values, "
            "one per output; take out[0] for a single output (micronet.micrograd's MLP returns the Value "
            "itself, as micrograd does)"
        )

    def __add__(self, other: Any) -> Any:
        return super().__add__(other) if isinstance(other, list) else self._refuse("{out} + {other}", other)

    def __iadd__(self, other: Any) -> Any:
        return self._refuse("{out} += {other}", other) if isinstance(other, _SCALARS) else super().__iadd__(other)

    def __radd__(self, other: Any) -> Any:
        self._refuse("{other} + {out}", other)

    def __sub__(self, other: Any) -> Any:
        self._refuse("{out} - {other}", other)

    def __rsub__(self, other: Any) -> Any:
        self._refuse("{other} - {out}", other)

    def __mul__(self, other: Any) -> Any:  # also list repetition: never what a model's outputs mean
        self._refuse("{out} * {other}", other)

    def __rmul__(self, other: Any) -> Any:
        self._refuse("{other} * {out}", other)

    def __imul__(self, other: Any) -> Any:
        self._refuse("{out} *= {other}", other)

    def __truediv__(self, other: Any) -> Any:
        self._refuse("{out} / {other}", other)

    def __rtruediv__(self, other: Any) -> Any:
        self._refuse("{other} / {out}", other)

    def __pow__(self, other: Any) -> Any:
        self._refuse("{out} ** {other}", other)

    def __rpow__(self, other: Any) -> Any:
        self._refuse("{other} ** {out}", other)

    def __neg__(self) -> Any:
        self._refuse("-{out}")

    def __abs__(self) -> Any:
        self._refuse("abs({out})")

    def __float__(self) -> float:
        self._refuse("float({out})")

    def __getattr__(self, name: str) -> Any:  # only for names a list lacks: out.data, out.backward(), ...
        if not name.startswith("_") and hasattr(Value, name):
            self._refuse(f"{{out}} has no .{name}", error=AttributeError)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


_SCALARS = (Value, numbers.Number)  # NumPy's scalars register as numbers


_P = ParamSpec("_P")


def _refuses_nonlin(init: Callable[_P, None]) -> Callable[_P, None]:
    """micrograd's `nonlin=` keyword gets an answer rather than Python's 'unexpected keyword'."""

    @functools.wraps(init)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> None:
        if "nonlin" in kwargs:
            name = type(args[0]).__name__
            raise TypeError(
                f"{name} takes activation=, not micrograd's nonlin= (got nonlin={kwargs['nonlin']!r}): "
                f"nonlin=True is activation='relu', nonlin=False is activation='linear'; "
                f"micronet.micrograd.{name} takes nonlin= as micrograd does"
            )
        init(*args, **kwargs)

    return checked


def _rng(seed: int | random.Random | None) -> random.Random:
    """A private random.Random: an int seeds it, an instance is shared, None is fresh."""
    if isinstance(seed, random.Random):
        return seed
    if seed is None or (isinstance(seed, int) and not isinstance(seed, bool)):
        return random.Random(seed)
    raise TypeError(f"seed must be an int, a random.Random or None, got {type(seed).__name__}: {seed!r}")


class Neuron(Module):
    """activation(w . x + b), with the dot product as one node.

    Weights are drawn uniformly from +-limit so their variance suits the
    activation, as its registry entry says (`init`): He (limit =
    sqrt(6 / fan_in)) for relu, Glorot (limit = sqrt(6 / (fan_in +
    fan_out))) for the others. The bias starts at 0.
    """

    @_refuses_nonlin
    def __init__(self, nin: int, activation: str = "relu", seed: int | random.Random | None = None,
                 fan_out: int = 1) -> None:
        spec = get_activation(activation)
        if isinstance(nin, bool) or not isinstance(nin, int) or nin < 1:
            raise ValueError(f"nin must be an int >= 1, got {nin!r}")
        rng = _rng(seed)
        limit = math.sqrt(6.0 / nin) if spec.init == "he" else math.sqrt(6.0 / (nin + fan_out))
        self.w = [Value(rng.uniform(-limit, limit)) for _ in range(nin)]
        self.b = Value(0.0)
        self.activation = activation

    def __call__(self, x: Sequence[Value | float]) -> list[Value]:
        _check_length(self, len(self.w), x)
        return Outputs(dots([self.w], x, [self.b], activation=self.activation))  # the activation fused in

    def __repr__(self) -> str:
        return f"Neuron({len(self.w)}, activation={self.activation!r})"


class Layer(Module):
    """nout neurons that all read the same nin inputs."""

    @_refuses_nonlin
    def __init__(self, nin: int, nout: int, activation: str = "relu", seed: int | random.Random | None = None) -> None:
        if isinstance(nout, bool) or not isinstance(nout, int) or nout < 1:
            raise ValueError(f"nout must be an int >= 1, got {nout!r}")
        rng = _rng(seed)
        self.neurons = [Neuron(nin, activation, rng, fan_out=nout) for _ in range(nout)]
        self.activation = activation

    def __call__(self, x: Sequence[Value | float]) -> list[Value]:
        _check_length(self, len(self.neurons[0].w), x)
        neurons = self.neurons
        return Outputs(dots([n.w for n in neurons], x, [n.b for n in neurons], activation=self.activation))

    def __repr__(self) -> str:
        return f"Layer({len(self.neurons[0].w)} -> {len(self.neurons)}, activation={self.activation!r})"


class MLP(Module):
    """A stack of Layers: `activation` on every hidden layer, a linear last layer (logits)."""

    def __init__(self, nin: int, nouts: Iterable[int], activation: str = "relu",
                 seed: int | random.Random | None = None) -> None:
        get_activation(activation)
        widths = list(nouts)
        if not widths:
            raise ValueError("nouts must list at least one layer size, got []")
        rng = _rng(seed)
        sizes = [nin, *widths]
        self.layers = [
            Layer(sizes[i], sizes[i + 1], activation if i < len(widths) - 1 else "linear", rng)
            for i in range(len(widths))
        ]
        self.activation = activation

    def __call__(self, x: Sequence[Value | float]) -> list[Value]:
        out = self.layers[0](x)
        for layer in self.layers[1:]:
            out = layer(out)
        return out

    def __repr__(self) -> str:
        widths = [len(self.layers[0].neurons[0].w)] + [len(layer.neurons) for layer in self.layers]
        sizes = " -> ".join(str(s) for s in widths)
        return f"MLP({sizes}, activation={self.activation!r}, parameters={len(self.parameters())})"


def mlp_layout(nin: int, nouts: Sequence[int]) -> Iterator[tuple[str, int | None]]:
    """The entries of `MLP(nin, nouts).state_dict()`, in order: (name, list length, or None for one number).

    Lets a stored state be checked against an architecture before the
    model (a Python object per parameter) is built.
    """
    sizes = [nin, *nouts]
    for i in range(len(nouts)):
        for j in range(sizes[i + 1]):
            yield f"layers.{i}.neurons.{j}.w", sizes[i]
            yield f"layers.{i}.neurons.{j}.b", None


def _check_length(module: Module, expected: int, x: Sequence[Value | float]) -> None:
    try:
        n = len(x)
    except TypeError:
        raise TypeError(
            f"{type(module).__name__} expects a sequence of {expected} numbers or Values, got {type(x).__name__}"
        ) from None
    if n != expected:
        raise ValueError(f"{type(module).__name__} expects {expected} inputs, got {n}")
