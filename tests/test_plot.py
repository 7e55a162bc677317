"""Plots: real PNG files of the expected size, not blank, and showing what they claim.

Each check reads the PNG back, and where the picture's content matters the
test also records the Figure objects the functions build, to read the
numbers and labels that were drawn.
"""

import matplotlib.image as mpimg
import numpy as np
import pytest

from micronet import plot
from micronet.plot import class_colors, plot_confusion_matrix, plot_decision_boundary, plot_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path):
    """The image as (height, width, 3) floats in [0, 1], after checking it is a real PNG of some size."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > 10_000
    return mpimg.imread(path)[..., :3]


def assert_not_blank(image):
    assert image.std() > 0.05
    colours = np.unique((image * 255).round().astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) >= 20


def class_colours_present(image, n_palette, min_fraction=0.01):
    """Which of the first `n_palette` class colours cover part of the image, pure or faded towards white.

    Fading towards white scales (1 - rgb) without turning it, so a pixel shows
    class k's colour when its (1 - rgb) points the way (1 - colour_k) does.
    """
    ink = 1.0 - image.reshape(-1, 3)
    strength = np.linalg.norm(ink, axis=1)
    ink = ink[strength > 0.1] / strength[strength > 0.1, None]
    present = []
    for k, colour in enumerate(class_colors(n_palette)):
        direction = 1.0 - np.asarray(colour)
        direction /= np.linalg.norm(direction)
        if np.mean(ink @ direction > 0.998) > min_fraction:
            present.append(k)
    return present


@pytest.fixture
def figures(monkeypatch):
    """The Figures the plot functions build, kept for inspection."""
    kept = []

    class RecordedFigure(plot.Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            kept.append(self)

    monkeypatch.setattr(plot, "Figure", RecordedFigure)
    return kept


def history(n_epochs):
    """Metrics rows like metrics.csv: loss falling, accuracy rising."""
    return [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "test_loss": 1.2 / e,
            "train_accuracy": 1 - 0.5 / e,
            "test_accuracy": 1 - 0.6 / e,
            "lr": 0.1,
            "seconds": 0.01,
        }
        for e in range(1, n_epochs + 1)
    ]


# ----- loss and accuracy curves -----------------------------------------------------


def test_history_is_a_1000_by_400_png_that_is_not_blank(tmp_path):
    plot_history(history(10), tmp_path / "loss.png")
    image = read_png(tmp_path / "loss.png")
    assert image.shape == (400, 1000, 3)
    assert_not_blank(image)


def test_history_draws_loss_and_accuracy_panels_with_labels_and_legends(tmp_path, figures):
    rows = history(6)
    plot_history(rows, tmp_path / "loss.png")
    (fig,) = figures
    loss_ax, acc_ax = fig.axes
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        assert ax.get_xlabel() == "epoch"
        assert metric in ax.get_ylabel()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test"]
        train, test = ax.get_lines()
        assert list(train.get_xdata()) == [1, 2, 3, 4, 5, 6]
        assert list(train.get_ydata()) == [row[f"train_{metric}"] for row in rows]
        assert list(test.get_ydata()) == [row[f"test_{metric}"] for row in rows]


def test_history_with_one_epoch_still_draws_both_panels(tmp_path, figures):
    plot_history(history(1), tmp_path / "loss.png")
    image = read_png(tmp_path / "loss.png")
    assert image.shape == (400, 1000, 3)
    assert_not_blank(image)
    (fig,) = figures
    assert [len(line.get_xdata()) for ax in fig.axes for line in ax.get_lines()] == [1, 1, 1, 1]


# ----- decision boundary ---------------------------------------------------------------


def two_class_problem():
    """Class 0 left of x=0, class 1 right of it; a predictor that knows this."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(80, 2))
    y = (X[:, 0] > 0).astype(int)

    def predict_proba(G):
        p1 = 1 / (1 + np.exp(-2 * G[:, 0]))
        return np.column_stack([1 - p1, p1])

    return X[:60], y[:60], X[60:], y[60:], predict_proba


