"""The pictures a practitioner checks after a run, as Axes you can embed anywhere.

Each plotting function draws on the `ax` you give it and returns it; without
one it builds its own `matplotlib.figure.Figure` (never pyplot, so nothing
global changes, no display is needed, and plots can be drawn from several
threads at once). `save_figure` writes any of them atomically. The
`plot_*(..., path)` functions are the run directory's files, drawn by these
same functions. Nothing here knows about configs or run directories.

Figures made here get fixed margins rather than matplotlib's constrained
layout: the layout solver measured at about 0.2 s per run for the two moons
plots, more than everything else together.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import ArrayLike

from micronet.files import write_figure
from micronet.palette import SPLIT_COLORS, class_colors
from micronet.tasks import LOSS, TASKS, find_metric, headlines

if TYPE_CHECKING:  # annotations only: nn and callbacks are imported when a model is drawn
    from matplotlib.axes import Axes

    from micronet.callbacks import History
    from micronet.nn import Module

__all__ = [
    "METRICS",
    "SPLITS",
    "class_colors",
    "decision_boundary",
    "history",
    "confusion_matrix",
    "regression_fit",
    "predicted_vs_true",
    "save_figure",
    "plot_history",
    "plot_decision_boundary",
    "plot_confusion_matrix",
]

DPI = 100
# Axis labels and titles per metric name, as in metrics.csv (train_<metric>) and Keras (<metric>, val_<metric>),
# from the task specs.
METRICS = {m.name: (m.axis, m.title) for m in (LOSS, *(m for task in TASKS.values() for m in task.metrics))}
SPLITS = tuple(SPLIT_COLORS.items())  # (split, colour): blue, orange, green


def _new_figure(figsize, standalone=False, **options) -> Figure:
    """A Figure for a plot called without `ax=`.

    In Jupyter, or once the caller uses pyplot, it is a pyplot figure, so a
    notebook shows it like any other. Otherwise, and always for the files of
    a run directory (`standalone`), it is a headless Figure that touches no
    global state, so plots can be drawn from several threads at once.
    """
    if not standalone and ("ipykernel" in sys.modules or "matplotlib.pyplot" in sys.modules):
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, dpi=DPI, **options)
    fig = Figure(figsize=figsize, dpi=DPI, **options)
    FigureCanvasAgg(fig)  # headless, and gives a renderer to measure text with
    return fig


def _new_axes(width, height, left=0.8, right=0.25, bottom=0.6, top=0.45, standalone=False) -> Axes:
    """One Axes inside margins given in inches, on a new width x height inch figure."""
    fig = _new_figure((width, height), standalone)
    return fig.add_axes((left / width, bottom / height, 1 - (left + right) / width, 1 - (bottom + top) / height))


def _array(name, values, ndim=None) -> np.ndarray:
    try:
        array = np.asarray(values)
    except ValueError as e:
        raise ValueError(f"{name} must be an array: {e}") from None
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    return array


# ----- decision boundary --------------------------------------------------------------


def _proba_function(model) -> Callable:
    """(n, 2) array -> (n, k) probabilities, for a Module, a fitted estimator or a plain function."""
    from micronet.nn import Module

    if isinstance(model, Module):
        from micronet.predict import predict_proba

        return lambda G: predict_proba(model, G)
    if hasattr(model, "predict_proba"):
        return model.predict_proba
    if callable(model):
        return model
    raise TypeError(
        "model must be a micronet Module, an object with predict_proba (a MicronetClassifier, what micronet.load "
        f"returns), or a function mapping an (n, 2) array to class probabilities; got {type(model).__name__}"
    )


def _class_index(name, y, classes, n_classes):
    """Labels as column indices of predict_proba: through `classes` when known, else they are the indices."""
    if classes is not None:
        lookup = {label: k for k, label in enumerate(np.asarray(classes).tolist())}
        unknown = sorted({v for v in y.tolist() if v not in lookup}, key=str)
        if unknown:
            raise ValueError(f"{name} has labels the model does not know: {unknown[:5]} (its classes: {list(lookup)})")
        return np.array([lookup[v] for v in y.tolist()], dtype=np.int64)
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise ValueError(f"{name} must hold class indices 0..{n_classes - 1} for this model, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name} must hold class indices 0..{n_classes - 1}, got values from {y.min()} to {y.max()}")
    return y.astype(np.int64)


def decision_boundary(
    model: Module | Callable[[np.ndarray], np.ndarray],
    X: ArrayLike,
    y: ArrayLike,
    *,
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    ax: Axes | None = None,
    resolution: int = 200,
    class_names: Sequence | None = None,
    standardized: bool = False,
    title: str | None = None,
    feature_names: Sequence[str] | None = None,
) -> Axes:
    """Predicted class regions over the plane of two features, shaded by confidence, with the data on top.

    `model` is a micronet Module (softmax of its outputs), anything with
    `predict_proba` (a MicronetClassifier, what `micronet.load` returns), or
    a function from an (n, 2) array to (n, k) probabilities; it is called
    once, on the grid and the points together. `y` (and `y_test`) are labels
    from the model's `classes_` when it has them, class indices otherwise.
    Training points are circles, test points crosses; a cell takes its
    predicted class's colour, faded towards white as its top probability
    falls towards chance. The title gives the accuracy; the legend sits
    outside the axes, so it never hides a point.
    """
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    proba = _proba_function(model)
    X = _array("X", X, 2).astype(np.float64)
    y = _array("y", y, 1)
    if X.shape[1] != 2 or len(X) != len(y):
        raise ValueError(f"X must be (n, 2) with one label in y per row, got X {X.shape} and y {y.shape}")
    splits = [("train", X, y, "o")]
    if X_test is not None or y_test is not None:
        if X_test is None or y_test is None:
            raise ValueError("X_test and y_test go together; give both or neither")
        X_test, y_test = _array("X_test", X_test, 2).astype(np.float64), _array("y_test", y_test, 1)
        if X_test.shape[1] != 2 or len(X_test) != len(y_test):
            raise ValueError(f"X_test must be (n, 2) with one label per row, got {X_test.shape} and {y_test.shape}")
        if len(X_test):  # an empty test split (a run without one) draws as no test split
            splits.append(("test", X_test, y_test, "X"))

    points = np.vstack([s[1] for s in splits])
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-9)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    probs = np.asarray(proba(np.vstack([grid, points])), dtype=np.float64)
    if probs.ndim != 2 or len(probs) != len(grid) + len(points) or probs.shape[1] < 2:
        raise ValueError(f"the model must give (n, k >= 2) class probabilities, got shape {probs.shape}")
    n_classes = probs.shape[1]
    classes = getattr(model, "classes_", None)
    names = list(class_names) if class_names is not None else (
        list(np.asarray(classes).tolist()) if classes is not None else list(range(n_classes)))

    colors = np.array(class_colors(n_classes))
    grid_probs = probs[: len(grid)]
    top = grid_probs.max(axis=1)
    confidence = np.clip((top - 1.0 / n_classes) / (1.0 - 1.0 / n_classes), 0.0, 1.0)
    shade = 0.25 + 0.5 * confidence[:, None]  # even an unsure cell shows its class
    rgb = 1.0 - shade * (1.0 - colors[grid_probs.argmax(axis=1)])
    rgb = np.round(255 * rgb).astype(np.uint8)  # bytes draw faster than floats (no normalising pass)

    own_figure = ax is None
    if ax is None:
        ax = _new_axes(7.5, 5.0)
    ax.imshow(rgb.reshape(resolution, resolution, 3), origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]),
              aspect="auto", interpolation="bilinear")
    predicted = probs[len(grid):].argmax(axis=1)
    scores, start = [], 0
    for split, Xs, ys_, marker in splits:
        index = _class_index("y" if split == "train" else "y_test", ys_, classes, n_classes)
        ax.scatter(Xs[:, 0], Xs[:, 1], c=colors[index], marker=marker, s=26 if marker == "o" else 42,
                   edgecolors="black", linewidths=0.6)
        accuracy = np.mean(predicted[start:start + len(Xs)] == index)
        scores.append(f"{split} accuracy {accuracy:.3f}" if len(splits) == 2 else f"accuracy {accuracy:.3f}")
        start += len(Xs)
    features = list(feature_names) if feature_names is not None else ["feature 0", "feature 1"]
    suffix = " (standardised)" if standardized else ""
    ax.set(xlabel=features[0] + suffix, ylabel=features[1] + suffix, title=f"{title or 'Decision boundary'}\n"
           + ", ".join(scores))
    handles = [Line2D([], [], ls="", marker="s", ms=9, mfc=colors[k], mec="black", mew=0.6, label=str(names[k]))
               for k in range(n_classes)]
    if len(splits) == 2:
        handles += [Line2D([], [], ls="", marker=m, ms=7, mfc="0.85", mec="black", mew=0.6, label=split)
                    for split, _, _, m in splits]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              fontsize="small", frameon=False)
    if own_figure:
        _room_for_legend(ax)
    return ax


def _room_for_legend(ax) -> None:
    """Narrow an Axes that fills its own figure so the legend outside its right edge fits, measured, not guessed."""
    fig: Any = ax.figure  # an Agg figure from _new_axes
    legend = ax.get_legend()
    width = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi
    left, right = 0.8, width + 0.45
    fig_width = fig.get_figwidth()
    ax.set_position((left / fig_width, ax.get_position().y0, 1 - (left + right) / fig_width,
                     ax.get_position().height))


# ----- training curves ------------------------------------------------------------------


def _curves(history):
    """(epochs, {column name: values}) from metrics rows, a dict of lists, or an object with .history."""
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        columns = {k: list(v) for k, v in history.history.items()}
        n = max((len(v) for v in columns.values()), default=0)
        epochs = list(getattr(history, "epoch", None) or range(1, n + 1))
    elif isinstance(history, Mapping):
        columns = {k: list(v) for k, v in history.items()}
        n = max((len(v) for v in columns.values()), default=0)
        epochs = list(columns.pop("epoch", range(1, n + 1)))
    elif isinstance(history, Sequence) and all(isinstance(row, Mapping) for row in history):
        keys = [k for k in (history[0] if history else {}) if k != "epoch"]
        columns = {k: [row.get(k, np.nan) for row in history] for k in keys}
        epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    else:
        raise TypeError(
            "history must be a list of per-epoch dicts (metrics.csv rows), a dict of per-epoch lists, "
            f"or an object with a .history dict (micronet's or Keras' History); got {type(history).__name__}"
        )
    if not epochs:
        raise ValueError("history is empty: no epoch to plot")
    return epochs, columns


def history(history: History | Sequence[Mapping], ax: Axes | None = None, *, metric: str | None = None) -> Axes:
    """Training curves per epoch on one Axes: a colour per split (train, validation, test).

    `history` is a list of metrics.csv rows (train_loss, test_loss, ...), a
    dict of per-epoch lists, or an object whose `.history` is one, keyed as
    Keras does (loss, val_loss, accuracy, val_accuracy). By default the
    loss (solid) and, when recorded, accuracy or R² (dashed) share the
    Axes, as Keras users plot them; `metric` picks a single curve instead
    (loss, accuracy, mae, r2 or any other key). A `best_epoch` attribute,
    when set, is marked with a vertical line.
    """
    epochs, columns = _curves(history)
    if metric is None:
        score = next((m.name for m in headlines() if _split_keys(columns, m.name)), None)
        metrics = ["loss"] + ([score] if score else [])
    else:
        metrics = [metric]
    if not _split_keys(columns, metrics[0]):
        raise ValueError(f"history has no {metrics[0]!r} values; its columns are {', '.join(columns) or 'none'}")
    if ax is None:
        ax = _new_axes(6.0, 4.2)
    for metric_name, style in zip(metrics, ("-", "--")):
        for split, key, color in _split_keys(columns, metric_name):
            known = find_metric(metric_name)
            label = split if len(metrics) == 1 else f"{split} {metric_name if known is None else known.label}"
            ax.plot(epochs[: len(columns[key])], columns[key], style, color=color, label=label)
    best = getattr(history, "best_epoch", None)
    if best is not None:
        ax.axvline(best, color="0.4", lw=1, ls="-.", label=f"best epoch ({best})")
    if len(metrics) == 1:
        ylabel, title = METRICS.get(metrics[0], (metrics[0], metrics[0]))
    else:
        ylabel, title = " / ".join(METRICS[m][0] for m in metrics), " and ".join(METRICS[m][1] for m in metrics)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    first = find_metric(metrics[0])
    if len(metrics) == 1 and first is not None and first.limits is not None:
        _fixed_range(ax, first.limits)
    ax.grid(alpha=0.3)
    # Scores that rise towards a ceiling run along the top edge, where "best" can sit flush against them.
    ax.legend(loc="lower right" if first is not None and first.better == "max" else "best", framealpha=0.8)
    return ax


def _fixed_range(ax: Axes, limits: tuple[float, float]) -> None:
    """A metric's whole range on the y axis, with a margin so that points on its ends stay visible."""
    lo, hi = limits
    margin = 0.02 * (hi - lo)
    ax.set_ylim(lo - margin, hi + margin)


