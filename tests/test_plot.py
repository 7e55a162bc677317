"""Plots: real PNG files of the expected size, not blank, and showing what they claim.

Each check reads the PNG back, and where the picture's content matters the
test also records the Figure objects the functions build, to read the
numbers and labels that were drawn.
"""

import sys

import matplotlib.image as mpimg
import numpy as np
import pytest

from micronet import plot
from micronet.plot import class_colors, plot_confusion_matrix, plot_decision_boundary, plot_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_pyplot_figures():
    """Once a test imports pyplot, plots without ax= open pyplot figures (as in a notebook): close them."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


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


def test_decision_boundary_is_a_750_by_500_png_that_is_not_blank(tmp_path):
    X_train, y_train, X_test, y_test, predict_proba = two_class_problem()
    plot_decision_boundary(predict_proba, X_train, y_train, X_test, y_test, tmp_path / "db.png")
    image = read_png(tmp_path / "db.png")
    assert image.shape == (500, 750, 3)
    assert_not_blank(image)


@pytest.mark.parametrize("problem, classes", [(two_class_problem, [0, 1]), (four_class_problem, [0, 1, 2, 3])])
def test_decision_boundary_shows_a_colour_per_class(tmp_path, problem, classes):
    X_train, y_train, X_test, y_test, predict_proba = problem()
    plot_decision_boundary(predict_proba, X_train, y_train, X_test, y_test, tmp_path / "db.png")
    assert class_colours_present(read_png(tmp_path / "db.png"), n_palette=4) == classes


def test_decision_boundary_asks_for_the_grid_and_the_points_in_one_call(tmp_path):
    X_train, y_train, X_test, y_test, predict_proba = two_class_problem()
    calls = []

    def counting(G):
        calls.append(G.copy())
        return predict_proba(G)

    plot_decision_boundary(counting, X_train, y_train, X_test, y_test, tmp_path / "db.png", resolution=50)
    (G,) = calls
    assert G.shape == (50 * 50 + 60 + 20, 2)
    np.testing.assert_array_equal(G[2500:], np.vstack([X_train, X_test]))  # the points, for the accuracy


def test_decision_boundary_legend_names_every_class_then_the_two_splits(tmp_path, figures):
    X_train, y_train, X_test, y_test, predict_proba = four_class_problem()
    names = ["north-west", "b", "c", "d"]
    plot_decision_boundary(predict_proba, X_train, y_train, X_test, y_test, tmp_path / "db.png", class_names=names)
    (fig,) = figures
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [*names, "train", "test"]


def legend_is_whole(ax):
    """True when the legend, as drawn, lies inside its figure: nothing of it is cut off at an edge."""
    fig = ax.figure
    fig.canvas.draw()
    box, page = ax.get_legend().get_window_extent(), fig.bbox
    return page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1


def test_the_run_directorys_decision_boundary_keeps_its_whole_legend(tmp_path, figures):
    X_train, y_train, X_test, y_test, predict_proba = four_class_problem()
    names = ["a long class name", "b", "c", "d"]
    plot_decision_boundary(predict_proba, X_train, y_train, X_test, y_test, tmp_path / "db.png", class_names=names)
    (fig,) = figures
    assert legend_is_whole(fig.axes[0])
    ax = plot.decision_boundary(predict_proba, X_train, y_train, X_test=X_test, y_test=y_test, class_names=names)
    assert legend_is_whole(ax)  # the library's own figure, too


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


# ----- decision_boundary as an embeddable Axes ---------------------------------------------

import micronet  # noqa: E402
from micronet import MLP  # noqa: E402
from micronet.predict import Predictor  # noqa: E402


def moons_like():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 2))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def test_decision_boundary_draws_on_the_given_axes_and_returns_it():
    X, y = moons_like()
    fig = plot.Figure()
    ax = fig.add_subplot()
    assert plot.decision_boundary(MLP(2, [4, 2], seed=0), X, y, ax=ax, resolution=20) is ax
    assert fig.axes == [ax]


def test_without_axes_a_script_gets_a_headless_figure_and_pyplot_users_a_pyplot_one(tmp_path):
    import subprocess
    import sys

    script = (
        "import sys; from micronet import MLP, plot; import numpy as np\n"
        "X = np.random.default_rng(0).normal(size=(20, 2)); y = (X[:, 0] > 0).astype(int)\n"
        "ax = plot.decision_boundary(MLP(2, [4, 2], seed=0), X, y, resolution=20)\n"
        "print('matplotlib.pyplot' in sys.modules, ax.figure.canvas.manager is None)\n"
        "import matplotlib.pyplot as plt\n"
        "ax = plot.decision_boundary(MLP(2, [4, 2], seed=0), X, y, resolution=20)\n"
        "print(plt.gcf() is ax.figure)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "True", "True"], out.stderr
    # The run directory's files never go through pyplot, even in a process that uses it.
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    X, y = moons_like()
    plot.plot_decision_boundary(lambda G: np.full((len(G), 2), 0.5), X, y, X, y, tmp_path / "boundary.png")
    assert plt.get_fignums() == before


def shown(ax):
    return np.asarray(ax.get_images()[0].get_array())


def test_a_module_a_predictor_and_a_function_give_the_same_picture():
    X, y = moons_like()
    model = MLP(2, [5, 2], seed=3)
    pictures = [
        shown(plot.decision_boundary(model, X, y, resolution=30)),
        shown(plot.decision_boundary(Predictor(model), X, y, resolution=30)),
        shown(plot.decision_boundary(lambda G: micronet.predict_proba(model, G), X, y, resolution=30)),
    ]
    assert pictures[0].shape == (30, 30, 3)
    np.testing.assert_array_equal(pictures[0], pictures[1])
    np.testing.assert_array_equal(pictures[0], pictures[2])


def test_an_estimator_with_string_labels_is_plotted_through_its_classes():
    from micronet.sklearn import MicronetClassifier

    X, y = moons_like()
    labels = np.array(["left", "right"])[y]
    clf = MicronetClassifier(hidden=(4,), epochs=5, random_state=0).fit(X, labels)
    ax = plot.decision_boundary(clf, X, labels, resolution=20)
    assert ax.get_title().splitlines()[1] == f"accuracy {clf.score(X, labels):.3f}"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["left", "right"]


def test_title_gives_train_and_test_accuracy_worked_out():
    X_train, y_train, X_test, y_test, predict_proba = two_class_problem()
    y_train = y_train.copy()
    y_train[:3] = 1 - y_train[:3]  # three of 60 training labels contradict the model
    ax = plot.decision_boundary(predict_proba, X_train, y_train, X_test=X_test, y_test=y_test, resolution=20,
                                title="Moons")
    assert ax.get_title() == "Moons\ntrain accuracy 0.950, test accuracy 1.000"


def test_training_points_are_circles_and_test_points_crosses():
    X_train, y_train, X_test, y_test, predict_proba = two_class_problem()
    ax = plot.decision_boundary(predict_proba, X_train, y_train, X_test=X_test, y_test=y_test, resolution=20)
    train, test = ax.collections
    np.testing.assert_array_equal(train.get_offsets(), X_train)
    np.testing.assert_array_equal(test.get_offsets(), X_test)
    from matplotlib.markers import MarkerStyle

    def drawn(marker):  # the path scatter stores: the marker's, through its own transform
        style = MarkerStyle(marker)
        return style.get_path().transformed(style.get_transform()).vertices

    circle, cross = drawn("o"), drawn("X")
    np.testing.assert_array_equal(train.get_paths()[0].vertices, circle)
    np.testing.assert_array_equal(test.get_paths()[0].vertices, cross)


def test_axis_labels_say_when_features_are_standardised():
    X, y = moons_like()
    plain = plot.decision_boundary(MLP(2, [2], seed=0), X, y, resolution=10)
    scaled = plot.decision_boundary(MLP(2, [2], seed=0), X, y, resolution=10, standardized=True,
                                    feature_names=["petal length", "petal width"])
    assert (plain.get_xlabel(), plain.get_ylabel()) == ("feature 0", "feature 1")
    assert (scaled.get_xlabel(), scaled.get_ylabel()) == ("petal length (standardised)", "petal width (standardised)")


def test_the_legend_sits_outside_the_axes_and_inside_the_figure(tmp_path):
    X_train, y_train, X_test, y_test, predict_proba = four_class_problem()
    ax = plot.decision_boundary(predict_proba, X_train, y_train, X_test=X_test, y_test=y_test, resolution=20,
                                class_names=["a rather long class name", "b", "c", "d"])
    fig = ax.figure
    fig.canvas.draw()
    legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= frame.x1  # right of the data: it can hide no point
    assert legend.x1 <= fig.bbox.x1  # and not cut off


LINEAR = MLP(2, [2], seed=0)


@pytest.mark.parametrize(
    "model, kwargs, error, message",
    [
        (object(), {}, TypeError, r"model must be a micronet Module, an object with predict_proba"),
        (LINEAR, {"X": np.zeros((40, 1))}, ValueError, r"X must be \(n, 2\)"),
        (LINEAR, {"y": np.arange(40) % 2 + 5}, ValueError, r"y must hold class indices 0..1, got values from 5 to 6"),
        (LINEAR, {"X_test": np.zeros((3, 2))}, ValueError, r"X_test and y_test go together"),
        (LINEAR, {"resolution": 1}, ValueError, r"resolution must be an int >= 2, got 1"),
        (lambda G: G[:, 0], {}, ValueError, r"must give \(n, k >= 2\) class probabilities"),
        (Predictor(LINEAR, classes=["a", "b"]), {}, ValueError, r"y has labels the model does not know: \[0, 1\]"),
    ],
    ids=["model", "X-width", "y-range", "test-half", "resolution", "probabilities", "labels"],
)
def test_decision_boundary_refuses_bad_arguments_by_name(model, kwargs, error, message):
    X, y = moons_like()
    arguments = {"X": X, "y": y, **kwargs}
    with pytest.raises(error, match=message):
        plot.decision_boundary(model, arguments.pop("X"), arguments.pop("y"), **arguments)


# ----- history -------------------------------------------------------------------------------


class KerasLike:
    """What micronet.fit returns (and Keras' History): .history keyed loss, val_loss, ...; .epoch; .best_epoch."""

    def __init__(self):
        self.epoch = [1, 2, 3, 4]
        self.history = {"loss": [0.9, 0.5, 0.3, 0.25], "val_loss": [1.0, 0.6, 0.5, 0.55],
                        "accuracy": [0.5, 0.7, 0.9, 0.95], "val_accuracy": [0.45, 0.7, 0.8, 0.8], "lr": [0.1] * 4}
        self.best_epoch = 3


def test_history_puts_loss_and_accuracy_on_one_axes_by_default():
    h = KerasLike()
    ax = plot.history(h)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["train loss", "validation loss", "train accuracy", "validation accuracy", "best epoch (3)"]
    assert list(lines["validation loss"].get_ydata()) == h.history["val_loss"]
    assert list(lines["train accuracy"].get_xdata()) == h.epoch
    assert lines["train loss"].get_linestyle() == "-" and lines["train accuracy"].get_linestyle() == "--"
    assert lines["train loss"].get_color() == lines["train accuracy"].get_color()  # a colour per split
    assert list(lines["best epoch (3)"].get_xdata()) == [3, 3]
    assert ax.get_title() == "Loss and Accuracy"


def test_history_of_one_metric_from_metrics_rows():
    rows = history(5)
    ax = plot.history(rows, metric="accuracy")
    assert [line.get_label() for line in ax.get_lines()] == ["train", "test"]
    assert list(ax.get_lines()[1].get_ydata()) == [row["test_accuracy"] for row in rows]
    assert ax.get_ylim() == (-0.02, 1.02)


def test_history_of_a_regression_run_shows_r2():
    rows = [{"epoch": e, "train_loss": 1 / e, "train_mae": 2 / e, "train_r2": 1 - 1 / e, "test_loss": 1.5 / e,
             "test_mae": 3 / e, "test_r2": 1 - 1.5 / e} for e in range(1, 4)]
    ax = plot.history(rows)
    assert [line.get_label() for line in ax.get_lines()] == ["train loss", "test loss", "train R²", "test R²"]


def test_history_draws_on_given_axes():
    fig = plot.Figure()
    ax = fig.add_subplot()
    assert plot.history({"loss": [3.0, 2.0]}, ax) is ax
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2]


