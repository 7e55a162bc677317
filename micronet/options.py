"""Options declared once: each one's rule, default and help, with messages in the caller's own words.

An optimizer, schedule, loss or dataset lists its options as `Option`s in
its registry entry; the config, `micronet.fit`, the estimators and the
classes themselves all check a value with the same rule. A rule is given
the name to show, so each door words the message in its own vocabulary:

    optimizer.momentum must be a finite number in [0, 1), got 2      (the config's key)
    momentum= must be a finite number in [0, 1), got 2               (micronet.fit's keyword)
    momentum must be a finite number in [0, 1), got 2                (an estimator's parameter)

Standard library only: the engine's layer imports it.
"""

from __future__ import annotations

import difflib
import math
import numbers
import reprlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OptionError",
    "Option",
    "Rule",
    "Real",
    "Integer",
    "Flag",
    "Choice",
    "RealPair",
    "IntList",
    "Text",
    "show",
    "check_options",
]


class OptionError(ValueError, TypeError):
    """A value an option's rule refuses. Both a ValueError and a TypeError (as scikit-learn's
    InvalidParameterError): to the caller a wrong type and a wrong value are the same mistake."""


_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother, _repr.maxlevel = 60, 60, 3
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4


def show(value: Any) -> str:
    """A short repr for messages, bounded for huge or deeply nested values."""
    try:
        return _repr.repr(value)
    except ValueError:  # an int too long to print
        return f"<{type(value).__name__}>"


class Rule(ABC):
    """What values an option takes: `rule(value, name)` returns the value, normalised, or raises
    OptionError worded with `name`. `kind` and `allowed` describe it for the docs."""

    kind = ""  # the type as the docs show it: float, int, bool, str, ...
    expected = ""  # the message's "must be ...": "a finite number > 0"
    allowed = ""  # the docs' column: "> 0"

    @abstractmethod
    def __call__(self, value: Any, name: str) -> Any:
        """The value, checked and normalised, or OptionError naming it `name`."""

    def fail(self, name: str, value: Any) -> OptionError:
        return OptionError(f"{name} must be {self.expected}, got {show(value)}")


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if high is None:
        return f"{'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


class Real(Rule):
    """A finite real number (not a bool) in an interval; returned as a float."""

    kind = "float"

    def __init__(self, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False) -> None:
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        self.allowed = "any finite number" if low is None and high is None else \
            _interval(low, high, low_open, high_open)
        self.expected = "a finite number" if low is None and high is None else f"a finite number {self.allowed}"

    def accepts(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return self.high is None or (x < self.high if self.high_open else x <= self.high)

    def __call__(self, value: Any, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self.fail(name, value)
        try:
            x = float(value)
        except OverflowError:  # an int beyond the float range
            raise self.fail(name, value) from None
        if not self.accepts(x):  # NaN fails every comparison too
            raise self.fail(name, value)
        return x


class Integer(Rule):
    """An int (a NumPy int too; not a bool, not 3.0) within bounds; returned as an int.

    `words` are strings accepted as they are (a batch size of "full").
    """

    kind = "int"

    def __init__(self, minimum: int, maximum: int | None = None, words: tuple[str, ...] = ()) -> None:
        self.minimum, self.maximum, self.words = minimum, maximum, words
        self.allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        self.expected = f"an int {self.allowed}" + "".join(f" or {w!r}" for w in words)
        if words:
            self.kind = f"int or {' or '.join(words)}"
            self.allowed += "".join(f", or {w}" for w in words)

    def __call__(self, value: Any, name: str) -> Any:
        if isinstance(value, str) and value in self.words:
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self.fail(name, value)
        n = int(value)
        if n < self.minimum or (self.maximum is not None and n > self.maximum):
            raise self.fail(name, value)
        return n


class Flag(Rule):
    """True or False (a NumPy bool too); never a number."""

    kind = "bool"
    expected = "true or false"
    allowed = "true or false"

    def __call__(self, value: Any, name: str) -> bool:
        kind = type(value)
        if isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")):  # NumPy's
            return bool(value)
        raise self.fail(name, value)


class Choice(Rule):
    """One of some names (a registry's keys, read when checking); a near miss gets a suggestion."""

    kind = "str"

    def __init__(self, choices: Collection[str] | Callable[[], Collection[str]]) -> None:
        self._choices = choices

    @property
    def choices(self) -> list[str]:
        return list(self._choices() if callable(self._choices) else self._choices)

    @property
    def allowed(self) -> str:  # type: ignore[override]  # computed: a registry may grow
        return ", ".join(self.choices)

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"one of {', '.join(self.choices)}"

    def __call__(self, value: Any, name: str) -> str:
        choices = self.choices
        if isinstance(value, str) and value in choices:
            return value
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise OptionError(f"{name} must be {self.expected}; got {show(value)}{hint}")


class RealPair(Rule):
    """Two real numbers, each within `each` (Adam's betas); returned as a tuple of floats."""

    kind = "[float, float]"

    def __init__(self, each: Real, what: str = "(a, b)") -> None:
        self.each = each
        self.allowed = f"each {each.allowed}"
        self.expected = f"a pair {what} of finite numbers, each {each.allowed}"

    def __call__(self, value: Any, name: str) -> tuple[float, float]:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != 2:
            raise self.fail(name, value)
        return (self.each(value[0], f"{name}[0]"), self.each(value[1], f"{name}[1]"))


class IntList(Rule):
    """A list (or tuple) of ints, each >= `minimum`; returned as a list."""

    kind = "list of int"

    def __init__(self, minimum: int, what: str = "") -> None:
        self.each = Integer(minimum)
        self.allowed = f"each >= {minimum}"
        self.expected = f"a list of ints >= {minimum}{what}"

    def __call__(self, value: Any, name: str) -> list[int]:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise self.fail(name, value)
        return [self.each(v, f"{name}[{i}]") for i, v in enumerate(value)]


class Text(Rule):
    """A non-empty string."""

    kind = "str"
    expected = "a non-empty string"
    allowed = "a non-empty string"

    def __call__(self, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, value)
        return value


@dataclass(frozen=True)
class Option:
    """One option: its rule, its default and a line of help.

    `default` None with `required` False means the option may stay unset;
    `unset` then says what that means (for example "the whole run", which
    the trainer fills in). A required option has no default.
    """

    rule: Rule
    default: Any = None
    help: str = ""
    required: bool = False
    unset: str = ""  # what None means, when None is a valid setting
    run_length: bool = False  # None means the run's length (cosine's T_max): the trainer fills it in

    def check(self, value: Any, name: str) -> Any:
        """The value, checked and normalised; None passes when the option may stay unset."""
        if value is None and not self.required and self.default is None:
            return None
        return self.rule(value, name)


def check_options(options: Mapping[str, Option], given: Mapping[str, Any], named: Callable[[str], str],
                  owner: str) -> dict[str, Any]:
    """Every option of `options` with its value: checked when given, else its default.

    `given` may hold only these options; `named(key)` is the key as the
    caller wrote it; `owner` names what takes the options ("optimizer
    'adam'") for the messages about an option it does not take.
    """
    for key in given:
        if key not in options:
            takes = ", ".join(options) or "no options"
            raise OptionError(f"{named(key)} does not apply to {owner} (it takes: {takes})")
    values = {}
    for key, option in options.items():
        if given.get(key) is not None:
            values[key] = option.check(given[key], named(key))
        elif option.required:
            raise OptionError(f"{named(key)} is required for {owner}")
        else:
            values[key] = option.default
    return values
