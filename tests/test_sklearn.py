"""MicronetClassifier in scikit-learn's own tooling."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, make_moons
from sklearn.exceptions import NotFittedError
from sklearn.inspection import DecisionBoundaryDisplay
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import micronet
from micronet.data import split_validation
from micronet.loop import Diverged
from micronet.nn import MLP
from micronet.sklearn import MicronetClassifier, MicronetRegressor


class TwoLayers(micronet.Module):
    """A custom module for the `module=` parameter: not an MLP, but the same shape of thing."""

    def __init__(self, n_features, n_outputs, seed=0):
        self.hidden = micronet.Layer(n_features, 8, activation="tanh", seed=seed)
        self.head = micronet.Layer(8, n_outputs, activation="linear", seed=seed + 1)

    def __call__(self, x):
        return self.head(self.hidden(x))


@parametrize_with_checks(
    [
        MicronetClassifier(epochs=20),
        MicronetClassifier(epochs=20, module=TwoLayers),
        MicronetRegressor(epochs=20),
        MicronetRegressor(epochs=20, early_stopping=True),
    ]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)  # every check passes: none is marked as an expected failure


@pytest.fixture(scope="module")
def moons():
    return make_moons(200, noise=0.1, random_state=0)


def test_fit_sets_the_fitted_attributes(moons):
    X, y = moons
    clf = MicronetClassifier(hidden=(8,), epochs=15, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == [0, 1] and clf.n_features_in_ == 2
    assert len(clf.loss_curve_) == clf.n_iter_ == 15
    assert isinstance(clf.model_, MLP) and len(clf.model_.parameters()) == (2 + 1) * 8 + (8 + 1) * 2
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_string_labels_and_probabilities():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = make_pipeline(StandardScaler(), MicronetClassifier(epochs=40, random_state=1)).fit(X, names)
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(X)).all()
    assert set(clf.predict(X)) <= set(names) and clf.score(X, names) > 0.9


def test_same_random_state_same_model(moons):
    X, y = moons
    a = MicronetClassifier(epochs=5, random_state=3).fit(X, y)
    b = MicronetClassifier(epochs=5, random_state=3).fit(X, y)
    c = MicronetClassifier(epochs=5, random_state=4).fit(X, y)
    data = lambda clf: [p.data for p in clf.model_.parameters()]  # noqa: E731
    assert data(a) == data(b) and data(a) != data(c)


def test_partial_fit_runs_one_more_epoch(moons):
    X, y = moons
    clf = MicronetClassifier(epochs=3, random_state=0)
    clf.partial_fit(X, y, classes=[0, 1])
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    with pytest.raises(ValueError, match="labels not seen in classes_"):
        clf.partial_fit(X, y + 5)


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), [0, 1], "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0]]), [0, 1], "infinity"),
        (np.zeros((4, 2)), [1, 1, 1, 1], "at least 2 classes"),
        (np.zeros((4, 2)), [0.1, 0.2, 0.3, 0.4], "Unknown label type"),
        (np.zeros(4), [0, 1, 0, 1], "2D array"),
    ],
)
def test_bad_input_raises_value_error(X, y, message):
    with pytest.raises(ValueError, match=message):
        MicronetClassifier(epochs=2).fit(X, y)


def test_bad_hyper_parameters_are_named_at_fit():
    X, y = make_moons(20, random_state=0)
    with pytest.raises(ValueError, match="^lr must be a finite number > 0, got -1.0$"):
        MicronetClassifier(lr=-1.0).fit(X, y)
    with pytest.raises(ValueError, match=r"^activation must be one of relu, tanh, sigmoid; got 'gelu' \(did you mean 'relu'\?\)$"):
        MicronetClassifier(activation="gelu").fit(X, y)
    with pytest.raises(ValueError, match="^epochs must be an int >= 1, got 0$"):
        MicronetRegressor(epochs=0).fit(X, y.astype(float))
    with pytest.raises(ValueError, match=r"^momentum does not apply to optimizer 'adam' \(it takes: lr, betas, eps"):
        MicronetRegressor(momentum=0.5).fit(X, y.astype(float))
    with pytest.raises(ValueError, match="^nesterov needs momentum > 0, got 0.0$"):
        MicronetClassifier(momentum=0.0, nesterov=True).fit(X, y)
    with pytest.raises(ValueError, match="^tol must be a finite number >= 0, got -1$"):
        MicronetClassifier(tol=-1).fit(X, y)


def test_predict_before_fit_and_wrong_feature_count(moons):
    X, y = moons
    with pytest.raises(NotFittedError):
        MicronetClassifier().predict(X)
    clf = MicronetClassifier(epochs=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.zeros((3, 5)))


def test_pipeline_cross_validation_grid_search_and_clone(moons):
    X, y = moons
    pipe = make_pipeline(StandardScaler(), MicronetClassifier(hidden=(16,), epochs=30, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    search = GridSearchCV(pipe, {"micronetclassifier__lr": [0.01, 0.1]}, cv=2).fit(X, y)
    assert search.best_params_["micronetclassifier__lr"] in (0.01, 0.1)
    copy = clone(search.best_estimator_)
    assert copy.get_params()["micronetclassifier__lr"] == search.best_params_["micronetclassifier__lr"]
    assert not hasattr(copy[-1], "model_")


def test_decision_boundary_display_from_estimator(moons, tmp_path):
    X, y = moons
    clf = MicronetClassifier(epochs=20, random_state=0).fit(X, y)
    display = DecisionBoundaryDisplay.from_estimator(clf, X, response_method="predict_proba")
    assert display.response.shape == display.xx0.shape
    assert 0.0 <= display.response.min() and display.response.max() <= 1.0
    display.figure_.savefig(tmp_path / "boundary.png")
    assert (tmp_path / "boundary.png").stat().st_size > 5_000


def test_eager_and_compiled_backends_agree(moons):
    X, y = moons
    compiled = MicronetClassifier(epochs=3, random_state=0).fit(X, y)
    eager = MicronetClassifier(epochs=3, random_state=0, backend="eager").fit(X, y)
    assert compiled.loss_curve_ == pytest.approx(eager.loss_curve_, rel=1e-12)


# ----- stopping, module=, the regressor ----------------------------------------------------


def test_training_stops_when_the_loss_stalls_as_in_mlpclassifier(moons):
    X, y = moons
    clf = MicronetClassifier(hidden=(8,), epochs=500, lr=0.5, n_iter_no_change=3, tol=1e-3, random_state=0).fit(X, y)
    assert clf.n_iter_ < 500 and clf.best_loss_ == min(clf.loss_curve_)
    # scikit-learn's rule: it stops at the first epoch with more than n_iter_no_change stalled epochs.
    count, best, stop = 0, np.inf, None
    for epoch, loss in enumerate(clf.loss_curve_, start=1):
        count = count + 1 if loss > best - 1e-3 else 0
        best = min(best, loss)
        if count > 3:
            stop = epoch
            break
    assert stop == clf.n_iter_
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None


def test_early_stopping_keeps_the_best_validation_epoch(moons):
    X, y = moons
    clf = MicronetClassifier(epochs=300, lr=0.5, early_stopping=True, validation_fraction=0.2, n_iter_no_change=4,
                             random_state=0).fit(X, y)
    scores = clf.validation_scores_
    assert len(scores) == clf.n_iter_ < 300 and clf.best_validation_score_ == max(scores)
    assert clf.best_loss_ is None
    # The kept weights are the best epoch's: the validation rows are classified as well as then.
    assert all(round(s * 40, 9).is_integer() for s in scores)  # 40 of 200 rows validate


def test_early_stopping_ends_with_the_best_epochs_weights_scored_on_the_labels():
    X, y = make_moons(200, noise=0.3, random_state=0)
    labels = np.array(["down", "up"])[y]
    clf = MicronetClassifier(hidden=(8,), epochs=300, lr=0.3, early_stopping=True, validation_fraction=0.2,
                             n_iter_no_change=3, random_state=0).fit(X, labels)
    scores = clf.validation_scores_
    assert scores[-1] < clf.best_validation_score_ == max(scores)  # the last epoch is not the best
    # The held-out rows are the ones split_validation draws (on the class indices) with the random_state as seed.
    _, _, X_val, y_val = split_validation(X, y, 0.2, 0, stratify=True, name="validation_fraction")
    assert np.mean(clf.predict(X_val) == np.array(["down", "up"])[y_val]) == clf.best_validation_score_


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regressor_early_stopping_keeps_the_best_epoch_and_scores_it_in_the_targets_units(n_outputs):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(200, 2))
    # Targets far from mean 0 and scale 1, so a score on the scaled targets could not pass for one in their units.
    Y = np.column_stack([100 * X[:, 0] + 30 * np.sin(3 * X[:, 1]) + 500, 0.01 * X[:, 1] ** 2 - 3])
    y = Y[:, 0] if n_outputs == 1 else Y
    reg = MicronetRegressor(hidden=(16,), epochs=300, lr=0.05, early_stopping=True, validation_fraction=0.2,
                            n_iter_no_change=3, random_state=0).fit(X, y)
    scores = reg.validation_scores_
    assert scores[-1] < reg.best_validation_score_ == max(scores)
    _, _, X_val, y_val = split_validation(X, y, 0.2, 0, stratify=False, name="validation_fraction")
    assert r2_score(y_val, reg.predict(X_val)) == pytest.approx(reg.best_validation_score_, abs=1e-12)


def test_module_accepts_a_module_or_a_builder_and_never_changes_the_given_one(moons):
    X, y = moons
    net = TwoLayers(2, 2)
    before = [p.data for p in net.parameters()]
    clf = MicronetClassifier(module=net, epochs=5, random_state=0).fit(X, y)
    assert [p.data for p in net.parameters()] == before
    assert isinstance(clf.model_, TwoLayers) and clf.model_ is not net
    built = MicronetClassifier(module=lambda d, k: TwoLayers(d, k, seed=1), epochs=5, random_state=0).fit(X, y)
    assert isinstance(built.model_, TwoLayers) and built.score(X, y) > 0.7


def test_a_module_of_the_wrong_shape_is_named(moons):
    X, y = moons
    with pytest.raises(ValueError, match="module must return 2 outputs for this data, got 3"):
        MicronetClassifier(module=TwoLayers(2, 3), epochs=2).fit(X, y)
    with pytest.raises(ValueError, match="module cannot take 2 features"):
        MicronetClassifier(module=TwoLayers(5, 2), epochs=2).fit(X, y)
    with pytest.raises(ValueError, match="module must be a micronet Module or a callable"):
        MicronetClassifier(module="mlp", epochs=2).fit(X, y)


def test_hidden_must_be_a_list_of_widths(moons):
    X, y = moons
    with pytest.raises(ValueError, match=r"^hidden must be a list of ints >= 1 \(layer widths; \[\] for a linear model\), got 5$"):
        MicronetClassifier(hidden=5).fit(X, y)
    with pytest.raises(ValueError, match=r"^hidden\[1\] must be an int >= 1, got 0$"):
        MicronetClassifier(hidden=(4, 0)).fit(X, y)


def test_a_diverged_fit_leaves_the_estimator_unfitted(moons):
    X, y = moons
    clf = MicronetClassifier(epochs=2, random_state=0).fit(X, y)
    clf.set_params(lr=1e300)
    with pytest.raises(Diverged):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_regressor_fits_one_or_several_targets_in_original_units(n_outputs):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(300, 2))
    Y = np.column_stack([100 * X[:, 0] + 5 * X[:, 1] ** 2 + k * 50 for k in range(n_outputs)])
    y = Y[:, 0] if n_outputs == 1 else Y
    reg = MicronetRegressor(hidden=(32,), epochs=60, lr=0.05, random_state=0).fit(X, y)
    predicted = reg.predict(X)
    assert predicted.shape == y.shape
    assert reg.score(X, y) > 0.95
    assert abs(predicted.mean() - y.mean()) < 10  # the target scaling is undone


def test_regressor_without_target_scaling_predicts_raw_outputs():
    X = np.linspace(-1, 1, 50)[:, None]
    y = 0.5 * X[:, 0]
    reg = MicronetRegressor(hidden=(), epochs=50, standardize_target=False, random_state=0).fit(X, y)
    assert reg.target_scaler_ is None
    w, b = (p.data for p in reg.model_.parameters())
    assert np.allclose(reg.predict(X), w * X[:, 0] + b)


def test_regressor_partial_fit_and_early_stopping():
    X = np.linspace(-3, 3, 200)[:, None]
    y = np.sin(X[:, 0])
    reg = MicronetRegressor(epochs=1, random_state=0)
    for _ in range(3):
        reg.partial_fit(X, y)
    assert reg.n_iter_ == 3 and len(reg.loss_curve_) == 3
    es = MicronetRegressor(epochs=400, early_stopping=True, n_iter_no_change=5, random_state=0).fit(X, y)
    assert es.best_validation_score_ == max(es.validation_scores_) > 0.9


def test_regressor_in_a_pipeline_with_cross_validation():
    from sklearn.datasets import make_regression

    X, y = make_regression(200, n_features=4, noise=5.0, random_state=0)
    pipe = make_pipeline(StandardScaler(), MicronetRegressor(hidden=(16,), epochs=40, random_state=0))
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.9