@pytest.mark.parametrize(
    "value, error, message",
    [
        ([], ValueError, r"history is empty"),
        ({"loss": [1.0]}, ValueError, None),
        ("loss", TypeError, r"history must be a list of per-epoch dicts"),
    ],
    ids=["empty", "no-such-metric", "text"],
)
def test_history_refuses_what_it_cannot_plot(value, error, message):
    if message is None:
        with pytest.raises(ValueError, match=r"history has no 'mae' values; its columns are loss"):
            plot.history(value, metric="mae")
        return
    with pytest.raises(error, match=message):
        plot.history(value)


# ----- confusion_matrix ------------------------------------------------------------------------


def test_confusion_matrix_normalised_by_true_class_gives_row_fractions():
    ax = plot.confusion_matrix(Y_TRUE, Y_PRED, normalize="true")
    np.testing.assert_allclose(shown(ax), np.array(COUNTS) / np.array(COUNTS).sum(axis=1, keepdims=True))
    assert ax.figure.axes[1].get_ylabel() == "fraction"  # the colour bar
    assert "0.750" in ax.get_title()


def test_confusion_matrix_uses_labels_and_their_order():
    y_true = ["cat", "dog", "dog", "bird"]
    y_pred = ["cat", "cat", "dog", "bird"]
    ax = plot.confusion_matrix(y_true, y_pred, labels=["dog", "cat", "bird"])
    assert shown(ax).tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dog", "cat", "bird"]


