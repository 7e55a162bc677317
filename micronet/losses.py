"""Losses on lists of Values: softmax family, hinge, and regression errors.

Every loss is per sample: `loss(outputs, target) -> Value`. A classification
target is an integer class index; a regression target is a float (one
output) or a sequence of k floats (k outputs). `get_loss(name, task,
**options)` picks one from the registries by name and binds its options, so
the trainer, the estimators and the compiled executor agree on what a name
means.
"""

import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeGuard, cast

from micronet.engine import Value, log_softmax_at
from micronet.options import Option, Real, check_options

# A regression target: one number (one output) or one per output.
Target = float | Value | Sequence[float | Value]

__all__ = [
    "softmax",
    "log_softmax",
    "cross_entropy",
    "hinge_loss",
    "multiclass_hinge_loss",
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "one_hot_mse_loss",
    "Loss",
    "get_loss",
    "loss_options",
    "CLASSIFICATION_LOSSES",
    "REGRESSION_LOSSES",
    "LOSSES",
    "TASKS",
]


# ----- classification ----------------------------------------------------------


def log_softmax(logits: Sequence[Value]) -> list[Value]:
    """log p_k = x_k - log(sum_j exp(x_j)), each a max-shifted fused node."""
    return [log_softmax_at(logits, k) for k in range(len(logits))]


def softmax(logits: Sequence[Value]) -> list[Value]:
    """p_k = exp(log p_k); every exponent is <= 0, so nothing overflows."""
    return [x.exp() for x in log_softmax(logits)]


def cross_entropy(logits: Sequence[Value], target: int) -> Value:
    """-log softmax(x)[t] = log(sum_j exp(x_j)) - x_t, for one example with class index t."""
    _check_target(target, len(logits))
    return -log_softmax_at(logits, target)


def hinge_loss(score: Value, label: int) -> Value:
    """max(0, 1 - y * s) for one score s and a label y in {-1, +1} (micrograd's max-margin loss)."""
    if isinstance(label, bool) or label not in (-1, 1):
        raise ValueError(f"hinge_loss label must be -1 or +1, got {label!r}")
    return (1 - label * score).relu()


# A loss's options, each declared once: its signature's default, get_loss's check and the config's key read it.
_MARGIN = Option(Real(), 1.0, "how far the true class's output must lead the others")
_DELTA = Option(Real(0.0, low_open=True), 1.0, "where the loss turns from quadratic to linear")


def multiclass_hinge_loss(logits: Sequence[Value], target: int, margin: float = _MARGIN.default) -> Value:
    """(1/K) * sum_{k != t} max(0, margin - x_t + x_k), PyTorch's multi_margin_loss."""
    _check_target(target, len(logits))
    correct = logits[target]
    terms = [(margin - correct + x).relu() for k, x in enumerate(logits) if k != target]
    return cast(Value, sum(terms)) * (1.0 / len(logits))  # a sum of Values is a Value (K >= 2)


def one_hot_mse_loss(logits: Sequence[Value], target: int) -> Value:
    """Mean squared error between the logits and the one-hot vector of class t."""
    _check_target(target, len(logits))
    return mse_loss(logits, [1.0 if k == target else 0.0 for k in range(len(logits))])


def _check_target(target: int, n_classes: int) -> None:
    if isinstance(target, bool) or not isinstance(target, int) and not hasattr(target, "__index__"):
        raise TypeError(f"target must be an integer class index, got {type(target).__name__}: {target!r}")
    if not 0 <= target < n_classes:
        raise IndexError(f"target {target} is out of range for {n_classes} classes (expected 0..{n_classes - 1})")


# ----- regression: the mean over the k outputs of one sample ----------------------
# As PyTorch's functional losses with reduction="mean" on a sample's k outputs.


def mse_loss(outputs: Iterable[Value], targets: Target) -> Value:
    """(1/k) * sum_i (o_i - t_i)^2, the mean squared error."""
    diffs = _differences("mse_loss", outputs, targets)
    return _mean([d * d for d in diffs])


def l1_loss(outputs: Iterable[Value], targets: Target) -> Value:
    """(1/k) * sum_i |o_i - t_i|, the mean absolute error (slope 0 where o_i == t_i, as PyTorch)."""
    diffs = _differences("l1_loss", outputs, targets)
    return _mean([abs(d) for d in diffs])


