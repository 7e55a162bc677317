"""A scalar reverse-mode autograd engine.

Every `Value` holds one float, the gradient of some output with respect to it,
and how it was made: the op's name, its children, and the local derivative of
this node with respect to each child, worked out in the forward pass.
Backpropagation is then one loop over the graph, newest node first (a node
is always created after its children): `child.grad += local * node.grad`.

Storing local derivatives as plain floats, instead of a backward closure that
refers back to its own node, means a finished graph holds no reference cycles:
reference counting frees it the moment the last name goes away, and Python's
cyclic garbage collector has nothing to walk. The one exception is an op
written micrograd's way (see `micronet.micrograd`): its node has `_local` set
to None and a `_backward_fn` that adds into its children's grads itself.
"""

import contextlib
import gc
import math
import numbers
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import reduce
from itertools import count
from operator import add, attrgetter, mul
from typing import Any, TypeGuard

from micronet.activations import Activation, get_activation

__all__ = ["DISPLAY", "Value", "make_node", "dot", "dots", "log_softmax_at", "topological_order", "unfused"]


class Value:
    """One scalar in a computation graph: its data, its gradient, its origin."""

    __slots__ = ("data", "grad", "_prev", "_local", "_op", "label", "_seq", "_backward_fn")
    data: float
    grad: float
    _prev: tuple["Value", ...]
    _local: tuple[float, ...] | None  # None: _backward_fn does this node's step of backward
    _op: str
    label: str
    _seq: int
    _backward_fn: Callable[[], None]  # set only where _local is None

    def __init__(self, data: float, label: str = "", *micrograd_args: object) -> None:
        if micrograd_args or (type(label) is not str and not isinstance(label, str)):
            raise TypeError(_label_message(label, micrograd_args))
        if type(data) is not float and not _is_number(data):
            raise TypeError(
                f"Value data must be a real number (int or float), got {type(data).__name__}: {data!r}"
            )
        self.data = float(data)
        self.grad = 0.0
        self._prev = ()  # children, in operand order (a tuple: deterministic)
        self._local = ()  # d(self)/d(child) for each child, same order
        self._op = ""  # the op that made this node; "" for a leaf
        self.label = label
        self._seq = next(_creation)  # creation order: children are always older than parents

    def __repr__(self) -> str:
        name = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{name})"

    # ----- arithmetic -------------------------------------------------------

    def __add__(self, other: "Value | float") -> "Value":
        if type(other) is not Value:  # the common case first: one call less per op
            value = _as_value(other)
            if value is None:
                return NotImplemented
            other = value
        return make_node(self.data + other.data, (self, other), (1.0, 1.0), "+")

    def __mul__(self, other: "Value | float") -> "Value":
        if type(other) is not Value:
            value = _as_value(other)
            if value is None:
                return NotImplemented
            other = value
        return make_node(self.data * other.data, (self, other), (other.data, self.data), "*")

    def __pow__(self, other: "Value | float") -> "Value":
        if isinstance(other, Value):
            return _power(self, other, differentiate_exponent=True)
        if _is_number(other):
            # A number exponent is a constant: no gradient flows to it (as in
            # PyTorch), so x**2 never needs log(x).
            return _power(self, Value(other), differentiate_exponent=False)
        return NotImplemented

    def __rpow__(self, other: float) -> "Value":  # number ** Value
        base = _as_value(other)
        if base is None:
            return NotImplemented
        return _power(base, self, differentiate_exponent=True)

    def __neg__(self) -> "Value":  # -x = x * -1
        return self * -1.0

    def __sub__(self, other: "Value | float") -> "Value":  # x - y = x + (-y)
        value = _as_value(other)
        if value is None:
            return NotImplemented
        return self + (-value)

    def __rsub__(self, other: float) -> "Value":  # y - x = y + (-x)
        return -self + other

    def __truediv__(self, other: "Value | float") -> "Value":
        # Its own op rather than x * y**-1: the quotient is rounded once, as
        # Python's x / y, and y**-1 would overflow for |y| < 1e-308 although
        # x / y is finite. The y-slope -x/y^2 is taken as -(x/y)/y (as PyTorch
        # does), so y*y never overflows or underflows on the way.
        value = _as_value(other)
        if value is None:
            return NotImplemented
        x, y = self.data, value.data
        if y == 0.0:
            raise ZeroDivisionError(f"division by zero: {x!r} / {y!r}")
        q = x / y
        return make_node(q, (self, value), (1.0 / y, -q / y), "/")  # d/dx = 1/y, d/dy = -x/y^2

    def __rtruediv__(self, other: float) -> "Value":  # number / Value
        value = _as_value(other)
        if value is None:
            return NotImplemented
        return value.__truediv__(self)  # not `value / self`: that would ask a subclass's __rtruediv__ first

    __radd__ = __add__
    __rmul__ = __mul__

    # ----- elementwise functions --------------------------------------------

    def exp(self) -> "Value":
        try:
            e = math.exp(self.data)
        except OverflowError:
            raise OverflowError(
                f"exp({self.data!r}) overflows a float (the largest finite result is exp(709.78))"
            ) from None
        return make_node(e, (self,), (e,), "exp")  # d/dx e^x = e^x

    def log(self) -> "Value":
        x = self.data
        if not x > 0.0:  # also catches NaN
            raise ValueError(f"log is defined for positive numbers only, got x={x!r}")
        return make_node(math.log(x), (self,), (1.0 / x,), "log")

    # The activations' formulas and slopes live in micronet.activations, one
    # entry each; these three are the classic names for three of them.

    def tanh(self) -> "Value":
        return self.activate("tanh")

    def sigmoid(self) -> "Value":
        return self.activate("sigmoid")

    def relu(self) -> "Value":
        return self.activate("relu")  # slope 0 at 0 (as PyTorch); NaN passes through with slope 1

    def activate(self, name: str) -> "Value":
        """The registered activation `name` of this value (see micronet.activations): a node whose op is the name."""
        spec = get_activation(name)
        if spec.identity:
            return self
        out, slope = spec.scalar(self.data)
        return make_node(out, (self,), (slope,), spec.name)

    def __abs__(self) -> "Value":
        x = self.data
        slope = 1.0 if x > 0.0 else -1.0 if x < 0.0 else 0.0  # sign(x); 0 at 0 (and NaN) as PyTorch
        return make_node(abs(x), (self,), (slope,), "abs")

    abs = __abs__

    def sin(self) -> "Value":
        x = self.data
        return make_node(math.sin(x), (self,), (math.cos(x),), "sin")

    def cos(self) -> "Value":
        x = self.data
        return make_node(math.cos(x), (self,), (-math.sin(x),), "cos")

    # ----- conversions and comparisons ---------------------------------------
    # As a 0-d PyTorch tensor behaves in an `if`: float(v), bool(v) and the
    # order comparisons read .data (a Value or a number on either side).
    # Equality and hashing stay by identity, because graphs keep Values in
    # sets and dicts: compare v.data == w.data for equal numbers.

    def __float__(self) -> float:
        return self.data

    def __bool__(self) -> bool:
        return self.data != 0.0  # NaN is true, as bool(float("nan"))

    def __lt__(self, other: "Value | float") -> bool:
        number = _data_of(other)
        return NotImplemented if number is None else self.data < number

    def __le__(self, other: "Value | float") -> bool:
        number = _data_of(other)
        return NotImplemented if number is None else self.data <= number

    def __gt__(self, other: "Value | float") -> bool:
        number = _data_of(other)
        return NotImplemented if number is None else self.data > number

    def __ge__(self, other: "Value | float") -> bool:
        number = _data_of(other)
        return NotImplemented if number is None else self.data >= number

    __eq__ = object.__eq__  # identity (defining __lt__ and friends does not change that)
    __hash__ = object.__hash__

    def __deepcopy__(self, memo: dict[int, Any]) -> "Value":
        """Copy the graph below this value without recursion (a 10^6-deep chain copies).

        Nodes already copied (in `memo`) are reused, so copying a model and
        a graph built on it in one `deepcopy` keeps them connected.
        """
        copied: Value
        if id(self) in memo:
            copied = memo[id(self)]
            return copied
        nodes: dict[int, Value] = {}
        stack = [self]
        while stack:  # every node below self not yet copied
            node = stack.pop()
            if id(node) not in nodes and id(node) not in memo:
                nodes[id(node)] = node
                stack.extend(node._prev)
        for node in sorted(nodes.values(), key=_creation_order):  # children first
            if node._local is None:  # its _backward_fn adds into the original children, not the copies
                raise TypeError(f"cannot deepcopy a graph with an op written micrograd's way (op {node._op!r})")
            copy = make_node(node.data, tuple(memo[id(c)] for c in node._prev), node._local, node._op)
            copy.grad, copy.label = node.grad, node.label
            memo[id(node)] = copy
        copied = memo[id(self)]
        return copied

    # ----- backpropagation --------------------------------------------------

    def backward(self) -> None:
        """Fill in d(self)/d(node) for every node this value depends on.

        As in PyTorch, leaves accumulate across calls (call `zero_grad` between
        steps), while every intermediate node starts again from zero, so calling
        backward twice adds exactly twice the gradient to the leaves.
        """
        # The pass allocates only acyclic bookkeeping; pausing the cyclic
        # collector stops it re-walking the whole graph (halves a 10^6-node pass).
        collecting = gc.isenabled()
        gc.disable()
        try:
            order = topological_order(self)
            self.grad += 1.0
            for node in reversed(order):
                locals_ = node._local
                if locals_ is None:  # an op written micrograd's way adds into its children itself
                    node._backward_fn()
                    continue
                g = node.grad
                for child, local in zip(node._prev, locals_):
                    child.grad += local * g
        finally:
            if collecting:
                gc.enable()

    # Jupyter shows a Value as its graph. The drawing (micronet.graph) sits above the engine,
    # so the package hands it in through DISPLAY and the engine never imports it.
    def _repr_svg_(self) -> str | None:
        draw = DISPLAY.get("svg")
        return None if draw is None else draw(self)

    def _repr_html_(self) -> str | None:
        draw = DISPLAY.get("html")
        return None if draw is None else draw(self)


