"""The run's defaults: one table, the same through every door.

The config, `micronet.fit`, `MicronetClassifier`, `MicronetRegressor` and
the playground all take their defaults from `SETTINGS` (and an optimizer's
or schedule's options from its own declaration in `micronet.optim`), and
check a value with the setting's rule, worded with the name the door gives
it. Where a door must differ, `DIFFERENCES` says how and why;
docs/config.md shows both tables, and a test builds a run through every
door and reads the settings back against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from micronet.activations import ACTIVATIONS
from micronet.optim import OPTIMIZERS
from micronet.options import Choice, Flag, Integer, IntList, Option, Real, Text

__all__ = ["BACKENDS", "DIFFERENCES", "Difference", "MAX_SEED", "SETTINGS", "Setting", "default",
           "hidden_activations"]

BACKENDS = ("compiled", "eager")
MAX_SEED = 2**32 - 1  # NumPy's and scikit-learn's random_state limit


def hidden_activations() -> list[str]:
    """The activations a hidden layer may use: every registered one but the identity, which adds nothing there."""
    return [name for name, spec in ACTIVATIONS.items() if not spec.identity]


@dataclass(frozen=True)
class Setting:
    """One setting: its rule, default and help, and the name each door gives it (None: not there).

    `by_task` holds the default when it depends on the task.
    """

    option: Option
    config: str  # the config's dotted key
    fit: str | None  # micronet.fit's keyword
    estimator: str | None  # MicronetClassifier's and MicronetRegressor's parameter
    by_task: Mapping[str, Any] = field(default_factory=dict)

    def default(self, task: str = "classification") -> Any:
        return self.by_task[task] if self.by_task else self.option.default


SETTINGS: dict[str, Setting] = {
    "seed": Setting(Option(Integer(0, MAX_SEED), 0, "seeds data, split, initialisation and shuffling"),
                    "seed", "seed", "random_state"),
    "dataset": Setting(Option(Text(), help="what to learn from; a key of micronet.data.DATASETS"),
                       "dataset.name", None, None, {"classification": "moons", "regression": "sine"}),
    "hidden": Setting(Option(IntList(1, " (layer widths; [] for a linear model)"), (16, 16), "hidden layer widths"),
                      "model.hidden", None, "hidden"),
    "activation": Setting(Option(Choice(hidden_activations), "relu", "the hidden layers' activation"),
                          "model.activation", None, "activation"),
    "loss": Setting(Option(Text(), help="the per-sample loss, one of the task's"), "loss.name", "loss", "loss",
                    {"classification": "cross_entropy", "regression": "mse"}),
    "optimizer": Setting(Option(Choice(OPTIMIZERS), help="how the parameters are updated"),
                         "optimizer.name", "optimizer", "optimizer", {"classification": "sgd", "regression": "adam"}),
    "epochs": Setting(Option(Integer(1), 100, "passes over the training split"), "training.epochs", "epochs", "epochs"),
    "batch_size": Setting(Option(Integer(1, words=("full",)), 32, "samples per step"),
                          "training.batch_size", "batch_size", "batch_size"),
    "shuffle": Setting(Option(Flag(), True, "reshuffle the training split every epoch"),
                       "training.shuffle", "shuffle", "shuffle"),
    "backend": Setting(Option(Choice(BACKENDS), "compiled", "compiled batches, or eager Value graphs"),
                       "training.backend", "backend", "backend"),
    "validation_split": Setting(Option(Real(0.0, 1.0, high_open=True), 0.0,
                                       "the training split's fraction held out for validation"),
                                "training.validation_split", "validation_split", None),
}


@dataclass(frozen=True)
class Difference:
    """Where one door's default differs from the table: the door's value (None: the door has none), and why."""

    door: str
    setting: str  # the config key
    value: Any
    shown: str  # the value as the docs show it
    why: str


DIFFERENCES = (
    Difference("estimators", "seed", None, "`random_state=None`: a fresh seed per fit",
               "scikit-learn's convention; pass an int to repeat a fit"),
    Difference("estimators", "training.epochs", 100, "`100`, as a cap",
               "as MLPClassifier's max_iter: training also ends once the training loss (with early_stopping, the "
               "validation score) has not improved by `tol=1e-4` for `n_iter_no_change=10` epochs"),
    Difference("playground", "optimizer.lr", 0.03, "`0.03`", "TensorFlow Playground's rate: small steps, so the "
               "page shows the boundary moving epoch by epoch"),
    Difference("playground", "training.batch_size", 10, "`10`",
               "TensorFlow Playground's batch size, for the same reason"),
    Difference("playground", "training.epochs", None, "none", "the page trains until it is paused"),
)


def default(key: str, task: str = "classification") -> Any:
    """The default of setting `key` for `task` (a list or tuple comes back as a fresh list)."""
    value = SETTINGS[key].default(task)
    return list(value) if isinstance(value, (list, tuple)) else value
