"""Task specs: each metric's numbers, and every door deriving its names, modes, columns and labels from them."""

import csv
import json

import numpy as np
import pytest

from micronet import plot
from micronet.config import ConfigError, parse_config
from micronet.loop import EarlyStopping, ProgressBar, fit, score
from micronet.nn import MLP
from micronet.rundir import metric_columns
from micronet.sweep import format_table
from micronet.tasks import LOSS, TASKS, Metric, Task, find_metric, headlines
from micronet.train import run


def test_the_metrics_of_each_task_in_metrics_csv_order():
    assert [m.name for m in TASKS["classification"].metrics] == ["accuracy"]
    assert [m.name for m in TASKS["regression"].metrics] == ["mae", "r2"]  # the order of existing metrics.csv files
    assert [m.name for m in TASKS["regression"].shown] == ["r2", "mae"]  # the headline first
    assert [m.name for m in headlines()] == ["accuracy", "r2"]


def test_accuracy_r2_and_mae_as_worked_examples():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0], [1.0, 2.0]])
    assert TASKS["classification"].score(logits, np.array([0, 1, 1, 0])) == {"accuracy": 0.5}
    # truth 1, 2, 3 (mean 2, spread 2); prediction 1, 2, 4: residual 1, so R² = 1 - 1/2
    # absolute errors 0, 0, 1 in standardised units, times a scale of 3: MAE = 3/3 = 1
    outputs, y = np.array([[1.0], [2.0], [4.0]]), np.array([1.0, 2.0, 3.0])
    assert TASKS["regression"].score(outputs, y, np.array([3.0])) == {"mae": 1.0, "r2": 0.5}


def test_which_way_is_better_sets_early_stoppings_auto_mode():
    assert [EarlyStopping(k).mode for k in ("loss", "val_loss", "accuracy", "val_accuracy")] == ["min", "min", "max", "max"]
    assert [EarlyStopping(k).mode for k in ("mae", "val_mae", "r2", "val_r2")] == ["min", "min", "max", "max"]
    assert EarlyStopping("my_own_score").mode == "min"  # a key no spec names: lower is better, as Keras's auto
    assert find_metric("test_r2") is TASKS["regression"].metric("r2") and find_metric("val_loss") is LOSS
    assert find_metric("balanced_accuracy") is None


def test_early_stoppings_monitors_are_the_tasks_metrics():
    assert TASKS["regression"].monitors() == ("loss", "mae", "r2", "val_loss", "val_mae", "val_r2")
    stopping = {"patience": 3, "monitor": "val_r2"}
    config = parse_config({"dataset": "sine", "training": {"validation_split": 0.2, "early_stopping": stopping}})
    assert config.training.early_stopping.monitor == "val_r2"
    with pytest.raises(ConfigError, match=r"training.early_stopping.monitor must be one of loss, accuracy, val_loss, "
                                          r"val_accuracy; got 'val_r2'"):
        parse_config({"dataset": "moons", "training": {"validation_split": 0.2, "early_stopping": stopping}})


def error_rate(outputs, y, scale):
    return float(np.mean(outputs.argmax(axis=1) != y))


@pytest.fixture
def with_error_rate(monkeypatch):
    """Classification with one more metric, added as one entry of its spec."""
    task = TASKS["classification"]
    added = Metric("error", better="min", compute=error_rate, short="err", label="error rate", axis="error rate",
                   title="Error rate", digits=2, limits=(0.0, 1.0))
    monkeypatch.setitem(TASKS, "classification", Task(task.name, (*task.metrics, added), task.headline))
    return added


def test_a_new_metric_is_one_entry_and_every_door_has_it(with_error_rate, tmp_path):
    assert score("classification", np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([0, 1])) == {"accuracy": 0.5,
                                                                                             "error": 0.5}
    assert metric_columns("classification", validating=True)[1:10] == [
        "train_loss", "train_accuracy", "train_error", "val_loss", "val_accuracy", "val_error",
        "test_loss", "test_accuracy", "test_error"]  # fmt: skip
    assert EarlyStopping("val_error").mode == "min"

    mapping = {"dataset": {"name": "moons", "n_samples": 60}, "model": {"hidden": [4]},
               "training": {"epochs": 2, "validation_split": 0.25,
                            "early_stopping": {"monitor": "val_error", "patience": 5}}}
    (tmp_path / "run").mkdir()
    summary = run(parse_config(mapping), tmp_path / "run")
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["test_error"]) for r in rows][-1] == pytest.approx(1 - float(rows[-1]["test_accuracy"]))
    assert summary["test_error"] == json.loads((tmp_path / "run" / "summary.json").read_text())["test_error"]

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 2)), rng.integers(0, 2, 20)
    history = fit(MLP(2, [3, 2], seed=0), X, y, epochs=2, validation_split=0.25, progress=False)
    assert {"error", "val_error"} <= set(history.history)

    table = format_table([{"index": 0, "status": "completed", "error": None, "train_loss": 0.5, "test_loss": 0.25,
                           "test_accuracy": 0.875, "test_error": 0.125, "seconds": 1.0}], [])
    assert table.splitlines()[0].split() == "# status train loss test loss test acc test err seconds".split()
    assert table.splitlines()[1].split() == ["0", "completed", "0.5000", "0.2500", "0.875", "0.12", "1.0"]


def test_the_pictures_label_and_bound_metrics_from_their_specs():
    rows = [{"epoch": e, "train_loss": 1 / e, "test_loss": 1.2 / e, "train_r2": 1 - 1 / e, "test_r2": 0.9 - 1 / e}
            for e in (1, 2, 3)]
    ax = plot.history(rows)
    assert ax.get_ylabel() == "loss (mean per sample) / R²"
    assert [line.get_label() for line in ax.get_lines()] == ["train loss", "test loss", "train R²", "test R²"]
    accuracy = plot.history([{"epoch": 1, "train_accuracy": 0.5}, {"epoch": 2, "train_accuracy": 1.0}],
                            metric="accuracy")
    assert accuracy.get_ylim() == pytest.approx((-0.02, 1.02))  # accuracy's fixed range, with a margin


def test_the_progress_bar_shows_each_tasks_headline(monkeypatch):
    shown = {}

    class Bar:
        def update(self, n):
            pass

        def set_postfix(self, values):
            shown.update(values)

    bar = ProgressBar.__new__(ProgressBar)
    bar.bar = Bar()
    bar.on_epoch_end(1, {"loss": 0.123456, "val_loss": 0.5, "r2": 0.1, "val_r2": 0.87654, "test_r2": 0.5})
    assert shown == {"train_loss": "0.1235", "val_loss": "0.5000", "val_r2": "0.877", "test_r2": "0.500"}
