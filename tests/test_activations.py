"""The activation registry: each entry's scalar and batch forms agree, and every door lists exactly the registry."""

import math
import re

import numpy as np
import pytest

from micronet.activations import ACTIVATIONS, Activation, get_activation
from micronet.compile import UNARY, compile_model
from micronet.config import HIDDEN_ACTIVATIONS, ConfigError, activation_table, config_reference, parse_config
from micronet.engine import Value, dots
from micronet.gradcheck import gradcheck
from micronet.loop import EagerExecutor
from micronet.losses import cross_entropy
from micronet.nn import MLP, Neuron
from micronet.playground.trainer import options

SPECS = list(ACTIVATIONS.values())
# Where formulas change branch, round to a constant, or would overflow, and NaN.
POINTS = [-800.0, -40.0, -3.0, -1.0, -1e-300, -0.0, 0.0, 5e-324, 1e-8, 0.5, 2.0, 19.5, 40.0, 800.0, math.nan]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_batch_twin_gives_the_scalar_values_and_slopes(spec):
    """To 1e-12 everywhere, at the kinks and for NaN too: the compiled executor relies on it."""
    points = sorted({*POINTS, *spec.kinks}, key=lambda x: (math.isnan(x), x))
    X = np.array(points)
    out = spec.batch(np, X)
    slope = np.asarray(spec.batch_slope(np, X, out), dtype=float)
    expected = np.array([spec.scalar(x) for x in points])
    np.testing.assert_allclose(out, expected[:, 0], rtol=1e-12, atol=1e-300, equal_nan=True)
    np.testing.assert_allclose(slope, expected[:, 1], rtol=1e-12, atol=1e-300, equal_nan=True)
    assert np.array_equal(np.isnan(out), np.isnan(expected[:, 0]))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_scalar_slope_matches_central_differences(spec):
    for x in (-3.0, -0.7, 0.3, 1.9):
        if all(abs(x - kink) > 0.1 for kink in spec.kinks):
            assert gradcheck(lambda v, name=spec.name: v.activate(name), [x])


def test_relu_slope_is_0_at_0_and_1_at_nan_in_both_forms():
    relu = ACTIVATIONS["relu"]
    assert relu.scalar(0.0) == (0.0, 0.0) and relu.scalar(-0.0) == (0.0, 0.0)  # as PyTorch
    value, slope = relu.scalar(math.nan)
    assert math.isnan(value) and slope == 1.0  # NaN shows, and is not hidden as 0
    X = np.array([0.0, -0.0, math.nan])
    out = relu.batch(np, X)
    assert np.array_equal(np.asarray(relu.batch_slope(np, X, out), float), [0.0, 0.0, 1.0])


def test_sigmoid_is_stable_on_both_sides():
    sigmoid = ACTIVATIONS["sigmoid"]
    assert sigmoid.scalar(800.0) == (1.0, 0.0)
    low, slope = sigmoid.scalar(-800.0)
    assert low == 0.0 and slope == 0.0  # e^-800 underflows to 0; no OverflowError from e^800
    assert sigmoid.scalar(-40.0)[0] == pytest.approx(math.exp(-40.0), rel=1e-15)  # not 1 - 1
    assert sigmoid.batch(np, np.array([-800.0, 800.0])).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_value_activate_and_the_classic_methods_make_the_same_node(name):
    x = Value(0.4)
    y = x.activate(name)
    y.backward()
    assert (y.data, x.grad, y._op) == (*ACTIVATIONS[name].scalar(0.4), name)
    if hasattr(Value, name):
        assert getattr(Value(0.4), name)().data == y.data
    assert x.activate("linear") is x  # the identity makes no node


