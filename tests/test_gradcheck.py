"""Numerical derivatives and gradcheck: they must catch a wrong derivative."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from micronet.engine import make_node
from micronet.gradcheck import GradcheckError, gradcheck, numerical_grad


def test_central_difference_of_a_cubic_is_exact_up_to_rounding():
    # (x+h)^3 - (x-h)^3 = 6x^2 h + 2h^3: the central quotient is 3x^2 + h^2.
    (d,) = numerical_grad(lambda x: x**3, [2.0], h=1e-4)
    assert d == pytest.approx(12.0 + 1e-8, rel=1e-9)


def test_forward_difference_has_first_order_error():
    (d,) = numerical_grad(lambda x: x**3, [2.0], h=1e-4, method="forward")
    assert d == pytest.approx(12.0 + 3 * 2.0 * 1e-4 + 1e-8, rel=1e-9)  # 3x^2 + 3x h + h^2


def test_symmetric_is_closer_than_one_sided_at_the_same_h():
    f = lambda a, b: math.sin(a) * math.exp(b)  # noqa: E731
    exact = [math.cos(0.3) * math.exp(0.7), math.sin(0.3) * math.exp(0.7)]
    central = numerical_grad(f, [0.3, 0.7], h=1e-5)
    forward = numerical_grad(f, [0.3, 0.7], h=1e-5, method="forward")
    assert max(map(abs, [c - e for c, e in zip(central, exact)])) < 1e-3 * max(
        map(abs, [g - e for g, e in zip(forward, exact)])
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="method must be one of central, forward, got 'backward'"):
        numerical_grad(lambda x: x, [1.0], method="backward")
    with pytest.raises(ValueError, match="h must be > 0, got 0"):
        numerical_grad(lambda x: x, [1.0], h=0)
    with pytest.raises(TypeError, match="f must return a Value, got float"):
        gradcheck(lambda x: 1.0, [1.0])


def test_gradcheck_passes_a_correct_function():
    assert gradcheck(lambda a, b, c: (a * b + c.exp()).tanh() / (1 + b**2), [0.3, -1.2, 0.5])


def wrong_square(x):
    """x^2 with a deliberately wrong derivative (3x instead of 2x)."""
    return make_node(x.data**2, (x,), (3 * x.data,), "bad_square")


def test_gradcheck_names_the_worst_coordinate_of_a_wrong_derivative():
    f = lambda a, b: a * 2 + wrong_square(b)  # noqa: E731
    with pytest.raises(GradcheckError, match=r"gradient mismatch at input 1 \(x=1.5\): autograd 4.5, central difference (2.9999|3.0)"):
        gradcheck(f, [0.2, 1.5])
    assert gradcheck(f, [0.2, 1.5], raise_exception=False) is False


def test_gradcheck_fails_on_nan_gradients():
    f = lambda a: make_node(a.data, (a,), (math.nan,), "nan_slope")  # noqa: E731
    assert gradcheck(f, [1.0], raise_exception=False) is False


def test_exercises_script_prints_only_ok():
    script = Path(__file__).parents[1] / "experiments" / "exercises.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WRONG" not in result.stdout and result.stdout.count("OK ") == 9


def test_relative_steps_reach_inputs_of_any_magnitude():
    # An absolute h = 1e-6 is a huge step at x = 1e-150 (and below rounding at 1e150).
    f = lambda a, b: a * a / b  # noqa: E731
    for x in (3e-150, 3e150):
        (dx, db) = numerical_grad(lambda a, b: a * a / b, [x, 2.0], h=1e-7, relative=True)
        assert dx == pytest.approx(x, rel=1e-8) and db == pytest.approx(-x * x / 4.0, rel=1e-8)
        assert gradcheck(f, [x, 2.0], atol=0.0, rtol=1e-6, relative=True)
    assert not gradcheck(f, [3e-150, 2.0], atol=0.0, rtol=1e-6, raise_exception=False)


def test_equal_infinite_gradients_agree():
    assert gradcheck(lambda a: 1.0 / a, [1e-160], atol=0.0, relative=True)  # -1/x^2 is -inf, both ways