DISPLAY: dict[str, Callable[[Value], str | None]] = {}
"""How a notebook shows a Value, by kind ("svg", "html"); micronet's __init__ fills it with micronet.graph's."""


def topological_order(root: Value) -> list[Value]:
    """Interior nodes below `root` (and root), oldest first, their grads zeroed.

    A node is always created after its children, so creation order is a
    topological order, and a canonical one: backward visits nodes newest
    first whatever the shape of the graph, so its sums run in the same order
    on every run. The walk uses an explicit stack (no recursion, so depth is
    limited only by memory) and enters every node once, so a graph with
    exponentially many paths costs time linear in its edges, plus one sort.
    Leaves have nothing to propagate and are never pushed (most edges of a
    network end at a weight).
    """
    found = [root]
    seen = {root}
    stack = [root]
    while stack:
        for child in stack.pop()._prev:
            if child._prev and child not in seen:
                seen.add(child)
                found.append(child)
                stack.append(child)
                child.grad = 0.0  # intermediates restart; leaves accumulate
    if root._prev:
        root.grad = 0.0
    found.sort(key=_creation_order)
    return found


_creation = count()
_creation_order = attrgetter("_seq")
_new_object = object.__new__


def make_node(data: float, children: tuple[Value, ...], local_grads: tuple[float, ...], op: str) -> Value:
    """Create the output node of an op: the extension point for new ops.

    `local_grads[i]` is d(output)/d(children[i]) at this point; backward
    multiplies it by the output's gradient and adds it into the child.
    Skips `Value.__init__`'s type check: `data` must already be a float.
    """
    node: Value = _new_object(Value)  # bypassing __init__ makes every op ~15% cheaper
    node.data = data
    node.grad = 0.0
    node._prev = children
    node._local = local_grads
    node._op = op
    node.label = ""
    node._seq = next(_creation)
    return node


