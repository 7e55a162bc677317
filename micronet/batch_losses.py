"""The built-in losses over a batch: vectorised twins for the compiled executor.

Each kernel maps (outputs of shape (n, k), targets y, seed) to the per-row
losses and, when `seed` is given, seed * d(loss_i)/d(outputs): the gradient
of the batch mean when seed = 1/n. They follow the eager losses in
`micronet.losses` operation for operation where that costs nothing (the
sums over a row's k terms run left to right), and use NumPy's exp and log,
so their numbers agree with eager's to a few ulps. Classification targets
are integer class indices of shape (n,); regression targets are floats of
shape (n,) (one output) or (n, k).
"""

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from micronet.losses import (
    Loss,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    multiclass_hinge_loss,
    one_hot_mse_loss,
)

__all__ = ["KERNELS", "kernel_for"]


def _row_sums(A):
    """Sum each row: left to right for fewer than 8 columns, as eager's `sum` over a sample's terms."""
    return np.add.reduce(A, axis=1)


def _class_indices(y, k):
    t = np.asarray(y)
    if t.ndim != 1 or (t.dtype.kind not in "iu" and t.size and not (t == np.round(t)).all()):
        raise TypeError(f"targets must be integer class indices (one per row), got an array of shape {t.shape}")
    t = t.astype(np.intp, copy=False)
    if t.size and (t.min() < 0 or t.max() >= k):
        bad = t[(t < 0) | (t >= k)][0]
        raise IndexError(f"target {bad} is out of range for {k} classes (expected 0..{k - 1})")
    return t


def _regression_targets(name, y, k):
    Y = np.asarray(y, dtype=float)
    Y = Y[:, None] if Y.ndim == 1 else Y
    if Y.ndim != 2 or Y.shape[1] != k:
        given = Y.shape[1] if Y.ndim == 2 else f"an array of shape {np.shape(y)}"
        raise ValueError(f"{name} needs as many targets as outputs, got {given} and {k}")
    return Y


def _cross_entropy(logits, y, seed):
    """log(sum_j exp(x_j - m)) - (x_t - m), with m the row's largest logit."""
    rows, t = np.arange(len(logits)), _class_indices(y, logits.shape[1])
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    total = _row_sums(e)
    losses = np.log(total) - z[rows, t]
    if seed is None:
        return losses, None
    d = e * (seed / total)[:, None]  # seed * (softmax - one_hot)
    d[rows, t] -= seed
    return losses, d


def _multiclass_hinge(logits, y, seed, margin=1.0):
    """(1/K) sum_{k != t} relu(margin - x_t + x_k)."""
    rows, t = np.arange(len(logits)), _class_indices(y, logits.shape[1])
    m = (margin - logits[rows, t])[:, None] + logits
    terms = np.where(m <= 0.0, 0.0, m)  # relu, NaN passing through
    terms[rows, t] = 0.0
    scale = 1.0 / logits.shape[1]
    losses = _row_sums(terms) * scale
    if seed is None:
        return losses, None
    active = (m > 0.0) | np.isnan(m)  # relu's slope: 1 unless m <= 0
    active[rows, t] = False
    d = active * (scale * seed)
    d[rows, t] = -_row_sums(d)
    return losses, d


def _mean_squared(logits, Y, seed):
    D = logits - Y
    scale = 1.0 / D.shape[1]
    losses = _row_sums(D * D) * scale
    return losses, None if seed is None else 2.0 * (D * (scale * seed))


def _one_hot_mse(logits, y, seed):
    Y = np.zeros_like(logits)
    Y[np.arange(len(logits)), _class_indices(y, logits.shape[1])] = 1.0
    return _mean_squared(logits, Y, seed)


def _mse(logits, y, seed):
    return _mean_squared(logits, _regression_targets("mse_loss", y, logits.shape[1]), seed)


def _l1(logits, y, seed):
    D = logits - _regression_targets("l1_loss", y, logits.shape[1])
    scale = 1.0 / D.shape[1]
    losses = _row_sums(np.abs(D)) * scale
    if seed is None:
        return losses, None
    sign = (D > 0.0).astype(float) - (D < 0.0)  # 0 at 0 (and NaN), as eager's abs
    return losses, sign * (scale * seed)


def _huber(logits, y, seed, delta=1.0):
    D = logits - _regression_targets("huber_loss", y, logits.shape[1])
    Z = np.abs(D)
    quadratic = Z < delta
    scale = 1.0 / D.shape[1]
    losses = _row_sums(np.where(quadratic, D * D * 0.5, (Z - 0.5 * delta) * delta)) * scale
    if seed is None:
        return losses, None
    u = scale * seed
    sign = (D > 0.0).astype(float) - (D < 0.0)
    return losses, np.where(quadratic, D * u, sign * (delta * u))


KERNELS = {  # (task, name) of a registered loss -> its vectorised twin
    ("classification", "cross_entropy"): _cross_entropy,
    ("classification", "hinge"): _multiclass_hinge,
    ("classification", "mse"): _one_hot_mse,
    ("regression", "mse"): _mse,
    ("regression", "l1"): _l1,
    ("regression", "huber"): _huber,
}
BUILTIN_FUNCTIONS = {  # the same losses passed as plain functions
    cross_entropy: ("classification", "cross_entropy"),
    multiclass_hinge_loss: ("classification", "hinge"),
    one_hot_mse_loss: ("classification", "mse"),
    mse_loss: ("regression", "mse"),
    l1_loss: ("regression", "l1"),
    huber_loss: ("regression", "huber"),
}


def kernel_for(loss: Callable) -> Callable[..., Any] | None:
    """The kernel for a registered loss (a `get_loss` result or the plain function), else None.

    A `Loss`'s bound options (huber's delta, hinge's margin) are passed on.
    """
    if isinstance(loss, Loss):
        kernel = KERNELS.get((loss.task, loss.name))
        return None if kernel is None else functools.partial(kernel, **loss.options)
    try:
        return KERNELS.get(BUILTIN_FUNCTIONS.get(loss))  # type: ignore[arg-type]  # None finds no kernel
    except TypeError:  # an unhashable callable is no built-in
        return None
