"""Tasks as specs: what a classification or regression run measures, which way is better, and how it is shown.

Every door reads these entries: the loop scores each split with a task's
metrics, early stopping takes its monitor names and its mode from them,
metrics.csv, the sweep's columns and panels, the terminal line and the
pictures label and format them from here. Adding a metric is one `Metric`
in its task's tuple (and a test of its numbers).
"""

from __future__ import annotations

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


# The last scores by (function, labels, predictions): a split's predictions often stop changing long before
# training does, and scikit-learn's checks cost milliseconds per call, which every split pays every epoch.
_SCORED: dict[tuple[str, bytes, bytes], float] = {}


def _sklearn_score(function: str, outputs: np.ndarray, y: np.ndarray, **options: object) -> float:
    """scikit-learn's `sklearn.metrics.<function>` of the predicted classes, with its warnings kept off the terminal.

    A split whose predictions miss a class, or hold one its labels lack, makes
    scikit-learn warn (balanced accuracy) or divide by zero (F1, where
    `zero_division=0` scores such a class 0 as the warning would); a run
    reports the number, not the warning. The arguments are already checked
    (integer labels, finite outputs), so scikit-learn's own validation is
    skipped.
    """
    predicted = outputs.argmax(axis=1)
    truth = np.ascontiguousarray(y, dtype=np.int64)
    key = (function, truth.tobytes(), predicted.astype(np.int64).tobytes())
    known = _SCORED.get(key)  # one lookup: another thread may clear the cache between two
    if known is not None:
        return known
    import warnings

    import sklearn
    from sklearn import metrics

    with warnings.catch_warnings(), sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        warnings.simplefilter("ignore")
        value = float(getattr(metrics, function)(truth, predicted, **options))
    if len(_SCORED) >= 256:
        _SCORED.clear()
    _SCORED[key] = value
    return value


def _balanced_accuracy(outputs: np.ndarray, y: np.ndarray, scale: np.ndarray | float) -> float:
    """The mean over the split's classes of each class's recall (scikit-learn's balanced_accuracy_score)."""
    return _sklearn_score("balanced_accuracy_score", outputs, y)


def _macro_f1(outputs: np.ndarray, y: np.ndarray, scale: np.ndarray | float) -> float:
    """The unweighted mean of the per-class F1 over the classes in truth or prediction (scikit-learn's f1_score)."""
    return _sklearn_score("f1_score", outputs, y, average="macro", zero_division=0.0)


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
