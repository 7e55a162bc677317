"""Numerical derivatives, to check autograd against the definition.

The symmetric (central) difference (f(x+h) - f(x-h)) / 2h has error O(h^2),
the one-sided (forward) difference (f(x+h) - f(x)) / h only O(h); with
float64 and h = 1e-6 the central one is typically good to 1e-9.

An absolute step suits inputs of order 1. For inputs of any magnitude (1e-150
or 1e150), `relative=True` steps each coordinate by h * |x_i|, so the
perturbation is always a few ulps above rounding noise and never crosses zero.
"""

import math
from collections.abc import Callable, Sequence

from micronet.engine import Value

__all__ = ["numerical_grad", "gradcheck", "GradcheckError"]

METHODS = ("central", "forward")


class GradcheckError(AssertionError):
    """Autograd and the numerical gradient disagree."""


def numerical_grad(
    f: Callable[..., float], xs: Sequence[float], h: float = 1e-6, method: str = "central", relative: bool = False
) -> list[float]:
    """Partial derivatives of `f(*xs) -> float` at `xs` by finite differences.

    With `relative`, coordinate i is stepped by h * |x_i| (h where x_i is 0).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not h > 0.0:
        raise ValueError(f"h must be > 0, got {h!r}")
    xs = [float(x) for x in xs]
    f_at_x = float(f(*xs)) if method == "forward" else math.nan  # only "forward" reads it
    grads = []
    for i, x in enumerate(xs):
        step = h * abs(x) if relative and x != 0.0 else h
        xs_plus = x + step
        step = xs_plus - x  # the step actually taken, after rounding
        plus = [*xs[:i], xs_plus, *xs[i + 1 :]]
        if method == "central":
            minus = [*xs[:i], x - step, *xs[i + 1 :]]
            grads.append((float(f(*plus)) - float(f(*minus))) / (2.0 * step))
        else:
            grads.append((float(f(*plus)) - f_at_x) / step)
    return grads


def gradcheck(
    f: Callable[..., Value],
    xs: Sequence[float],
    h: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    relative: bool = False,
) -> bool:
    """True when autograd's gradient of `f(*Values) -> Value` matches central differences.

    Coordinate i passes when |autograd_i - numeric_i| <= atol + rtol * |numeric_i|.
    On failure, raises GradcheckError naming the worst coordinate, or returns
    False when `raise_exception` is False.
    """
    leaves = [Value(x) for x in xs]
    out = f(*leaves)
    if not isinstance(out, Value):
        raise TypeError(f"f must return a Value, got {type(out).__name__}")
    out.backward()
    analytic = [leaf.grad for leaf in leaves]
    numeric = numerical_grad(lambda *args: f(*map(Value, args)).data, xs, h, relative=relative)

    def excess(i: int) -> float:  # how far coordinate i is beyond its tolerance; NaN is worst
        if analytic[i] == numeric[i]:  # also equal infinities, whose difference is NaN
            return -math.inf
        over = abs(analytic[i] - numeric[i]) - (atol + rtol * abs(numeric[i]))
        return math.inf if math.isnan(over) else over

    worst = max(range(len(leaves)), key=excess, default=None)
    if worst is None or excess(worst) <= 0.0:
        return True
    if raise_exception:
        raise GradcheckError(
            f"gradient mismatch at input {worst} (x={float(xs[worst])!r}): autograd "
            f"{analytic[worst]!r}, central difference {numeric[worst]!r} (atol={atol}, rtol={rtol})"
        )
    return False
