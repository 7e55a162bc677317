"""micrograd's `Value` as a micronet `Value`: micrograd's constructor, `_backward` and result types.

Built-in ops run on micronet's engine (local derivatives as numbers, no closures),
and their results are of this class, so a method added to it, or to a subclass,
applies to them too. A node made micrograd's way, `Value(data, (a, b), 'op')`,
gets its gradient from the function assigned to its `_backward`, which
micronet's `backward()` calls in its turn, exactly as micrograd's does.
"""

import functools
from collections.abc import Callable, Iterable
from typing import Any

from micronet import engine

__all__ = ["Value"]


class Value(engine.Value):
    """micrograd's Value(data, _children=(), _op=''): a micronet Value built and extended micrograd's way.

    `label` is the fourth argument, as in the lecture's version of the class.
    """

    __slots__ = ()  # the engine's layout, so an op's result can take this class without a copy

    def __init__(self, data: float, _children: Iterable[engine.Value] = (), _op: str = "", label: str = "") -> None:
        super().__init__(data, label)
        children = tuple(_children)
        for child in children:
            if not isinstance(child, engine.Value):
                raise TypeError(f"Value _children must be Values, got {type(child).__name__}: {child!r}")
        if not isinstance(_op, str):
            raise TypeError(f"Value _op must be a str, got {type(_op).__name__}: {_op!r}")
        self._op = _op
        if children:
            self._prev = children
            self._local = None  # backward calls _backward_fn instead
            self._backward_fn = _no_gradient  # micrograd's default, until `out._backward = ...`

    @property
    def _backward(self) -> Callable[[], None]:
        """This node's step of backpropagation: adds its grad, times its local derivatives, into its children.

        For a built-in op that is the engine's own step; assigning a function
        replaces it, as micrograd's ops and the lecture's custom ops do.
        """
        return self._backward_fn if self._local is None else self._chain_rule

    @_backward.setter
    def _backward(self, function: Callable[[], None]) -> None:
        if not callable(function):
            raise TypeError(f"Value._backward must be a function of no arguments, got {type(function).__name__}")
        self._backward_fn = function
        self._local = None

    def _chain_rule(self) -> None:
        local = self._local or ()
        g = self.grad
        for child, d in zip(self._prev, local):
            child.grad += d * g


def _no_gradient() -> None:
    """A node made with _children but no _backward passes no gradient on (micrograd's `lambda: None`)."""


def _adopt(node: engine.Value, cls: type[Value]) -> Value:
    """The engine's new node as an instance of `cls`: the same object, or a twin if `cls` has a __dict__."""
    try:
        node.__class__ = cls
        return node  # type: ignore[return-value]  # its class is now cls
    except TypeError:  # a subclass without __slots__ has another layout: move the fields to a new object
        twin = object.__new__(cls)
        for name in engine.Value.__slots__:
            if hasattr(node, name):
                setattr(twin, name, getattr(node, name))
        return twin


def _keeping_class(op: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(op)
    def method(self: Value, *args: Any) -> Any:
        out = op(self, *args)
        return _adopt(out, type(self)) if type(out) is engine.Value else out

    return method


# Every op of the engine's Value, wrapped so that its result is of the caller's class. Found
# by name, so an op added to the engine is covered too; comparisons and conversions are not ops.
_ARITHMETIC = {f"__{r}{name}__" for name in ("add", "sub", "mul", "truediv", "pow") for r in ("", "r")}
for _name, _attribute in vars(engine.Value).items():
    if callable(_attribute) and _name != "backward" and (
            _name in _ARITHMETIC or _name in ("__neg__", "__abs__") or not _name.startswith("_")):
        setattr(Value, _name, _keeping_class(_attribute))