def dot(weights: Sequence[Value], inputs: Iterable[Value | float], bias: Value | None = None) -> Value:
    """sum_i weights[i] * inputs[i] (+ bias) as a single node; see `dots`."""
    return dots([weights], inputs, None if bias is None else [bias])[0]


def dots(
    weight_rows: Sequence[Sequence[Value]],
    inputs: Iterable[Value | float],
    biases: Sequence[Value | None] | None = None,
    activation: str | None = None,
) -> list[Value]:
    """One node per row: activation(sum_i row[i] * inputs[i] + bias), all reading the same inputs.

    A neuron's pre-activation as one node with 2n+1 children instead of a
    chain of 2n binary nodes: the same gradients for a fraction of the nodes
    and time. Number inputs become constant leaves once, shared by every row,
    so each node's children are always (*weights, *inputs[, bias]). The
    products are summed by Python's `sum` (left to right; compensated from
    Python 3.12 on), then the bias is added.

    `activation` is the name of a registered activation (micronet.activations),
    or None. Where its slope at a row's sum is exactly 0 or 1 (a relu off or
    on, a saturated sigmoid) the activation is folded into the dot node: at
    slope 1 the node keeps the dot's local derivatives as they are, at slope
    0 it is a constant without children, so backward never walks the 2n+1
    edges of an off neuron. At any other slope it is a node of its own:
    folding a slope in costs 2n+1 multiplications to save one node, which
    measured slower. (Inside `unfused()`, it is always a node of its own.)
    """
    leaves = tuple(x if type(x) is Value else _input_value(x) for x in inputs)
    x_data = tuple([x.data for x in leaves])
    n = len(leaves)
    if biases is None:
        biases = [None] * len(weight_rows)
    spec: Activation | None = None
    if activation is not None:
        spec = get_activation(activation, "dots activation")
        if spec.identity:
            spec = None
    if spec is not None:
        scalar, name, folded_name = spec.scalar, spec.name, f"{spec.name}(dot)"
    fold = spec is not None and _fusing.on
    nodes: list[Value] = []
    for weights, bias in zip(weight_rows, biases):
        if len(weights) != n:
            raise ValueError(f"dot needs as many weights as inputs, got {len(weights)} and {n}")
        w_data = [w.data for w in weights]
        total = sum(map(mul, w_data, x_data), 0.0)
        if bias is not None:
            total += bias.data
        if spec is not None:
            out, slope = scalar(total)
            if fold and slope == 0.0:  # e.g. an off relu: a constant, and nothing flows back
                nodes.append(make_node(out, (), (), folded_name))
                continue
        # d/dw_i = x_i and d/dx_i = w_i: each product's other factor.
        if bias is None:
            children, local_grads = (*weights, *leaves), (*x_data, *w_data)
        else:
            children, local_grads = (*weights, *leaves, bias), (*x_data, *w_data, 1.0)
        if spec is None:
            nodes.append(make_node(total, children, local_grads, "dot"))
        elif fold and slope == 1.0:  # e.g. an on relu: d out/d child is the dot's own local derivative
            nodes.append(make_node(out, children, local_grads, folded_name))
        else:
            node = make_node(total, children, local_grads, "dot")
            nodes.append(make_node(out, (node,), (slope,), name))
    return nodes


