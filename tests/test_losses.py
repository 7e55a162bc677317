"""Losses: worked examples, stability, PyTorch's numbers and central differences."""

import json
import math
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micronet.engine import Value
from micronet.gradcheck import gradcheck
from micronet.losses import (
    CLASSIFICATION_LOSSES,
    LOSSES,
    REGRESSION_LOSSES,
    Loss,
    cross_entropy,
    get_loss,
    hinge_loss,
    huber_loss,
    l1_loss,
    log_softmax,
    mse_loss,
    multiclass_hinge_loss,
    one_hot_mse_loss,
    softmax,
)

DATA = Path(__file__).parent / "data"
GOLDENS = json.loads((DATA / "nn_goldens.json").read_text())["losses"]
REGRESSION_GOLDENS = json.loads((DATA / "loss_goldens.json").read_text())
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


# ----- regression losses ----------------------------------------------------------


def test_regression_losses_worked_example():
    outputs, targets = [3.0, -1.0, 0.5], [1.0, -1.5, 0.5]  # d = 2, 0.5, 0
    assert mse_loss(values(outputs), targets).data == pytest.approx((4.0 + 0.25 + 0.0) / 3, rel=ULPS)
    assert l1_loss(values(outputs), targets).data == pytest.approx((2.0 + 0.5) / 3, rel=ULPS)
    # huber, delta 1: linear 1 * (2 - 0.5) = 1.5; quadratic 0.125 and 0
    assert huber_loss(values(outputs), targets).data == pytest.approx((1.5 + 0.125) / 3, rel=ULPS)
    assert huber_loss(values(outputs), targets, delta=3.0).data == pytest.approx((2.0 + 0.125) / 3, rel=ULPS)


def test_a_single_output_takes_a_float_target():
    for loss in (mse_loss, l1_loss, huber_loss):
        assert loss([Value(2.0)], 0.5).data == loss([Value(2.0)], [0.5]).data
    assert mse_loss([Value(2.0)], 0.5).data == 2.25


def test_l1_slope_is_zero_where_output_equals_target():
    o = Value(0.5)
    l1_loss([o], 0.5).backward()
    assert o.grad == 0.0


@pytest.mark.parametrize("delta", [0.25, 1.0, 2.0])
def test_huber_is_smooth_where_its_pieces_meet(delta):
    """At |d| == delta both pieces give delta^2 / 2 and slope d (PyTorch takes the linear one)."""
    for sign in (1.0, -1.0):
        o = Value(0.5 + sign * delta)
        loss = huber_loss([o], 0.5, delta=delta)
        loss.backward()
        assert loss.data == delta * delta / 2 and o.grad == sign * delta