def test_confusion_matrix_on_given_axes():
    fig = plot.Figure()
    ax = fig.add_subplot()
    assert plot.confusion_matrix([0, 1], [1, 1], ax=ax) is ax


def test_confusion_matrix_refuses_unequal_lengths_and_bad_normalize():
    with pytest.raises(ValueError, match="y_true and y_pred must have the same length, got 2 and 1"):
        plot.confusion_matrix([0, 1], [1])
    with pytest.raises(ValueError, match="normalize must be None, 'true', 'pred' or 'all', got 'rows'"):
        plot.confusion_matrix([0, 1], [1, 1], normalize="rows")


# ----- regression ------------------------------------------------------------------------------


def test_regression_fit_draws_data_the_model_curve_and_the_true_curve():
    from micronet import Layer

    x = np.linspace(-2, 2, 9)
    y = 2 * x + 1
    line = Layer(1, 1, activation="linear", seed=0)
    line.neurons[0].w[0].data, line.neurons[0].b.data = 2.0, 1.0
    ax = plot.regression_fit(line, x[:, None], y, true_function=lambda t: 2 * t + 1)
    true, model = ax.get_lines()
    assert (true.get_label(), model.get_label()) == ("true function", "model")
    grid = model.get_xdata()
    assert len(grid) == 400 and grid[0] < -2 and grid[-1] > 2
    np.testing.assert_allclose(model.get_ydata(), 2 * grid + 1, rtol=1e-12)
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), np.column_stack([x, y]))
    assert ax.get_title() == "Fit (R² 1.000)"


