"""Tasks as specs: what a classification or regression run measures, which way is better, and how it is shown.

Every door reads these entries: the loop scores each split with a task's
metrics, early stopping takes its monitor names and its mode from them,
metrics.csv, the sweep's columns and panels, the terminal line and the
pictures label and format them from here. Adding a metric is one `Metric`
in its task's tuple (and a test of its numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["LOSS", "TASKS", "Metric", "Task", "class_report", "find_metric", "headlines"]


@dataclass(frozen=True)
class Metric:
    """One number recorded per split and epoch (metrics.csv's `<split>_<name>`, Keras's `<name>`, `val_<name>`)."""

    name: str  # the key after the split prefix
    better: str  # "max" or "min": early stopping's mode and the sweep's ranking
    # (outputs, y, target scale) -> the value; outputs are the model's raw outputs (logits, or the
    # standardised prediction), scale the target's standard deviation (1.0 when not standardised).
    # None for the loss, which the executor computes.
    compute: Callable[[np.ndarray, np.ndarray, np.ndarray | float], float] | None
    short: str  # in terminal lines and text tables (ASCII): "acc", "r2"
    label: str  # in legends and panel names: "accuracy", "R²"
    axis: str  # a y axis's label: "mean absolute error"
    title: str  # a panel's title: "Accuracy"
    digits: int  # decimals in terminal lines and tables
    limits: tuple[float, float] | None = None  # the value's fixed range, for the axis (accuracy: 0 to 1)

    def show(self, value: float) -> str:
        """The value as terminal lines and tables print it."""
        return f"{value:.{self.digits}f}"


def _accuracy(outputs: np.ndarray, y: np.ndarray, scale: np.ndarray | float) -> float:
    """The fraction of samples whose largest output is their label's."""
    return float(np.mean(outputs.argmax(axis=1) == y))


def _confusion(outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The (k, k) confusion matrix of the predicted classes: row = true class, column = predicted."""
    predicted = outputs.argmax(axis=1)
    truth = np.asarray(y, dtype=np.int64)
    k = max(outputs.shape[1], int(truth.max()) + 1 if len(truth) else 0)
    return np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)


# Balanced accuracy and macro F1 are scored every epoch on every split, so they are read off the
# confusion matrix (microseconds) rather than through scikit-learn's functions, whose checks cost
# milliseconds a call; tests/test_tasks.py holds them equal to balanced_accuracy_score and
# f1_score(average="macro", zero_division=0) on every case. A class missing from a split's labels
# or predictions is what those functions would warn about; here it is simply counted as they count it.


def _balanced_accuracy(outputs: np.ndarray, y: np.ndarray, scale: np.ndarray | float) -> float:
    """The mean over the split's true classes of each class's recall (scikit-learn's balanced_accuracy_score)."""
    if len(y) == 0:
        return math.nan
    matrix = _confusion(outputs, y)
    support = matrix.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(matrix)[present] / support[present]))


def _macro_f1(outputs: np.ndarray, y: np.ndarray, scale: np.ndarray | float) -> float:
    """The unweighted mean of each class's F1 = 2tp / (2tp + fp + fn), over the classes in truth or prediction."""
    if len(y) == 0:
        return math.nan
    matrix = _confusion(outputs, y)
    tp, truth, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    seen = (truth + predicted) > 0  # 2tp + fp + fn = truth + predicted: never 0 for these
    return float(np.mean(2 * tp[seen] / (truth[seen] + predicted[seen])))