def _split_keys(columns, metric):
    """(split, column, colour) for each split that recorded `metric`, in the order train, validation, test."""
    keys = {"train": (f"train_{metric}", metric), "validation": (f"val_{metric}",), "test": (f"test_{metric}",)}
    return [(split, next(k for k in keys[split] if k in columns), color) for split, color in SPLITS
            if any(k in columns for k in keys[split])]


# ----- confusion matrix -----------------------------------------------------------------


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, *, labels: Sequence | None = None,
                     normalize: str | None = None, ax: Axes | None = None, display_labels: Sequence | None = None,
                     title: str | None = None) -> Axes:
    """Counts (or fractions, with `normalize` "true", "pred" or "all") of true class against predicted class.

    Drawn by scikit-learn's ConfusionMatrixDisplay (`labels` and `normalize`
    mean what they mean there); the title gives the accuracy.
    """
    from sklearn.metrics import ConfusionMatrixDisplay
    from sklearn.metrics import confusion_matrix as count

    y_true, y_pred = _array("y_true", y_true, 1), _array("y_pred", y_pred, 1)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred must have the same length, got {len(y_true)} and {len(y_pred)}")
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}")
    if labels is None:
        labels = np.unique(np.concatenate([y_true, y_pred]))  # type: ignore[assignment]  # an array of labels
    matrix = count(y_true, y_pred, labels=labels, normalize=normalize)
    n = len(matrix)
    if ax is None:
        ax = _confusion_axes(n)
    shown = list(display_labels) if display_labels is not None else [str(v) for v in np.asarray(labels).tolist()]
    display = ConfusionMatrixDisplay(matrix, display_labels=shown)
    display.plot(ax=ax, cmap="Blues", colorbar=True, xticks_rotation=45 if n > 5 else "horizontal")
    display.im_.colorbar.set_label("fraction" if normalize else "samples")
    accuracy = float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")
    ax.set(xlabel="predicted class", ylabel="true class",
           title=f"{title or 'Confusion matrix'} (accuracy {accuracy:.3f})")
    return ax