def test_regression_fit_takes_a_predict_method_and_refuses_two_features():
    class Constant:
        def predict(self, X):
            return np.zeros(len(X))

    ax = plot.regression_fit(Constant(), [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert ax.get_title() == "Fit (R² -6.000)"  # SS_res 14, SS_tot 2
    with pytest.raises(ValueError, match=r"regression_fit needs one input feature"):
        plot.regression_fit(Constant(), np.zeros((3, 2)), [1.0, 2.0, 3.0])


def test_predicted_vs_true_draws_the_identity_line_and_r2():
    ax = plot.predicted_vs_true([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert ax.get_title() == "Predicted against true (R² 0.500)"  # SS_res 1, SS_tot 2
    (identity,) = ax.get_lines()
    np.testing.assert_array_equal(identity.get_xdata(), identity.get_ydata())
    assert ax.get_xlim() == ax.get_ylim()


def test_r2_agrees_with_scikit_learn_for_one_and_two_outputs():
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(5)
    for shape in ((30,), (30, 2)):
        y, p = rng.normal(size=shape), rng.normal(size=shape)
        assert plot.r2_score(y, p) == pytest.approx(r2_score(y, p), rel=1e-12)
    assert plot.r2_score([2.0, 2.0], [2.0, 2.0]) == 1.0 and plot.r2_score([2.0, 2.0], [1.0, 2.0]) == 0.0


# ----- save_figure -------------------------------------------------------------------------------


def test_save_figure_takes_axes_or_figure_and_the_format_from_the_suffix(tmp_path):
    ax = plot.history({"loss": [2.0, 1.0]})
    plot.save_figure(ax, tmp_path / "a.png")
    plot.save_figure(ax.figure, tmp_path / "a.svg")
    assert (tmp_path / "a.png").read_bytes()[:8] == PNG_SIGNATURE
    assert b"<svg" in (tmp_path / "a.svg").read_bytes()[:500]
    with pytest.raises(ValueError, match=r"the suffix must be one of .*\.png"):
        plot.save_figure(ax, tmp_path / "a.bmpx")
    with pytest.raises(TypeError, match="save_figure takes a matplotlib Axes or Figure, got str"):
        plot.save_figure("ax", tmp_path / "a.png")


def test_save_figure_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    (tmp_path / "precious").write_bytes(b"keep")
    (tmp_path / "loss.png").symlink_to(tmp_path / "precious")
    plot.save_figure(plot.history({"loss": [2.0, 1.0]}), tmp_path / "loss.png")
    assert (tmp_path / "precious").read_bytes() == b"keep"
    assert not (tmp_path / "loss.png").is_symlink()
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG_SIGNATURE


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "loss.png"
    path.write_bytes(b"old")
    ax = plot.history({"loss": [2.0, 1.0]})
    monkeypatch.setattr(ax.figure, "savefig", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        plot.save_figure(ax, path)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["loss.png"]


def test_plot_history_of_a_regression_run_draws_loss_and_r2(tmp_path, figures):
    rows = [{"epoch": e, "train_loss": 1 / e, "train_mae": 2 / e, "train_r2": 1 - 1 / e, "test_loss": 1.5 / e,
             "test_mae": 3 / e, "test_r2": 1 - 1.5 / e, "lr": 0.1, "seconds": 0.1} for e in range(1, 4)]
    plot_history(rows, tmp_path / "loss.png")
    (fig,) = figures
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "R²"]


def test_an_empty_test_split_draws_as_none_without_warnings():
    import warnings

    X, y = moons_like()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = plot.decision_boundary(MLP(2, [4, 2], seed=0), X, y, X_test=X[:0], y_test=y[:0], resolution=20)
    assert ax.get_title().splitlines()[-1].startswith("accuracy ")
