"""The pictures a practitioner checks after a run, drawn headless (Agg).

Every function takes plain arrays (or a prediction function) and a path, and
writes one PNG; nothing here knows about configs or run directories. Figures
are built directly (not through pyplot's global state), so no display is
needed and plots can be drawn from several threads at once.
"""

import matplotlib
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from micronet.files import write_figure

__all__ = ["plot_history", "plot_decision_boundary", "plot_confusion_matrix", "class_colors"]


def class_colors(n_classes):
    """One distinct colour per class: tab10, then tab20 beyond ten classes."""
    cmap = matplotlib.colormaps["tab10" if n_classes <= 10 else "tab20"]
    return [to_rgb(cmap(i % cmap.N)) for i in range(n_classes)]


def plot_history(history, path):
    """Loss and accuracy per epoch, train against test, in two panels.

    `history` is a list of dicts with keys epoch, train_loss, test_loss,
    train_accuracy, test_accuracy (the rows of metrics.csv).
    """
    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for split, style in (("train", "-"), ("test", "--")):
        loss_ax.plot(epochs, [row[f"{split}_loss"] for row in history], style, label=split)
        acc_ax.plot(epochs, [row[f"{split}_accuracy"] for row in history], style, label=split)
    loss_ax.set(xlabel="epoch", ylabel="loss (mean per sample)", title="Loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(-0.02, 1.02))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    write_figure(fig, path, dpi=100)  # atomically, never through a symlink


def plot_decision_boundary(predict_proba, X_train, y_train, X_test, y_test, path, class_names=None, resolution=200):
    """Predicted class regions over a grid, shaded by confidence, with the data on top.

    `predict_proba(X) -> (n, k)` is called once on the whole grid (so a
    vectorised model draws a 200x200 grid in one batch). A cell takes its
    predicted class's colour, faded towards white as the top probability
    falls towards chance (1/k). Training points are circles, test points
    crosses, coloured by their true class.
    """
    X_all = np.vstack([X_train, X_test])
    lo, hi = X_all.min(axis=0), X_all.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-9)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    probs = np.asarray(predict_proba(np.column_stack([grid_x.ravel(), grid_y.ravel()])))
    n_classes = probs.shape[1]
    colors = np.array(class_colors(n_classes))
    top = probs.max(axis=1)
    confidence = np.clip((top - 1.0 / n_classes) / (1.0 - 1.0 / n_classes), 0.0, 1.0)
    shade = 0.25 + 0.5 * confidence[:, None]  # even an unsure cell shows its class
    rgb = 1.0 - shade * (1.0 - colors[probs.argmax(axis=1)])
    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    ax.imshow(
        rgb.reshape(resolution, resolution, 3),
        origin="lower",
        extent=(xs[0], xs[-1], ys[0], ys[-1]),
        aspect="auto",
        interpolation="bilinear",
    )
    names = class_names if class_names is not None else list(range(n_classes))
    for k in range(n_classes):
        for X, y, split, marker, size in ((X_train, y_train, "train", "o", 22), (X_test, y_test, "test", "X", 40)):
            if np.any(y == k):  # no legend entry for an empty split
                ax.scatter(*X[y == k].T, color=colors[k], marker=marker, edgecolor="black", s=size, label=f"{names[k]} ({split})")
    ax.set(xlabel="feature 0", ylabel="feature 1", title="Decision boundary")
    ax.legend(fontsize="small", loc="best", ncol=2 if n_classes > 3 else 1)
    write_figure(fig, path, dpi=100)  # atomically, never through a symlink


def plot_confusion_matrix(y_true, y_pred, n_classes, path, class_names=None):
    """Counts of (true class, predicted class) on the test split, with the counts written in."""
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    names = [str(n) for n in (class_names if class_names is not None else range(n_classes))]
    size = max(4.0, 0.5 * n_classes + 2)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, label="samples")
    threshold = matrix.max() / 2.0
    for i in range(n_classes):
        for j in range(n_classes):
            ax.text(j, i, matrix[i, j], ha="center", va="center", color="white" if matrix[i, j] > threshold else "black")
    ax.set_xticks(range(n_classes), names, rotation=45 if n_classes > 5 else 0)
    ax.set_yticks(range(n_classes), names)
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set(xlabel="predicted class", ylabel="true class", title=f"Confusion matrix (test accuracy {accuracy:.3f})")
    write_figure(fig, path, dpi=100)  # atomically, never through a symlink