def _confusion_axes(n_classes, standalone=False) -> Axes:
    """Constrained layout here (off the moons path): it fits long class names and the colorbar."""
    size = max(4.0, 0.5 * n_classes + 2)
    return _new_figure((size + 1, size), standalone, layout="constrained").add_subplot()


# ----- regression -------------------------------------------------------------------------


def _values_function(model) -> Callable:
    """(n, d) array -> (n,) predicted values, for a Module, a fitted regressor or a plain function."""
    from micronet.nn import Module

    if isinstance(model, Module):
        from micronet.predict import predict

        return lambda G: predict(model, G, task="regression")
    if hasattr(model, "predict"):
        return model.predict
    if callable(model):
        return model
    raise TypeError("model must be a micronet Module, an object with predict, or a function mapping an (n, 1) array "
                    f"to values; got {type(model).__name__}")


def r2_score(y_true: np.ndarray | Sequence, y_pred: np.ndarray | Sequence) -> float:
    """scikit-learn's R², averaged over output columns; for a constant target 1 if exact, else 0."""
    from sklearn.metrics import r2_score

    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    return float(r2_score(y_true, np.asarray(y_pred, dtype=np.float64).reshape(y_true.shape)))


def regression_fit(model: Module | Callable[[np.ndarray], np.ndarray], X: ArrayLike, y: ArrayLike,
                   ax: Axes | None = None, true_function: Callable | None = None, *,
                   title: str | None = None) -> Axes:
    """A 1-D regression: the data points, the learned curve over a dense grid, and the true curve if known.

    `model` is a micronet Module (its raw output), anything with `predict`,
    or a function from an (n, 1) array to n values; `true_function` maps a
    1-D array of x to y. R² on the data points goes in the title.
    """
    values = _values_function(model)
    X = _array("X", X).astype(np.float64)
    X = X.reshape(-1, 1) if X.ndim == 1 else X
    y = _array("y", y).astype(np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 1 or len(X) != len(y):
        raise ValueError(f"regression_fit needs one input feature: X of shape (n, 1) and n targets, "
                         f"got X {X.shape} and y {y.shape}")
    lo, hi = X.min(), X.max()
    pad = 0.05 * max(hi - lo, 1e-9)
    grid = np.linspace(lo - pad, hi + pad, 400)
    out = np.asarray(values(np.vstack([grid[:, None], X])), dtype=np.float64)
    if out.size != len(grid) + len(X):
        raise ValueError(f"the model must give one value per row, got shape {out.shape}")
    out = out.reshape(-1)
    curve, fitted = out[: len(grid)], out[len(grid):]
    if ax is None:
        ax = _new_axes(6.0, 4.5)
    ax.scatter(X[:, 0], y, s=14, color="tab:blue", alpha=0.6, edgecolors="none", label="data")
    if true_function is not None:
        ax.plot(grid, np.asarray(true_function(grid), dtype=np.float64).reshape(-1), "--", color="0.3", lw=1.5,
                label="true function")
    ax.plot(grid, curve, color="tab:red", lw=2, label="model")
    ax.set(xlabel="x", ylabel="y", title=f"{title or 'Fit'} (R² {r2_score(y, fitted):.3f})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", framealpha=0.8)
    return ax


def predicted_vs_true(y_true: ArrayLike, y_pred: ArrayLike, ax: Axes | None = None, *,
                      title: str | None = None) -> Axes:
    """Predicted against true values with the identity line (perfect predictions), R² in the title."""
    y_true = _array("y_true", y_true).astype(np.float64)
    y_pred = _array("y_pred", y_pred).astype(np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim not in (1, 2) or len(y_true) == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and of the same shape, got {y_true.shape} "
                         f"and {y_pred.shape}")
    if ax is None:
        ax = _new_axes(5.0, 5.0)
    true_cols, pred_cols = y_true.reshape(len(y_true), -1), y_pred.reshape(len(y_pred), -1)
    for j in range(true_cols.shape[1]):
        ax.scatter(true_cols[:, j], pred_cols[:, j], s=16, alpha=0.7, edgecolors="none",
                   label=f"output {j}" if true_cols.shape[1] > 1 else None)
    lo, hi = min(y_true.min(), y_pred.min()), max(y_true.max(), y_pred.max())
    pad = 0.05 * max(hi - lo, 1e-9)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.3", lw=1, ls="--", label="predicted = true")
    ax.set(xlim=(lo - pad, hi + pad), ylim=(lo - pad, hi + pad), xlabel="true value", ylabel="predicted value",
           title=f"{title or 'Predicted against true'} (R² {r2_score(y_true, y_pred):.3f})")
    ax.set_aspect("equal", adjustable="box")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", framealpha=0.8)
    return ax


# ----- files --------------------------------------------------------------------------------


def save_figure(ax_or_fig: Axes | Figure, path: str | os.PathLike, *, dpi: int = DPI) -> Path:
    """Write the figure holding `ax_or_fig` to `path` (format from the suffix) atomically.

    The image goes to a new temporary file beside `path`, which then replaces
    it: readers see the old file or the new one, and a symlink at `path` is
    replaced, never written through.
    """
    fig: Any = ax_or_fig
    for _ in range(8):  # an Axes (or SubFigure) up to the Figure that holds it
        if isinstance(fig, Figure):
            break
        fig = getattr(fig, "figure", None)
    if not isinstance(fig, Figure):
        raise TypeError(f"save_figure takes a matplotlib Axes or Figure, got {type(ax_or_fig).__name__}")
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"cannot save {str(path)!r}: the suffix must be one of .{', .'.join(supported)}")
    # zlib level 1: a third faster than the default 6, for files about 10% larger
    write_figure(fig, path, dpi=dpi, **({"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}))
    return path


def plot_history(history_rows: Sequence[Mapping], path: str | os.PathLike) -> Path:
    """loss.png: loss per epoch beside accuracy (or R² for regression runs), from metrics.csv rows."""
    _, columns = _curves(history_rows)
    second = next((m.name for m in headlines() if f"train_{m.name}" in columns or m.name in columns), None)
    fig = Figure(figsize=(10, 4), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.13, top=0.91, wspace=0.22)
    axes = fig.subplots(1, 2 if second else 1, squeeze=False)[0]
    history(history_rows, axes[0], metric="loss")
    if second:
        history(history_rows, axes[1], metric=second)
    return save_figure(fig, path)


def plot_decision_boundary(predict_proba: Callable[[np.ndarray], np.ndarray], X_train: np.ndarray,
                           y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, path: str | os.PathLike,
                           class_names: Sequence | None = None, resolution: int = 200,
                           standardized: bool = False) -> Path:
    """decision_boundary.png: `decision_boundary` for a probability function, with both splits."""
    ax = decision_boundary(predict_proba, X_train, y_train, X_test=X_test, y_test=y_test, class_names=class_names,
                           resolution=resolution, standardized=standardized, ax=_new_axes(7.5, 5.0, standalone=True))
    _room_for_legend(ax)  # the Axes was made here, so it may shrink for the legend as a plot's own figure does
    return save_figure(ax, path)


def plot_confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int, path: str | os.PathLike,
                          class_names: Sequence | None = None) -> Path:
    """confusion_matrix.png: counts on the test split for classes 0..n_classes-1."""
    names = None if class_names is None else [str(n) for n in class_names]
    ax = confusion_matrix(y_true, y_pred, labels=list(range(n_classes)), display_labels=names,
                          ax=_confusion_axes(n_classes, standalone=True))
    return save_figure(ax, path)


def plot_predictions(y_true: ArrayLike, y_pred: ArrayLike, path: str | os.PathLike) -> Path:
    """predictions.png: `predicted_vs_true` on the test split."""
    ax = predicted_vs_true(y_true, y_pred, _new_axes(5.0, 5.0, standalone=True), title="Test split")
    return save_figure(ax, path)


def plot_fit(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray, path: str | os.PathLike,
             true_function: Callable | None = None) -> Path:
    """fit.png: `regression_fit` of a 1-input model over its training data."""
    ax = regression_fit(predict, X, y, _new_axes(6.0, 4.5, standalone=True), true_function, title="Training split")
    return save_figure(ax, path)
