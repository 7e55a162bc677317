"""The batch kernels give the engine's values and slopes, op by op: across each domain, at its edges, and for NaN."""

import math

import numpy as np
import pytest

from micronet.activations import ACTIVATIONS
from micronet.batch_kernels import UNARY, divide, log_softmax, power
from micronet.engine import Value, log_softmax_at

NAN = math.nan
POINTS = [-800.0, -40.0, -3.0, -1.0, -0.5, -1e-300, -0.0, 0.0, 5e-324, 1e-8, 0.5, 1.0, 2.0, 40.0, 700.0, 800.0, NAN]


def eager_op(name):
    """The engine's node for a UNARY entry: its method (abs is `abs(v)`), or the registered activation."""
    if name in ACTIVATIONS:
        return lambda v: v.activate(name)
    return abs if name == "abs" else getattr(Value, name)


def eager(fn, *xs):
    """(value, slopes) of fn at the numbers xs on the eager engine, or the exception type it raises."""
    leaves = [Value(x) for x in xs]
    try:
        out = fn(*leaves)
    except (ValueError, ArithmeticError) as e:
        return type(e)
    out.backward()
    return out.data, [v.grad for v in leaves]


def same(got, expected):
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300, equal_nan=True)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_every_unary_kernel_gives_the_engines_value_and_slope(name):
    """Point by point, each alone (so a domain error is the point's own), against the eager node."""
    forward, slope = UNARY[name]
    for x in POINTS:
        expected = eager(eager_op(name), x)
        X = np.array([x])
        if isinstance(expected, type):
            with pytest.raises(expected), np.errstate(all="ignore"):
                forward(X)
            continue
        with np.errstate(all="ignore"):
            out = forward(X)
            d = slope(X, out)
        same(out, [expected[0]])
        same(np.broadcast_to(d, (1,)), expected[1])


def test_the_unary_kernels_are_the_engine_ops_and_every_activation():
    activations = {name for name, spec in ACTIVATIONS.items() if not spec.identity}
    assert activations <= set(UNARY)
    for name in set(UNARY) - activations:  # each engine op with one input has its kernel under its node's name
        assert eager_op(name)(Value(0.5))._op == name


PAIRS = [(3.0, 2.0), (-3.0, 0.5), (1.0, -4.0), (0.0, 2.0), (-0.0, -5.0), (5e-324, 1e-300), (1e300, 1e-10),
         (2.0, 0.0), (NAN, 1.0), (1.0, NAN)]


def test_divide_gives_eagers_quotient_and_refuses_zero():
    """(Its slopes are the Node step's, which tests/test_compile.py checks through a model.)"""
    for x, y in PAIRS:
        expected = eager(lambda a, b: a / b, x, y)
        if isinstance(expected, type):
            with pytest.raises(ZeroDivisionError, match="division by zero"):
                divide(np.array([x]), np.array([y]))
            continue
        with np.errstate(all="ignore"):
            out = divide(np.array([x]), np.array([y]))
        same(out, [expected[0]])


POWERS = [(2.0, 3.0), (2.0, 0.5), (0.0, 2.0), (0.0, 0.5), (0.0, 0.0), (-2.0, 3.0), (-2.0, 2.0), (-2.0, 0.0),
          (0.5, -2.0), (1e-200, 1.5), (3.0, -0.0), (NAN, 2.0), (2.0, NAN), (0.0, -1.0), (-2.0, 0.5), (1e200, 2.0)]


@pytest.mark.parametrize("exponent_is_a_value", [True, False], ids=["value", "number"])
def test_power_gives_eagers_value_and_both_slopes_at_every_edge(exponent_is_a_value):
    for b, e in POWERS:
        if exponent_is_a_value:
            expected = eager(lambda x, y: x**y, b, e)
        else:
            expected = eager(lambda x, e=e: x**e, b)
            if not isinstance(expected, type):
                expected = expected[0], [*expected[1], 0.0]  # a number exponent takes no gradient
        if isinstance(expected, type):
            with pytest.raises(expected), np.errstate(all="ignore"):
                power(np.array([b]), np.array([e]), exponent_is_a_value)
            continue
        with np.errstate(all="ignore"):
            out, d_base, d_exp = power(np.array([b]), np.array([e]), exponent_is_a_value)
        same(out, [expected[0]])
        same(np.concatenate([d_base, d_exp]), expected[1])


@pytest.mark.parametrize("logits", [[0.5, -1.0, 2.0], [1000.0, 0.0, -1000.0], [3.0, 3.0], [-745.0, 0.0, 1e-9, 40.0]])
def test_log_softmax_gives_eagers_value_and_slopes_for_every_index(logits):
    for k in range(len(logits)):
        expected_out, expected_grads = eager(lambda *xs, k=k: log_softmax_at(xs, k), *logits)
        columns = [np.array([x]) for x in logits]
        out, locals_ = log_softmax(columns + [columns[k]])
        grads = [float(np.asarray(local).ravel()[0]) for local in locals_]
        grads[k] += grads.pop()  # x_k is a child twice: its two slopes add, as eager backward adds them
        same(out, [expected_out])
        same(grads, expected_grads)