def _columns(outputs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, truth) as (n, k) arrays, one column per target."""
    truth = y.reshape(len(y), -1)
    return outputs.reshape(truth.shape), truth


def _mae(outputs: np.ndarray, y: np.ndarray, scale: np.ndarray | float) -> float:
    """The mean over outputs of each output's mean absolute error, in the target's own units."""
    predicted, truth = _columns(outputs, y)
    return float(np.mean(np.abs(predicted - truth) * scale))


def _r2(outputs: np.ndarray, y: np.ndarray, scale: np.ndarray | float) -> float:
    """The mean over outputs of R² (scale-free); a constant target scores 1 if matched exactly, else 0."""
    predicted, truth = _columns(outputs, y)
    residual = np.sum((truth - predicted) ** 2, axis=0)
    spread = np.sum((truth - truth.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(spread > 0, 1.0 - residual / spread, np.where(residual == 0, 1.0, 0.0))
    return float(np.mean(r2))


# The loss is recorded for every task; the executor computes it.
LOSS = Metric("loss", better="min", compute=None, short="loss", label="loss", axis="loss (mean per sample)",
              title="Loss", digits=4)


@dataclass(frozen=True)
class Task:
    """A task's metrics, in metrics.csv's column order, and the one shown beside the loss."""

    name: str
    metrics: tuple[Metric, ...]
    headline: str  # the metric printed beside the loss, drawn in loss.png and captioned in the GIF

    def metric(self, name: str) -> Metric:
        """The metric called `name` (the loss included)."""
        for metric in (LOSS, *self.metrics):
            if metric.name == name:
                return metric
        raise KeyError(name)

    @property
    def headline_metric(self) -> Metric:
        """The `Metric` named by `headline`."""
        return self.metric(self.headline)

    @property
    def shown(self) -> tuple[Metric, ...]:
        """The metrics headline first: the order of the sweep's panels and tables."""
        return tuple(sorted(self.metrics, key=lambda m: m.name != self.headline))

    def monitors(self) -> tuple[str, ...]:
        """What early stopping may monitor, in Keras's names: loss and the metrics, then their val_ twins."""
        names = (LOSS.name, *(m.name for m in self.metrics))
        return (*names, *(f"val_{n}" for n in names))

    def score(self, outputs: np.ndarray, y: np.ndarray, scale: np.ndarray | float = 1.0) -> dict[str, float]:
        """Every metric of the task for one split, by name."""
        return {m.name: m.compute(outputs, y, scale) for m in self.metrics if m.compute is not None}


TASKS: dict[str, Task] = {
    "classification": Task(
        "classification",
        (
            Metric("accuracy", better="max", compute=_accuracy, short="acc", label="accuracy", axis="accuracy",
                   title="Accuracy", digits=3, limits=(0.0, 1.0)),
            Metric("balanced_accuracy", better="max", compute=_balanced_accuracy, short="bacc",
                   label="balanced accuracy", axis="balanced accuracy", title="Balanced accuracy", digits=3,
                   limits=(0.0, 1.0)),
            Metric("f1_macro", better="max", compute=_macro_f1, short="f1", label="macro F1", axis="macro F1",
                   title="Macro F1", digits=3, limits=(0.0, 1.0)),
        ),
        headline="accuracy",
    ),
    "regression": Task(
        "regression",
        (
            Metric("mae", better="min", compute=_mae, short="mae", label="MAE", axis="mean absolute error",
                   title="Mean absolute error", digits=4),
            Metric("r2", better="max", compute=_r2, short="r2", label="R²", axis="R²", title="R²", digits=3),
        ),
        headline="r2",
    ),
}


def find_metric(key: str) -> Metric | None:
    """The metric a metrics key names (`test_r2`, `val_loss`, `accuracy`), in any task; None if none does."""
    for prefix in ("train_", "val_", "test_"):
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    if key == LOSS.name:
        return LOSS
    return next((m for task in TASKS.values() for m in task.metrics if m.name == key), None)


def headlines() -> list[Metric]:
    """Each task's headline metric, in the registry's order: what a history is scored by when its task is unknown."""
    return [task.headline_metric for task in TASKS.values()]


COLLAPSE_ADVICE = "the classes may be imbalanced: try training.class_weight: balanced"


def class_report(outputs: np.ndarray, y: np.ndarray, names: list[object]) -> dict[str, object]:
    """Per-class precision, recall and F1 of one split (scikit-learn's precision_recall_fscore_support), keyed by
    class name, and `collapsed` when the model predicts one class for every sample of a split that holds others."""
    import warnings

    from sklearn.metrics import precision_recall_fscore_support

    predicted = outputs.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision, recall, f1, _ = precision_recall_fscore_support(
            y, predicted, labels=list(range(len(names))), zero_division=0.0)
    report: dict[str, object] = {"per_class": {str(name): {"precision": float(p), "recall": float(r), "f1": float(f)}
                                  for name, p, r, f in zip(names, precision, recall, f1)}}
    if len(y) and len(np.unique(predicted)) == 1 and len(np.unique(y)) > 1:
        report["collapsed"] = {
            "predicted_class": str(names[int(predicted[0])]),
            "balanced_accuracy": _balanced_accuracy(outputs, y, 1.0),
            "advice": COLLAPSE_ADVICE,
        }
    return report