@pytest.mark.parametrize("loss", [mse_loss, l1_loss, huber_loss])
def test_regression_targets_are_checked(loss):
    name = loss.__name__
    with pytest.raises(ValueError, match=f"{name} needs as many targets as outputs, got 1 and 2"):
        loss(values([1.0, 2.0]), 0.5)
    with pytest.raises(ValueError, match=f"{name} needs as many targets as outputs, got 3 and 2"):
        loss(values([1.0, 2.0]), [0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match=f"{name} targets must be a number or a sequence of numbers, got str"):
        loss(values([1.0]), "1.0")
    with pytest.raises(TypeError, match=f"{name} targets must be real numbers, got NoneType"):
        loss(values([1.0, 2.0]), [1.0, None])
    with pytest.raises(ValueError, match=f"{name} needs at least one output"):
        loss([], [])


@pytest.mark.parametrize("delta", [0.0, -1.0, math.inf, math.nan, "1", True])
def test_huber_delta_must_be_positive_and_finite(delta):
    with pytest.raises(ValueError, match="huber delta must be a finite number > 0"):
        huber_loss(values([1.0]), 0.0, delta=delta)


@pytest.mark.parametrize("case", range(len(REGRESSION_GOLDENS["cases"])))
def test_regression_losses_match_pytorch(case):
    g = REGRESSION_GOLDENS["cases"][case]
    losses = {"mse": mse_loss, "l1": l1_loss}
    losses.update({f"huber_{d}": (lambda d: lambda o, t: huber_loss(o, t, delta=d))(d) for d in REGRESSION_GOLDENS["deltas"]})  # noqa: B023 - d is bound
    for name, loss in losses.items():
        outputs = values(g["outputs"])
        out = loss(outputs, g["targets"])
        out.backward()
        assert out.data == pytest.approx(g[name]["value"], rel=ULPS, abs=1e-15), name
        assert [o.grad for o in outputs] == pytest.approx(g[name]["grads"], rel=ULPS, abs=1e-15), name


def test_regression_goldens_cover_the_switch_points():
    kinks = {name: 0 for name in ("huber_0.5", "huber_1.0", "huber_2.0", "l1")}
    for g in REGRESSION_GOLDENS["cases"]:
        targets = g["targets"] if isinstance(g["targets"], list) else [g["targets"]]
        diffs = [abs(o - t) for o, t in zip(g["outputs"], targets)]
        for name in kinks:
            kinks[name] += (0.0 if name == "l1" else float(name.split("_")[1])) in diffs
    assert all(kinks.values()), kinks
    assert any(not isinstance(g["targets"], list) for g in REGRESSION_GOLDENS["cases"])


regression_outputs = st.lists(st.floats(-5, 5), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None)
@given(outputs=regression_outputs, data=st.data(), delta=st.floats(0.1, 3.0))
def test_regression_loss_gradients_match_central_differences(outputs, data, delta):
    targets = data.draw(st.lists(st.floats(-5, 5), min_size=len(outputs), max_size=len(outputs)))
    away = all(abs(o - t) > 1e-3 for o, t in zip(outputs, targets))  # l1's kink at d = 0
    assert gradcheck(lambda *o: mse_loss(list(o), targets), outputs)
    assert gradcheck(lambda *o: huber_loss(list(o), targets, delta=delta), outputs)  # C1 even where pieces meet
    if away:
        assert gradcheck(lambda *o: l1_loss(list(o), targets), outputs)


# ----- registries and get_loss -------------------------------------------------------


def test_registries_by_task():
    assert set(CLASSIFICATION_LOSSES) == {"cross_entropy", "hinge", "mse"}
    assert set(REGRESSION_LOSSES) == {"mse", "l1", "huber"}
    assert LOSSES is CLASSIFICATION_LOSSES  # the old name keeps working


def test_get_loss_returns_the_per_sample_callable():
    ce = get_loss("cross_entropy")
    assert ce.task == "classification" and ce(values([0.0, 3.0, -2.0, 1.0]), 3).data == pytest.approx(2.1755153626167147, rel=ULPS)
    one_hot = get_loss("mse")
    assert one_hot(values([0.2, 0.9]), 1).data == one_hot_mse_loss(values([0.2, 0.9]), 1).data
    regression = get_loss("mse", "regression")
    assert regression(values([0.2, 0.9]), [0.0, 1.0]).data == mse_loss(values([0.2, 0.9]), [0.0, 1.0]).data
    assert get_loss("l1", "regression")(values([2.0]), 0.5).data == 1.5


def test_get_loss_binds_options():
    huber = get_loss("huber", "regression", delta=0.5)
    assert (huber.name, huber.task, huber.options) == ("huber", "regression", {"delta": 0.5})
    assert huber([Value(3.0)], 0.0).data == 0.5 * (3.0 - 0.25)
    assert get_loss("huber", "regression")([Value(3.0)], 0.0).data == 2.5  # delta 1 by default
    hinge = get_loss("hinge", margin=2.0)
    assert hinge(values([1.0, 0.0]), 0).data == multiclass_hinge_loss(values([1.0, 0.0]), 0, margin=2.0).data
    assert repr(huber) == "get_loss('huber', task='regression', delta=0.5)"


def test_get_loss_results_pickle_and_compare_by_meaning():
    huber = get_loss("huber", "regression", delta=0.5)
    copy = pickle.loads(pickle.dumps(huber))
    assert copy == huber and hash(copy) == hash(huber) and copy != get_loss("huber", "regression")
    assert isinstance(copy, Loss) and copy([Value(3.0)], 0.0).data == huber([Value(3.0)], 0.0).data


@pytest.mark.parametrize("args, kwargs, message", [
    (("l2", "regression"), {}, r"regression loss must be one of mse, l1, huber, got 'l2'"),
    (("huber",), {}, r"classification loss must be one of cross_entropy, hinge, mse, got 'huber' \('huber' is a regression loss\)"),
    (("cross_entropy", "regression"), {}, r"regression loss must be one of mse, l1, huber, got 'cross_entropy' \('cross_entropy' is a classification loss\)"),
    (("mse", "ranking"), {}, r"task must be one of classification, regression, got 'ranking'"),
    (("huber", "regression"), {"delta": 0.0}, r"huber delta must be a finite number > 0, got 0.0"),
    (("huber", "regression"), {"margin": 1.0}, r"huber margin does not apply to regression loss 'huber' \(it takes: delta\)"),
    (("mse", "regression"), {"delta": 1.0}, r"mse delta does not apply to regression loss 'mse' \(it takes: no options\)"),
    (("hinge",), {"margin": math.nan}, r"hinge margin must be a finite number, got nan"),
])
def test_get_loss_refuses_unknown_names_tasks_and_options(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_loss(*args, **kwargs)
