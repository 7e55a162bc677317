"""Losses: worked examples, stability, PyTorch's numbers and central differences."""

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micronet.engine import Value
from micronet.gradcheck import gradcheck
from micronet.losses import (
    LOSSES,
    cross_entropy,
    hinge_loss,
    log_softmax,
    mse_loss,
    multiclass_hinge_loss,
    one_hot_mse_loss,
    softmax,
)

GOLDENS = json.loads((Path(__file__).parent / "data" / "nn_goldens.json").read_text())["losses"]
ULPS = 1e-13  # relative: a few units in the last place


def values(xs):
    return [Value(x) for x in xs]


def test_softmax_nll_worked_example():
    logits = values([0.0, 3.0, -2.0, 1.0])
    loss = -softmax(logits)[3].log()
    loss.backward()
    assert loss.data == pytest.approx(2.1755153626167147, rel=ULPS)
    expected = [0.041772570515350445, 0.8390245074625319, 0.005653302662216329, -0.8864503806400986]
    assert [v.grad for v in logits] == pytest.approx(expected, rel=ULPS)


def test_cross_entropy_equals_softmax_nll():
    logits = values([0.0, 3.0, -2.0, 1.0])
    loss = cross_entropy(logits, 3)
    loss.backward()
    assert loss.data == pytest.approx(2.1755153626167147, rel=ULPS)
    assert logits[3].grad == pytest.approx(-0.8864503806400986, rel=ULPS)


def test_gradient_of_one_softmax_output():
    logits = values([10.0, 3.0])
    softmax(logits)[1].backward()
    assert [v.grad for v in logits] == pytest.approx([-0.0009102211801218266, 0.0009102211801218265], rel=ULPS)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = values([1000.0, 0.0, -1000.0])
    loss = cross_entropy(logits, 1)
    loss.backward()
    assert loss.data == 1000.0
    assert [v.grad for v in logits] == [1.0, -1.0, 0.0]
    assert [p.data for p in softmax(values([1000.0, 0.0]))] == [1.0, 0.0]
    assert log_softmax(values([1000.0, 0.0]))[1].data == -1000.0


@pytest.mark.parametrize("target", [-1, 3, 10])
def test_target_out_of_range_is_named(target):
    with pytest.raises(IndexError, match=f"target {target} is out of range for 3 classes"):
        cross_entropy(values([1.0, 2.0, 3.0]), target)


@pytest.mark.parametrize("target", [1.0, "1", True, None])
def test_target_must_be_an_integer(target):
    with pytest.raises(TypeError, match="target must be an integer class index"):
        cross_entropy(values([1.0, 2.0]), target)


def test_hinge_loss_formula_and_labels():
    assert hinge_loss(Value(0.3), 1).data == pytest.approx(0.7)
    assert hinge_loss(Value(0.3), -1).data == pytest.approx(1.3)
    assert hinge_loss(Value(2.0), 1).data == 0.0
    with pytest.raises(ValueError, match="label must be -1 or \\+1, got 0"):
        hinge_loss(Value(0.3), 0)


def test_mse_loss_is_the_mean_of_squares():
    assert mse_loss(values([1.0, 2.0]), [0.0, 4.0]).data == 2.5
    with pytest.raises(ValueError, match="as many targets as outputs, got 1 and 2"):
        mse_loss(values([1.0, 2.0]), [0.0])


def test_multiclass_hinge_worked_example():
    # margin 1, target 0: terms max(0, 1 - 2 + 1.5) = 0.5 and max(0, 1 - 2 - 3) = 0, over K = 3.
    assert multiclass_hinge_loss(values([2.0, 1.5, -3.0]), 0).data == pytest.approx(0.5 / 3)


def test_registry_functions_take_logits_and_class_index():
    assert set(LOSSES) == {"cross_entropy", "hinge", "mse"}
    for loss in LOSSES.values():
        assert isinstance(loss(values([0.5, -0.5, 2.0]), 2), Value)


@pytest.mark.parametrize("case", range(len(GOLDENS)))
def test_losses_match_pytorch(case):
    g = GOLDENS[case]

    def check(name, fn, leaves):
        out = fn(leaves)
        if isinstance(out, list):
            assert [o.data for o in out] == pytest.approx(g[name]["value"], rel=ULPS, abs=1e-15)
            return
        out.backward()
        assert out.data == pytest.approx(g[name]["value"], rel=ULPS, abs=1e-15)
        assert [v.grad for v in leaves] == pytest.approx(g[name]["grads"][0], rel=1e-12, abs=1e-15)

    t = g["target"]
    check("cross_entropy", lambda v: cross_entropy(v, t), values(g["logits"]))
    check("log_softmax", log_softmax, values(g["logits"]))
    check("softmax", softmax, values(g["logits"]))
    check("multiclass_hinge", lambda v: multiclass_hinge_loss(v, t), values(g["logits"]))
    check("mse", lambda v: mse_loss(v, g["targets"]), values(g["logits"]))
    score = Value(g["score"])
    out = hinge_loss(score, g["label"])
    out.backward()
    assert out.data == pytest.approx(g["hinge"]["value"], rel=ULPS) and score.grad == g["hinge"]["grads"][0]


logit_lists = st.lists(st.floats(-30, 30), min_size=2, max_size=5)


@settings(max_examples=40, deadline=None)
@given(logits=logit_lists, data=st.data())
def test_loss_gradients_match_central_differences(logits, data):
    t = data.draw(st.integers(0, len(logits) - 1))
    assert gradcheck(lambda *v: cross_entropy(list(v), t), logits)
    assert gradcheck(lambda *v: log_softmax(list(v))[t], logits)
    assert gradcheck(lambda *v: softmax(list(v))[t], logits, atol=1e-7)
    assert gradcheck(lambda *v: one_hot_mse_loss(list(v), t), logits)


@settings(max_examples=40, deadline=None)
@given(logits=st.lists(st.floats(-30, 30), min_size=2, max_size=5).filter(
    lambda xs: all(abs(abs(a - b) - 1.0) > 1e-3 for a in xs for b in xs)  # away from the hinge's kinks
))
def test_multiclass_hinge_gradient_away_from_kinks(logits):
    assert gradcheck(lambda *v: multiclass_hinge_loss(list(v), 0), logits)


@settings(max_examples=40, deadline=None)
@given(logits=st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=6))
def test_softmax_sums_to_one_for_any_magnitude(logits):
    probs = [p.data for p in softmax(values(logits))]
    assert all(0.0 <= p <= 1.0 for p in probs) and math.isclose(sum(probs), 1.0, rel_tol=1e-12)