def huber_loss(outputs: Iterable[Value], targets: Target, delta: float = _DELTA.default) -> Value:
    """(1/k) * sum_i h(o_i - t_i): h(d) = d^2/2 for |d| < delta, else delta * (|d| - delta/2).

    PyTorch's huber_loss: quadratic near 0, linear (slope +-delta) in the
    tails, so outliers pull with a bounded force. At |d| == delta both pieces
    have value delta^2/2 and slope d, so the choice there does not matter.
    """
    delta = _DELTA.check(delta, "huber delta")
    diffs = _differences("huber_loss", outputs, targets)
    terms = [d * d * 0.5 if abs(d.data) < delta else (abs(d) - 0.5 * delta) * delta for d in diffs]
    return _mean(terms)


def _mean(terms: list[Value]) -> Value:
    """(1/k) * the sum of the k terms, summed left to right as Python's sum does."""
    return cast(Value, sum(terms)) * (1.0 / len(terms))  # a sum of Values is a Value


def _differences(name: str, outputs: Iterable[Value], targets: Target) -> list[Value]:
    """o_i - t_i for each output, with the target given as a number (one output) or k numbers."""
    outputs = list(outputs)
    if not outputs:
        raise ValueError(f"{name} needs at least one output")
    checked: Any = targets  # whatever the caller gave: checked here, at run time
    if isinstance(checked, Value) or _is_real(checked):
        checked = [checked]
    elif isinstance(checked, (str, bytes)) or not hasattr(checked, "__len__"):
        raise TypeError(
            f"{name} targets must be a number or a sequence of numbers, got {type(checked).__name__}: {checked!r}"
        )
    if len(checked) != len(outputs):
        raise ValueError(f"{name} needs as many targets as outputs, got {len(checked)} and {len(outputs)}")
    for t in checked:
        if not (isinstance(t, Value) or _is_real(t)):
            raise TypeError(f"{name} targets must be real numbers, got {type(t).__name__}: {t!r}")
    return [o - t for o, t in zip(outputs, checked)]


def _is_real(x: object) -> TypeGuard[float]:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


# ----- registries -------------------------------------------------------------------

# Classification losses by config name: loss(logits, class_index) -> Value.
CLASSIFICATION_LOSSES: dict[str, Callable[..., Value]] = {
    "cross_entropy": cross_entropy,
    "hinge": multiclass_hinge_loss,
    "mse": one_hot_mse_loss,
}
# Regression losses by config name: loss(outputs, float or k floats) -> Value.
REGRESSION_LOSSES: dict[str, Callable[..., Value]] = {
    "mse": mse_loss,
    "l1": l1_loss,
    "huber": huber_loss,
}
# The options of the losses that take any, by the function (a registry entry): the config's
# loss.<option> keys, get_loss's checks and docs/config.md read them.
_OPTIONS: dict[Callable[..., Value], Mapping[str, Option]] = {
    multiclass_hinge_loss: {"margin": _MARGIN},
    huber_loss: {"delta": _DELTA},
}
LOSSES = CLASSIFICATION_LOSSES  # the name before regression existed
TASKS = {"classification": CLASSIFICATION_LOSSES, "regression": REGRESSION_LOSSES}


class Loss:
    """A registered loss with its options bound: `loss(outputs, target) -> Value`.

    A small class rather than a closure so that it pickles (sweeps send it to
    worker processes) and so the compiled executor can read `name`, `task`
    and `options` and run its vectorised twin instead of tracing the graph.
    """

    def __init__(self, name: str, task: str, function: Callable[..., Value], options: Mapping[str, Any]) -> None:
        self.name = name
        self.task = task
        self.function = function
        self.options = dict(options)

    def __call__(self, outputs: Sequence[Value], target: Any) -> Value:
        return self.function(outputs, target, **self.options)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Loss):
            return False
        return (self.name, self.task, self.options) == (other.name, other.task, other.options)

    def __hash__(self) -> int:
        return hash((self.name, self.task, tuple(sorted(self.options.items()))))

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"get_loss({self.name!r}, task={self.task!r}{options})"


def loss_options(name: str, task: str) -> Mapping[str, Option]:
    """The options the loss `name` of `task` takes (empty for most)."""
    return _OPTIONS.get(TASKS[task][name], {})


def get_loss(name: str, task: str = "classification", **options: Any) -> Loss:
    """The per-sample loss `name` of `task` with `options` bound (e.g. huber's delta).

    Unknown tasks, names and options raise ValueError listing the choices;
    a name that exists only for the other task says so.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    registry = TASKS[task]
    if name not in registry:
        other = [t for t, losses in TASKS.items() if t != task and name in losses]
        hint = f" ({name!r} is a {other[0]} loss)" if other else ""
        raise ValueError(f"{task} loss must be one of {', '.join(registry)}, got {name!r}{hint}")
    function = registry[name]
    options = check_options(loss_options(name, task), options, lambda key: f"{name} {key}", f"{task} loss {name!r}")
    return Loss(name, task, function, options)