@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_compiled_layers_give_eager_numbers_at_zero_and_nan(name):
    """Every activation through an MLP, with pre-activations of exactly 0 (zero biases, a zero row) and NaN."""
    model = MLP(3, [4, 3, 2], activation=name, seed=5)
    X = np.random.default_rng(1).standard_normal((6, 3)) * 4
    X[0] = 0.0  # every first-layer pre-activation is exactly 0: relu's kink
    y = np.array([0, 1, 0, 1, 1, 0])
    eager, compiled = EagerExecutor(model, cross_entropy), compile_model(model, 3, cross_entropy)
    results = []
    for executor in (eager, compiled):
        model.zero_grad()
        loss = executor.loss_and_grad(X, y)
        results.append((loss, [p.grad for p in model.parameters()], executor.evaluate(X, y)[1]))
    (eager_loss, eager_grads, eager_logits), (compiled_loss, compiled_grads, compiled_logits) = results
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-12)
    np.testing.assert_allclose(compiled_grads, eager_grads, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(compiled_logits, eager_logits, rtol=1e-12, atol=1e-15)
    X[1, 0] = math.nan
    nan_logits = [executor.evaluate(X, y)[1] for executor in (eager, compiled)]
    assert np.array_equal(np.isnan(nan_logits[0]), np.isnan(nan_logits[1])) and np.isnan(nan_logits[0][1]).all()


# ----- every door lists exactly the registry ----------------------------------------------


def test_hidden_activations_are_the_registry_without_its_identity():
    assert list(HIDDEN_ACTIVATIONS) == [name for name, spec in ACTIVATIONS.items() if not spec.identity]
    assert [name for name, spec in ACTIVATIONS.items() if spec.identity] == ["linear"]
    for name in HIDDEN_ACTIVATIONS:
        assert parse_config({"model": {"activation": name}}).model.activation == name
    with pytest.raises(ConfigError, match=f"model.activation must be one of {', '.join(HIDDEN_ACTIVATIONS)}; got 'x'"):
        parse_config({"model": {"activation": "x"}})


def test_the_compiled_kernels_are_the_registrys_batch_twins():
    for name, spec in ACTIVATIONS.items():
        if spec.identity:
            assert name not in UNARY
            continue
        forward, slope = UNARY[name]
        assert (forward.func, forward.args, slope.func, slope.args) == (spec.batch, (np,), spec.batch_slope, (np,))


def test_dots_nn_and_get_activation_refuse_with_the_registrys_list():
    names = ", ".join(ACTIVATIONS)
    with pytest.raises(ValueError, match=re.escape(f"dots activation must be one of {names}, got 'gelu'")):
        dots([[Value(1.0)]], [1.0], activation="gelu")
    with pytest.raises(ValueError, match=re.escape(f"activation must be one of {names}, got 'gelu'")):
        Neuron(2, activation="gelu")
    with pytest.raises(ValueError, match=re.escape(f"activation must be one of {names}, got ['relu']")):
        get_activation(["relu"])  # unhashable: still the one-line ValueError
    with pytest.raises(ValueError, match=re.escape(f"activation must be one of {names}, got 'Relu'")):
        Value(1.0).activate("Relu")
    assert isinstance(get_activation("tanh"), Activation)


def test_the_playground_menu_is_the_hidden_activations_with_their_formulas():
    choices = options()
    assert choices["activations"] == list(HIDDEN_ACTIVATIONS)
    assert choices["activation_formulas"] == {name: ACTIVATIONS[name].formula for name in HIDDEN_ACTIVATIONS}


def test_help_config_lists_every_hidden_activation_with_its_formula():
    reference = config_reference()
    table = activation_table()
    assert table in reference
    rows = table.splitlines()[2:]
    assert [re.match(r"\| `(\w+)` \|", row).group(1) for row in rows] == list(HIDDEN_ACTIVATIONS)
    assert "| `relu` | max(x, 0) | He |" in rows and "| `sigmoid` | 1 / (1 + e^-x) | Glorot |" in rows


def test_the_docs_show_the_registrys_table_exactly_once():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "config.md").read_text()
    assert text.count("<!-- generated: activations -->") == 1 and text.count(activation_table()) == 1


def test_initialisation_follows_the_entry():
    """He (+-sqrt(6/fan_in)) for an entry that says so, Glorot (+-sqrt(6/(fan_in + fan_out))) otherwise."""
    for name in HIDDEN_ACTIVATIONS:
        neuron = Neuron(600, activation=name, seed=0, fan_out=600)
        largest = max(abs(w.data) for w in neuron.w)
        limit = math.sqrt(6 / 600) if ACTIVATIONS[name].init == "he" else math.sqrt(6 / 1200)
        assert 0.95 * limit < largest <= limit, name


def test_a_duplicate_or_unknown_init_is_refused_at_registration():
    from micronet import activations

    relu = ACTIVATIONS["relu"]
    with pytest.raises(ValueError, match="activation 'relu' is registered twice"):
        activations._register(relu)
    with pytest.raises(ValueError, match="init must be 'he' or 'glorot', got 'lecun'"):
        activations._register(Activation("new", "x", relu.scalar, relu.batch, relu.batch_slope, init="lecun"))
    assert "new" not in ACTIVATIONS
