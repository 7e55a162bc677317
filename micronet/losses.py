"""Losses on lists of Values: softmax family, hinge and squared error.

Every classification loss takes `(logits, target)` with `target` an integer
class index, so the trainer can pick any of them from `LOSSES` by name.
"""

from micronet.engine import log_softmax_at

__all__ = [
    "softmax",
    "log_softmax",
    "cross_entropy",
    "hinge_loss",
    "multiclass_hinge_loss",
    "mse_loss",
    "one_hot_mse_loss",
    "LOSSES",
]


def log_softmax(logits):
    """log p_k = x_k - log(sum_j exp(x_j)), each a max-shifted fused node."""
    return [log_softmax_at(logits, k) for k in range(len(logits))]


def softmax(logits):
    """p_k = exp(log p_k); every exponent is <= 0, so nothing overflows."""
    return [x.exp() for x in log_softmax(logits)]


def cross_entropy(logits, target):
    """-log softmax(x)[t] = log(sum_j exp(x_j)) - x_t, for one example with class index t."""
    _check_target(target, len(logits))
    return -log_softmax_at(logits, target)


def hinge_loss(score, label):
    """max(0, 1 - y * s) for one score s and a label y in {-1, +1} (micrograd's max-margin loss)."""
    if isinstance(label, bool) or label not in (-1, 1):
        raise ValueError(f"hinge_loss label must be -1 or +1, got {label!r}")
    return (1 - label * score).relu()


def multiclass_hinge_loss(logits, target, margin=1.0):
    """(1/K) * sum_{k != t} max(0, margin - x_t + x_k), PyTorch's multi_margin_loss."""
    _check_target(target, len(logits))
    correct = logits[target]
    terms = [(margin - correct + x).relu() for k, x in enumerate(logits) if k != target]
    return sum(terms) * (1.0 / len(logits))


def mse_loss(outputs, targets):
    """(1/n) * sum_i (o_i - t_i)^2, the mean squared error (PyTorch's default reduction)."""
    if len(outputs) != len(targets):
        raise ValueError(f"mse_loss needs as many targets as outputs, got {len(targets)} and {len(outputs)}")
    if not outputs:
        raise ValueError("mse_loss needs at least one output")
    squares = []
    for o, t in zip(outputs, targets):
        diff = o - t
        squares.append(diff * diff)
    return sum(squares) * (1.0 / len(outputs))


def one_hot_mse_loss(logits, target):
    """Mean squared error between the logits and the one-hot vector of class t."""
    _check_target(target, len(logits))
    return mse_loss(logits, [1.0 if k == target else 0.0 for k in range(len(logits))])


def _check_target(target, n_classes):
    if isinstance(target, bool) or not isinstance(target, int) and not hasattr(target, "__index__"):
        raise TypeError(f"target must be an integer class index, got {type(target).__name__}: {target!r}")
    if not 0 <= target < n_classes:
        raise IndexError(f"target {target} is out of range for {n_classes} classes (expected 0..{n_classes - 1})")


# Classification losses by config name: loss(logits, target) -> Value.
LOSSES = {
    "cross_entropy": cross_entropy,
    "hinge": multiclass_hinge_loss,
    "mse": one_hot_mse_loss,
}


# Regression losses by config name: loss(outputs, target) -> Value, target a number or one per output.
REGRESSION_LOSSES = {"mse": lambda outputs, target: mse_loss(outputs, _targets(target))}
CLASSIFICATION_LOSSES = LOSSES


def _targets(target):
    return list(target) if isinstance(target, (list, tuple)) else [target]


def get_loss(name, task="classification", **options):
    """The per-sample loss `name` for `task`."""
    table = CLASSIFICATION_LOSSES if task == "classification" else REGRESSION_LOSSES
    if name not in table:
        raise ValueError(f"loss must be one of {', '.join(table)} for {task}, got {name!r}")
    return table[name]
