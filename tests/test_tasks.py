"""Task specs: each metric's numbers, and every door deriving its names, modes, columns and labels from them."""

import csv
import json
import warnings

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
    assert [m.name for m in TASKS["classification"].metrics] == ["accuracy", "balanced_accuracy", "f1_macro"]
    assert [m.name for m in TASKS["regression"].metrics] == ["mae", "r2"]  # the order of existing metrics.csv files
    assert [m.name for m in TASKS["regression"].shown] == ["r2", "mae"]  # the headline first
    assert [m.name for m in headlines()] == ["accuracy", "r2"]


def test_accuracy_r2_and_mae_as_worked_examples():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0], [1.0, 2.0]])
    assert TASKS["classification"].score(logits, np.array([0, 1, 1, 0]))["accuracy"] == 0.5
    # truth 1, 2, 3 (mean 2, spread 2); prediction 1, 2, 4: residual 1, so R² = 1 - 1/2
    # absolute errors 0, 0, 1 in standardised units, times a scale of 3: MAE = 3/3 = 1
    outputs, y = np.array([[1.0], [2.0], [4.0]]), np.array([1.0, 2.0, 3.0])
    assert TASKS["regression"].score(outputs, y, np.array([3.0])) == {"mae": 1.0, "r2": 0.5}


def test_balanced_accuracy_and_macro_f1_as_worked_examples_without_a_warning():
    one_class = np.array([[1.0, 0.0]] * 4)  # predicts class 0 for all four samples
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's warnings about empty classes must not escape
        # truth 0, 0, 0, 1: recall 1 for class 0, 0 for class 1, so balanced accuracy 1/2 where accuracy is 3/4;
        # F1 of class 0 = 2 * (3/4 * 1) / (3/4 + 1) = 6/7, of class 1 = 0 (nothing predicted): macro 3/7
        scores = TASKS["classification"].score(one_class, np.array([0, 0, 0, 1]))
        assert scores == pytest.approx({"accuracy": 0.75, "balanced_accuracy": 0.5, "f1_macro": 3 / 7})
        # predicted 0, 2, 1, 1 for truth 0, 0, 1, 1: class 2 is predicted but absent from the truth.
        # Balanced accuracy averages the recall of the classes present (1/2 and 1): 3/4. Macro F1 averages
        # classes 0, 1, 2: 2/3 (precision 1, recall 1/2), 1, and 0: 5/9.
        logits = np.eye(3)[[0, 2, 1, 1]]
        scores = TASKS["classification"].score(logits, np.array([0, 0, 1, 1]))
        assert scores == pytest.approx({"accuracy": 0.75, "balanced_accuracy": 0.75, "f1_macro": 5 / 9})


@pytest.mark.parametrize("seed", range(12))
def test_balanced_accuracy_and_macro_f1_are_scikit_learns(seed):
    """The confusion-matrix forms equal scikit-learn's functions, with classes missing from truth or predictions."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 40)), int(rng.integers(2, 6))
    logits, y = rng.normal(size=(n, k)), rng.integers(0, max(1, k - seed % 3), n)  # some classes never true
    logits[:, : seed % 2] -= 10.0  # and, for odd seeds, class 0 never predicted
    predicted = logits.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about the missing classes; the numbers are the point
        expected_bacc = balanced_accuracy_score(y, predicted)
        expected_f1 = f1_score(y, predicted, average="macro", zero_division=0.0)
    scores = TASKS["classification"].score(logits, y)
    assert scores["balanced_accuracy"] == pytest.approx(expected_bacc, rel=1e-12)
    assert scores["f1_macro"] == pytest.approx(expected_f1, rel=1e-12)


def test_which_way_is_better_sets_early_stoppings_auto_mode():
    assert [EarlyStopping(k).mode for k in ("loss", "val_loss", "accuracy", "val_accuracy")] == ["min", "min", "max", "max"]
    assert [EarlyStopping(k).mode for k in ("mae", "val_mae", "r2", "val_r2")] == ["min", "min", "max", "max"]
    assert EarlyStopping("my_own_score").mode == "min"  # a key no spec names: lower is better, as Keras's auto
    assert find_metric("test_r2") is TASKS["regression"].metric("r2") and find_metric("val_loss") is LOSS
    assert find_metric("val_balanced_accuracy") is TASKS["classification"].metric("balanced_accuracy")
    assert EarlyStopping("val_f1_macro").mode == "max"
    assert find_metric("brier") is None


def test_early_stoppings_monitors_are_the_tasks_metrics():
    assert TASKS["regression"].monitors() == ("loss", "mae", "r2", "val_loss", "val_mae", "val_r2")
    stopping = {"patience": 3, "monitor": "val_r2"}
    config = parse_config({"dataset": "sine", "training": {"validation_split": 0.2, "early_stopping": stopping}})
    assert config.training.early_stopping.monitor == "val_r2"
    with pytest.raises(ConfigError, match=r"training.early_stopping.monitor must be one of loss, accuracy, "
                                          r"balanced_accuracy, f1_macro, val_loss, val_accuracy, "
                                          r"val_balanced_accuracy, val_f1_macro; got 'val_r2'"):
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
    assert score("classification", np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([0, 1])) == pytest.approx(
        {"accuracy": 0.5, "balanced_accuracy": 0.5, "f1_macro": 1 / 3, "error": 0.5})
    assert metric_columns("classification", validating=True)[1:16] == [
        "train_loss", "train_accuracy", "train_balanced_accuracy", "train_f1_macro", "train_error",
        "val_loss", "val_accuracy", "val_balanced_accuracy", "val_f1_macro", "val_error",
        "test_loss", "test_accuracy", "test_balanced_accuracy", "test_f1_macro", "test_error"]  # fmt: skip
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
