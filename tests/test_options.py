"""The shared check rules: what each accepts and returns, and the message it words with the caller's name."""

import math

import numpy as np
import pytest

from micronet.options import (
    Choice,
    Flag,
    Integer,
    IntList,
    Option,
    OptionError,
    Real,
    RealPair,
    Text,
    check_options,
)

FRACTION = Real(0.0, 1.0, high_open=True)


@pytest.mark.parametrize("rule, value, wanted", [
    (FRACTION, 0, 0.0),
    (FRACTION, np.float32(0.5), 0.5),
    (Real(0.0, low_open=True), 10**300, 1e300),
    (Real(), -7, -7.0),
    (Integer(1), np.int64(3), 3),
    (Integer(1, words=("full",)), "full", "full"),
    (Flag(), np.bool_(True), True),
    (Choice(["sgd", "adam"]), "adam", "adam"),
    (RealPair(FRACTION), [0.5, 0], (0.5, 0.0)),
    (IntList(1), (np.int32(4), 2), [4, 2]),
    (Text(), "x.csv", "x.csv"),
])
def test_a_rule_returns_the_value_normalised(rule, value, wanted):
    got = rule(value, "x")
    assert got == wanted and type(got) is type(wanted)


@pytest.mark.parametrize("rule, value, message", [
    (FRACTION, 1.0, "momentum must be a finite number in [0, 1), got 1.0"),
    (FRACTION, math.nan, "momentum must be a finite number in [0, 1), got nan"),
    (FRACTION, True, "momentum must be a finite number in [0, 1), got True"),  # a bool is no number
    (FRACTION, "0.5", "momentum must be a finite number in [0, 1), got '0.5'"),
    (Real(0.0, low_open=True), 10**400, "momentum must be a finite number > 0, got 1000"),  # beyond float: repr cut
    (Real(0.0, 1.0, low_open=True), 0.0, "momentum must be a finite number in (0, 1], got 0.0"),
    (Real(), math.inf, "momentum must be a finite number, got inf"),
    (Integer(1), 2.0, "momentum must be an int >= 1, got 2.0"),
    (Integer(1), False, "momentum must be an int >= 1, got False"),
    (Integer(0, 9), 10, "momentum must be an int in [0, 9], got 10"),
    (Integer(1, words=("full",)), "half", "momentum must be an int >= 1 or 'full', got 'half'"),
    (Flag(), 1, "momentum must be true or false, got 1"),
    (Choice(["nesterov", "momentum"]), "momentun", "momentum must be one of nesterov, momentum; got 'momentun' "
                                                  "(did you mean 'momentum'?)"),
    (Choice(["a", "b"]), 3, "momentum must be one of a, b; got 3"),
    (RealPair(FRACTION, "(beta1, beta2)"), 0.9, "momentum must be a pair (beta1, beta2) of finite numbers, "
                                                "each in [0, 1), got 0.9"),
    (RealPair(FRACTION), (0.5, 1.5), "momentum[1] must be a finite number in [0, 1), got 1.5"),
    (IntList(1), "16", "momentum must be a list of ints >= 1, got '16'"),
    (IntList(1), [4, 0], "momentum[1] must be an int >= 1, got 0"),
    (Text(), " ", "momentum must be a non-empty string, got ' '"),
])
def test_a_rule_names_the_value_as_the_caller_wrote_it(rule, value, message):
    with pytest.raises(OptionError) as caught:
        rule(value, "momentum")
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TypeError)  # either catch works


def test_the_same_rule_speaks_each_doors_words():
    for name in ("optimizer.lr", "lr=", "lr"):
        with pytest.raises(OptionError, match=rf"^{name} must be a finite number > 0, got -1$"):
            Real(0.0, low_open=True)(-1, name)


def test_a_choice_reads_its_registry_when_checking():
    registry = {"a": 1}
    rule = Choice(registry)
    registry["b"] = 2
    assert rule("b", "x") == "b" and rule.allowed == "a, b"


OPTIONS = {
    "size": Option(Integer(1), help="required", required=True),
    "rate": Option(Real(0.0), 0.5),
    "length": Option(Integer(1), None, unset="the whole run", run_length=True),
}


def test_check_options_fills_defaults_and_checks_what_is_given():
    values = check_options(OPTIONS, {"size": 3}, lambda k: f"s.{k}", "thing 't'")
    assert values == {"size": 3, "rate": 0.5, "length": None}
    assert check_options(OPTIONS, {"size": 3, "length": 7}, str, "t")["length"] == 7


@pytest.mark.parametrize("given, message", [
    ({}, r"^s.size is required for thing 't'$"),
    ({"size": 2, "colour": 1}, r"^s.colour does not apply to thing 't' \(it takes: size, rate, length\)$"),
    ({"size": 2, "rate": -1}, r"^s.rate must be a finite number >= 0, got -1$"),
    ({"size": 2, "length": 0}, r"^s.length must be an int >= 1, got 0$"),
])
def test_check_options_refuses_in_the_callers_words(given, message):
    with pytest.raises(OptionError, match=message):
        check_options(OPTIONS, given, lambda k: f"s.{k}", "thing 't'")
