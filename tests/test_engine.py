"""The engine: values, derivatives, domain errors and graph shapes that break naive engines."""

import contextlib
import copy
import gc
import math
import random
import threading
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micronet.engine import Value, dot, dots, log_softmax_at, topological_order, unfused
from micronet.gradcheck import gradcheck, numerical_grad

finite = st.floats(-5.0, 5.0, allow_nan=False)
positive = st.floats(0.05, 5.0)
away_from_zero = finite.filter(lambda x: abs(x) > 1e-3)


def autograd(f, *xs):
    leaves = [Value(x) for x in xs]
    out = f(*leaves)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


def assert_matches_central_difference(f, *xs, rel=1e-6, abs_=1e-7):
    value, grads = autograd(f, *xs)
    numeric = numerical_grad(lambda *a: f(*map(Value, a)).data, xs)
    assert grads == pytest.approx(numeric, rel=rel, abs=abs_)
    return value


# ----- construction -----------------------------------------------------------


def test_data_is_stored_as_float_and_grad_starts_at_zero():
    v = Value(3)
    assert type(v.data) is float and v.data == 3.0 and v.grad == 0.0


@pytest.mark.parametrize("bad", [True, "1.0", None, [1.0], (1.0,), {"x": 1}, 1 + 2j, Value(1.0)])
def test_non_real_data_is_rejected(bad):
    with pytest.raises(TypeError, match="real number"):
        Value(bad)


def test_repr_shows_data_grad_and_label():
    assert repr(Value(2.5, label="w")) == "Value(data=2.5, grad=0.0, label='w')"


def test_op_and_label_are_kept_for_graph_export():
    a = Value(1.0, label="a")
    b = (a * 2).tanh()
    assert (b._op, b._prev[0]._op, a.label) == ("tanh", "*", "a")


# ----- forward values ----------------------------------------------------------


def test_numbers_on_either_side():
    v = Value(4.0)
    results = [2 + v, v + 2, 2 - v, v - 2, 2 * v, v * 2, 2 / v, v / 2, 2**v, v**2, -v]
    assert [r.data for r in results] == [6.0, 6.0, -2.0, 2.0, 8.0, 8.0, 0.5, 2.0, 16.0, 16.0, -4.0]


def test_sum_of_values():
    assert sum([Value(1.0), Value(2.0), Value(3.5)]).data == 6.5


@pytest.mark.parametrize("other", ["2", [1.0], None, 1j])
def test_unsupported_operand_raises_python_type_error(other):
    v = Value(1.0)
    for op in (lambda: v + other, lambda: other * v, lambda: v ** other, lambda: v / other):
        with pytest.raises(TypeError, match="unsupported operand|can't multiply|not supported"):
            op()


@pytest.mark.parametrize("x", [-1000.0, -40.0, -1.0, 0.0, 1.0, 40.0, 1000.0, 1e308, -1e308])
def test_sigmoid_and_tanh_are_stable_for_any_finite_input(x):
    s, t = Value(x).sigmoid(), Value(x).tanh()
    assert 0.0 <= s.data <= 1.0 and -1.0 <= t.data <= 1.0
    assert math.isfinite(s._local[0]) and math.isfinite(t._local[0])


def test_relu_derivative_at_zero_is_zero():
    assert autograd(Value.relu, 0.0) == (0.0, [0.0])
    assert autograd(Value.relu, -0.0) == (0.0, [0.0])


def test_relu_propagates_nan_with_pytorchs_slope():
    # torch.relu(nan) is nan and its backward passes the gradient through
    # (slope 1: threshold_backward zeroes only where x <= 0), checked with torch 2.13.
    value, (slope,) = autograd(Value.relu, math.nan)
    assert math.isnan(value) and slope == 1.0
    x = Value(math.nan)
    out = x.relu() * 2.0 + x.relu().exp()
    out.backward()
    assert math.isnan(out.data) and math.isnan(x.grad)  # the trainer's finiteness checks see it


def test_abs_value_and_slope_follow_pytorch():
    assert [autograd(abs, x) for x in (-2.5, 0.0, -0.0, 3.0)] == [
        (2.5, [-1.0]), (0.0, [0.0]), (0.0, [0.0]), (3.0, [1.0])
    ]
    assert Value(-1.5).abs().data == 1.5
    value, (slope,) = autograd(abs, math.nan)
    assert math.isnan(value) and slope == 0.0  # torch.sgn(nan) is 0