class _Fusing(threading.local):
    on = True  # the default in every thread


_fusing = _Fusing()


@contextlib.contextmanager
def unfused() -> Iterator[None]:
    """Within this block (in this thread), `dots` makes the activation a node of its own.

    The compiled executor traces models this way: a fused relu drops its
    children when it is off, so the graph's shape would depend on the data.
    """
    previous = _fusing.on
    _fusing.on = False
    try:
        yield
    finally:
        _fusing.on = previous


def _input_value(x: object) -> Value:
    value = _as_value(x)
    if value is None:
        raise TypeError(f"dot inputs must be Values or real numbers, got {type(x).__name__}: {x!r}")
    return value


def log_softmax_at(values: Iterable[Value], k: int) -> Value:
    """log(exp(x_k) / sum_j exp(x_j)) as a single node, stable for inputs of any size.

    A fused primitive: computed as (x_k - m) - log(sum_j exp(x_j - m)) with m
    the largest x, so no exp() overflows and the result keeps full precision
    even for logits like [1000, 0, -1000]. Its children are every x_j, then
    x_k again; the local derivatives are -softmax(x)_j, then 1.
    """
    nodes = tuple(values)
    if not 0 <= k < len(nodes):
        raise IndexError(f"log_softmax_at index {k} is out of range for {len(nodes)} values")
    data = [v.data for v in nodes]
    shift = max(data)
    exps = [math.exp(x - shift) for x in data]
    total = reduce(add, exps, 0.0)
    out = (data[k] - shift) - math.log(total)
    return make_node(out, (*nodes, nodes[k]), (*[-e / total for e in exps], 1.0), "log_softmax")


