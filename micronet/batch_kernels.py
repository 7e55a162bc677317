"""The batch kernels: each engine op's twin over whole NumPy columns, its slope written beside it.

A one-input op is a pair in `UNARY`, forward(x) -> out and slope(x, out) ->
d out / d x, the derivative written from what forward computed, as the
engine writes its own. Every registered activation's batch twin is bound
here to NumPy, so an activation stays one entry in micronet.activations.
The ops with more inputs (division, power, log-softmax) return their local
slopes with the result. NumPy's exp, log and tanh may differ from Python's
math module in the last bit; the tests hold the kernels to eager's numbers
at 1e-12, at the kinks and for NaN too.
"""

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from micronet.activations import ACTIVATIONS

__all__ = ["UNARY", "divide", "power", "log_softmax"]


# ----- one input: forward and slope -------------------------------------------------


def _exp(x):
    out = np.exp(x)
    if np.any(np.isinf(out) & np.isfinite(x)):
        bad = float(x[np.isinf(out) & np.isfinite(x)].flat[0])
        raise OverflowError(f"exp({bad!r}) overflows a float (the largest finite result is exp(709.78))")
    return out


def _log(x):
    if not np.all(x > 0.0):
        bad = float(x[~(x > 0.0)].flat[0])
        raise ValueError(f"log is defined for positive numbers only, got x={bad!r}")
    return np.log(x)


def _sign(x):
    return (x > 0.0).astype(float) - (x < 0.0)  # 0 at 0 and for NaN (eager's abs)


UNARY: dict[str, tuple[Callable, Callable]] = {
    "exp": (_exp, lambda x, out: out),
    "log": (_log, lambda x, out: 1.0 / x),
    "abs": (np.abs, lambda x, out: _sign(x)),
    "sin": (np.sin, lambda x, out: np.cos(x)),
    "cos": (np.cos, lambda x, out: -np.sin(x)),
}


def _activation_kernels(ops):
    """Every registered activation's batch twin, from its one entry in micronet.activations, bound to NumPy."""
    kernels = {}
    for name, spec in ACTIVATIONS.items():
        if not spec.identity:  # an identity makes no node
            assert name not in ops, f"activation {name!r} takes the name of an engine op"
            kernels[name] = (functools.partial(spec.batch, np), functools.partial(spec.batch_slope, np))
    return kernels


UNARY.update(_activation_kernels(UNARY))


# ----- several inputs: the result and its local slopes ------------------------------------


def divide(x: Any, y: Any) -> Any:
    """x / y over a batch; ZeroDivisionError as eager raises it."""
    if np.any(np.asarray(y) == 0.0):
        raise ZeroDivisionError("division by zero in a batch")
    return x / y


def power(b: Any, e: Any, differentiate_exponent: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(b ** e, d/db, d/de) over a batch, with eager's errors and its slopes at 0 and for negative bases."""
    b, e = np.broadcast_arrays(np.asarray(b, float), np.asarray(e, float))
    if np.any((b == 0.0) & (e < 0.0)):
        raise ZeroDivisionError("0.0 cannot be raised to a negative power")
    if np.any((b < 0.0) & (e != np.round(e))):
        raise ValueError("a negative base to a non-integer power is not a real number")
    out = np.power(b, e)
    if np.any(np.isinf(out) & np.isfinite(b) & np.isfinite(e)):
        raise OverflowError("a power overflows a float")
    d_base = np.where(e == 0.0, 0.0, e * np.power(b, e - 1.0))
    if not differentiate_exponent:
        d_exp = np.zeros_like(out)
    else:
        d_exp = np.where(b > 0.0, out * np.log(np.where(b > 0.0, b, 1.0)), np.where(b == 0.0, 0.0, np.nan))
    return out, d_base, d_exp


def log_softmax(xs: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """The batch twin of engine.log_softmax_at: children are every x_j, then x_k again."""
    values = np.array(np.broadcast_arrays(*[np.asarray(x, float) for x in xs[:-1]]))  # (k, batch)
    shift = values.max(axis=0)
    exps = np.exp(values - shift)
    total = exps.sum(axis=0)
    out = (np.asarray(xs[-1], float) - shift) - np.log(total)
    return out, [*(-e / total for e in exps), 1.0]