# ----- every op against central differences -----------------------------------


@settings(max_examples=60, deadline=None)
@given(x=finite, y=finite)
def test_add_mul_sub_derivatives(x, y):
    assert_matches_central_difference(lambda a, b: a + b, x, y)
    assert_matches_central_difference(lambda a, b: a * b, x, y)
    assert_matches_central_difference(lambda a, b: a - b, x, y)
    assert_matches_central_difference(lambda a: -a, x)
    assert_matches_central_difference(lambda a: 3.5 - a * 2, x)


@settings(max_examples=60, deadline=None)
@given(x=finite, y=away_from_zero.filter(lambda y: abs(y) > 0.05))
def test_div_derivatives(x, y):
    assert_matches_central_difference(lambda a, b: a / b, x, y)
    assert_matches_central_difference(lambda b: 2 / b, y)


def scaled(sign, mantissa, exponent):
    return sign * mantissa * 10.0**exponent


# From 1e-150 to 1e151 with either sign: quotients and their slopes overflow and underflow.
any_magnitude = st.builds(scaled, st.sampled_from([-1.0, 1.0]), st.floats(1.0, 9.99), st.integers(-150, 150))


def rounded(fraction):
    """An exact rational as the nearest float (+-inf beyond the range)."""
    try:
        return float(fraction)
    except OverflowError:
        return math.inf if fraction > 0 else -math.inf


@settings(max_examples=200, deadline=None)
@given(x=st.floats(allow_nan=False, allow_infinity=False), y=st.floats(allow_nan=False, allow_infinity=False).filter(bool))
def test_div_data_is_pythons_correctly_rounded_quotient(x, y):
    assert (Value(x) / Value(y)).data == x / y
    assert (Value(x) / y).data == x / y and (x / Value(y)).data == x / y


def test_div_examples_from_the_issue():
    assert (Value(0.3) / Value(0.1)).data == 2.9999999999999996  # x * y**-1 gave 3.0
    q, (dx, dy) = autograd(lambda a, b: a / b, 1e-160, 1e-160)
    assert (q, dx, dy) == (1.0, 1e160, -1e160)  # y**-2 overflowed to inf and gave nan here
    q, (dx, dy) = autograd(lambda a, b: a / b, 1e-300, 1e-320)
    assert q == 1e-300 / 1e-320 and math.isfinite(q)  # ~1e20; the slopes really are beyond a float
    assert (dx, dy) == (math.inf, -math.inf)  # as PyTorch gives them


@settings(max_examples=200, deadline=None)
@given(x=any_magnitude, y=any_magnitude)
def test_div_slopes_are_accurate_at_any_magnitude(x, y):
    """1/y correctly rounded; -x/y^2 within 2 ulps (exact rational arithmetic as the oracle).

    Where the true slope is beyond the float range it is +-inf, and below it
    (subnormal or 0) it is off by at most a subnormal's last place: never nan.
    """
    _, (dx, dy) = autograd(lambda a, b: a / b, x, y)
    assert dx == rounded(1 / Fraction(y))
    exact = rounded(-Fraction(x) / Fraction(y) ** 2)
    if math.isinf(exact):
        assert dy == exact
    else:
        assert dy == pytest.approx(exact, rel=4.5e-16, abs=2 * 5e-324)


@settings(max_examples=100, deadline=None)
@given(x=any_magnitude, y=any_magnitude)
def test_div_matches_central_differences_at_any_magnitude(x, y):
    assert gradcheck(lambda a, b: a / b, [x, y], h=1e-7, atol=0.0, rtol=1e-6, relative=True)
    assert gradcheck(lambda b: 3.0 / b, [y], h=1e-7, atol=0.0, rtol=1e-6, relative=True)