def _is_number(x: object) -> TypeGuard[float]:
    t = type(x)  # float and int first: the abstract-class check is ten times slower
    return t is float or t is int or (isinstance(x, numbers.Real) and t is not bool)


def _label_message(label: object, extra: tuple[object, ...]) -> str:
    """Value(data, label) is not micrograd's Value(data, _children, _op): say where that one lives."""
    if not extra and not isinstance(label, (tuple, list, set)):
        return f"Value label must be a str, got {type(label).__name__}: {label!r}"
    given = ", ".join(type(x).__name__ for x in (label, *extra))
    return (
        f"Value takes (data, label: str), got ({given}) after data; for micrograd's Value(data, _children, _op) "
        "use micronet.micrograd.Value, or make a node with make_node(data, children, local_grads, op)"
    )


def _data_of(x: object) -> float | None:
    """The number a comparison reads: .data of a Value, a real number itself, else None."""
    if isinstance(x, Value):
        return x.data
    if _is_number(x):
        return x
    return None


def _as_value(x: object) -> Value | None:
    """A Value stays itself; a number becomes a constant leaf; else None."""
    if isinstance(x, Value):
        return x
    if _is_number(x):
        return Value(x)
    return None


def _power(base: Value, exponent: Value, differentiate_exponent: bool) -> Value:
    """base ** exponent with PyTorch's derivatives and clear domain errors."""
    b, e = base.data, exponent.data
    if b == 0.0 and e < 0.0:
        raise ZeroDivisionError(f"0.0 cannot be raised to the negative power {e!r}")
    if b < 0.0 and not e.is_integer():
        raise ValueError(f"negative base {b!r} to the non-integer power {e!r} is not a real number")
    try:
        out = b**e
    except OverflowError:
        raise OverflowError(f"{b!r} ** {e!r} overflows a float") from None
    try:
        # d/db b^e = e * b^(e-1); at e == 0 the result is constant.
        d_base = e * b ** (e - 1.0) if e != 0.0 else 0.0
    except ZeroDivisionError:  # 0 ** (e - 1) with 0 < e < 1: the slope is infinite
        d_base = math.inf
    except OverflowError:  # finite result, but a slope beyond the float range
        d_base = math.copysign(math.inf, e * out / b)
    if not differentiate_exponent:
        d_exponent = 0.0
    elif b > 0.0:
        d_exponent = out * math.log(b)  # d/de b^e = b^e * ln b
    elif b == 0.0:
        d_exponent = 0.0  # PyTorch's convention for 0 ** e with e >= 0
    else:
        d_exponent = math.nan  # ln of a negative base is not real (PyTorch gives nan too)
    return make_node(out, (base, exponent), (d_base, d_exponent), "**")