def four_class_problem():
    """One class per quadrant, and a predictor that knows this."""
    rng = np.random.default_rng(1)
    X = rng.uniform(-3, 3, size=(120, 2))
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0).astype(int)

    def predict_proba(G):
        k = (G[:, 0] > 0).astype(int) + 2 * (G[:, 1] > 0).astype(int)
        probs = np.full((len(G), 4), 0.05)
        probs[np.arange(len(G)), k] = 0.85
        return probs

    return X[:90], y[:90], X[90:], y[90:], predict_proba


def test_decision_boundary_is_a_600_by_500_png_that_is_not_blank(tmp_path):
    X_train, y_train, X_test, y_test, predict_proba = two_class_problem()
    plot_decision_boundary(predict_proba, X_train, y_train, X_test, y_test, tmp_path / "db.png")
    image = read_png(tmp_path / "db.png")
    assert image.shape == (500, 600, 3)
    assert_not_blank(image)


@pytest.mark.parametrize("problem, classes", [(two_class_problem, [0, 1]), (four_class_problem, [0, 1, 2, 3])])
def test_decision_boundary_shows_a_colour_per_class(tmp_path, problem, classes):
    X_train, y_train, X_test, y_test, predict_proba = problem()
    plot_decision_boundary(predict_proba, X_train, y_train, X_test, y_test, tmp_path / "db.png")
    assert class_colours_present(read_png(tmp_path / "db.png"), n_palette=4) == classes


def test_decision_boundary_asks_for_the_whole_grid_in_one_call(tmp_path):
    X_train, y_train, X_test, y_test, predict_proba = two_class_problem()
    calls = []

    def counting(G):
        calls.append(G.shape)
        return predict_proba(G)

    plot_decision_boundary(counting, X_train, y_train, X_test, y_test, tmp_path / "db.png", resolution=50)
    assert calls == [(50 * 50, 2)]


def test_decision_boundary_legend_names_train_and_test_of_every_class(tmp_path, figures):
    X_train, y_train, X_test, y_test, predict_proba = four_class_problem()
    names = ["north-west", "b", "c", "d"]
    plot_decision_boundary(predict_proba, X_train, y_train, X_test, y_test, tmp_path / "db.png", class_names=names)
    (fig,) = figures
    labels = {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
    assert labels == {f"{n} ({split})" for n in names for split in ("train", "test")}


# ----- confusion matrix ------------------------------------------------------------------

# A worked example: rows are the true class, columns the predicted one.
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2]
Y_PRED = [0, 1, 0, 1, 1, 2, 0, 2]
COUNTS = [
    [2, 1, 0],  # true 0: two right, one taken for 1
    [0, 2, 0],  # true 1: both right
    [1, 0, 2],  # true 2: one taken for 0
]


def test_confusion_matrix_is_a_500_by_400_png_that_is_not_blank(tmp_path):
    plot_confusion_matrix(Y_TRUE, Y_PRED, 3, tmp_path / "cm.png")
    image = read_png(tmp_path / "cm.png")
    assert image.shape == (400, 500, 3)
    assert_not_blank(image)


def test_confusion_matrix_counts_true_rows_against_predicted_columns(tmp_path, figures):
    names = ["setosa", "versicolor", "virginica"]
    plot_confusion_matrix(np.array(Y_TRUE), np.array(Y_PRED), 3, tmp_path / "cm.png", names)
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_images()[0].get_array().tolist() == COUNTS
    assert [t.get_text() for t in ax.texts] == [str(c) for row in COUNTS for c in row]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert "0.750" in ax.get_title()  # 6 of 8 on the diagonal


def test_confusion_matrix_counts_a_class_never_predicted_as_a_zero_column(tmp_path, figures):
    plot_confusion_matrix([0, 1, 2, 3], [0, 0, 2, 2], 4, tmp_path / "cm.png")
    (fig,) = figures
    counts = np.array(fig.axes[0].get_images()[0].get_array())
    assert counts.tolist() == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]]


def test_confusion_matrix_grows_with_the_number_of_classes(tmp_path):
    y = np.arange(10).repeat(3)
    plot_confusion_matrix(y, np.roll(y, 1), 10, tmp_path / "cm.png")
    image = read_png(tmp_path / "cm.png")
    assert image.shape == (700, 800, 3)  # 0.5 inch per class plus margins
    assert_not_blank(image)