@settings(max_examples=60, deadline=None)
@given(x=any_magnitude)
def test_abs_matches_central_differences_away_from_zero(x):
    assert gradcheck(abs, [x], h=1e-7, atol=0.0, rtol=1e-9, relative=True)
    assert gradcheck(lambda a: abs(a * a - 2.0), [x / 10.0**150 + 3.0], atol=0.0, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(x=positive, n=st.floats(-3.0, 3.0), y=st.floats(-2.0, 2.0))
def test_pow_derivatives_with_number_and_value_exponents(x, n, y):
    assert_matches_central_difference(lambda a: a**n, x)
    assert_matches_central_difference(lambda a, b: a**b, x, y)
    assert_matches_central_difference(lambda b: 2.5**b, y)


@settings(max_examples=30, deadline=None)
@given(x=st.floats(-3.0, 3.0).filter(lambda x: abs(x) > 0.05), n=st.integers(-3, 4))
def test_negative_bases_with_integer_powers(x, n):
    assert_matches_central_difference(lambda a: a**n, x)


@settings(max_examples=60, deadline=None)
@given(x=finite)
def test_unary_derivatives(x):
    for f in (Value.exp, Value.tanh, Value.sigmoid, Value.sin, Value.cos):
        assert_matches_central_difference(f, x)


@settings(max_examples=60, deadline=None)
@given(x=positive)
def test_log_derivative(x):
    assert_matches_central_difference(Value.log, x)


@settings(max_examples=60, deadline=None)
@given(x=away_from_zero)
def test_relu_derivative_away_from_the_kink(x):
    assert_matches_central_difference(Value.relu, x)


@settings(max_examples=40, deadline=None)
@given(xs=st.lists(finite, min_size=2, max_size=6))
def test_dot_and_log_softmax_derivatives(xs):
    n = len(xs) // 2
    assert_matches_central_difference(lambda *v: dot(v[:n], v[n : 2 * n], v[-1]), *xs)
    for k in range(len(xs)):
        assert_matches_central_difference(lambda *v: log_softmax_at(v, k), *xs)  # noqa: B023 - called at once


def test_dot_with_plain_number_inputs_differentiates_only_the_values():
    w = [Value(2.0), Value(-1.0)]
    x = [3.0, Value(4.0)]
    b = Value(0.5)
    out = dot(w, x, b)
    out.backward()
    assert out.data == 2.0 * 3.0 - 4.0 + 0.5
    assert [wi.grad for wi in w] == [3.0, 4.0] and x[1].grad == -1.0 and b.grad == 1.0
    assert len(out._prev) == 5  # the number input is a constant leaf


def test_dots_share_inputs_and_check_lengths():
    x = [Value(1.0), Value(2.0)]
    rows = [[Value(1.0), Value(1.0)], [Value(3.0), Value(-1.0)]]
    assert [z.data for z in dots(rows, x)] == [3.0, 1.0]
    with pytest.raises(ValueError, match="as many weights as inputs, got 1 and 2"):
        dots([[Value(1.0)]], x)
    with pytest.raises(TypeError, match="Values or real numbers, got str"):
        dot([Value(1.0)], ["a"])


def test_relu_is_fused_into_the_dot_node_and_an_off_neuron_keeps_no_edges():
    w = [[Value(1.0), Value(2.0)], [Value(-1.0), Value(-1.0)], [Value(math.nan), Value(0.0)]]
    b = [Value(0.5), Value(0.25), Value(0.0)]
    x = [Value(0.5), Value(-0.25)]
    on, off, nan = dots(w, x, b, activation="relu")
    assert (on._op, len(on._prev), on.data) == ("relu(dot)", 5, 0.5)
    assert (off._op, off._prev, off.data) == ("relu(dot)", (), 0.0)  # backward never walks its 5 edges
    assert math.isnan(nan.data) and len(nan._prev) == 5  # NaN passes through, slope 1
    with unfused():
        on2, off2, _ = dots(w, x, b, activation="relu")
    assert (on2._op, on2._prev[0]._op, off2._prev[0]._op) == ("relu", "dot", "dot")


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_fused_relu_gives_the_unfused_gradients_bit_for_bit(seed):
    from micronet.nn import MLP

    model = MLP(3, [6, 5, 2], seed=seed)
    rows = [[random.Random(seed + i).uniform(-2, 2) for _ in range(3)] for i in range(4)]

    def grads(fused):
        model.zero_grad()
        with contextlib.nullcontext() if fused else unfused():
            out = sum(log_softmax_at(model(row), i % 2) for i, row in enumerate(rows))
        out.backward()
        return out.data, [p.grad for p in model.parameters()]

    assert grads(True) == grads(False)


def test_tanh_and_sigmoid_stay_nodes_of_their_own():
    w, x = [[Value(0.5), Value(-1.0)]], [1.0, 2.0]
    for activation in ("tanh", "sigmoid"):
        (out,) = dots(w, x, activation=activation)
        assert out._op == activation and out._prev[0]._op == "dot"
    assert dots(w, x, activation="linear")[0]._op == "dot"
    with pytest.raises(ValueError, match="dots activation must be one of relu, tanh, sigmoid, linear, got 'gelu'"):
        dots(w, x, activation="gelu")


def test_an_activation_folds_into_the_dot_node_where_its_slope_is_exactly_0_or_1():
    """A saturated sigmoid is a constant like an off relu; tanh at 0 keeps the dot's own local derivatives."""
    w, x = [[Value(50.0)], [Value(-50.0)], [Value(0.0)], [Value(1.0)]], [Value(1.0)]
    high, low, zero, middle = dots(w, x, activation="sigmoid")
    assert (high._op, high._prev, high.data) == ("sigmoid(dot)", (), 1.0)  # s(50) rounds to 1: slope 0
    assert (low._op, low._prev[0]._op) == ("sigmoid", "dot")  # s(-50) ~ 2e-22: slope ~2e-22, not 0
    assert (zero._op, middle._op) == ("sigmoid", "sigmoid")
    (tanh0,) = dots([[Value(0.0)]], x, activation="tanh")
    assert (tanh0._op, tanh0._prev[1], tanh0._local) == ("tanh(dot)", x[0], (1.0, 0.0))
    for activation in ("sigmoid", "tanh", "relu"):  # the same gradients, folded or not
        grads = []
        for fused in (True, False):
            for v in (*[row[0] for row in w], x[0]):
                v.grad = 0.0
            with contextlib.nullcontext() if fused else unfused():
                sum(dots(w, x, activation=activation)).backward()
            grads.append([v.grad for v in (*[row[0] for row in w], x[0])])
        assert grads[0] == grads[1], activation


def test_unfused_holds_only_in_its_own_thread():
    w, x = [[Value(1.0)]], [1.0]
    seen = []
    with unfused():
        thread = threading.Thread(target=lambda: seen.append(dots(w, x, activation="relu")[0]._op))
        thread.start()
        thread.join()
        assert dots(w, x, activation="relu")[0]._op == "relu"
    assert seen == ["relu(dot)"] and dots(w, x, activation="relu")[0]._op == "relu(dot)"


def test_log_softmax_at_is_exact_for_huge_logits():
    v = [Value(1000.0), Value(0.0), Value(-1000.0)]
    out = log_softmax_at(v, 1)
    out.backward()
    assert out.data == -1000.0 and [x.grad for x in v] == [-1.0, 1.0, 0.0]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 values"):
        log_softmax_at(v, 3)


# ----- domain errors -----------------------------------------------------------


@pytest.mark.parametrize("x", [0.0, -1.0, float("nan")])
def test_log_of_non_positive_names_x(x):
    with pytest.raises(ValueError, match=r"log is defined for positive numbers only, got x="):
        Value(x).log()


def test_division_by_zero_is_a_clear_zero_division_error():
    with pytest.raises(ZeroDivisionError, match=r"division by zero: 1.0 / -0.0"):
        Value(1.0) / Value(-0.0)
    with pytest.raises(ZeroDivisionError, match=r"division by zero: 1.0 / 0.0"):
        Value(1.0) / 0
    with pytest.raises(ZeroDivisionError, match=r"division by zero: 1.0 / 0.0"):
        Value(1.0) / Value(0.0)
    with pytest.raises(ZeroDivisionError, match=r"division by zero: 2.0 / 0.0"):
        2 / Value(0.0)


def test_zero_to_a_negative_power_is_a_zero_division_error():
    with pytest.raises(ZeroDivisionError, match=r"0.0 cannot be raised to the negative power -2.0"):
        Value(0.0) ** -2
    with pytest.raises(ZeroDivisionError, match="negative power"):
        0 ** Value(-1.0)


def test_negative_base_to_a_fractional_power_is_a_value_error_not_complex():
    with pytest.raises(ValueError, match=r"negative base -8.0 to the non-integer power 0.5"):
        Value(-8.0) ** 0.5
    with pytest.raises(ValueError, match="not a real number"):
        (-2) ** Value(0.3)


def test_exp_overflow_raises_overflow_error_with_a_message():
    # Chosen behaviour: raise (not inf), so a blow-up is reported where it happens.
    with pytest.raises(OverflowError, match=r"exp\(710.0\) overflows a float"):
        Value(710.0).exp()
    with pytest.raises(OverflowError, match=r"overflows a float"):
        Value(10.0) ** 400


def test_pow_slope_conventions_follow_pytorch():
    _, (d,) = autograd(lambda a: a**0.5, 0.0)
    assert d == math.inf  # sqrt has a vertical tangent at 0
    _, (d,) = autograd(lambda a: a**0, 0.0)
    assert d == 0.0
    _, (db, de) = autograd(lambda a, b: a**b, 0.0, 2.0)
    assert (db, de) == (0.0, 0.0)
    _, (db, de) = autograd(lambda a, b: a**b, -2.0, 3.0)
    assert db == 12.0 and math.isnan(de)  # ln(-2) is not real
    x = Value(-3.0)
    y = x**2
    y.backward()
    assert x.grad == -6.0 and y._prev[1].grad == 0.0  # a number exponent gets no gradient


# ----- conversions, comparisons and copies ------------------------------------


def test_float_reads_data():
    assert float(Value(2.5)) == 2.5 and type(float(Value(3))) is float
    assert math.isnan(float(Value(math.nan)))


def test_bool_and_order_comparisons_read_data_like_a_0d_tensor():
    a, b = Value(1.0), Value(2.0)
    assert (a < b, a <= b, a > b, a >= b) == (True, True, False, False)
    assert (a < 2, 2 > a, 0.5 <= a, a >= 1) == (True, True, True, True)  # numbers on either side
    assert (bool(Value(0.0)), bool(Value(-0.0)), bool(Value(0.1)), bool(Value(math.nan))) == (False, False, True, True)
    assert max([a, b, Value(-3.0)]) is b and sorted([b, a]) == [a, b]
    nan = Value(math.nan)
    assert not (nan < a or nan <= a or nan > a or nan >= a)  # as float NaN


def test_equality_and_hash_stay_by_identity_so_values_work_in_sets():
    a, same = Value(1.0), Value(1.0)
    assert a == a and a != same and not (a == 1.0)
    assert len({a, same}) == 2 and a in {a} and same not in {a}
    assert a <= same and a >= same  # equal data, distinct nodes: compare .data for that


@pytest.mark.parametrize("other", ["1", None, [1.0], 1j])
def test_comparison_with_a_non_number_is_pythons_type_error(other):
    with pytest.raises(TypeError, match="not supported between instances"):
        Value(1.0) < other  # noqa: B015 - the comparison is what raises


def test_deepcopy_copies_the_graph_and_keeps_shared_nodes_shared():
    x = Value(0.5, label="x")
    y = x.tanh()
    z = y * y + y.exp()  # y is reused: the copy must reuse its copy of y too
    z2 = copy.deepcopy(z)
    assert z2 is not z and z2.data == z.data and z2._op == z._op
    left, right = z2._prev
    assert left._prev[0] is left._prev[1]  # y*y still reads one node
    assert left._prev[0] is right._prev[0]
    x2 = left._prev[0]._prev[0]
    assert x2 is not x and x2.label == "x"
    z2.backward()
    z.backward()
    assert x2.grad == x.grad  # the same gradient, in separate graphs
    x2.grad = 0.0
    assert x.grad != 0.0


def test_deepcopy_shares_nodes_already_in_the_memo():
    w = Value(2.0)
    out = w * 3.0
    w2, out2 = copy.deepcopy([w, out])
    assert out2._prev[0] is w2


@pytest.mark.slow
def test_deepcopy_of_a_long_chain_does_not_recurse():
    x = Value(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y2 = copy.deepcopy(y)  # 2 * 10^5 nodes deep: the default deepcopy raised RecursionError
    y2.backward()
    assert y2.data == 1.0 and x.grad == 0.0
    leaf = y2
    while leaf._prev:
        leaf = leaf._prev[0]
    assert leaf is not x and leaf.grad == 1.0


# ----- backward semantics and graph shapes -----------------------------------


def test_x_times_x_accumulates_both_paths():
    assert autograd(lambda x: x * x, 3.0) == (9.0, [6.0])


def test_reused_node_accumulates():
    a = Value(-2.0)
    b = a + a
    c = b + b
    c.backward()
    assert (a.grad, b.grad, c.grad) == (4.0, 2.0, 1.0)


def test_diamond():
    x = Value(0.7)
    y = x.tanh()
    z = y * y.exp() + y.sin()
    z.backward()
    t = math.tanh(0.7)
    expected = (math.exp(t) + t * math.exp(t) + math.cos(t)) * (1 - t * t)
    assert x.grad == pytest.approx(expected, rel=1e-14)


def test_backward_twice_adds_to_leaves_but_not_to_intermediates():
    a, b = Value(2.0), Value(-3.0)
    mid = a * b
    out = mid.tanh() + mid
    out.backward()
    first = (a.grad, b.grad, mid.grad)
    out.backward()
    assert (a.grad, b.grad) == (2 * first[0], 2 * first[1])
    assert mid.grad == first[2]  # micrograd would double-count here


def test_backward_on_a_leaf_gives_it_gradient_one():
    a = Value(5.0)
    a.backward()
    assert a.grad == 1.0


def test_backward_on_an_intermediate_sets_it_to_one():
    a = Value(1.5)
    b = a * 4
    b.grad = 123.0
    b.backward()
    assert (b.grad, a.grad) == (1.0, 4.0)


def test_children_keep_a_deterministic_order():
    a, b = Value(1.0), Value(2.0)
    assert (a * b)._prev == (a, b) and (b * a)._prev == (b, a)
    assert dot([a], [b])._prev == (a, b)


def test_summation_order_and_results_are_reproducible():
    def run():
        rng = random.Random(7)
        xs = [Value(rng.uniform(-1, 1)) for _ in range(200)]
        out = sum(x * y for x, y in zip(xs, reversed(xs))).tanh()
        out.backward()
        return [x.grad for x in xs]

    assert run() == run()


def test_deep_chain_of_a_million_nodes_backpropagates_without_recursion():
    x = Value(0.5)
    y = x
    for _ in range(1_000_000):
        y = y + 1.0
    y.backward()
    assert x.grad == 1.0


def test_wide_sum_of_100k_terms():
    xs = [Value(float(i)) for i in range(100_000)]
    total = sum(xs)
    total.backward()
    assert total.data == sum(range(100_000)) and all(x.grad == 1.0 for x in xs)


def test_stacked_diamonds_visit_each_node_once():
    # 60 stacked diamonds: 2**60 paths from the top to x, 3 nodes per diamond.
    x = Value(1.0001)
    y = x
    for _ in range(60):
        y = y * 1.0 + y * 1.0
    assert len(topological_order(y)) == 3 * 60
    y.backward()
    assert x.grad == 2.0**60


def test_work_is_linear_in_the_number_of_nodes():
    # Count visits instead of timing: order length and edges scale exactly with n.
    for n in (1_000, 10_000, 100_000):
        y = Value(0.1)
        for _ in range(n):
            y = y.tanh()
        assert len(topological_order(y)) == n


def test_finished_graph_leaves_no_cycles_for_the_collector():
    gc.collect()
    gc.disable()
    try:
        xs = [Value(0.1 * i) for i in range(50)]
        out = log_softmax_at([dot(xs, xs[::-1]).tanh(), (xs[0] * xs[1]).exp() ** 2, xs[2] / 3], 1)
        out.backward()
        del out
        assert gc.collect() == 0  # reference counting already freed every node
    finally:
        gc.enable()


# ----- the seed exercise ------------------------------------------------------


def test_exercise_function_value_and_gradient():
    def f(a, b, c):
        return -(a**3) + (3 * b).sin() - 1.0 / c + b**2.5 - a**0.5

    value, grads = autograd(f, 2.0, 3.0, 4.0)
    assert value == 6.336362190988558
    assert grads == [-12.353553390593273, 10.25699027111255, 0.0625]
